"""How many training runs may go at once across the processes of one machine (`convtui serve`'s sessions).

Every browser tab of `convtui serve` is its own app process; two of them training at once on a 2-core machine
would halve both runs and leave the UI processes of everyone else waiting for a core. So the serve command sets
`CONVTUI_TRAINING_SLOTS=<folder>` (and `CONVTUI_TRAINING_SLOT_COUNT=<n>`, default 1) in its sessions'
environment, and every place that trains wraps its run in `training_slot()`: the run takes one of the n slots
(`flock` on `<folder>/slot-<i>.lock`) or waits for one. The kernel releases a flock when its process ends, however
it ends (SIGKILL or a closed tab included), so a dead session never keeps a slot.

Outside `convtui serve` (the variable unset) `training_slot()` yields True at once and does nothing: a terminal
user owns the machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

SLOTS_FOLDER_VARIABLE = "CONVTUI_TRAINING_SLOTS"
SLOT_COUNT_VARIABLE = "CONVTUI_TRAINING_SLOT_COUNT"
DEFAULT_SLOT_COUNT = 1
MAX_SLOT_COUNT = 64
POLL_INTERVAL_S = 0.1  # how often a waiting run retries the slots and asks should_stop (a stop feels instant)
WAIT_MESSAGE_INTERVAL_S = 1.0  # how often on_wait is told (a status line redrawn once a second)


def slot_count() -> int:
    """The number of slots the serve command allowed (a bad value falls back to one: the safe choice)."""
    text = os.environ.get(SLOT_COUNT_VARIABLE, "")
    try:
        count = int(text)
    except ValueError:
        return DEFAULT_SLOT_COUNT
    return count if 1 <= count <= MAX_SLOT_COUNT else DEFAULT_SLOT_COUNT


def waiting_message(slots: int) -> str:
    """The one line a waiting session shows (every slot is in use, or it would not wait)."""
    other = "another session is" if slots == 1 else "other sessions are"
    return f"waiting: {other} training ({slots} of {slots} slots in use)"  # "slots": the count of a kind


def _try_slots(folder: Path, slots: int) -> int | None:
    """An open, locked descriptor for the first free slot, or None when every slot is held."""
    import fcntl

    for index in range(slots):
        # O_NOFOLLOW: the folder is the server's own, but a slot file swapped for a symlink must not be followed.
        fd = os.open(folder / f"slot-{index}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return fd
    return None


@contextmanager
def training_slot(on_wait: Callable[[str], None] | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.monotonic) -> Iterator[bool]:
    """Hold a training slot for the body and yield True; yield False (without a slot) if `should_stop()` turns
    true while waiting. `on_wait(message)` is called at once when the run has to wait, then about once a second.
    A no-op yielding True unless the serve command set CONVTUI_TRAINING_SLOTS (and on systems without flock)."""
    folder_text = os.environ.get(SLOTS_FOLDER_VARIABLE)
    if not folder_text or os.name != "posix":
        yield True
        return
    folder, slots = Path(folder_text), slot_count()
    folder.mkdir(parents=True, exist_ok=True)
    fd = _try_slots(folder, slots)
    last_told = None
    while fd is None:
        if should_stop is not None and should_stop():
            yield False
            return
        now = clock()
        if on_wait is not None and (last_told is None or now - last_told >= WAIT_MESSAGE_INTERVAL_S):
            on_wait(waiting_message(slots))
            last_told = now
        sleep(POLL_INTERVAL_S)
        fd = _try_slots(folder, slots)
    try:
        yield True
    finally:
        os.close(fd)  # closing the only descriptor releases the flock
