"""Convolution through channels-last (NHWC) images: the backward of the cnn's second layer, and the forward of a
conv + ReLU + max-pool with many channels that Winograd (conv_winograd, which the cnn's second layer takes) does not
compute.

Forward: im2col from the padded NHWC input copies whole filter rows (FW*C contiguous values) at a time, which is
several times faster than gathering NCHW rows of a few pixels; a GEMM (in NumPy) then yields the conv output
as (N*OH*OW, K), and the epilogue pools it, vectorised over K. Each thread runs these steps on its own images,
a few at a time (see `conv_relu_maxpool_forward_kernel`).

Every kernel is a serial body over a range of tasks and a wrapper that splits them over the threads (`jit`);
`conv.conv2d_relu_maxpool_forward` / `_backward` choose this path.
"""

from __future__ import annotations

import numpy as np

from convtui.core.ops.jit import SERIAL, parts_for, run_blas_calls, run_calls, run_range, share_bounds
from convtui.core.ops.kernel_cache import njit

# ----------------------------------------------------------------------------------------------------
# Backward through conv + ReLU + max-pool without GEMMs: only one cell per pooling window gets a gradient.
# dz (the gradient at the conv output) is nonzero only at the windows' winners, which is at most a quarter of
# the cells for a 2x2 pool, and none at all where the ReLU cut the whole window. So instead of the dense GEMMs
# dw = dz @ cols.T and dx = col2im(w.T @ dz), each winner adds its filter-sized patch directly:
#   dw[k, :, u, v] += g * x_pad[n, :, i*s_h + u, j*s_w + v]     dx_pad[n, :, i*s_h + u, j*s_w + v] += g * w[k, :, u, v]
# Channels are made the innermost axis (NHWC, padded) so that the patch updates are contiguous vector loops.
# ----------------------------------------------------------------------------------------------------

@njit(**SERIAL)
def _nchw_to_padded_nhwc_range(x, p_top, p_left, xp, start, stop):
    """xp[n, p_top + r, p_left + q, c] = x[n, c, r, q], zeros in the border."""
    n_batch, n_c, h, wd = x.shape
    _, h_pad, w_pad, _ = xp.shape
    for n in range(start, stop):
        xp[n] = 0.0
        for r in range(h):
            for q in range(wd):
                for c in range(n_c):
                    xp[n, p_top + r, p_left + q, c] = x[n, c, r, q]


@njit(**SERIAL)
def _padded_nhwc_to_nchw_range(xp, p_top, p_left, x, start, stop):
    """x[n, c, r, q] = xp[n, p_top + r, p_left + q, c]: the inverse crop and transpose."""
    n_batch, n_c, h, wd = x.shape
    for task in range(start, stop):
        n = task // n_c
        c = task % n_c
        for r in range(h):
            for q in range(wd):
                x[n, c, r, q] = xp[n, p_top + r, p_left + q, c]


