"""MNIST digits with the model's predictions, drawn with half blocks; misclassified ones come first, in red."""

from __future__ import annotations

from rich.text import Text

from convtui.core.training.snapshots import DigitPredictions
from convtui.toy.formatting import format_percent
from convtui.tui.widgets.heatmap import HeatmapGrid


def caption(label: int, predicted: int, confidence: float) -> Text:
    """'7 ✓ 98%' when right; '✗ 5 not 3' in red when wrong (the guess, then the truth)."""
    if label == predicted:  # truncated like every number in the app: 99.7% shows as 99%, never a false 100%
        return Text(f"{predicted} ✓ {format_percent(confidence)}", style="green")
    return Text(f"✗ {predicted} not {label}", style="bold red")


class DigitGrid(HeatmapGrid):
    """A sample of digits with captions. `scale=2` shows a 28x28 digit in 14x7 cells."""

    def __init__(self, *, scale: int = 2, **kwargs):
        super().__init__(signed=False, scale=scale, **kwargs)

    def set_predictions(self, sample: DigitPredictions, title: str) -> None:
        captions = [caption(int(l), int(p), float(c))
                    for l, p, c in zip(sample.labels, sample.predicted, sample.confidence)]
        # Short enough for a third of 120 columns; that mistakes come first is said by the dashboard's help.
        summary = f"{sample.n_errors}/{sample.n_evaluated} wrong{' ' + title if title else ''}"
        self.set_images(list(sample.images), captions, title=summary)
