"""The cross-process training slot that `convtui serve` sessions queue for (core/training/training_slot.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from convtui.core.training import training_slot as slot_module
from convtui.core.training.training_slot import training_slot, waiting_message


class FakeTime:
    """A clock that only moves when the code under test sleeps, so 'about once a second' is exact."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1


@pytest.fixture
def slots(tmp_path, monkeypatch):
    folder = tmp_path / "slots"
    monkeypatch.setenv(slot_module.SLOTS_FOLDER_VARIABLE, str(folder))
    monkeypatch.delenv(slot_module.SLOT_COUNT_VARIABLE, raising=False)
    return folder


def test_outside_serve_the_slot_is_granted_at_once_and_touches_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(slot_module.SLOTS_FOLDER_VARIABLE, raising=False)
    told = []
    with training_slot(told.append, lambda: True) as may_train, training_slot(told.append) as second:
        assert (may_train, second) == (True, True)  # no limit at all: even nested runs go
    assert told == []


def test_one_slot_second_run_waits_tells_once_a_second_and_gives_up_on_stop(slots):
    fake, told = FakeTime(), []
    with training_slot() as first:
        assert first is True
        # 25 polls of 0.1 s = 2.5 s of waiting: told at 0 s, 1 s and 2 s, then stopped.
        with training_slot(told.append, lambda: fake.sleeps >= 25, fake.sleep, fake.clock) as second:
            assert second is False
    assert told == ["waiting: another session is training (1 of 1 slots in use)"] * 3
    assert fake.sleeps == 25


def test_a_released_slot_goes_to_the_waiting_run(slots):
    holder = training_slot()
    assert holder.__enter__() is True
    fake = FakeTime()

    def sleep(seconds):
        fake.sleep(seconds)
        if fake.sleeps == 3:
            holder.__exit__(None, None, None)  # the other session finishes while we wait

    told = []
    with training_slot(told.append, lambda: False, sleep, fake.clock) as may_train:
        assert may_train is True
        with training_slot(should_stop=lambda: True, sleep=fake.sleep) as third:
            assert third is False  # and now we hold the only slot
    assert len(told) == 1 and fake.sleeps == 3


@pytest.mark.parametrize("count", [2, 3])
def test_the_slot_count_lets_that_many_runs_train_at_once(slots, monkeypatch, count):
    monkeypatch.setenv(slot_module.SLOT_COUNT_VARIABLE, str(count))
    held = [training_slot() for _ in range(count)]
    assert [h.__enter__() for h in held] == [True] * count
    told = []
    with training_slot(told.append, lambda: bool(told), lambda s: None) as extra:
        assert extra is False
    assert told == [f"waiting: other sessions are training ({count} of {count} slots in use)"]
    for h in held:
        h.__exit__(None, None, None)
    with training_slot(should_stop=lambda: True) as after:
        assert after is True


@pytest.mark.parametrize("text", ["", "0", "-1", "two", "1000"])
def test_a_bad_slot_count_means_one_slot(monkeypatch, text):
    monkeypatch.setenv(slot_module.SLOT_COUNT_VARIABLE, text)
    assert slot_module.slot_count() == 1


def test_waiting_message_wording():
    assert waiting_message(1) == "waiting: another session is training (1 of 1 slots in use)"
    assert waiting_message(2) == "waiting: other sessions are training (2 of 2 slots in use)"


def test_a_symlinked_slot_file_is_not_followed(slots, tmp_path):
    slots.mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    (slots / "slot-0.lock").symlink_to(target)
    with pytest.raises(OSError), training_slot():
        pass
    assert target.read_text() == "keep"


@pytest.mark.slow
def test_a_killed_session_releases_its_slot(slots):
    """Another process holds the slot; SIGKILL it (a closed tab's app process): the slot is free at once."""
    code = textwrap.dedent("""
        import sys, time
        from convtui.core.training.training_slot import training_slot
        with training_slot():
            print("holding", flush=True)
            time.sleep(60)
    """)
    env = {**os.environ, slot_module.SLOTS_FOLDER_VARIABLE: str(slots)}
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "holding"
        with training_slot(should_stop=lambda: True) as while_held:
            assert while_held is False
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        deadline = time.monotonic() + 5
        with training_slot(should_stop=lambda: time.monotonic() > deadline) as after_kill:
            assert after_kill is True
    finally:
        child.kill()
        child.wait(10)


# ---------------------------------------------------------------------------------------------- the dashboard's worker
def test_a_training_session_waits_with_a_message_then_trains_when_the_slot_frees(slots):
    """TrainingSession.run queues for the slot: SlotWaiting messages while another run holds it, then the run."""
    from convtui.core.training import events as ev
    from convtui.tui import train_worker as tw
    from tests.tui.test_train_worker import ScriptedTrainer, samples

    holder = training_slot()
    assert holder.__enter__() is True
    posted: list = []

    def post(message):
        posted.append(message)
        if isinstance(message, tw.SlotWaiting) and len(posted) == 2:
            holder.__exit__(None, None, None)  # the other session's run ends after ~1 s of waiting
        return True

    trainer = ScriptedTrainer(steps=5)
    tw.TrainingSession(trainer, samples(), post).run()
    waits = [m.text for m in posted if isinstance(m, tw.SlotWaiting)]
    assert waits == ["waiting: another session is training (1 of 1 slots in use)"] * 2
    assert posted.index(next(m for m in posted if isinstance(m, tw.TrainEvent))) == 2  # training came after
    done = [m.event for m in posted if isinstance(m, tw.TrainEvent)][-1]
    assert isinstance(done, ev.Done) and done.reason == "completed" and trainer.steps_run == 5


def test_a_training_session_stopped_while_waiting_never_trains(slots):
    from convtui.tui import train_worker as tw
    from tests.tui.test_train_worker import ScriptedTrainer, samples

    with training_slot():
        posted: list = []
        control = tw.RunControl()

        def post(message):
            posted.append(message)
            control.request_stop()  # the learner presses x (or leaves) while queued
            return True

        trainer = ScriptedTrainer(steps=5)
        tw.TrainingSession(trainer, samples(), post, control=control).run()
    assert [type(m).__name__ for m in posted] == ["SlotWaiting", "TrainFailed"]
    assert posted[-1].text == "stopped while waiting for the training slot"
    assert trainer.steps_run == 0