@njit(**SERIAL)
def _maxpool_sparse_backward_part(xp, w_t, dpooled, argmax, patch_row, patch_start, input_grad, dw_parts, db_parts,
                                  dxp, index_scratch, grad_scratch, part):
    """For every winner (n, k, i, j) with gradient g:
        dw_parts[t, k, u, (v, c)] += g * xp[n, i*s_h + u, (j*s_w + v, c)]      db_parts[t, k] += g
        dxp[n, i*s_h + u, (j*s_w + v, c)] += g * w_t[k, u, (v, c)]             (when input_grad)
    xp and dxp are (N, HP, WP*C) and w_t (K, FH, FW*C): one filter row of a patch is one contiguous run.
    Winner `at` = i*OW + j has its patch at row patch_row[at] = i*s_h, offset patch_start[at] = j*s_w*C: tables,
    not two integer divisions per winner.

    Each patch of dx takes four filters that won at the same cell in one pass over a run (the image's winners are
    first sorted by cell), so a destination is loaded and stored once per four winners rather than once per
    winner. The cnn's conv2 after 30 steps, batch 100, one thread, best of 15: dx's share 11 -> 8.2 ms. Doing the
    same for dw (four of a filter's winners per pass) saved only 0.4 of its 7.7 ms and made this kernel's cold
    compile 1.85 s instead of 1.39, so dw keeps one winner per pass.

    Part t of T (T = len(dw_parts), one per thread) takes the images t, t + T, t + 2T, ...: interleaving balances
    the parts even though the number of winners per image varies, each image's dxp belongs to one part, and each
    part sums its dw into its own dw_parts[t] (the caller adds the T parts), so there are no races.

    index_scratch (T, 3 * K*PH*PW + OH*OW + 1) int64 and grad_scratch (T, 2 * K*PH*PW) are each part's tables,
    from the caller: an array made in here would cost every cold start the compile of NumPy's allocators for its
    types (about 0.1 s each).
    """
    n_batch, n_k, p_h, p_w = dpooled.shape
    n_parts, _, f_h, run = dw_parts.shape
    per_image = patch_row.shape[0]
    dw = dw_parts[part]
    dw[:, :, :] = 0.0
    db_parts[part, :] = 0.0
    # The image's winners in filter order (cell, filter, gradient), then grouped by cell for dx: a cell can win
    # several windows when they overlap, so the tables are sized by windows, not by cells.
    n_wins = n_k * p_h * p_w
    indices, grads = index_scratch[part], grad_scratch[part]
    win_at, win_k, cell_k = indices[:n_wins], indices[n_wins:2 * n_wins], indices[2 * n_wins:3 * n_wins]
    cell_start = indices[3 * n_wins:3 * n_wins + per_image + 1]
    win_g, cell_g = grads[:n_wins], grads[n_wins:2 * n_wins]
    # (One function, not helpers per image and filter: a call per image and filter cost about 1 ms a batch.)
    for n in range(part, n_batch, n_parts):
        x_n = xp[n]
        total = 0
        cell_start[:] = 0
        for k in range(n_k):
            acc_b = 0.0
            for pi in range(p_h):
                for pj in range(p_w):
                    at = argmax[n, k, pi, pj]
                    if at < 0:
                        continue
                    g = dpooled[n, k, pi, pj]
                    acc_b += g
                    if input_grad:  # kept for dx's grouping by cell below
                        win_at[total] = at
                        win_k[total] = k
                        win_g[total] = g
                        cell_start[at + 1] += 1
                        total += 1
                    r0, base = patch_row[at], patch_start[at]
                    for u in range(f_h):
                        # 1-D views indexed by the loop counter alone: numba then knows the index is not negative,
                        # skips its wraparound check, and the loop vectorises.
                        dst = dw[k, u]
                        src = x_n[r0 + u, base:base + run]
                        for t in range(run):
                            dst[t] += g * src[t]
            db_parts[part, k] += acc_b
        if not input_grad:
            continue
        # Group the image's winners by cell (a counting sort, filter order kept within a cell): cell `at` then
        # holds cell_k[cell_start[at]:cell_start[at + 1]] and their gradients in cell_g.
        for at in range(per_image):
            cell_start[at + 1] += cell_start[at]
        for i in range(total):
            at = win_at[i]
            slot = cell_start[at]
            cell_k[slot] = win_k[i]
            cell_g[slot] = win_g[i]
            cell_start[at] = slot + 1
        for at in range(per_image, 0, -1):  # the fill moved each start to its cell's end: shift them back
            cell_start[at] = cell_start[at - 1]
        cell_start[0] = 0
        dx_n = dxp[n]
        dx_n[:, :] = 0.0
        for at in range(per_image):
            first, stop = cell_start[at], cell_start[at + 1]
            if first == stop:
                continue
            r0, base = patch_row[at], patch_start[at]
            for u in range(f_h):
                dst = dx_n[r0 + u, base:base + run]
                i = first
                while i + 4 <= stop:
                    g0, g1, g2, g3 = cell_g[i], cell_g[i + 1], cell_g[i + 2], cell_g[i + 3]
                    w0, w1 = w_t[cell_k[i], u], w_t[cell_k[i + 1], u]
                    w2, w3 = w_t[cell_k[i + 2], u], w_t[cell_k[i + 3], u]
                    for t in range(run):
                        dst[t] = dst[t] + g0 * w0[t] + g1 * w1[t] + g2 * w2[t] + g3 * w3[t]
                    i += 4
                while i < stop:
                    g0, w0 = cell_g[i], w_t[cell_k[i], u]
                    for t in range(run):
                        dst[t] = dst[t] + g0 * w0[t]
                    i += 1


