"""The core's warnings reach the learner as notifications while the app owns the terminal (`core_notices`).
Outside the app they are one line on stderr: tests/core/test_kernel_cache.py reads that from real processes."""

from __future__ import annotations

import logging
import threading

from textual.markup import escape

from convtui.core.ops import kernel_cache
from convtui.tui import core_notices
from convtui.tui.app import ConvTuiApp

DAMAGED = ("convtui: damaged kernel cache file /home/ada/[cache]/loss._softmax-19.py311.nbi (UnpicklingError: pickle "
           "data was truncated); removed, and its kernel compiled again (as is any other damaged file there)")


async def test_a_kernel_cache_warning_from_any_thread_is_a_toast_and_never_stderr(monkeypatch, capsys):
    monkeypatch.setattr(kernel_cache, "_said", set())
    app = ConvTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        kernel_cache._say("damaged", "/home/ada/[cache]", DAMAGED)  # as the UI thread's lessons would
        kernel_cache._say("damaged", "/home/ada/[cache]", DAMAGED)  # said once per folder
        worker = threading.Thread(target=kernel_cache._say, args=("save", "/full", "convtui: cannot be saved"))
        worker.start()  # as the training worker would
        worker.join()
        await pilot.pause()
        shown = [(n.title, n.severity, n.message) for n in app._notifications]
        assert shown == [("Kernel cache", "warning", escape(DAMAGED)),
                         ("Kernel cache", "warning", "convtui: cannot be saved")]
    handlers = logging.getLogger("convtui.kernels").handlers
    assert not any(isinstance(handler, core_notices.NotifyHandler) for handler in handlers)
    assert "convtui:" not in capsys.readouterr().err



async def test_a_run_folder_warning_from_the_training_thread_is_a_toast_titled_run_folder(capsys):
    from convtui.core.training import trainer

    app = ConvTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        line = "convtui: /runs/a/replay.npz: damaged replay file (bad CRC); this run starts a new replay record"
        worker = threading.Thread(target=trainer.log.warning, args=(line,))
        worker.start()  # as the dashboard's training worker resuming a run would
        worker.join()
        await pilot.pause()
        assert [(n.title, n.severity, n.message) for n in app._notifications] == [("Run folder", "warning", line)]
    assert not any(isinstance(handler, core_notices.NotifyHandler) for handler in trainer.log.handlers)
    assert "convtui:" not in capsys.readouterr().err
