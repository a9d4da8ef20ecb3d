"""Inference through a 5x5 conv + ReLU + 2x2 max-pool by Winograd's F(2x2, 5x5): the cnn's conv2 without im2col.

Each 2x2 block of conv outputs is one pooling window, and Winograd computes exactly such a block from a 6x6 tile of
the input: transform the tile (U = Bt d B), multiply it element by element with the transformed filter
(V = G g Gt) and summed over the channels, then transform back (Y = At M A). The sum over channels, for each of the
36 tile positions, is a GEMM of (tiles, C) @ (C, K). Per 2x2 block that is 36 multiply-adds per channel and filter
instead of 4 * 25 = 100, and each input value is read by the 9 tiles that overlap it instead of being copied 25
times by im2col.

The points are 0, 1, -1, 2, -2 and infinity, the set of the common F(4x4, 3x3); the matrices below follow from them
(Toom-Cook) and `tests/core/test_conv_winograd.py` rebuilds them exactly with fractions. The float32 results agree
with the direct sum to a few units in the last place of the largest products (checked there), not to the bit. So
only inference takes this path: training keeps the GEMM forward, whose winners its backward needs, and whose
FLOPs are the lecture's.

The images are split into one contiguous share per thread; each thread pads its images, and a few at a time
transforms them, runs its 36 GEMMs on one BLAS thread and pools the result while it is still in its cache.

Only the input transform is a Numba kernel. The output transform is one more GEMM, kron(At, At) (4 x 36) @ M, and
the pooling is NumPy's: a Numba kernel for them ran 1 ms faster per thread and batch of 100 (the cnn's inference
took a median 7.5% less time, in five alternating runs in one process) but took 0.5-0.7 s to compile, on the
critical path of every cold start (issue 15: at most 5 s).
"""

from __future__ import annotations

import functools

import numpy as np

from convtui.core.ops.conv_nhwc import _nchw_to_padded_nhwc_range
from convtui.core.ops.jit import SERIAL, parts_for, run_blas_calls, share_bounds
from convtui.core.ops.kernel_cache import njit

TILE, FILTER = 6, 5
BLOCK = 4  # conv outputs per tile: a 2x2 block, which is one pooling window
# The transforms' coefficients as float32: a Python int or float would promote every product to float64, which
# halves the vector lanes and converts each value twice (the input transform took 9 ms a batch that way).
F2, F4, F5 = np.float32(2), np.float32(4), np.float32(5)
# G (6 x 5) maps a filter row to its 6 tile positions; Bt is written out in the input kernel below, and At's
# Kronecker square is the output transform's GEMM.
G = np.array([[1 / 4, 0, 0, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6, 1 / 3, 2 / 3],
              [1 / 24, -1 / 12, 1 / 6, -1 / 3, 2 / 3],
              [0, 0, 0, 0, 1]])
BT = np.array([[4, 0, -5, 0, 1, 0],
               [0, -4, -4, 1, 1, 0],
               [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0],
               [0, 2, -1, -2, 1, 0],
               [0, 4, 0, -5, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 1, 1, 0],
               [0, 1, -1, 2, -2, 1]], dtype=np.float64)


def applies(geo, pool_shape) -> bool:
    """True for a 5x5 filter at stride 1 followed by a 2x2 pool at stride 2, with an even conv output: every
    pooling window is then a whole 2x2 block (pooling keeps a partial window at an odd edge, which this path
    does not compute)."""
    return ((geo.f_h, geo.f_w, geo.s_h, geo.s_w) == (FILTER, FILTER, 1, 1) and tuple(pool_shape) == (2, 2, 2, 2)
            and geo.o_h % 2 == 0 and geo.o_w % 2 == 0)


@functools.cache
def _filter_transform():
    """kron(G, G) (36 x 25): row a * 6 + b maps a flattened 5x5 filter to (G g Gt)[a, b]."""
    return np.kron(G, G)


def transformed_filters(w):
    """V[a * 6 + b, c, k] = (G w[k, c] Gt)[a, b], from w (K, C, 5, 5), computed in float64 and rounded once. One
    GEMM (36 x 25 @ 25 x K*C): 0.2 ms for the cnn's conv2, where two broadcast matmuls took 1.2 ms."""
    n_k, n_c = w.shape[:2]
    v = _filter_transform() @ w.reshape(n_k * n_c, FILTER * FILTER).T.astype(np.float64)  # (36, K*C)
    return np.ascontiguousarray(v.reshape(TILE * TILE, n_k, n_c).transpose(0, 2, 1), dtype=w.dtype)


