"""Headless Debian chromium driven by selenium, and the served terminal's text read from xterm.js itself.

textual-serve draws the terminal on a canvas, so the page holds no text to read. A script injected before the
page's own (CDP `Page.addScriptToEvaluateOnNewDocument`) catches the xterm.js `Terminal` as textual.js stores it
(`this.terminal = new Terminal(...)`), and the test reads its buffer line by line: exactly what the tab shows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
REQUIRE_VARIABLE = "CONVTUI_REQUIRE_BROWSER"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")

CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, 'terminal', {configurable: true, set(value) {
  Object.defineProperty(this, 'terminal', {value, writable: true, configurable: true, enumerable: true});
  if (value && value.buffer && value.options) window.__convtuiTerminal = value;
}});
"""
READ_TERMINAL = """
const terminal = window.__convtuiTerminal;
if (!terminal) return null;
const buffer = terminal.buffer.active, lines = [];
for (let y = 0; y < terminal.rows; y++) {
  const line = buffer.getLine(buffer.viewportY + y);
  lines.push(line ? line.translateToString(true) : '');
}
return lines.join('\\n');
"""


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    for module in ("selenium", "textual_serve"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install -e '.[test]')"
    return None


def need_browser() -> None:
    """Skip with the reason, unless CI requires the browser tests (CONVTUI_REQUIRE_BROWSER=1): then fail."""
    reason = browser_missing()
    if reason is None:
        return
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{REQUIRE_VARIABLE}=1 but {reason}")
    pytest.skip(reason)


class Browser:
    def __init__(self, width: int = 1400, height: int = 900):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="convtui-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        # An explicit driver path: selenium-manager must never download a browser or driver.
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.catch_terminal()

    def catch_terminal(self) -> None:
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CATCH_TERMINAL})

    def open(self, url: str) -> None:
        self.driver.get(url)

    def new_tab(self) -> None:
        self.driver.switch_to.new_window("tab")
        self.catch_terminal()

    def terminal_text(self) -> str:
        return self.driver.execute_script(READ_TERMINAL) or ""

    def wait_for(self, *texts: str, timeout: float = 60) -> str:
        """The terminal's text once it shows every one of `texts`; fail with what it shows otherwise."""
        deadline, screen = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            screen = self.terminal_text()
            if all(text in screen for text in texts):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"the page never showed {texts!r}; it shows:\n{screen}")

    def press(self, *keys: str) -> None:
        """Type into the terminal as a person would (xterm.js listens on its focused helper textarea)."""
        from selenium.webdriver.common.action_chains import ActionChains

        self.driver.execute_script("window.__convtuiTerminal.focus()")
        for key in keys:
            ActionChains(self.driver).send_keys(key).perform()

    def screenshot(self, path: str) -> None:
        self.driver.save_screenshot(path)

    def close(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)
