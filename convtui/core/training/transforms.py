"""Shift, rotate and scale images about their centre: the lecture's "Rotation" and "Scale variation" challenges.

Conventions, as a person sees the image on screen (row 0 at the top):

- `+x` is right and `+y` is down: `shift(images, dx=3, dy=0)` moves every pixel 3 columns to the right.
- A positive angle turns the image counter-clockwise as seen: `rotate(images, 90)` equals `np.rot90` on a square
  image (the top-right corner goes to the top-left).
- `scale(images, 2)` doubles sizes about the centre: a dot 2 pixels right of the centre moves to 4 pixels right.
- The centre is ((W - 1) / 2, (H - 1) / 2), the middle of a 28x28 image (13.5, 13.5), between four pixels.

Each output pixel is read back from the input (inverse mapping) with bilinear interpolation; anything read from
outside the input is 0 (black), so content pushed off the edge is lost, as it would be in a camera's frame.
Images are (N, H, W) or (N, 1, H, W) floats in [0, 1]; the result has the same shape and dtype. One transform is
applied to the whole batch, so the sampling positions and weights are computed once and every image is a gather.
"""

from __future__ import annotations

import math

import numpy as np

from convtui.core.errors import ConvtuiError

TRANSFORM_KINDS = ("shift", "rotate", "scale")
# Sampling positions this close to a whole pixel are snapped to it, so that the cos(90 deg) = 6e-17 of a quarter
# turn (and the float error of 360 deg) read whole pixels exactly instead of mixing in 1e-16 of a neighbour.
SNAP = 1e-9


class TransformError(ConvtuiError, ValueError):
    """An image batch or a transform amount that cannot be used."""


def _check_images(images) -> np.ndarray:
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.floating):
        raise TransformError(f"images must be floats in [0, 1], not {images.dtype}")
    if images.ndim == 4 and images.shape[1] != 1:
        raise TransformError(f"images of shape {images.shape} have {images.shape[1]} channels; transforms take 1")
    if images.ndim not in (3, 4) or min(images.shape[-2:], default=0) < 1:
        raise TransformError(f"images must be (N, H, W) or (N, 1, H, W), not shape {images.shape}")
    return images


def _check_number(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TransformError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise TransformError(f"{name} must be finite, not {value!r}")
    return number


def _snap(coordinates: np.ndarray) -> np.ndarray:
    nearest = np.rint(coordinates)
    return np.where(np.abs(coordinates - nearest) < SNAP, nearest, coordinates)


def source_positions(height: int, width: int, dx: float, dy: float, degrees: float, factor: float):
    """Where each output pixel reads the input: (x, y), each (H, W), in input pixel units.

    The forward map takes an input point p (relative to the centre) to q = R(theta) (factor * p) + (dx, dy), so the
    output pixel q reads p = R(-theta) (q - (dx, dy)) / factor. With +y down, a counter-clockwise turn as seen is
    R(theta) = [[cos, sin], [-sin, cos]] (a point right of the centre goes up), whose inverse is its transpose.
    """
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = cols - centre_x - dx, rows - centre_y - dy
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    x = (cos * u - sin * v) / factor + centre_x
    y = (sin * u + cos * v) / factor + centre_y
    return _snap(x), _snap(y)


def _bilinear(images: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """images (N, H, W) sampled at (x, y) (each (H, W)), zero outside: out = sum of the 4 neighbours' weights."""
    n, height, width = images.shape
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - x0).astype(images.dtype), (y - y0).astype(images.dtype)
    out = np.zeros((n, height, width), dtype=images.dtype)
    for row_offset, col_offset, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                                           (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        rows, cols = y0 + row_offset, x0 + col_offset
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width) & (weight != 0)
        if inside.any():
            out[:, inside] += images[:, rows[inside], cols[inside]] * weight[inside]
    return out


def transform(images, *, dx: float = 0.0, dy: float = 0.0, degrees: float = 0.0, factor: float = 1.0) -> np.ndarray:
    """Scale by `factor`, rotate by `degrees` (counter-clockwise as seen), then shift by (dx, dy) pixels, all
    about the image centre (see the module docstring); bilinear, zero fill. Same shape and dtype as `images`."""
    images = _check_images(images)
    dx, dy = _check_number("the shift dx", dx), _check_number("the shift dy", dy)
    degrees, factor = _check_number("the angle", degrees), _check_number("the scale", factor)
    if factor <= 0:
        raise TransformError(f"the scale must be above 0, not {factor:g}")
    flat = images.reshape(len(images), *images.shape[-2:])  # (N, H, W)
    x, y = source_positions(flat.shape[1], flat.shape[2], dx, dy, degrees, factor)
    return _bilinear(flat, x, y).reshape(images.shape)


def shift(images, dx: float, dy: float = 0.0) -> np.ndarray:
    """Move the content dx pixels right and dy pixels down (whole pixels move exactly)."""
    return transform(images, dx=dx, dy=dy)


def rotate(images, degrees: float) -> np.ndarray:
    """Turn the content counter-clockwise as seen by `degrees` about the centre."""
    return transform(images, degrees=degrees)


def scale(images, factor: float) -> np.ndarray:
    """Grow (factor > 1) or shrink (factor < 1) the content about the centre."""
    return transform(images, factor=factor)


def apply(kind: str, images, amount: float) -> np.ndarray:
    """One transform by name, as the invariance lesson sweeps them: "shift" moves `amount` pixels to the right,
    "rotate" turns `amount` degrees counter-clockwise, "scale" multiplies sizes by `amount`."""
    if kind == "shift":
        return shift(images, amount)
    if kind == "rotate":
        return rotate(images, amount)
    if kind == "scale":
        return scale(images, amount)
    raise TransformError(f"unknown transform {kind!r}; choose one of {', '.join(TRANSFORM_KINDS)}")
