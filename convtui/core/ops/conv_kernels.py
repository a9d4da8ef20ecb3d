"""The Numba halves of convolution as im2col + one BLAS GEMM per layer (the GEMMs run in NumPy).

Why this shape: a GEMM runs near the machine's float32 peak, a hand-written convolution loop does not. The
lowering is `cols (C*FH*FW, N*OH*OW)`: row (c, u, v), column (n, i, j), so that for one filter tap (u, v) and
one image the columns are consecutive output pixels, and the GEMM `w.reshape(K, C*FH*FW) @ cols` yields the
conv output as `yk (K, N*OH*OW)`, filters first. The epilogues below read yk once and write the NCHW result
with the bias, the ReLU and the max-pool folded into that single pass, so no transpose or extra sweep is needed.
Backward mirrors it: the prologues turn dL/dy (NCHW, maybe pooled) into `dyk (K, N*OH*OW)`; then
`dw = dyk @ cols.T`, `dcols = w2.T @ dyk`, and `col2im` adds dcols back into dx.

Every kernel here is private; `convtui.core.ops` wraps them with validation. Each is a serial body over a range
of tasks (an image's plane, filter or matrix row) and a wrapper that splits the tasks over the threads (`jit`).
"""

from __future__ import annotations

import numpy as np

from convtui.core.ops.jit import SERIAL, run_range
from convtui.core.ops.kernel_cache import njit


