"""The convtui Textual app: a lesson index, one screen per lesson, help, quit, and a "too small" guard.

How a lesson plugs in
---------------------
1. Add an entry to `convtui/tui/lessons.py`: `Lesson(name, title, summary, "module:Class", part)`.
2. Write `Class` in that module as a `LessonScreen` (convtui/tui/screens/lesson_base.py): its docstring says
   what a lesson provides (BINDINGS, HELP, state, `compose_lesson`, `refresh_lesson`). Layout goes in
   convtui.tcss.
3. That is all: the index imports the module when the learner opens the lesson, and `convtui --screen NAME`
   opens it directly. A lesson that fails to import or build says why in a notification; the app stays up.

The app owns these keys on every screen: `?` help, `q` quit, `escape`/`backspace` back to the index.
To open a lesson from code use `app.open_lesson("name")`; to push any other screen, `app.push_screen(Screen())`.

With `warm_kernels` (what `convtui` itself runs), a thread compiles the lessons' Numba kernels from start-up
(`KERNEL_WARM_UPS` in lessons.py) and the index says how far it is. A lesson opened before its kernels are ready
shows a stand-in at once (`KernelsCompilingScreen`: its title, "compiling kernels: step n of m"), its kernels
go next, and the lesson takes the stand-in's place when they are ready; the app's keys stay live throughout.
"""

from __future__ import annotations

import asyncio
import sys

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.markup import escape

from convtui.tui import core_notices
from convtui.tui.exit_signals import watch_exit_signals
from convtui.tui.lessons import KERNEL_WARM_UPS, find_lesson, unknown_screen_message
from convtui.tui.screens.help import HelpScreen
from convtui.tui.screens.index import IndexScreen
from convtui.tui.screens.lesson_base import KernelsCompilingScreen
from convtui.tui.screens.too_small import MIN_HEIGHT, MIN_WIDTH, TooSmallScreen


