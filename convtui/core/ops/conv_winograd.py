"""A 5x5 conv + ReLU + 2x2 max-pool by Winograd's F(4x4, 5x5), in training and inference: the cnn's conv2 without
im2col.

Each 4x4 block of conv outputs is four whole pooling windows, and Winograd computes exactly such a block from an
8x8 tile of the input: transform the tile (U = Bt d B), multiply it element by element with the transformed filter
(V = G g Gt) and summed over the channels, then transform back (Y = At M A). The sum over channels, for each of the
64 tile positions, is a GEMM of (tiles, C) @ (C, K). Per 4x4 block that is 64 multiply-adds per channel and filter
instead of 16 * 25 = 400, and each input value is read by the 4 tiles that overlap it instead of being copied 25
times by im2col. An output side that is not a multiple of 4 (the cnn's 14) gets a last tile whose extra rows and
columns read zeros past the padding and are dropped.

The points are 0, 1, -1, 2, -2, 1/2, -1/2 and infinity, the set of the common F(6x6, 3x3) (NNPACK's); the matrices
below follow from them (Toom-Cook), and `tests/core/test_conv_winograd.py` rebuilds them exactly with fractions. The
float32 results agree with the direct sum to a number of roundings of the largest products, not to the bit: on the
trained cnn's conv2 the largest error was 1.4e-5 against outputs up to 5.1, where F(2x2, 5x5) gave 0.9e-5 and the
GEMM 0.25e-5 (the tests allow 1e-5 of the largest output).

Training takes this path too: the output kernel also writes where each window's winner is, which the sparse
backward (conv_nhwc) needs with the padded copy of the input made here, so the gradients are exactly those of the
forward computed. The cnn's conv2 forward in a training step took 7.5-9.3 ms instead of 15.3 by im2col and GEMM
(batch 100, two threads), and a whole step 44.4-47.1 ms instead of 48.8-53.6 (five alternating pairs: 8-15%
less). `convtui bench` still counts the lecture's nominal FLOPs,
those of the direct sum: for the cnn's conv2 forward, Winograd does fewer multiplications than that count.

Why F(4x4) and not F(2x2, 5x5), which this path used before: the channel sums are GEMMs only 32 deep (the cnn's
conv2 has 32 input channels), which OpenBLAS runs at about half this CPU's peak whatever their other sizes; F(4x4)
needs 1,024 tile positions per 14x14 image where F(2x2) needed 1,764. With the output transform and the pooling in
one kernel, the cnn's conv2 took 8.4-9.8 ms a batch of 100 MNIST test digits on two threads, against 11.5-16.2 ms
for F(2x2), and the whole forward 15.6-18.2 ms against 19.2-23.8 (four alternating runs of each). The price is one
more kernel to compile cold, about 1 s of CPU.

The images are split into one contiguous share per thread; each thread pads its images, and a few at a time
transforms them, runs its 64 GEMMs on one BLAS thread, and transforms back and pools the result while it is still
in its cache.
"""

from __future__ import annotations

import numpy as np

from convtui.core.ops.conv_nhwc import _nchw_to_padded_nhwc_range
from convtui.core.ops.jit import SERIAL, parts_for, run_blas_calls, share_bounds
from convtui.core.ops.kernel_cache import njit

TILE, FILTER, BLOCK = 8, 5, 4  # an 8x8 input tile gives a 4x4 block of conv outputs: four 2x2 pooling windows
POSITIONS = TILE * TILE
# The transforms' coefficients as float32: a Python float would promote every product to float64, which halves
# the vector lanes and converts each value twice.
_F = np.float32
HALF, QUARTER, EIGHTH, ONE_AND_QUARTER = _F(0.5), _F(0.25), _F(0.125), _F(1.25)
TWO, TWO_AND_HALF, FOUR, FOUR_AND_QUARTER, FIVE, FIVE_AND_QUARTER, EIGHT = (_F(2), _F(2.5), _F(4), _F(4.25), _F(5),
                                                                            _F(5.25), _F(8))
