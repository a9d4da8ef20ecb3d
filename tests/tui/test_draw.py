"""Draw a digit: the pen, the MNIST-like preprocessing, live predictions and loading a model."""

import time

import numpy as np
from textual.app import App

from convtui.core.training import drawn_digits, snapshots
from convtui.core.storage.checkpoint import save_checkpoint
from convtui.core.training.config import TrainConfig
from convtui.core.nn.architectures import build_model
from convtui.tui import train_worker
from convtui.tui.screens.draw import DrawScreen
from convtui.tui.widgets.canvas import DAB, DrawingCanvas, apply_dab


class DrawApp(App):
    def on_mount(self):
        self.push_screen(DrawScreen())


async def wait_until(pilot, condition, timeout=30.0):
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "timed out"
        await pilot.pause(0.05)


def test_dab_inks_and_erases_clipped_at_the_edges():
    pixels = np.zeros((28, 28))
    apply_dab(pixels, 10, 10, erase=False)
    np.testing.assert_array_equal(pixels[9:12, 9:12], DAB)
    assert pixels.sum() == DAB.sum()
    apply_dab(pixels, 0, 27, erase=False)  # a corner: only the part inside the canvas
    np.testing.assert_array_equal(pixels[0:2, 26:28], DAB[1:3, 0:2])
    apply_dab(pixels, 10, 10, erase=True)
    assert pixels[10, 10] == 0 and 0 < pixels[9, 10] < DAB[0, 1]


async def test_cursor_keys_draw_a_stroke_and_the_model_predicts_it(tmp_path):
    model = build_model("softmax", 0)
    train_worker.latest_model.set(model, "softmax test model")
    try:
        app = DrawApp()
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            await pilot.pause()
            canvas = screen.query_one(DrawingCanvas)
            assert "softmax test model" in str(screen.query_one("#draw-model").render())
            for _ in range(5):
                await pilot.press("down")
            await wait_until(pilot, lambda: screen.last_probs is not None)
            column = canvas.pixels[:, 14]
            assert (column[15:20] == 1).all() and column[14] == 0.6 and canvas.pixels[:, 10].sum() == 0
            await pilot.press("space", "right", "right")  # erase mode
            assert canvas.mode == "erase" and canvas.pixels[19, 16] == 0
            await pilot.press("space", "left", "left", "left", "left")  # move mode: nothing changes
            before = canvas.pixels.copy()
            await pilot.pause(0.2)
            np.testing.assert_array_equal(canvas.pixels, before)
            # The prediction is the model's softmax on the drawing, scaled and centred like MNIST.
            await wait_until(pilot, lambda: screen.last_probs is not None)
            expected = snapshots.predict(model, drawn_digits.centre_like_mnist(canvas.pixels).astype(np.float32)
                                       .reshape(1, 1, 28, 28))[0]
            await pilot.pause(0.2)
            np.testing.assert_allclose(screen.last_probs, expected, rtol=1e-5)
            assert f"the model says {int(np.argmax(expected))}" in str(screen.query_one("#draw-guess").render())
            await pilot.press("c")
            await wait_until(pilot, lambda: screen.last_probs is None)
            assert not canvas.pixels.any()
    finally:
        train_worker.latest_model.clear()


async def test_test_digit_key_shows_a_real_mnist_digit():
    app = DrawApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("t")
        from convtui.core.storage.datasets import load_split

        first = load_split("test", limit=1).images[0] / 255.0
        np.testing.assert_allclose(app.screen.query_one(DrawingCanvas).pixels, first)


async def test_loading_a_checkpoint_and_a_bad_path(tmp_path):
    config = TrainConfig.for_model("softmax")
    model = build_model("softmax", 3)
    save_checkpoint(tmp_path / "checkpoint.npz", model=model, optimizer=None, config=config, epoch=1)
    app = DrawApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.pause()
        assert screen.model is None and "no model yet" in str(screen.query_one("#draw-model").render())
        await pilot.press("l")
        await pilot.press(*"/no/such/place", "enter")
        await wait_until(pilot, lambda: len(app._notifications) > 0)
        assert "/no/such/place does not exist" in [n.message for n in app._notifications][-1]
        assert screen.model is None
        screen.query_one("#draw-path").value = str(tmp_path)
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.model is not None)
        np.testing.assert_array_equal(screen.model.params()[0].value, model.params()[0].value)
        assert screen.query_one(DrawingCanvas).has_focus


async def test_small_terminal_uses_the_half_block_canvas():
    app = DrawApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        canvas = app.screen.query_one(DrawingCanvas)
        assert canvas.has_class("small") and canvas.size.height == 14 and canvas.size.width == 28


def test_snapshot_draw_a_test_digit(snap_compare):
    async def run_before(pilot):
        train_worker.latest_model.set(build_model("softmax", 0), "softmax (untrained, seed 0)")
        pilot.app.screen.action_latest()
        await pilot.press("t", "up", "up")
        await wait_until(pilot, lambda: pilot.app.screen.last_probs is not None)
        await pilot.pause(0.2)
        train_worker.latest_model.clear()

    assert snap_compare(DrawApp(), terminal_size=(120, 40), run_before=run_before)


async def test_percentages_truncate_and_the_footer_fits_120_columns():
    import numpy as np
    from textual.widgets import Static

    from convtui.tui.app import ConvTuiApp

    app = ConvTuiApp(initial_screen="draw")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        probs = np.full(10, 0.003 / 9)
        probs[7] = 0.997
        app.screen.show_prediction(probs)
        await pilot.pause()
        assert "the model says 7 (99% sure)" in str(app.screen.query_one("#draw-guess", Static).render())
        assert "99.7%" in str(app.screen.query_one("#draw-bars", Static).render())
        footer = "".join(str(part) for part in app.screen.query_one("Footer").query("FooterKey"))
        keys = [key.key_display or key.key for key in app.screen.query("FooterKey")]
        assert keys and all(key.region.right <= 120 for key in app.screen.query("FooterKey")), footer
