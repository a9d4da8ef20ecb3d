"""`convtui serve`: the app in a browser, one app process per tab, for a classroom (textual-serve).

Needs the `serve` extra (`pip install "convtui[serve]"`). Every session runs confined (convtui/served_paths.py:
it opens and writes runs only under the server's ./runs), queues for one of `--training-slots` training slots
(core/training/training_slot.py), and runs its kernels on `--session-threads` threads, so one learner's training
run cannot take the machine from everyone else's lessons.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from convtui.core.errors import EXIT_OK, ConvtuiError, UsageError

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
# Measured by benchmarks/serve_sessions.py: a session in a lesson is ~165 MB RSS (~85 MB PSS, the rest shared
# libraries), one training the cnn ~410 MB (~320 MB PSS): 8 sessions, one training, take ~0.9 GB.
DEFAULT_MAX_SESSIONS = 8
MAX_SESSIONS_LIMIT = 1000
# One thread per session's kernels. Measured with 6 sessions (one training the cnn, four pressing keys, one timed
# browser tab) on the 2 shared cores: 1 thread trained at 226 img/s with key-to-screen latency median 61 ms / p90
# 99 ms; 2 threads at 147 img/s, 66 / 93 ms. A second thread buys the trainer nothing once the other sessions
# want CPU too, and the cores stay free for the UI processes.
DEFAULT_SESSION_THREADS = 1
INSTALL_HINT = 'the serve command needs its extra: pip install "convtui[serve]"'


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "serve", help="serve the app to browsers: one app per tab (needs the serve extra)",
        description="Serve the app to web browsers through textual-serve: each tab gets its own app process. "
                    "Sessions open and save runs only under ./runs (X/O images in ./runs/xo), train one at a "
                    "time (--training-slots), and Ctrl+C ends every session. There is no authentication: keep "
                    "the default localhost address and reach it with ssh -L.")
    parser.add_argument("--host", default=DEFAULT_HOST, metavar="ADDRESS",
                        help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    parser.add_argument("--port", default=DEFAULT_PORT, type=int, metavar="N",
                        help=f"port to listen on, 1-65535 (default {DEFAULT_PORT})")
    parser.add_argument("--max-sessions", default=DEFAULT_MAX_SESSIONS, type=int, metavar="N",
                        help=f"browser tabs served at once; one more sees a 'class is full' page "
                             f"(default {DEFAULT_MAX_SESSIONS})")
    parser.add_argument("--training-slots", default=1, type=int, metavar="N",
                        help="sessions that may train at once; the others wait in line (default 1)")
    parser.add_argument("--session-threads", default=DEFAULT_SESSION_THREADS, type=int, metavar="N",
                        help=f"kernel threads per session (default {DEFAULT_SESSION_THREADS})")


def check_flags(args) -> None:
    """Each flag in the CLI's words (`--port 0 is invalid: ...`), before anything starts."""
    cpu_count = os.cpu_count() or 1
    for flag, value, low, high in (("--port", args.port, 1, 65535),
                                   ("--max-sessions", args.max_sessions, 1, MAX_SESSIONS_LIMIT),
                                   ("--training-slots", args.training_slots, 1, 64),
                                   ("--session-threads", args.session_threads, 1, max(cpu_count, 1))):
        if not low <= value <= high:
            raise UsageError(f"{flag} {value} is invalid: must be from {low} to {high}")
    if not args.host.strip() or any(c.isspace() for c in args.host):
        raise UsageError(f"--host {args.host!r} is invalid: give an address such as 127.0.0.1 or 0.0.0.0")


def host_warning(host: str, port: int) -> str:
    return (f"convtui serve: warning: {host}:{port} is reachable from other machines and there is no "
            f"authentication: anyone who can reach it gets a session. Safer: keep the default --host "
            f"{DEFAULT_HOST} and let each person tunnel in with: ssh -L {port}:localhost:{port} user@host")


def run(args) -> int:
    check_flags(args)
    try:
        import aiohttp  # noqa: F401
        import textual_serve  # noqa: F401
    except ImportError:
        raise ConvtuiError(INSTALL_HINT) from None
    from convtui import serving
    from convtui.serve_session import SERVER_PID_VARIABLE

    if not serving.is_loopback_name(args.host):
        print(host_warning(args.host, args.port), file=sys.stderr)
    runs_root = Path("runs")  # the one folder the sessions may open and write (convtui/served_paths.py)
    try:
        if runs_root.exists() and not runs_root.is_dir():
            raise NotADirectoryError(20, "not a folder")
        runs_root.mkdir(exist_ok=True)
    except OSError as exc:
        raise ConvtuiError(f"cannot serve {runs_root.resolve()}: {exc.strerror or exc}") from None
    slots_folder = Path(tempfile.mkdtemp(prefix="convtui-serve-slots-"))
    environment = serving.session_environment(runs_root, slots_folder, args.training_slots, args.session_threads)
    environment[SERVER_PID_VARIABLE] = str(os.getpid())
    # `exec`: the shell textual-serve starts becomes the app, so ending the process ends the app itself.
    command = f"exec {shlex.quote(sys.executable)} -m convtui.serve_session"
    server = serving.ClassroomServer(command, host=args.host, port=args.port, title="convtui",
                                     max_sessions=args.max_sessions, session_environment=environment)
    try:
        signum = server.serve()
    except OSError as exc:  # the port is taken, or the address is not this machine's
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise ConvtuiError(f"cannot listen on {args.host}:{args.port}: {reason}") from None
    finally:
        shutil.rmtree(slots_folder, ignore_errors=True)
    return EXIT_OK if signum is None else 128 + signum