# G (8 x 5) maps a filter row to its 8 tile positions: row j is p_j^k / prod_{l != j}(p_j - p_l), infinity's row last.
G = np.array([[-1, 0, 0, 0, 0],
              [-2 / 9, -2 / 9, -2 / 9, -2 / 9, -2 / 9],
              [-2 / 9, 2 / 9, -2 / 9, 2 / 9, -2 / 9],
              [1 / 90, 1 / 45, 2 / 45, 4 / 45, 8 / 45],
              [1 / 90, -1 / 45, 2 / 45, -4 / 45, 8 / 45],
              [32 / 45, 16 / 45, 8 / 45, 4 / 45, 2 / 45],
              [32 / 45, -16 / 45, 8 / 45, -4 / 45, 2 / 45],
              [0, 0, 0, 0, 1]])
# Bt (8 x 8), written out in `_bt_column` below; At (4 x 8), in `_at_column`.
BT = np.array([[-1, 0, 5.25, 0, -5.25, 0, 1, 0],
               [0, 1, 1, -4.25, -4.25, 1, 1, 0],
               [0, -1, 1, 4.25, -4.25, -1, 1, 0],
               [0, 0.5, 0.25, -2.5, -1.25, 2, 1, 0],
               [0, -0.5, 0.25, 2.5, -1.25, -2, 1, 0],
               [0, 2, 4, -2.5, -5, 0.5, 1, 0],
               [0, -2, 4, 2.5, -5, -0.5, 1, 0],
               [0, -1, 0, 5.25, 0, -5.25, 0, 1]])
AT = np.array([[1, 1, 1, 1, 1, 1, 1, 0],
               [0, 1, -1, 2, -2, 0.5, -0.5, 0],
               [0, 1, 1, 4, 4, 0.25, 0.25, 0],
               [0, 1, -1, 8, -8, 0.125, -0.125, 1]])


def applies(geo, pool_shape) -> bool:
    """True for a 5x5 filter at stride 1 followed by a 2x2 pool at stride 2, with an even conv output: every
    pooling window is then whole (pooling keeps a partial window at an odd edge, which this path does not
    compute)."""
    return ((geo.f_h, geo.f_w, geo.s_h, geo.s_w) == (FILTER, FILTER, 1, 1) and tuple(pool_shape) == (2, 2, 2, 2)
            and geo.o_h % 2 == 0 and geo.o_w % 2 == 0)