@njit(**SERIAL)
def _im2col_nhwc_range(xp, n_start, f_h, f_w, s_h, s_w, o_h, o_w, n_c, cols_t, start, stop):
    """cols_t[(n, i, j), (u, v, c)] = xp[n_start + n, i*s_h + u, (j*s_w + v, c)]; xp is (N, HP, WP*C)."""
    per_image = o_h * o_w
    run = f_w * n_c
    for task in range(start, stop):
        n = task // o_h
        i = task % o_h
        for j in range(o_w):
            dst = cols_t[n * per_image + i * o_w + j]
            offset = j * s_w * n_c
            for u in range(f_h):
                src = xp[n_start + n, i * s_h + u, offset:offset + run]
                part = dst[u * run:(u + 1) * run]
                for t in range(run):
                    part[t] = src[t]


@njit(**SERIAL)
def _nhwc_bias_relu_maxpool_epilogue_range(y_t, b, o_h, o_w, f_h, f_w, s_h, s_w, n_start, with_argmax, y,
                                           argmax, best, best_at, start, stop):
    """As bias_relu_maxpool_epilogue_kernel, from the conv output y_t (N*OH*OW, K): y = maxpool(relu(y_t + b))
    in NCHW, argmax (when with_argmax) = i*OW + j of the first maximum, -1 where the window was <= 0. One task
    per pooled row; best (K,) and best_at (K,) int32 hold a window's running maximum (the caller's arrays: see
    `_maxpool_sparse_backward_part` on allocating in a kernel)."""
    n_k = y_t.shape[1]
    _, _, p_h, p_w = y.shape
    per_image = o_h * o_w
    for task in range(start, stop):
        n = task // p_h
        pi = task % p_h
        r_end = min(pi * s_h + f_h, o_h)
        for pj in range(p_w):
            q_end = min(pj * s_w + f_w, o_w)
            first = pi * s_h * o_w + pj * s_w
            row = y_t[n * per_image + first]
            for k in range(n_k):
                best[k] = row[k] + b[k]
                best_at[k] = first
            for r in range(pi * s_h, r_end):
                for q in range(pj * s_w, q_end):
                    at = r * o_w + q
                    row = y_t[n * per_image + at]
                    for k in range(n_k):
                        val = row[k] + b[k]
                        better = val > best[k]
                        best[k] = val if better else best[k]
                        best_at[k] = at if better else best_at[k]
            for k in range(n_k):
                y[n_start + n, k, pi, pj] = best[k] if best[k] > 0.0 else 0.0
            if with_argmax:
                for k in range(n_k):
                    argmax[n_start + n, k, pi, pj] = best_at[k] if best[k] > 0.0 else -1


# The wrappers: how many tasks each body has, and how many elements it touches (which decides the split).

def nchw_to_padded_nhwc_kernel(x, p_top, p_left, xp):
    run_range(_nchw_to_padded_nhwc_range, xp.size, x.shape[0], x, p_top, p_left, xp)  # one task per image


def padded_nhwc_to_nchw_kernel(xp, p_top, p_left, x):
    run_range(_padded_nhwc_to_nchw_range, x.size, x.shape[0] * x.shape[1], xp, p_top, p_left, x)  # (image, channel)


