"""The training worker's loop, driven by a scripted trainer (a real softmax model, events written by hand) and a
fake clock, so throttling, pausing, stopping and snapshots are checked exactly and without timing."""

import threading

import numpy as np

from convtui.core.training import events as ev
from convtui.core.nn.architectures import build_model
from convtui.tui import train_worker as tw


class ScriptedTrainer:
    """Yields TrainStart, `steps` Steps per epoch and EpochEnd, then Done; stops when asked, like Trainer."""

    def __init__(self, epochs=1, steps=20, on_step=None):
        self.model = build_model("softmax", 0)
        self.epochs, self.steps, self.on_step = epochs, steps, on_step
        self.stop_requested = threading.Event()
        self.steps_run = 0

    def request_stop(self):
        self.stop_requested.set()

    def events(self):
        yield ev.Compiling("compiling kernels for softmax")
        yield ev.TrainStart("softmax", self.epochs, self.steps, self.steps * 10, 50, 0, 0.0)
        for epoch in range(self.epochs):
            for step in range(1, self.steps + 1):
                if self.stop_requested.is_set():
                    yield ev.Done("stopped", "stopped", epoch, None)
                    return
                self.steps_run += 1
                self.model.layers[1].w.value *= 1.01  # "learning": the weight bands must move
                if self.on_step:
                    self.on_step(self.steps_run)
                yield ev.Step(epoch, step, epoch * self.steps + step, self.epochs * self.steps, loss=2.0 / step,
                              accuracy=step / self.steps, running_loss=1.0, running_accuracy=0.5, lr=0.01,
                              images_per_s=1000.0, eta_s=1.0, elapsed_s=1.0)
            yield ev.EpochEnd(epoch, 1.0, 0.5, 0.9, 0.6, 0.01, 1.0)
        yield ev.Done("completed", "trained", self.epochs, None)


def samples(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return tw.Samples(rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n),
                      rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n))


class FakeClock:
    def __init__(self, tick):
        self.now, self.tick = 0.0, tick

    def __call__(self):
        self.now += self.tick
        return self.now


def run_session(trainer, tick=0.01):
    posted = []
    session = tw.TrainingSession(trainer, samples(), posted.append, clock=FakeClock(tick))
    session.run()
    return session, posted


def of_type(posted, kind):
    return [m for m in posted if isinstance(m, kind)]


def test_step_updates_are_throttled_but_no_curve_point_is_lost():
    trainer = ScriptedTrainer(steps=40)
    session, posted = run_session(trainer, tick=0.01)  # every clock read advances 10 ms
    updates = of_type(posted, tw.StepUpdate)
    points = [p for u in updates for p in u.points]
    assert len(points) == 40  # one smoothed point per step
    assert len(updates) < 40 / 2  # but far fewer messages than steps
    np.testing.assert_allclose([p[0] for p in points], [(s + 1) / 40 for s in range(40)])
    assert updates[-1].step.step == 40  # the epoch's last step is always sent
    # Exponential smoothing of the batch loss 2/step: starts at the first value and falls.
    assert points[0][1] == 2.0 and points[-1][1] < points[0][1]


def test_events_are_forwarded_in_order_and_snapshots_bracket_the_run():
    trainer = ScriptedTrainer(epochs=2, steps=5)
    session, posted = run_session(trainer)
    kinds = [type(m.event).__name__ for m in of_type(posted, tw.TrainEvent)]
    assert kinds == ["Compiling", "TrainStart", "EpochEnd", "EpochEnd", "Done"]
    snapshots = of_type(posted, tw.SnapshotReady)
    assert [s.x for s in snapshots][:1] == [0.0] and {1.0, 2.0} <= {s.x for s in snapshots}
    # Each snapshot carries its own copy of the band history, growing by one sample per snapshot.
    assert [len(s.bands.steps) for s in snapshots] == list(range(1, len(snapshots) + 1))
    first, last = snapshots[0].bands.array("output.w")[0], snapshots[-1].bands.array("output.w")[-1]
    assert not np.allclose(first, last)  # the weights moved
    assert session.model_copy is not None and session.model_copy is not trainer.model


