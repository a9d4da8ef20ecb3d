"""`convtui serve`'s web server: textual-serve's `Server`, with a session cap, a confined environment for every
session, and a shutdown that leaves no session process behind.

textual-serve gives every websocket connection (one browser tab) its own app process (`AppService`, started with
`/bin/sh -c COMMAND`) and talks to it over pipes. This module imports textual_serve at its top: import it only
once the extra is known to be installed (the serve command checks).
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import logging
import signal
import socket
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

log = logging.getLogger("textual-serve")
QUIT_GRACE_S = 5.0  # a session asked to quit gets this long (a training run saves its checkpoint) before SIGTERM
TERM_GRACE_S = 2.0  # and this long after SIGTERM before SIGKILL


def full_message(max_sessions: int) -> str:
    return (f"The class is full: {max_sessions} of {max_sessions} sessions in use; try again when someone "
            f"leaves.")


def full_page(max_sessions: int) -> str:
    """The page a tab beyond the cap sees instead of an app: what happened and what to do, refreshing itself."""
    text = html.escape(full_message(max_sessions))
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>convtui: the class is full</title>
<meta http-equiv="refresh" content="15">
<style>body {{ background: #0c181f; color: #eee; font: 18px monospace; display: flex; height: 90vh;
align-items: center; justify-content: center; }} main {{ max-width: 40em; }}</style></head>
<body><main><h1>convtui</h1><p id="full">{text}</p>
<p>This page tries again by itself every 15 seconds.</p></main></body></html>
"""


