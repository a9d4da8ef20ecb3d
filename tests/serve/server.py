"""Start `convtui serve` as a real subprocess on a free port, and look at its session processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children(pid: int) -> set[int]:
    """Every process whose parent is `pid`, from /proc (the sessions of a server)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields after the last ")" are fixed.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class ServedApp:
    def __init__(self, process: subprocess.Popen, port: int, folder: Path, log: Path):
        self.process, self.port, self.folder, self.log = process, port, folder, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_sessions(self, count: int, timeout: float = 60) -> set[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = children(self.process.pid)
            if len(found) == count:
                return found
            time.sleep(0.2)
        raise AssertionError(f"expected {count} session process(es), found {children(self.process.pid)}\n"
                             f"{self.output()}")


@contextmanager
def served(folder: Path, *flags: str, timeout: float = 30):
    """`convtui serve --port <free> FLAGS` running in `folder` (its ./runs is the served one)."""
    port = free_port()
    log = folder / "serve.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "convtui", "serve", "--port", str(port), *flags],
                                   cwd=folder, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    app = ServedApp(process, port, folder, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"convtui serve did not start:\n{app.output()}") from None
                time.sleep(0.2)
        yield app
    finally:
        sessions = children(process.pid)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for pid in sessions:  # never leave a session behind, even when a test failed half-way
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
