"""`convtui serve` in a real browser: headless Debian chromium opens the page, reads the terminal, types keys.

Skipped with the reason when chromium, chromedriver or the serve extra is missing, except under
CONVTUI_REQUIRE_BROWSER=1 (CI, see .ci/run), where a missing browser fails instead.
"""

from __future__ import annotations

import time

import pytest

from convtui.tui.lessons import LESSONS
from tests.serve.browser import Browser, need_browser
from tests.serve.server import alive, served

try:
    from selenium.webdriver.common.keys import Keys
except ImportError:  # need_browser() below skips, or under CONVTUI_REQUIRE_BROWSER=1 fails, with the reason
    Keys = None

pytestmark = pytest.mark.slow

INDEX_TEXTS = ("Receptive field and filter", "Padding and stride", "Runs and compare", "? Help")


def padding_formula(n: int, f: int = 3, s: int = 1, p: int = 0) -> str:
    """The lesson's formula line, recomputed here: out = (n + 2p - f) // s + 1."""
    return f"({n} + 2*{p} - {f}) // {s} + 1 = {(n + 2 * p - f) // s + 1}"


def open_lesson(browser: Browser, name: str) -> None:
    """From a fresh index (the cursor on the first lesson): down to the lesson `name`, then enter."""
    position = [lesson.name for lesson in LESSONS].index(name)
    browser.press(*[Keys.DOWN] * position, Keys.ENTER)


@pytest.fixture
def browser():
    need_browser()
    opened = Browser()
    yield opened
    opened.close()


def test_a_tab_gets_the_index_then_a_lesson_that_answers_keys(browser, tmp_path):
    with served(tmp_path) as server:
        browser.open(server.url)
        browser.wait_for(*INDEX_TEXTS)
        open_lesson(browser, "padding")
        screen = browser.wait_for("Padding and stride", "n = 7", padding_formula(7))
        assert "Receptive fields across layers" not in screen  # the lesson replaced the index
        browser.press("n", "n")  # n grows by one each time; the output size follows the formula
        browser.wait_for("n = 9", padding_formula(9))
        browser.press(Keys.ESCAPE)
        browser.wait_for(*INDEX_TEXTS)


def test_the_runs_screen_of_a_tab_opens_only_the_servers_runs(browser, tmp_path):
    with served(tmp_path) as server:
        browser.open(server.url)
        browser.wait_for(*INDEX_TEXTS)
        open_lesson(browser, "runs")
        browser.wait_for("no runs in runs/ yet")
        browser.press("o")
        time.sleep(1)  # the input takes the focus on the app's next turn; typed before that, "e" is a key
        browser.press("/etc", Keys.ENTER)
        runs = (tmp_path / "runs").resolve()
        screen = browser.wait_for("this served session can only")
        assert str(runs)[:40] in screen.replace("\n", "")


def test_the_session_cap_shows_the_full_page_and_frees_up_when_a_tab_leaves(browser, tmp_path):
    with served(tmp_path, "--max-sessions", "1") as server:
        browser.open(server.url)
        browser.wait_for(*INDEX_TEXTS)
        (first,) = server.wait_for_sessions(1)
        first_tab = browser.driver.current_window_handle

        browser.new_tab()
        browser.open(server.url)
        assert browser.driver.title == "convtui: the class is full"
        body = browser.driver.find_element("id", "full").text
        assert body == "The class is full: 1 of 1 sessions in use; try again when someone leaves."
        assert server.wait_for_sessions(1) == {first}  # no process was started for the refused tab

        second_tab = browser.driver.current_window_handle
        browser.driver.switch_to.window(first_tab)
        browser.driver.close()  # the first learner leaves: their app ends
        browser.driver.switch_to.window(second_tab)
        server.wait_for_sessions(0)
        assert not alive(first)
        browser.open(server.url)
        browser.wait_for(*INDEX_TEXTS)


def session_environment(pid: int) -> dict[str, str]:
    raw = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_a_tab_that_starts_training_while_the_slot_is_taken_waits_and_says_so(browser, tmp_path, monkeypatch):
    """The test holds the server's one training slot itself (as another tab's run would): the dashboard queues
    with the message, x leaves the queue, and once the slot is free the run starts."""
    from convtui.core.training.training_slot import SLOTS_FOLDER_VARIABLE, training_slot

    with served(tmp_path) as server:
        browser.open(server.url)
        browser.wait_for(*INDEX_TEXTS)
        (session,) = server.wait_for_sessions(1)
        environment = session_environment(session)
        assert environment["CONVTUI_SERVED_RUNS"] == str((tmp_path / "runs").resolve())
        assert environment["NUMBA_NUM_THREADS"] == "1"
        monkeypatch.setenv(SLOTS_FOLDER_VARIABLE, environment[SLOTS_FOLDER_VARIABLE])
        open_lesson(browser, "train")
        browser.wait_for("ready: choose settings")
        with training_slot() as holding:
            assert holding is True
            browser.press(Keys.CONTROL + "s")
            browser.wait_for("waiting: another session is training (1 of 1 slots in use); your run starts when the "
                             "slot is free (x cancels)")
            browser.wait_for("waiting for a training slot: every slot is in use by other sessions (x cancels)")
            browser.press("x")
            browser.wait_for("stopped while waiting for the training slot")
        browser.press(Keys.CONTROL + "s")  # the slot is free now: this run trains
        browser.wait_for("training | epoch 1/", timeout=120)
        browser.press("x")
        browser.wait_for("stopped", timeout=60)