@njit(**SERIAL)
def _im2col_range(x, n_start, f_h, f_w, s_h, s_w, p_top, p_left, o_h, o_w, cols, start, stop):
    """cols[(c, u, v), (n, i, j)] = x_pad[n_start + n, c, i*s_h + u, j*s_w + v] for the images of this chunk.

    Inner loops index 1-D views with a counter that starts at 0: numba can then prove the index is not
    negative, drop its wraparound check, and vectorise the copy (about 5x faster than plain 4-D indexing).
    """
    _, n_c, h, wd = x.shape
    n_rows, n_columns = cols.shape
    per_image = o_h * o_w
    n_batch = n_columns // per_image
    taps = f_h * f_w
    for task in range(start, stop):
        row = task // n_batch
        n = task % n_batch
        c = row // taps
        u = (row // f_w) % f_h
        v = row % f_w
        q0 = v - p_left
        # The output columns j whose input column q = j*s_w + q0 falls inside the image.
        j_lo = 0
        while j_lo < o_w and j_lo * s_w + q0 < 0:
            j_lo += 1
        j_hi = o_w
        while j_hi > j_lo and (j_hi - 1) * s_w + q0 >= wd:
            j_hi -= 1
        inside = j_hi - j_lo
        for i in range(o_h):
            r = i * s_h + u - p_top
            dst = cols[row, n * per_image + i * o_w:n * per_image + (i + 1) * o_w]
            if r < 0 or r >= h:
                dst[:] = 0.0
                continue
            dst[:j_lo] = 0.0
            dst[j_hi:] = 0.0
            mid = dst[j_lo:j_hi]
            if s_w == 1:
                src = x[n_start + n, c, r, j_lo + q0:j_hi + q0]
                for t in range(inside):
                    mid[t] = src[t]
            else:
                src = x[n_start + n, c, r, j_lo * s_w + q0:]
                for t in range(inside):
                    mid[t] = src[t * s_w]

@njit(**SERIAL)
def _col2im_range(dcols, n_start, f_h, f_w, s_h, s_w, p_top, p_left, o_h, o_w, dx, start, stop):
    """dx[n_start + n, c] = sum over the taps (u, v) of dcols scattered back to the pixels they were read from."""
    _, n_c, h, wd = dx.shape
    per_image = o_h * o_w
    for task in range(start, stop):
        n = task // n_c
        c = task % n_c
        plane = dx[n_start + n, c]
        plane[:, :] = 0.0
        for u in range(f_h):
            for v in range(f_w):
                row = (c * f_h + u) * f_w + v
                q0 = v - p_left
                j_lo = 0
                while j_lo < o_w and j_lo * s_w + q0 < 0:
                    j_lo += 1
                j_hi = o_w
                while j_hi > j_lo and (j_hi - 1) * s_w + q0 >= wd:
                    j_hi -= 1
                inside = j_hi - j_lo
                for i in range(o_h):
                    r = i * s_h + u - p_top
                    if r < 0 or r >= h:
                        continue
                    src = dcols[row, n * per_image + i * o_w + j_lo:n * per_image + i * o_w + j_hi]
                    if s_w == 1:
                        dst = plane[r, j_lo + q0:j_hi + q0]
                        for t in range(inside):
                            dst[t] += src[t]
                    else:
                        dst = plane[r, j_lo * s_w + q0:]
                        for t in range(inside):
                            dst[t * s_w] += src[t]

@njit(**SERIAL)
def _bias_epilogue_range(yk, b, relu, n_start, y, start, stop):
    """y[n_start + n, k] = yk[k, n] + b[k], then max(., 0) when relu: filters-first to NCHW in one pass."""
    n_k = yk.shape[0]
    _, _, o_h, o_w = y.shape
    per_image = o_h * o_w
    for task in range(start, stop):
        n = task // n_k
        k = task % n_k
        bias = b[k]
        src = yk[k, n * per_image:(n + 1) * per_image]
        dst = y[n_start + n, k].reshape(per_image)
        for t in range(per_image):
            val = src[t] + bias
            if relu:
                val = max(val, 0.0)
            dst[t] = val

@njit(**SERIAL)
def _bias_relu_maxpool_epilogue_range(yk, b, o_h, o_w, f_h, f_w, s_h, s_w, n_start, y, argmax, start, stop):
    """y = maxpool(relu(yk + b)) in NCHW; argmax = the winner's flat index i*OW + j in the conv output, or -1
    when the whole window was <= 0 (ReLU passed no gradient there, so backward skips it).

    For a window with a positive maximum, the first maximum of relu(z) is the first maximum of z, which is what
    an unfused ReLU followed by max-pool would route the gradient to.
    """
    n_k = yk.shape[0]
    _, _, p_h, p_w = y.shape
    per_image = o_h * o_w
    # The lecture's 2x2 pool with stride 2 over an even map has only whole windows: a straight-line path.
    whole_2x2 = f_h == 2 and f_w == 2 and s_h == 2 and s_w == 2 and o_h == 2 * p_h and o_w == 2 * p_w
    for task in range(start, stop):
        n = task // n_k
        k = task % n_k
        bias = b[k]
        src = n * per_image
        if whole_2x2:
            plane = yk[k, src:src + per_image]
            out_y = y[n_start + n, k]
            out_at = argmax[n_start + n, k]
            for pi in range(p_h):
                top = plane[2 * pi * o_w:(2 * pi + 1) * o_w]
                bottom = plane[(2 * pi + 1) * o_w:(2 * pi + 2) * o_w]
                for pj in range(p_w):
                    # First maximum in row-major order (a, b, c, d), as the generic path and naive.py pick it.
                    a = top[2 * pj] + bias
                    b_ = top[2 * pj + 1] + bias
                    c = bottom[2 * pj] + bias
                    d = bottom[2 * pj + 1] + bias
                    upper = a if a >= b_ else b_
                    lower = c if c >= d else d
                    best = upper if upper >= lower else lower
                    out_y[pi, pj] = best if best > 0.0 else 0.0
                    # Integer arithmetic on the comparisons rather than selects, which LLVM turned into
                    # branches that mispredict on real data (this epilogue took 2.5x longer).
                    right_top = np.int32(a < b_)
                    right_bottom = np.int32(c < d)
                    bottom_row = np.int32(upper < lower)
                    col = 2 * pj + (right_top ^ ((-bottom_row) & (right_top ^ right_bottom)))
                    alive = np.int32(best > 0.0)
                    out_at[pi, pj] = alive * ((2 * pi + bottom_row) * o_w + col + 1) - 1  # -1: the window died
            continue
        for pi in range(p_h):
            r_end = min(pi * s_h + f_h, o_h)
            for pj in range(p_w):
                q_end = min(pj * s_w + f_w, o_w)
                best_at = pi * s_h * o_w + pj * s_w
                best = yk[k, src + best_at] + bias
                for r in range(pi * s_h, r_end):
                    for q in range(pj * s_w, q_end):
                        # The bias is added before comparing, so rounding ties break as in the unfused path.
                        val = yk[k, src + r * o_w + q] + bias
                        # Selects rather than a branch: the comparisons are random, so a branch mispredicts.
                        better = val > best
                        best_at = r * o_w + q if better else best_at
                        best = val if better else best
                if best > 0.0:
                    y[n_start + n, k, pi, pj] = best
                    argmax[n_start + n, k, pi, pj] = best_at
                else:
                    y[n_start + n, k, pi, pj] = 0.0
                    argmax[n_start + n, k, pi, pj] = -1


@njit(**SERIAL)
def _dy_prologue_range(dy, y, relu, n_start, dyk, db_parts, start, stop):
    """dyk[k, (n, i, j)] = dy[n_start + n, k, i, j], masked by y > 0 when relu (y is the ReLU's output).
    db_parts[k, n] = sum_{i, j} dyk[k, (n, i, j)], so the bias gradient costs no extra pass."""
    _, _, o_h, o_w = dy.shape
    per_image = o_h * o_w
    n_batch = dyk.shape[1] // per_image
    for task in range(start, stop):
        k = task // n_batch
        n = task % n_batch
        src = dy[n_start + n, k].reshape(per_image)
        mask = y[n_start + n, k].reshape(per_image)
        dst = dyk[k, n * per_image:(n + 1) * per_image]
        acc = 0.0
        for t in range(per_image):
            g = src[t]
            if relu and mask[t] <= 0.0:
                g = 0.0
            dst[t] = g
            acc += g
        db_parts[k, n] = acc

@njit(**SERIAL)
def _maxpool_dy_prologue_range(dpooled, argmax, n_start, per_image, dyk, db_parts, start, stop):
    """dyk[k, (n, at)] += dpooled[n, k, pi, pj] at each window's winner `at` (none where argmax is -1);
    db_parts[k, n] = the sum of what was routed, which is this image's share of the bias gradient."""
    _, _, p_h, p_w = dpooled.shape
    n_batch = dyk.shape[1] // per_image
    for task in range(start, stop):
        k = task // n_batch
        n = task % n_batch
        dst = n * per_image
        dyk[k, dst:dst + per_image] = 0.0
        acc = 0.0
        for pi in range(p_h):
            for pj in range(p_w):
                at = argmax[n_start + n, k, pi, pj]
                if at >= 0:
                    g = dpooled[n_start + n, k, pi, pj]
                    dyk[k, dst + at] += g
                    acc += g
        db_parts[k, n] = acc


def empty_like_shape(workspace, key, shape, dtype):
    """A reusable buffer of `shape` from `workspace` (a dict owned by the caller), as a view of a flat buffer
    that only grows; `workspace[key]` is the view last handed out.

    Big temporaries (the conv2 im2col matrix is 63 MB at batch 100) come straight from mmap when allocated
    fresh, so every step would pay their page faults again; reusing them removes that cost. Growing instead of
    matching the shape exactly means a smaller last batch, or an inference slice, reuses the same memory.
    """
    if workspace is None:
        return np.empty(shape, dtype=dtype)
    size = 1
    for extent in shape:
        size *= extent
    base = workspace.get(key + "/base")
    if base is None or base.dtype != dtype or base.size < size:
        base = np.empty(size, dtype=dtype)
        workspace[key + "/base"] = base
    view = base[:size].reshape(shape)
    workspace[key] = view
    return view


# The wrappers: how many tasks each body has, and how many elements it touches (which decides the split).

def im2col_kernel(x, n_start, f_h, f_w, s_h, s_w, p_top, p_left, o_h, o_w, cols):
    tasks = cols.shape[0] * (cols.shape[1] // (o_h * o_w))  # (row, image)
    run_range(_im2col_range, cols.size, tasks, x, n_start, f_h, f_w, s_h, s_w, p_top, p_left, o_h, o_w, cols)


def col2im_kernel(dcols, n_start, f_h, f_w, s_h, s_w, p_top, p_left, o_h, o_w, dx):
    tasks = dcols.shape[1] // (o_h * o_w) * dx.shape[1]  # (image, channel)
    run_range(_col2im_range, dcols.size, tasks, dcols, n_start, f_h, f_w, s_h, s_w, p_top, p_left, o_h, o_w, dx)


def bias_epilogue_kernel(yk, b, relu, n_start, y):
    tasks = yk.shape[1] // (y.shape[2] * y.shape[3]) * yk.shape[0]  # (image, filter)
    run_range(_bias_epilogue_range, yk.size, tasks, yk, b, relu, n_start, y)


def bias_relu_maxpool_epilogue_kernel(yk, b, o_h, o_w, f_h, f_w, s_h, s_w, n_start, y, argmax):
    tasks = yk.shape[1] // (o_h * o_w) * yk.shape[0]  # (image, filter)
    run_range(_bias_relu_maxpool_epilogue_range, yk.size, tasks, yk, b, o_h, o_w, f_h, f_w, s_h, s_w, n_start, y,
              argmax)


def dy_prologue_kernel(dy, y, relu, n_start, dyk, db_parts):
    tasks = dyk.shape[0] * (dyk.shape[1] // (dy.shape[2] * dy.shape[3]))  # (filter, image)
    run_range(_dy_prologue_range, dyk.size, tasks, dy, y, relu, n_start, dyk, db_parts)


def maxpool_dy_prologue_kernel(dpooled, argmax, n_start, per_image, dyk, db_parts):
    tasks = dyk.shape[0] * (dyk.shape[1] // per_image)  # (filter, image)
    run_range(_maxpool_dy_prologue_range, dyk.size, tasks, dpooled, argmax, n_start, per_image, dyk, db_parts)