class ConvTuiApp(App):
    """Learn convolutional neural networks in the terminal: the lecture's lessons, one screen each."""

    TITLE = "convtui"
    SUB_TITLE = "convolutional neural networks, step by step"
    CSS_PATH = "convtui.tcss"
    ENABLE_COMMAND_PALETTE = False  # every action has its own key; ctrl+p would only crowd the footer
    # Screens get the class -narrow below 110 columns (side-by-side panels stack) and -wide above.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    # Below 30 rows lesson screens drop their intro paragraph so the panels fit in 24 rows; from 36 rows the
    # channels lesson has room for its full input slices.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall"), (36, "-very-tall")]
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("escape", "back", "Back"),
        Binding("backspace", "back", "Back", show=False),
    ]

    def __init__(self, initial_screen: str | None = None, warm_kernels: bool = False) -> None:
        super().__init__()
        if initial_screen is not None and find_lesson(initial_screen) is None:
            raise ValueError(unknown_screen_message(initial_screen))
        self.initial_screen = initial_screen
        # Off by default so a test's lesson opens at once, computing on the UI thread as it always could.
        self.warm_kernels = warm_kernels
        self.warmed_lessons: set[str] = set()  # lessons whose kernels the warm-up has compiled
        self.pending_lesson: str | None = None  # asked for before its kernels were ready: its warm-up goes next
        self.warm_up_progress: dict = {}  # warm-up -> (steps done, steps) while it runs
        self.exit_loop: asyncio.AbstractEventLoop | None = None  # for the SIGTERM/SIGHUP thread (exit_signals)

    def on_mount(self) -> None:
        self.core_notices = core_notices.route_to(self)  # the core's warnings (a damaged kernel cache) as toasts
        self.push_screen(IndexScreen())
        if self.warm_kernels:  # the real entry point (run_app), not a test's app: see exit_signals.py
            self.exit_loop = asyncio.get_running_loop()
        if self.warm_kernels:
            self.index.show_status("Preparing the lessons' kernels…")
            self.call_after_refresh(self.warm_up_kernels)  # after the index's first paint
        if self.initial_screen:
            self.open_lesson(self.initial_screen)
        self.check_size()

    def on_unmount(self) -> None:
        core_notices.unroute(self.core_notices)

    @property
    def index(self) -> IndexScreen:
        return next(screen for screen in self.screen_stack if isinstance(screen, IndexScreen))

    def open_lesson(self, name: str) -> None:
        """Push the screen of the lesson called `name` (see convtui/tui/lessons.py)."""
        lesson = find_lesson(name)
        if lesson is None:
            self.notify(unknown_screen_message(name), severity="error")
            return
        if self.warm_kernels and name in KERNEL_WARM_UPS and name not in self.warmed_lessons:
            self.pending_lesson = name  # the warm-up does this lesson's kernels next
            warm_up = KERNEL_WARM_UPS[name]
            done, total = self.warm_up_progress.get(warm_up, (0, len(warm_up.steps)))
            self.push_screen(KernelsCompilingScreen(name, lesson.title, done, total))
            return
        stand_in = self.screen if isinstance(self.screen, KernelsCompilingScreen) else None
        try:
            screen = lesson.load_screen()
        except Exception as exc:  # a bug in one lesson must not take the whole app down
            self.notify(escape(f"{lesson.title} could not open: {type(exc).__name__}: {exc}"),
                        title="Lesson failed", severity="error", timeout=15)
            if stand_in is not None:
                self.pop_screen()
            return
        if stand_in is not None and stand_in.lesson_name == name:
            self.switch_screen(screen)  # the lesson takes its stand-in's place: esc goes back to the index
        else:
            self.push_screen(screen)

    # ---------------------------------------------------------------- kernel warm-up
    @work(thread=True, exclusive=True, group="kernels")
    def warm_up_kernels(self) -> None:
        """Run each warm-up's steps once, switching to the waiting lesson's warm-up at the next step; report each
        step back to the UI thread."""
        from textual.worker import get_current_worker

        worker = get_current_worker()
        # In the index's order, each once.
        remaining = {warm_up: list(warm_up.steps) for warm_up in dict.fromkeys(KERNEL_WARM_UPS.values())}
        total, finished = len(remaining), 0
        while remaining and not worker.is_cancelled:
            wanted = KERNEL_WARM_UPS.get(self.pending_lesson or "")
            warm_up = wanted if wanted in remaining else next(iter(remaining))
            steps = remaining[warm_up]
            problem = ""
            try:
                steps.pop(0)()
            except Exception as exc:  # the lesson itself will say what is wrong when opened; the app stays up
                problem = f"{type(exc).__name__}: {exc}"
                steps.clear()
            if steps:
                self.call_from_thread(self.kernel_step_done, warm_up, len(warm_up.steps) - len(steps),
                                      len(warm_up.steps))
                continue
            del remaining[warm_up]
            finished += 1
            self.call_from_thread(self.kernels_warmed, warm_up, finished, total, problem)

    def kernel_step_done(self, warm_up, done: int, total: int) -> None:
        self.warm_up_progress[warm_up] = (done, total)
        for screen in self.screen_stack:
            if isinstance(screen, KernelsCompilingScreen) and KERNEL_WARM_UPS.get(screen.lesson_name) is warm_up:
                screen.show_progress(done, total)

    def kernels_warmed(self, warm_up, done: int, total: int, problem: str) -> None:
        self.warm_up_progress.pop(warm_up, None)
        self.warmed_lessons |= {name for name, function in KERNEL_WARM_UPS.items() if function is warm_up}
        if problem:
            self.index.show_status(f"Preparing the lessons' kernels failed: {problem}")
        elif done < total:
            self.index.show_status(f"Preparing the lessons' kernels… {done}/{total}")
        else:
            self.index.show_status("Lessons ready.")
        if self.pending_lesson in self.warmed_lessons:
            self.pending_lesson = None
        for screen in self.screen_stack:
            if isinstance(screen, KernelsCompilingScreen) and screen.lesson_name in self.warmed_lessons:
                if screen is self.screen:
                    self.open_lesson(screen.lesson_name)
                else:  # help (or the too-small notice) covers it: it opens the lesson when uncovered
                    screen.kernels_ready = True

    # ---------------------------------------------------------------- keys
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen | TooSmallScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_back(self) -> None:
        if not isinstance(self.screen, IndexScreen | TooSmallScreen) and len(self.screen_stack) > 2:
            self.pop_screen()

    # ---------------------------------------------------------------- too small
    def on_resize(self, event: events.Resize) -> None:
        self.check_size(event.size.width, event.size.height)

    def check_size(self, width: int | None = None, height: int | None = None) -> None:
        """Cover everything with a plain message while the terminal is under MIN_WIDTH x MIN_HEIGHT."""
        width = self.size.width if width is None else width
        height = self.size.height if height is None else height
        too_small = width < MIN_WIDTH or height < MIN_HEIGHT
        showing = isinstance(self.screen, TooSmallScreen)
        if too_small and not showing:
            self.push_screen(TooSmallScreen(width, height))
        elif too_small and showing:
            self.screen.update_size(width, height)
        elif not too_small and showing:
            self.pop_screen()


def run_app(screen: str | None = None) -> int:
    """Run the app (optionally straight on one lesson); returns the process exit code (2 for a bad name)."""
    if screen is not None and find_lesson(screen) is None:
        print(f"convtui: error: {unknown_screen_message(screen)}", file=sys.stderr)
        return 2
    app = ConvTuiApp(initial_screen=screen, warm_kernels=True)
    watch_exit_signals(app)  # SIGTERM and SIGHUP leave as q does, even when the terminal stopped reading
    app.run()
    return app.return_code or 0
