"""A digit drawn in the app, prepared the way MNIST's digits were before a model sees it."""

from __future__ import annotations

import numpy as np

MNIST_BOX = 20  # MNIST digits were scaled to fit a 20x20 box, then centred by mass in 28x28


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resampling at pixel centres (enough for a 28x28 drawing)."""
    h, w = image.shape
    ys = np.clip((np.arange(height) + 0.5) * h / height - 0.5, 0, h - 1)
    xs = np.clip((np.arange(width) + 0.5) * w / width - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = image[y0][:, x0] * (1 - wx) + image[y0][:, x1] * wx
    bottom = image[y1][:, x0] * (1 - wx) + image[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def centre_like_mnist(canvas: np.ndarray, size: int = 28) -> np.ndarray:
    """A drawing (size x size, ink in [0, 1]) prepared the way MNIST's digits were: the ink's bounding box is
    scaled so its longer side is 20 pixels, then the digit is moved so its centre of mass sits in the middle.
    An empty canvas comes back empty."""
    canvas = np.asarray(canvas, dtype=np.float64)
    rows, cols = np.nonzero(canvas > 0.05)
    if len(rows) == 0:
        return np.zeros((size, size))
    crop = canvas[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = MNIST_BOX / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    digit = np.clip(resize_bilinear(crop, h, w), 0, 1)
    # Centre of mass of the scaled digit, then the top-left corner that puts it at the middle of the image,
    # kept inside the image.
    total = digit.sum()
    cy = (digit.sum(axis=1) * np.arange(h)).sum() / total
    cx = (digit.sum(axis=0) * np.arange(w)).sum() / total
    top = int(np.clip(round((size - 1) / 2 - cy), 0, size - h))
    left = int(np.clip(round((size - 1) / 2 - cx), 0, size - w))
    out = np.zeros((size, size))
    out[top:top + h, left:left + w] = digit
    return out