class SessionService(AppService):
    """One session's app process, started with the confined environment the serve command chose."""

    def __init__(self, *args, session_environment: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.session_environment = session_environment

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        return {**super()._build_environment(width, height), **self.session_environment}

    async def _open_app_process(self, width: int = 80, height: int = 24):
        """textual-serve's, plus a session of its own: Ctrl+C in the server's terminal reaches the server only,
        which then ends each app in order (a training run saves first) instead of all dying mid-step."""
        self._process = process = await asyncio.create_subprocess_shell(
            self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self._build_environment(width=width, height=height),
            start_new_session=True)
        self._stdin = process.stdin
        return process

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def end(self) -> None:
        """Ask the app to quit (it saves a running training), then SIGTERM, then SIGKILL: never left behind."""
        process = self._process
        if process is None or process.returncode is not None:
            return

        async def quit_and_reap() -> None:
            await self.stop()
            await process.wait()  # reaped here, before any signal could reach a recycled pid

        try:
            await asyncio.wait_for(quit_and_reap(), QUIT_GRACE_S)
        except (asyncio.TimeoutError, OSError, ConnectionError, RuntimeError):
            pass
        for sig, grace in ((signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, 10.0)):
            if process.returncode is not None:
                return
            try:
                process.send_signal(sig)
                await asyncio.wait_for(process.wait(), grace)
            except (ProcessLookupError, asyncio.TimeoutError):
                pass


class ClassroomServer(Server):
    """textual-serve's Server with at most `max_sessions` app processes, each given `session_environment`."""

    def __init__(self, command: str, *, max_sessions: int, session_environment: dict[str, str], **kwargs):
        super().__init__(command, **kwargs)
        self.max_sessions = max_sessions
        self.session_environment = session_environment
        self.sessions: set[SessionService] = set()
        self.local_only = is_loopback_name(self.host)
        self.reserved = 0  # sessions counted from the cap check on, before their process exists

    stopped_by: int | None = None  # the signal that stopped the server

    def serve(self, debug: bool = False) -> int | None:
        """Serve until SIGINT (Ctrl+C), SIGTERM or SIGHUP; return that signal's number. textual-serve's own
        `serve`, remembering the signal so the command can exit 128 + it like the other commands."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, self.stop_on, signum)
        try:
            web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False, loop=loop,
                        print=self.announce, shutdown_timeout=QUIT_GRACE_S + TERM_GRACE_S + 1)
        finally:
            loop.close()
        return self.stopped_by

    def stop_on(self, signum: int) -> None:
        if self.stopped_by is None:
            self.stopped_by = signum
            self.console.print(f"convtui: ending {len(self.sessions)} session(s) ...", highlight=False, soft_wrap=True)
        self.request_exit()

    @property
    def full(self) -> bool:
        return self.reserved >= self.max_sessions

    def initialize_logging(self) -> None:
        super().initialize_logging()
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # one line per static file is noise

    async def on_startup(self, app: web.Application) -> None:
        pass  # textual-serve prints its banner here, before the port is bound: `announce` says it once it is

    def announce(self, *_aiohttp_banner) -> None:
        # Bound to every interface, 0.0.0.0 is no address a browser can open: name this machine instead.
        url = (self.public_url.replace(self.host, socket.gethostname(), 1) if self.host in ("0.0.0.0", "::")
               else self.public_url)
        self.console.print(f"convtui: serving {url} (up to {self.max_sessions} sessions; "
                           f"Ctrl+C ends every session and stops)", highlight=False, soft_wrap=True)

    def refused_request(self, request: web.Request) -> str | None:
        """Why a request is refused, or None. A page elsewhere must not drive a session from the learner's own
        browser: a websocket from another origin is refused (browsers send Origin; other clients do not), and a
        server on localhost answers only to localhost names, so a DNS-rebinding page cannot reach it."""
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            return f"a page at {origin} may not open a session here"
        if self.local_only and not is_loopback_name(urlsplit(f"//{request.host}").hostname or ""):
            return "this server answers to localhost only"
        return None

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        if (refusal := self.refused_request(request)) is not None:
            raise web.HTTPForbidden(text=f"convtui: {refusal}")
        if self.full:
            return web.Response(text=full_page(self.max_sessions), content_type="text/html", status=503,
                                headers={"Retry-After": "15"})
        # The page's websocket URL must name the address the browser used (a server bound to 0.0.0.0, or
        # reached through `ssh -L`, is not reachable at the address it was started with).
        public_url, self.public_url = self.public_url, f"{request.scheme}://{request.host}"
        try:
            return await super().handle_index(request)
        finally:
            self.public_url = public_url

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """textual-serve's handler, with the cap: a tab over it (two tabs loading the page at once) sees the
        full message in its terminal and no process is started. Nothing awaits between the check and the
        reservation, so the cap holds however many tabs connect at once."""
        if (refusal := self.refused_request(request)) is not None:
            raise web.HTTPForbidden(text=f"convtui: {refusal}")
        if self.full:
            return await self.refuse(request)
        self.reserved += 1
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        service: SessionService | None = None
        try:
            await websocket.prepare(request)
            service = SessionService(self.command, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                                     close=websocket.close, download_manager=self.download_manager,
                                     debug=self.debug, session_environment=self.session_environment)
            service.websocket = websocket
            self.sessions.add(service)
            await service.start(width, height)
            log.info("session started (pid %s): %d of %d in use", service.pid, len(self.sessions),
                     self.max_sessions)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:  # a broken connection must not take the server down
            log.exception(error)
        finally:
            if service is not None:
                await asyncio.shield(service.end())
                self.sessions.discard(service)
            self.reserved -= 1  # only now: the cap counts processes until they have ended
            if service is not None:
                log.info("session ended (pid %s): %d of %d in use", service.pid, len(self.sessions),
                         self.max_sessions)
        return websocket

    async def refuse(self, request: web.Request) -> web.WebSocketResponse:
        """Show the full message in the tab's terminal and keep the connection open (closing it would cover
        the message with textual-serve's "Session ended" dialog)."""
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        await websocket.send_bytes(f"\r\n  convtui: {full_message(self.max_sessions)}\r\n"
                                   f"  Reload this page to try again.\r\n".encode())
        async for _message in websocket:  # until the tab goes away
            pass
        return websocket

    async def on_shutdown(self, app: web.Application) -> None:
        """Ctrl+C: end every session's process before the server exits."""
        sessions = list(self.sessions)
        await asyncio.gather(*(service.end() for service in sessions), return_exceptions=True)
        # The tabs' websockets close too, so their handlers return and the server can stop at once.
        await asyncio.gather(*(service.websocket.close() for service in sessions), return_exceptions=True)


def session_environment(runs_root: Path, slots_folder: Path, training_slots: int,
                        session_threads: int | None) -> dict[str, str]:
    """What every session's process gets on top of the server's environment (see convtui/served_paths.py)."""
    from convtui.core.training.training_slot import SLOT_COUNT_VARIABLE, SLOTS_FOLDER_VARIABLE
    from convtui.served_paths import SERVED_RUNS_VARIABLE

    runs_root = runs_root.resolve()
    environment = {SERVED_RUNS_VARIABLE: str(runs_root), "CONVTUI_RUNS_DIR": str(runs_root),
                   "CONVTUI_XO_DIR": str(runs_root / "xo"),
                   SLOTS_FOLDER_VARIABLE: str(slots_folder), SLOT_COUNT_VARIABLE: str(training_slots)}
    if session_threads is not None:
        from convtui.runtime import THREAD_VARIABLES

        environment.update({name: str(session_threads) for name in THREAD_VARIABLES})
    return environment



def is_loopback_name(host: str) -> bool:
    """localhost, 127.x.x.x or ::1: a name or address only this machine answers to."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