def tiles_for(o_h, o_w) -> tuple[int, int]:
    """Tiles down and across for a conv output of o_h x o_w: one per 4x4 block, the last one partly past the edge."""
    return -(-o_h // BLOCK), -(-o_w // BLOCK)


def padded_shape(n, c, t_h, t_w) -> tuple[int, int, int, int]:
    """The (N, HP, WP, C) padded copy the tiles read: every tile whole, zeros past the input and its padding."""
    return n, BLOCK * t_h + TILE - BLOCK, BLOCK * t_w + TILE - BLOCK, c


def transformed_filters(w):
    """V[a * 8 + b, c, k] = (G w[k, c] Gt)[a, b], from w (K, C, 5, 5), computed in float64 and rounded once: one
    GEMM, kron(G, G) (64 x 25) @ (25 x K*C)."""
    n_k, n_c = w.shape[:2]
    v = np.kron(G, G) @ w.reshape(n_k * n_c, FILTER * FILTER).T.astype(np.float64)  # (64, K*C)
    return np.ascontiguousarray(v.reshape(POSITIONS, n_k, n_c).transpose(0, 2, 1), dtype=w.dtype)


@njit(**SERIAL, inline="always")  # inlined into the kernels below
def _bt_column(d0, d1, d2, d3, d4, d5, d6, d7):
    """Bt @ (d0, ..., d7), sharing the sums its rows have in common."""
    even_a, odd_a = d2 + d6 - FOUR_AND_QUARTER * d4, d1 + d5 - FOUR_AND_QUARTER * d3
    even_b, odd_b = QUARTER * d2 + d6 - ONE_AND_QUARTER * d4, HALF * d1 - TWO_AND_HALF * d3 + TWO * d5
    even_c, odd_c = FOUR * d2 + d6 - FIVE * d4, TWO * d1 - TWO_AND_HALF * d3 + HALF * d5
    return (FIVE_AND_QUARTER * (d2 - d4) - d0 + d6, even_a + odd_a, even_a - odd_a, even_b + odd_b, even_b - odd_b,
            even_c + odd_c, even_c - odd_c, FIVE_AND_QUARTER * (d3 - d5) - d1 + d7)


@njit(**SERIAL, inline="always")  # inlined into the kernels below
def _at_column(m0, m1, m2, m3, m4, m5, m6, m7):
    """At @ (m0, ..., m7): the 4 conv outputs of one column (or row) of a tile's 8 values."""
    sum_1, sum_2, sum_half = m1 + m2, m3 + m4, m5 + m6
    diff_1, diff_2, diff_half = m1 - m2, m3 - m4, m5 - m6
    return (m0 + sum_1 + sum_2 + sum_half, diff_1 + TWO * diff_2 + HALF * diff_half,
            sum_1 + FOUR * sum_2 + QUARTER * sum_half, diff_1 + EIGHT * diff_2 + EIGHTH * diff_half + m7)


@njit(**SERIAL, inline="always")  # inlined into the kernels below
def _window_at(a, b, c, d, bias, first, o_w):
    """relu(bias + the largest of a window's four outputs), as np.fmax does it (a NaN loses to any number, four NaNs
    give NaN and then the ReLU's 0, always +0.0), and where its winner is, for training's backward: the flat index
    r * OW + q in the conv output of the first largest of a (first), b (first + 1), c (first + OW) and d (first +
    OW + 1), or -1 where the ReLU closed the window. A tie goes to the first, as in the GEMM path's epilogue."""
    best, at = a, first
    if b > best or np.isnan(best):
        best, at = b, first + 1
    if c > best or np.isnan(best):
        best, at = c, first + o_w
    if d > best or np.isnan(best):
        best, at = d, first + o_w + 1
    best += bias
    if best > 0:
        return best, at
    return _F(0), -1


@njit(**SERIAL)
def _input_tiles(xp, n_start, count, t_h, t_w, tmp, u):
    """u[(n, ti, tj), a * 8 + b, c] = (Bt d Bt.T)[a, b] for the 8x8 tile d of padded image n_start + n at rows
    4*ti.., columns 4*tj.. . tmp (8, 8, C) holds Bt d; the loops over c are the vector lanes."""
    n_c = xp.shape[3]
    for n in range(count):
        img = xp[n_start + n]
        for ti in range(t_h):
            for tj in range(t_w):
                r, q = BLOCK * ti, BLOCK * tj
                for v in range(TILE):
                    for c in range(n_c):
                        column = _bt_column(img[r, q + v, c], img[r + 1, q + v, c], img[r + 2, q + v, c],
                                            img[r + 3, q + v, c], img[r + 4, q + v, c], img[r + 5, q + v, c],
                                            img[r + 6, q + v, c], img[r + 7, q + v, c])
                        for a in range(TILE):
                            tmp[a, v, c] = column[a]
                dst = u[(n * t_h + ti) * t_w + tj]
                for a in range(TILE):
                    for c in range(n_c):
                        row = _bt_column(tmp[a, 0, c], tmp[a, 1, c], tmp[a, 2, c], tmp[a, 3, c], tmp[a, 4, c],
                                         tmp[a, 5, c], tmp[a, 6, c], tmp[a, 7, c])
                        for b in range(TILE):
                            dst[a * TILE + b, c] = row[b]


@njit(**SERIAL)
def _output_tiles(m, bias, count, t_h, t_w, tmp, block, pooled, pooled_at):
    """pooled[n, pi, pj, k] = relu(bias[k] + max of the 2x2 window (pi, pj) of (At M A)) for this step's tiles, and
    pooled_at[n, pi, pj, k] = where its winner is (see `_window_at`). Inference writes the winners too and never
    reads them: one loop instead of two compiled this kernel in 1.4 s instead of 2.6, and the stores cost it
    nothing measurable (the cnn's forward took 20.1-21.2 ms with and without them, four alternating runs each).
    m (64, tiles, K) holds each tile's 64 channel sums, tmp (4, 8, K) holds At M and block (4, 4, K) the 4x4 conv
    outputs; windows past the edge of pooled (a last tile's extra rows and columns) are not written. The loops over
    k are the vector lanes. (Pooling straight from At M, with no block, ran 2 times slower.)"""
    n_k = m.shape[2]
    p_h, p_w = pooled.shape[1], pooled.shape[2]
    o_w = 2 * p_w
    for n in range(count):
        for ti in range(t_h):
            for tj in range(t_w):
                t = (n * t_h + ti) * t_w + tj
                for b in range(TILE):
                    for k in range(n_k):
                        column = _at_column(m[b, t, k], m[TILE + b, t, k], m[2 * TILE + b, t, k],
                                            m[3 * TILE + b, t, k], m[4 * TILE + b, t, k], m[5 * TILE + b, t, k],
                                            m[6 * TILE + b, t, k], m[7 * TILE + b, t, k])
                        for i in range(BLOCK):
                            tmp[i, b, k] = column[i]
                for i in range(BLOCK):
                    for k in range(n_k):
                        row = _at_column(tmp[i, 0, k], tmp[i, 1, k], tmp[i, 2, k], tmp[i, 3, k], tmp[i, 4, k],
                                         tmp[i, 5, k], tmp[i, 6, k], tmp[i, 7, k])
                        for j in range(BLOCK):
                            block[i, j, k] = row[j]
                for i in range(0, BLOCK, 2):
                    pi = 2 * ti + i // 2
                    for j in range(0, BLOCK, 2):
                        pj = 2 * tj + j // 2
                        if pi >= p_h or pj >= p_w:
                            continue
                        first = (BLOCK * ti + i) * o_w + BLOCK * tj + j
                        for k in range(n_k):
                            pooled[n, pi, pj, k], pooled_at[n, pi, pj, k] = _window_at(
                                block[i, j, k], block[i, j + 1, k], block[i + 1, j, k], block[i + 1, j + 1, k],
                                bias[k], first, o_w)


def _part(x, pads, xp, v, b, y, argmax, with_argmax, chunk, u, m, pooled, pooled_at, lo, hi):
    """Images [lo, hi) of x (NCHW) to y (pooled NCHW) and, with_argmax, argmax (NCHW int32), through xp (their
    padded NHWC copy, filled here) and this part's buffers u (chunk*TH*TW, 64, C), m (flat, room for 64 x
    chunk*TH*TW x K), pooled (chunk, PH, PW, K) and pooled_at (the same, int32): one row of 64 x C values per
    tile, which the input transform writes in one stretch; each GEMM reads its tile position's column and writes
    one contiguous block of m. Each step's m is a contiguous array of its own shape: a strided view for the last,
    shorter step would be another type to Numba, and another compile."""
    t_h, t_w = tiles_for(2 * y.shape[2], 2 * y.shape[3])
    n_k = v.shape[2]
    _nchw_to_padded_nhwc_range(x, pads[0], pads[1], xp, lo, hi)
    tmp_in = np.empty((TILE, TILE, x.shape[1]), dtype=x.dtype)
    tmp_out, block = np.empty((BLOCK, TILE, n_k), dtype=x.dtype), np.empty((BLOCK, BLOCK, n_k), dtype=x.dtype)
    for start in range(lo, hi, chunk):
        count = min(chunk, hi - start)
        rows = count * t_h * t_w
        uu, mm = u[:rows], m[:POSITIONS * rows * n_k].reshape(POSITIONS, rows, n_k)
        _input_tiles(xp, start, count, t_h, t_w, tmp_in, uu)
        np.matmul(uu.transpose(1, 0, 2), v, out=mm)
        _output_tiles(mm, b, count, t_h, t_w, tmp_out, block, pooled, pooled_at)
        y[start:start + count] = pooled[:count].transpose(0, 3, 1, 2)
        if with_argmax:
            argmax[start:start + count] = pooled_at[:count].transpose(0, 3, 1, 2)


def conv_relu_maxpool_forward(x, pads, xp, v, b, y, argmax, with_argmax, chunk, buffers):
    """y = maxpool2x2(relu(conv5x5(x) + b)) and, with_argmax, where each window's winner is (as
    `conv.conv2d_relu_maxpool_forward` gives it). pads = (top, left) of xp, the `padded_shape` buffer for x's
    padded channels-last copy, which the sparse backward then reads; v = transformed_filters(w);
    buffers(parts, chunk) gives one (u, m, pooled, pooled_at) set per part (see `_part`)."""
    n_images, (p_h, p_w) = x.shape[0], y.shape[2:]
    t_h, t_w = tiles_for(2 * p_h, 2 * p_w)
    parts = parts_for(n_images * t_h * t_w * POSITIONS * max(v.shape[1:]), n_images)
    bounds = share_bounds(n_images, parts)
    chunk = max(1, min(chunk, -(-n_images // parts)))
    run_blas_calls(_part, [(x, pads, xp, v, b, y, argmax, with_argmax, chunk, *buffers_of_part, bounds[part],
                            bounds[part + 1]) for part, buffers_of_part in enumerate(buffers(parts, chunk))])
