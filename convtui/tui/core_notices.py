"""The numeric core's warnings as notifications: while the app runs, Textual owns the terminal and a line on
stderr would be lost (or, from a thread, scribbled over the screen).

The core says what it recovered from on ordinary loggers (`convtui.kernels`: a damaged or full kernel cache, see
`convtui.core.ops.kernel_cache`; `convtui.runs`: a run folder's file that a resumed run had to replace, see
`convtui.core.training.trainer`); the app shows each such line as a warning toast, from whichever thread logged it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading

from textual.app import App
from textual.markup import escape

CORE_LOGGERS = {"convtui.kernels": "Kernel cache", "convtui.runs": "Run folder"}  # logger: the toast's title
TIMEOUT = 15  # seconds: long enough to read a path


class NotifyHandler(logging.Handler):
    """Sends each record's message to `app.notify`. Made on the app's thread, in its event loop, so it knows both.

    From another thread the notification is queued on the loop without waiting for it: `App.call_from_thread`
    would block that thread (the training worker, a kernel warm-up) until the loop ran it, forever if the app is
    closing, or if the loop itself is waiting for that thread.
    """

    def __init__(self, app: App) -> None:
        super().__init__(logging.WARNING)
        self.app = app
        self.app_thread = threading.get_ident()
        self.loop = asyncio.get_running_loop()

    def emit(self, record: logging.LogRecord) -> None:
        show = functools.partial(self.app.notify, escape(record.getMessage()), title=CORE_LOGGERS.get(record.name, ""),
                                 severity="warning", timeout=TIMEOUT)
        # If the app is closing the message is dropped: logging's own handleError would print on the screen.
        with contextlib.suppress(Exception):
            if threading.get_ident() == self.app_thread:
                show()
            else:
                self.loop.call_soon_threadsafe(show)


def route_to(app: App) -> NotifyHandler:
    """Install the handler on the core's loggers (call on the app's thread, in its loop); `unroute` takes it off."""
    handler = NotifyHandler(app)
    for name in CORE_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    return handler


def unroute(handler: NotifyHandler) -> None:
    for name in CORE_LOGGERS:
        logging.getLogger(name).removeHandler(handler)