def maxpool_sparse_backward_kernel(xp, w_t, dpooled, argmax, patch_row, patch_start, input_grad, dw_parts,
                                   db_parts, dxp):
    """One part per entry of dw_parts, each on its own thread (see `_maxpool_sparse_backward_part`)."""
    n_parts, (_, n_k, p_h, p_w) = dw_parts.shape[0], dpooled.shape
    n_wins = n_k * p_h * p_w
    index_scratch = np.empty((n_parts, 3 * n_wins + patch_row.shape[0] + 1), dtype=np.int64)
    grad_scratch = np.empty((n_parts, 2 * n_wins), dtype=dpooled.dtype)
    args = (xp, w_t, dpooled, argmax, patch_row, patch_start, input_grad, dw_parts, db_parts, dxp, index_scratch,
            grad_scratch)
    run_calls(_maxpool_sparse_backward_part, [(*args, part) for part in range(dw_parts.shape[0])])


# ----------------------------------------------------------------------------------------------------
# Forward as one pipeline per thread. Each thread takes its own images and, a few at a time, pads them, builds
# their im2col rows, multiplies those by the filters in a GEMM of its own and pools the result while the rows
# are still in its cache. Before, each step ran over the whole chunk on both threads in turn, with BLAS's own
# two threads for the GEMM: every step then read what the last one wrote from memory, and the threads met at a
# join three times per chunk. The cnn's conv2, batch 100, 2 threads: 17.7-19.7 ms that way, 13.5-14 ms this way.
# ----------------------------------------------------------------------------------------------------

def _forward_part(x, pads, xp, w_rows, b, conv_shape, pool_shape, chunk, cols_t, y_t, with_argmax, y, argmax, lo,
                  hi):
    """Images [lo, hi) from x (NCHW) to y (pooled NCHW), through xp (their padded NHWC copy, filled here) and this
    part's own buffers cols_t (chunk*OH*OW, FH*FW*C) and y_t (chunk*OH*OW, K)."""
    f_h, f_w, s_h, s_w, o_h, o_w = conv_shape
    pf_h, pf_w, ps_h, ps_w = pool_shape
    _nchw_to_padded_nhwc_range(x, pads[0], pads[1], xp, lo, hi)
    rows_of = xp.reshape(xp.shape[0], xp.shape[1], -1)  # (N, HP, WP*C)
    per_image, p_h = o_h * o_w, y.shape[2]
    best, best_at = np.empty(w_rows.shape[0], dtype=y.dtype), np.empty(w_rows.shape[0], dtype=np.int32)
    for start in range(lo, hi, chunk):
        count = min(chunk, hi - start)
        cols, out = cols_t[:count * per_image], y_t[:count * per_image]
        _im2col_nhwc_range(rows_of, start, f_h, f_w, s_h, s_w, o_h, o_w, x.shape[1], cols, 0, count * o_h)
        np.matmul(cols, w_rows.T, out=out)
        _nhwc_bias_relu_maxpool_epilogue_range(out, b, o_h, o_w, pf_h, pf_w, ps_h, ps_w, start, with_argmax, y,
                                               argmax, best, best_at, 0, count * p_h)


def conv_relu_maxpool_forward_kernel(x, pads, xp, w_rows, b, conv_shape, pool_shape, chunk, buffers, with_argmax,
                                     y, argmax):
    """y = maxpool(relu(conv(x) + b)), the images split into one contiguous share per thread.

    pads = (top, left); w_rows (K, FH*FW*C) holds the filters channels-last; conv_shape = (FH, FW, SH, SW, OH, OW)
    and pool_shape = (window h, w, stride h, w). buffers(parts) gives one (cols_t, y_t) pair per part. With more
    than one part, BLAS runs on one thread for the while: each part is a thread already.
    """
    n_images = x.shape[0]
    parts = parts_for(n_images * conv_shape[4] * conv_shape[5] * w_rows.shape[1], n_images)
    bounds = share_bounds(n_images, parts)
    calls = [(x, pads, xp, w_rows, b, conv_shape, pool_shape, chunk, *pair, with_argmax, y, argmax, bounds[part],
              bounds[part + 1]) for part, pair in enumerate(buffers(parts))]
    run_blas_calls(_forward_part, calls)