def test_first_snapshot_calibrates_sample_sizes_within_the_samples():
    trainer = ScriptedTrainer(steps=3)
    session, posted = run_session(trainer)
    sizes = {(m.snapshot.train.n_evaluated, m.snapshot.test.n_evaluated) for m in of_type(posted, tw.SnapshotReady)}
    # 50 images in one 10 ms clock tick is fast: the largest size, cut to the 50 samples there are; the training
    # sample is 0.3 of it. Every snapshot of the run has the same size (it never jumps from 80 to 920).
    assert sizes == {(15, 50)} and session._sizes == (15, 50)


def test_snapshots_say_where_they_were_taken_and_a_stop_takes_a_last_one():
    trainer = ScriptedTrainer(steps=10, on_step=lambda n: n == 7 and trainer.request_stop())
    session, posted = run_session(trainer, tick=0.0001)
    shots = of_type(posted, tw.SnapshotReady)
    assert shots[0].where == "the start" and shots[-1].where == "epoch 1 step 7"
    assert shots[-1].snapshot.step == 7
    kinds = [type(m).__name__ if not isinstance(m, tw.TrainEvent) else type(m.event).__name__ for m in posted]
    assert kinds.index("Done") > len(kinds) - 1 - kinds[::-1].index("SnapshotReady")


def test_stop_asks_the_trainer_and_ends_with_done():
    holder = {}
    trainer = ScriptedTrainer(steps=100, on_step=lambda n: n == 10 and holder["session"].control.request_stop())
    posted = []
    session = tw.TrainingSession(trainer, samples(), posted.append, clock=FakeClock(0.01))
    holder["session"] = session
    session.run()
    done = of_type(posted, tw.TrainEvent)[-1].event
    assert isinstance(done, ev.Done) and done.reason == "stopped"
    assert trainer.steps_run == 10


def test_pause_holds_the_generator_until_resume():
    trainer = ScriptedTrainer(steps=50)
    posted = []
    session = tw.TrainingSession(trainer, samples(), posted.append)
    session.control.pause()
    thread = threading.Thread(target=session.run)
    thread.start()
    try:
        thread.join(0.5)
        # Paused after the first event: the trainer has not been asked for a single step.
        assert thread.is_alive() and trainer.steps_run == 0
        session.control.resume()
        thread.join(10)
        assert not thread.is_alive() and trainer.steps_run == 50
    finally:
        session.control.request_stop()
        thread.join(10)


def test_cancelled_worker_stops_the_run():
    trainer = ScriptedTrainer(steps=100)
    posted = []
    session = tw.TrainingSession(trainer, samples(), posted.append, cancelled=lambda: trainer.steps_run >= 5)
    session.run()
    assert trainer.stop_requested.is_set() and trainer.steps_run == 5


def test_a_crashing_trainer_is_reported_not_raised():
    class Broken(ScriptedTrainer):
        def events(self):
            yield ev.Compiling("x")
            raise RuntimeError("disk full")

    session, posted = run_session(Broken())
    failed = of_type(posted, tw.TrainFailed)
    assert len(failed) == 1 and "disk full" in failed[0].text


def test_feature_digit_wraps_around_the_test_sample():
    session = tw.TrainingSession(ScriptedTrainer(), samples(), lambda m: True)
    session.control.follow_digit(53)
    image, label = session.feature_digit()
    np.testing.assert_array_equal(image, session.samples.test_images[3])
    assert label == session.samples.test_labels[3] and session.control.snapshot_now.is_set()


def test_compute_threads_are_niced_but_the_ui_thread_is_not():
    import os

    import pytest

    if not hasattr(os, "setpriority") or not os.path.isdir("/proc/self/task"):
        pytest.skip("thread priorities are Linux-only")
    started, release = threading.Event(), threading.Event()
    ids = {}

    def worker():
        ids["worker"] = threading.get_native_id()
        started.set()
        release.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    started.wait(10)
    try:
        main_before = os.getpriority(os.PRIO_PROCESS, threading.main_thread().native_id)
        tw.deprioritise_compute_threads()
        assert os.getpriority(os.PRIO_PROCESS, ids["worker"]) >= tw.COMPUTE_NICENESS
        assert os.getpriority(os.PRIO_PROCESS, threading.main_thread().native_id) == main_before
    finally:
        release.set()
        thread.join(10)