@njit(**SERIAL)
def _input_tiles(xp, n_start, count, p_h, p_w, tmp, u):
    """u[(n, pi, pj), a * 6 + b, c] = (Bt d Bt.T)[a, b] for the 6x6 tile d of padded image n_start + n at rows
    2*pi.., columns 2*pj.. . tmp (6, 6, C) holds Bt d; the loops over c are the vector lanes."""
    n_c = xp.shape[3]
    for n in range(count):
        img = xp[n_start + n]
        for pi in range(p_h):
            for pj in range(p_w):
                r, q = 2 * pi, 2 * pj
                for v in range(TILE):
                    for c in range(n_c):
                        d0, d1, d2 = img[r, q + v, c], img[r + 1, q + v, c], img[r + 2, q + v, c]
                        d3, d4, d5 = img[r + 3, q + v, c], img[r + 4, q + v, c], img[r + 5, q + v, c]
                        tmp[0, v, c] = F4 * d0 - F5 * d2 + d4
                        tmp[1, v, c] = -F4 * (d1 + d2) + d3 + d4
                        tmp[2, v, c] = F4 * (d1 - d2) - d3 + d4
                        tmp[3, v, c] = F2 * (d3 - d1) - d2 + d4
                        tmp[4, v, c] = F2 * (d1 - d3) - d2 + d4
                        tmp[5, v, c] = F4 * d1 - F5 * d3 + d5
                dst = u[(n * p_h + pi) * p_w + pj]
                for a in range(TILE):
                    for c in range(n_c):
                        t0, t1, t2 = tmp[a, 0, c], tmp[a, 1, c], tmp[a, 2, c]
                        t3, t4, t5 = tmp[a, 3, c], tmp[a, 4, c], tmp[a, 5, c]
                        dst[a * TILE, c] = F4 * t0 - F5 * t2 + t4
                        dst[a * TILE + 1, c] = -F4 * (t1 + t2) + t3 + t4
                        dst[a * TILE + 2, c] = F4 * (t1 - t2) - t3 + t4
                        dst[a * TILE + 3, c] = F2 * (t3 - t1) - t2 + t4
                        dst[a * TILE + 4, c] = F2 * (t1 - t3) - t2 + t4
                        dst[a * TILE + 5, c] = F4 * t1 - F5 * t3 + t5


@functools.cache
def _output_transform(dtype_name):
    """kron(At, At) (BLOCK x 36) in the data's dtype: row a * 2 + b maps the 36 GEMM results of a tile to
    (At M A)[a, b], one conv output of the tile's 2x2 block."""
    return np.kron(AT, AT).astype(dtype_name)


def _pool_relu(z, b, start, count, pooled):
    """y[start:start + count] = relu(max of the four rows of z + b): z (4, tiles * K) holds each tile's 2x2 block
    of conv outputs. fmax takes a window's largest number and skips NaNs (a window of NaNs then gives 0, after
    the ReLU); the bias is added after the max, which gives the same float as before it (rounding is monotonic)."""
    p_h, p_w, y = pooled
    best = z[0]
    for row in z[1:]:
        np.fmax(best, row, out=best)
    best = best.reshape(-1, b.shape[0])
    best += b
    np.fmax(z.dtype.type(0), best, out=best)  # zero first: the ReLU gives +0.0 for -0.0 and for a NaN
    y[start:start + count] = best.reshape(count, p_h, p_w, -1).transpose(0, 3, 1, 2)


def _part(x, pads, xp, v, b, pooled, chunk, u, m, z, lo, hi):
    """Images [lo, hi) of x (NCHW) to y (pooled NCHW), through xp (their padded NHWC copy, filled here) and this
    part's buffers u (chunk*PH*PW, 36, C), m (36, chunk*PH*PW, K) and z (4, chunk*PH*PW*K): one row of 36 x C
    values per tile, which the input transform writes in one stretch (36 separate streams were 1.5 times slower);
    each GEMM reads its tile position's column and writes one contiguous block of m, which the output transform
    reads as one (36, tiles * K) matrix."""
    p_h, p_w, _ = pooled
    _nchw_to_padded_nhwc_range(x, pads[0], pads[1], xp, lo, hi)
    tmp = np.empty((TILE, TILE, x.shape[1]), dtype=x.dtype)
    per_image = p_h * p_w
    out_transform = _output_transform(x.dtype.name)
    for start in range(lo, hi, chunk):
        count = min(chunk, hi - start)
        rows = count * per_image
        uu, mm, zz = u[:rows], m[:, :rows], z[:, :rows * m.shape[2]]
        _input_tiles(xp, start, count, p_h, p_w, tmp, uu)
        np.matmul(uu.transpose(1, 0, 2), v, out=mm)
        np.matmul(out_transform, mm.reshape(TILE * TILE, -1), out=zz)
        _pool_relu(zz, b, start, count, pooled)


def conv_relu_maxpool_inference(x, pads, xp, w, b, y, chunk, buffers):
    """y = maxpool2x2(relu(conv5x5(x) + b)) for inference. pads = (top, left) of xp, the (N, HP, WP, C) buffer for
    x's padded channels-last copy; buffers(parts, rows) gives one (u, m, z) triple per part (see `_part`)."""
    n_images, (p_h, p_w) = x.shape[0], y.shape[2:]
    v = transformed_filters(w)
    parts = parts_for(n_images * p_h * p_w * TILE * TILE * max(v.shape[1:]), n_images)
    bounds = share_bounds(n_images, parts)
    chunk = max(1, min(chunk, -(-n_images // parts)))
    run_blas_calls(_part, [(x, pads, xp, v, b, (p_h, p_w, y), chunk, *triple, bounds[part], bounds[part + 1])
                           for part, triple in enumerate(buffers(parts, chunk * p_h * p_w))])
