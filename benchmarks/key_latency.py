"""Key-press latency of the dashboard while cnn trains on real MNIST (issue 5: within about 100 ms).

Drives the real app headless with Textual's Pilot: starts cnn training, waits until steps flow, then presses
zoom keys and measures, for each, the time from the key being posted to its handler having run (the zoom
state changed). Prints the median and the worst. Run it on an otherwise idle machine:
    python benchmarks/key_latency.py [--presses 40] [--limit 20000]
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from textual.app import App  # noqa: E402  (textual loads no numpy; the convtui imports below, in measure(), do)

from convtui import runtime  # noqa: E402


class DashboardApp(App):
    def __init__(self, screen):
        super().__init__()
        self.dashboard = screen

    def on_mount(self):
        self.push_screen(self.dashboard)


async def measure(presses: int, limit: int) -> list[float]:
    from convtui.core.training.config import TrainConfig
    from convtui.tui.screens.dashboard import DashboardScreen
    from convtui.tui.screens.dashboard_panels import Panels

    config = TrainConfig.for_model("cnn", limit=limit, epochs=1)
    with tempfile.TemporaryDirectory() as runs:
        screen = DashboardScreen(runs_root=runs, initial=config)
        async with DashboardApp(screen).run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            screen.set_focus(None)
            await pilot.press("s")
            while "step" not in str(screen.query_one("#status").render()):
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.0)  # well into the steady state: kernels busy on both cores
            panels = screen.query_one(Panels)

            def zoom_state():
                return panels.has_class("zoomed"), tuple(w.has_class("shown") for w in panels.panel_widgets())

            latencies = []
            for i in range(presses):
                key = str(1 + i % 6) if i % 2 == 0 else "0"
                before = zoom_state()
                start = time.perf_counter()
                pilot.app.post_message(_key(key))
                while zoom_state() == before:
                    await asyncio.sleep(0.001)
                latencies.append((time.perf_counter() - start) * 1000)
                await asyncio.sleep(0.25)
            await pilot.press("x")
            while screen.state not in ("done", "failed", "stopped"):
                await asyncio.sleep(0.05)
            return latencies


def _key(key):
    from textual import events

    return events.Key(key, key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--limit", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=None, help="numeric threads (default: all cores)")
    args = parser.parse_args()
    runtime.configure(args.threads)  # as the app does, before the dashboard's imports load numpy
    latencies = asyncio.run(measure(args.presses, args.limit))
    print(f"{len(latencies)} key presses during cnn training: median {statistics.median(latencies):.1f} ms, "
          f"90th percentile {sorted(latencies)[int(0.9 * len(latencies))]:.1f} ms, worst {max(latencies):.1f} ms")


if __name__ == "__main__":
    main()
