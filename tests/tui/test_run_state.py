"""The dashboard's run state: every allowed move, the late events that are ignored, and the moves that raise."""

from __future__ import annotations

import itertools

import pytest

from convtui.tui.run_state import IGNORED, TRANSITIONS, IllegalTransition, RunState, next_state

S = RunState


def test_a_run_goes_through_its_life_in_order():
    state = S.IDLE
    for wanted in (S.COMPILING, S.RUNNING, S.PAUSED, S.RUNNING, S.PAUSED, S.STOPPING, S.DONE, S.COMPILING,
                   S.FAILED, S.COMPILING, S.RUNNING, S.DONE):
        state = next_state(state, wanted)
        assert state is wanted


@pytest.mark.parametrize("current, wanted", sorted(IGNORED))
def test_late_events_leave_the_state_as_it_is(current, wanted):
    assert next_state(current, wanted) is current


# Every pair of states that is neither allowed nor ignored raises: pausing before a run, stopping a stopped run,
# starting twice, resuming a finished run, going back to idle, ...
ILLEGAL = [(a, b) for a, b in itertools.product(S, S) if b not in TRANSITIONS[a] and (a, b) not in IGNORED]


@pytest.mark.parametrize("current, wanted", ILLEGAL)
def test_every_other_move_raises(current, wanted):
    with pytest.raises(IllegalTransition, match=f"from {current} to {wanted}"):
        next_state(current, wanted)


def test_the_illegal_moves_include_the_ones_a_screen_bug_would_make():
    for move in [(S.IDLE, S.RUNNING), (S.IDLE, S.PAUSED), (S.IDLE, S.STOPPING), (S.DONE, S.RUNNING),
                 (S.STOPPING, S.PAUSED), (S.DONE, S.STOPPING), (S.RUNNING, S.IDLE), (S.RUNNING, S.COMPILING)]:
        assert move in ILLEGAL
    assert len(ILLEGAL) + len(IGNORED) + sum(map(len, TRANSITIONS.values())) == len(S) ** 2


def test_in_progress_and_can_stop():
    assert {s for s in S if s.in_progress} == {S.COMPILING, S.RUNNING, S.PAUSED, S.STOPPING}
    assert {s for s in S if s.can_stop} == {S.COMPILING, S.RUNNING, S.PAUSED}
    assert S.DONE == "done" and str(S.PAUSED) == "paused"  # compares and prints as its name


def test_strings_are_accepted_and_unknown_ones_refused():
    assert next_state("idle", "compiling") is S.COMPILING
    with pytest.raises(ValueError):
        next_state(S.IDLE, "warming up")


async def test_the_dashboard_refuses_an_illegal_move_and_keeps_its_state(tmp_path):
    from textual.app import App

    from convtui.tui.screens.dashboard import DashboardScreen

    screen = DashboardScreen(runs_root=tmp_path)

    class Host(App):
        def on_mount(self):
            self.push_screen(screen)

    async with Host().run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        with pytest.raises(IllegalTransition):
            screen.state = S.RUNNING  # no run was started
        assert screen.state is S.IDLE and not screen.has_class("running")
        screen.set_focus(None)
        await pilot.press("space", "x")  # pause and stop without a run: nothing to do, explicitly
        assert screen.state is S.IDLE
