"""`convtui serve` on this machine: memory per session, and whether N sessions at once keep the lessons responsive.

    python benchmarks/serve_sessions.py                          # 6 sessions, session threads 1 then 2
    python benchmarks/serve_sessions.py --sessions 4 --threads 1 --samples 10

For each --threads value it starts `convtui serve --session-threads T` in a temporary folder, then:
- one headless chromium tab (Debian's chromium + chromedriver) opens the Padding lesson;
- one websocket session opens the dashboard and starts training (the default cnn run);
- the other sessions sit in the Padding lesson and press a key every second (a class working through it).
It prints each session's memory (RSS and PSS, from /proc) at the index, in a lesson and training, the training
run's speed as its status line says it, and the key-to-screen latency in the browser tab: from the keydown event
to the moment xterm.js has parsed the redrawn "n = ..." line (both in the browser's clock), median and 90th
percentile over --samples presses. A first run with only the browser tab gives the unloaded latency.
The browser and server helpers are the browser tests' own (tests/serve).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

DOWN, ENTER, CTRL_S = "\x1b[B", "\r", "\x13"
LATENCY_SETUP = """
const terminal = window.__convtuiTerminal;
window.__latency = {down: 0, seen: 0, target: ''};
document.addEventListener('keydown', () => { window.__latency.down = performance.now(); }, true);
terminal.onWriteParsed(() => {
  const state = window.__latency, buffer = terminal.buffer.active;
  if (!state.target || state.seen) return;
  for (let y = 0; y < terminal.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    if (line && line.translateToString(true).includes(state.target)) { state.seen = performance.now(); return; }
  }
});
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=6, help="sessions at once, the browser tab included")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="--session-threads values")
    parser.add_argument("--samples", type=int, default=20, help="key presses timed per configuration")
    parser.add_argument("--train-seconds", type=float, default=25.0, help="training before the timing starts")
    return parser.parse_args(argv)


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MB: RSS counts shared libraries in full in every process, PSS shares them out."""
    rss = pss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1]) / 1024
    return rss, pss


class WebsocketSessions:
    """Sessions driven over their websockets (what a tab sends), on an event loop of their own thread."""

    def __init__(self, url: str):
        self.url, self.loop = url, asyncio.new_event_loop()
        self.output: dict[int, str] = {}
        self.stopping = False
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.client = self.call(self._client())

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    async def _client(self):
        import aiohttp

        return aiohttp.ClientSession()

    def open(self, index: int):
        return self.call(self._open(index))

    async def _open(self, index: int):
        socket = await self.client.ws_connect(f"{self.url}ws?width=120&height=40")
        self.output[index] = ""

        async def drain():  # the server waits on a tab that does not read: read everything, keep the tail
            async for message in socket:
                if isinstance(message.data, bytes):
                    self.output[index] = (self.output[index] + message.data.decode("utf-8", "replace"))[-20000:]

        self.loop.create_task(drain())
        return socket

    def send(self, socket, text: str) -> None:
        self.call(socket.send_str(json.dumps(["stdin", text])))

    def press_every_second(self, socket) -> None:
        async def loop():
            flip = False
            while not self.stopping:
                await socket.send_str(json.dumps(["stdin", "N" if flip else "n"]))
                flip = not flip
                await asyncio.sleep(1.0)

        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(loop()))

    def close(self) -> None:
        self.stopping = True

        async def finish():
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            await self.client.close()

        self.call(finish())
        self.loop.call_soon_threadsafe(self.loop.stop)


def time_keys(browser, samples: int) -> list[float]:
    """Milliseconds from keydown to the redrawn settings line, pressing n and N in turn in the Padding lesson."""
    from selenium.webdriver.common.action_chains import ActionChains

    browser.driver.execute_script(LATENCY_SETUP)
    browser.driver.execute_script("window.__convtuiTerminal.focus()")
    latencies, n = [], 7
    for i in range(samples):
        key, n = ("n", n + 1) if i % 2 == 0 else ("N", n - 1)
        browser.driver.execute_script("window.__latency.target = arguments[0]; window.__latency.seen = 0;",
                                      f"n = {n} ")
        ActionChains(browser.driver).send_keys(key).perform()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            seen, down = browser.driver.execute_script("return [window.__latency.seen, window.__latency.down]")
            if seen:
                latencies.append(seen - down)
                break
            time.sleep(0.02)
        else:
            latencies.append(float("inf"))
        time.sleep(0.3)
    return latencies


def open_lesson_keys(name: str) -> str:
    from convtui.tui.lessons import LESSONS

    return DOWN * [lesson.name for lesson in LESSONS].index(name) + ENTER


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return f"median {statistics.median(ordered):.0f} ms, p90 {p90:.0f} ms, max {ordered[-1]:.0f} ms"


def measure(sessions: int, threads: int, samples: int, train_seconds: float) -> None:
    from selenium.webdriver.common.keys import Keys

    from tests.serve.browser import Browser
    from tests.serve.server import served

    folder = Path(tempfile.mkdtemp(prefix="convtui-serve-bench-"))
    label = f"{sessions} session(s), --session-threads {threads}"
    with served(folder, "--max-sessions", str(sessions), "--session-threads", str(threads)) as server:
        browser = Browser(1400, 900)
        drivers = WebsocketSessions(server.url)
        try:
            browser.open(server.url)
            browser.wait_for("Receptive field and filter", "Lessons ready")
            (tab,) = server.wait_for_sessions(1)
            time.sleep(1)
            at_index = memory_mb(tab)
            browser.press(*[Keys.DOWN] * 1, Keys.ENTER)  # Padding and stride, the index's second lesson
            browser.wait_for("Padding and stride", "n = 7")
            time.sleep(1)
            in_lesson = memory_mb(tab)
            trainer = None
            if sessions >= 2:
                trainer = drivers.open(1)
                time.sleep(8)  # the app starts and warms its kernels
                drivers.send(trainer, open_lesson_keys("train"))
                time.sleep(3)
                drivers.send(trainer, CTRL_S)
                for index in range(2, sessions):
                    learner = drivers.open(index)
                    time.sleep(6)
                    drivers.send(learner, open_lesson_keys("padding"))
                    drivers.press_every_second(learner)
                time.sleep(train_seconds)
            pids = server.wait_for_sessions(sessions)
            latencies = time_keys(browser, samples)
            print(f"\n== {label}")
            print(f"browser tab (pid {tab}): index RSS {at_index[0]:.0f} MB / PSS {at_index[1]:.0f} MB; "
                  f"Padding lesson RSS {in_lesson[0]:.0f} MB / PSS {in_lesson[1]:.0f} MB")
            for pid in sorted(pids - {tab}):
                rss, pss = memory_mb(pid)
                print(f"session pid {pid}: RSS {rss:.0f} MB / PSS {pss:.0f} MB")
            if trainer is not None:
                speeds = re.findall(r"\| ([\d,]+) img/s", drivers.output[1])
                status = f"{speeds[-1]} img/s" if speeds else "no speed on its status line yet"
                print(f"training session: {status}")
            print(f"key-to-screen latency in the browser tab: {summary(latencies)} ({samples} presses)")
        finally:
            drivers.close()
            browser.close()


def main(argv=None) -> int:
    args = parse_args(argv)
    measure(1, args.threads[0], args.samples, args.train_seconds)
    for threads in args.threads:
        measure(args.sessions, threads, args.samples, args.train_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
