"""SIGTERM and SIGHUP leave the app as `q` does, even when its terminal has stopped reading.

A scheduler's SIGTERM or a dropped SSH session's SIGHUP should stop a training run after its step, save, restore
the terminal and exit with 128 + the signal's number. A handler on the asyncio loop cannot promise that: when the
terminal stops reading (a frozen SSH client, a pty nobody reads), Textual's output queue fills and the loop blocks
in a write, so a loop callback never runs and the process ignored SIGTERM until SIGKILL (measured: a pty never
read, SIGTERM, still running 30 s later).

So the signals are blocked in every thread (`block_exit_signals`, called before numpy starts OpenBLAS's threads,
which inherit the mask) and one thread waits for them with `sigwait`, whatever the loop is doing. It asks the
app to exit through the loop, as `q` would; if the app is still there after `GRACE_S` (the loop is stuck), or a
second signal comes, it ends the process with the same exit code. A training save runs in its own thread and
writes atomically, so the last good checkpoint survives either way.
"""

from __future__ import annotations

import os
import signal
import threading

EXIT_SIGNALS = frozenset({signal.SIGTERM, signal.SIGHUP})
GRACE_S = 20.0  # a stop after the current step and a checkpoint save take a few seconds even under load


def block_exit_signals() -> None:
    """Block SIGTERM and SIGHUP in this thread and every thread started from now on (call it first thing)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, EXIT_SIGNALS)


def watch_exit_signals(app) -> threading.Thread:
    """Start the thread that turns SIGTERM/SIGHUP into `app.exit(return_code=128 + signal)`.

    `app.exit_loop` is the app's running asyncio loop (set in its on_mount); before it exists the grace period
    alone applies."""
    block_exit_signals()

    def watch() -> None:
        signum = signal.sigwait(EXIT_SIGNALS)
        code = 128 + signum
        loop = getattr(app, "exit_loop", None)
        if loop is not None:
            try:
                loop.call_soon_threadsafe(lambda: app.exit(return_code=code))
            except RuntimeError:  # the loop has already closed: the app is leaving anyway
                pass
        signal.sigtimedwait(EXIT_SIGNALS, GRACE_S)  # a second signal cuts the wait short
        os._exit(code)  # still here: the loop is stuck (or the exit hangs); nothing more can be written

    thread = threading.Thread(target=watch, name="convtui-exit-signals", daemon=True)
    thread.start()
    return thread
