"""The dashboard's run state: a small state machine, so every screen path agrees on what a run may do next.

    IDLE -> COMPILING -> RUNNING <-> PAUSED
                 |          |          |
                 +----------+----------+--> STOPPING -> DONE / FAILED
    (a run also ends in DONE or FAILED without a stop; DONE and FAILED may start a new run: COMPILING)

`next_state(current, wanted)` is the only place the rules live. A move the table allows happens; a move listed
in IGNORED is a late event that the state has already overtaken (the trainer says "training started" after the
learner pressed x while it loaded) and leaves the state as it is; anything else raises IllegalTransition.
"""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    """What the dashboard's training run is doing. A StrEnum, so `state == "done"` reads naturally."""

    IDLE = "idle"
    COMPILING = "compiling"  # loading data and compiling the kernels, before the first step
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"  # asked to stop; the trainer finishes its step and saves
    DONE = "done"
    FAILED = "failed"

    @property
    def in_progress(self) -> bool:
        """A run exists that has not ended: the form is hidden and no new run may start."""
        return self in IN_PROGRESS

    @property
    def can_stop(self) -> bool:
        return self in (RunState.COMPILING, RunState.RUNNING, RunState.PAUSED)


IN_PROGRESS = frozenset({RunState.COMPILING, RunState.RUNNING, RunState.PAUSED, RunState.STOPPING})
_ENDINGS = {RunState.DONE, RunState.FAILED}

TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.IDLE: frozenset({RunState.COMPILING}),
    RunState.COMPILING: frozenset({RunState.RUNNING, RunState.STOPPING, *_ENDINGS}),
    RunState.RUNNING: frozenset({RunState.PAUSED, RunState.STOPPING, *_ENDINGS}),
    # The last event (Done) can already be on its way to the screen when the learner pauses.
    RunState.PAUSED: frozenset({RunState.RUNNING, RunState.STOPPING, *_ENDINGS}),
    RunState.STOPPING: frozenset(_ENDINGS),
    RunState.DONE: frozenset({RunState.COMPILING}),
    RunState.FAILED: frozenset({RunState.COMPILING}),
}

# Events that arrive after the state has moved past them: the trainer's Compiling or TrainStart once x was
# pressed during loading, and a second Compiling event while compiling.
IGNORED = frozenset({
    (RunState.COMPILING, RunState.COMPILING),
    (RunState.STOPPING, RunState.COMPILING),
    (RunState.STOPPING, RunState.RUNNING),
})


class IllegalTransition(RuntimeError):
    """A move the run state does not allow: a bug in the screen, never a learner's mistake."""


def next_state(current: RunState, wanted: RunState) -> RunState:
    """The state after asking to move from `current` to `wanted` (see the module docstring)."""
    current, wanted = RunState(current), RunState(wanted)
    if wanted in TRANSITIONS[current]:
        return wanted
    if (current, wanted) in IGNORED:
        return current
    raise IllegalTransition(f"a run cannot go from {current} to {wanted}")


def why_no_pause(state: RunState, start_hint: str) -> str:
    """What space says when there is nothing to pause or resume in `state` (`start_hint`: how to start one)."""
    if state is RunState.COMPILING:
        return "the kernels are still compiling: space pauses once training has started"
    if state is RunState.STOPPING:
        return "stopping: the current step finishes and is saved"
    return f"nothing is running to pause: {start_hint}"


def why_no_stop(state: RunState, start_hint: str) -> str:
    """What x says when there is nothing to stop in `state`."""
    if state is RunState.STOPPING:
        return "already stopping: the current step finishes and is saved"
    return f"nothing is running to stop: {start_hint}"
