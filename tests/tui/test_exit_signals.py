"""SIGTERM and SIGHUP end the real app (a subprocess on a pseudo-terminal) as `q` does: a dashboard run saves, the
exit code is 128 + the signal's number, and a terminal that stopped reading cannot keep the process alive."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from convtui.tui.exit_signals import GRACE_S

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class AppOnPty:
    """`convtui --screen NAME` on a 120x40 pseudo-terminal; `drain` keeps reading it as a terminal would."""

    def __init__(self, cwd: Path, screen: str, drain: bool = True):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen([sys.executable, "-m", "convtui", "--screen", screen], stdin=slave,
                                        stdout=slave, stderr=slave, cwd=cwd, env=env, start_new_session=True)
        os.close(slave)
        self.master, self.output, self.reading = master, bytearray(), drain
        if drain:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while self.reading:
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:
                    return

    def wait_for(self, text: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            assert time.monotonic() < deadline, f"{text!r} never appeared"
            assert self.process.poll() is None, f"the app exited ({self.process.returncode}) before {text!r}"
            time.sleep(0.1)

    def press(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> None:
        self.reading = False
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


@pytest.fixture
def apps():
    started = []
    yield lambda *args, **kwargs: started.append(AppOnPty(*args, **kwargs)) or started[-1]
    for app in started:
        app.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_a_dashboard_run_saves_and_exits_128_plus_its_number(tmp_path, apps, signum):
    app = apps(tmp_path, "train")
    app.wait_for("ready: choose settings")
    app.press("\x13")  # ctrl+s: start the default run (cnn) into ./runs
    app.wait_for("training |", timeout=180)
    app.process.send_signal(signum)
    assert app.process.wait(timeout=GRACE_S + 30) == 128 + signum
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "checkpoint.npz").is_file(), sorted(p.name for p in run.iterdir())
    assert not (run / ".convtui.lock").exists()  # the run ended and let go of its folder
    assert b"\x1b[?1049l" in app.output  # the terminal left the alternate screen: restored as q leaves it


def test_a_terminal_that_stopped_reading_does_not_keep_the_app_alive(tmp_path, apps):
    # Nobody reads the terminal: Textual's output queue fills and its event loop blocks in a write, so only a
    # thread that waits for the signal itself can end the process (before, it ran on until SIGKILL).
    app = apps(tmp_path, "progression", drain=False)
    time.sleep(6)
    app.press("s")  # training redraws the screen constantly: the queue fills for certain
    time.sleep(6)
    started = time.monotonic()
    app.process.send_signal(signal.SIGTERM)
    assert app.process.wait(timeout=GRACE_S + 30) == 128 + signal.SIGTERM
    assert time.monotonic() - started < GRACE_S + 30
