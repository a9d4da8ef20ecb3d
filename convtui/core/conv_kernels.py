"""The Numba halves of convolution as im2col + one BLAS GEMM per layer (the GEMMs run in NumPy).

Why this shape: a GEMM runs near the machine's float32 peak, a hand-written convolution loop does not. The
lowering is `cols (C*FH*FW, N*OH*OW)`: row (c, u, v), column (n, i, j), so that for one filter tap (u, v) and
one image the columns are consecutive output pixels, and the GEMM `w.reshape(K, C*FH*FW) @ cols` yields the
conv output as `yk (K, N*OH*OW)`, filters first. The epilogues below read yk once and write the NCHW result
with the bias, the ReLU and the max-pool folded into that single pass, so no transpose or extra sweep is needed.
Backward mirrors it: the prologues turn dL/dy (NCHW, maybe pooled) into `dyk (K, N*OH*OW)`; then
`dw = dyk @ cols.T`, `dcols = w2.T @ dyk`, and `col2im` adds dcols back into dx.

Every kernel here is private; `convtui.core.kernels` wraps them with validation.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

JIT = dict(nogil=True, parallel=True, cache=True)


@njit(**JIT)
def im2col_kernel(x, n_start, f_h, f_w, s_h, s_w, p_top, p_left, o_h, o_w, cols):
    """cols[(c, u, v), (n, i, j)] = x_pad[n_start + n, c, i*s_h + u, j*s_w + v] for the images of this chunk."""
    _, n_c, h, wd = x.shape
    n_rows, n_columns = cols.shape
    per_image = o_h * o_w
    n_batch = n_columns // per_image
    taps = f_h * f_w
    for task in prange(n_rows * n_batch):
        row = task // n_batch
        n = task % n_batch
        c = row // taps
        u = (row // f_w) % f_h
        v = row % f_w
        # The output columns j whose input column q = j*s_w + v - p_left falls inside the image.
        j_lo = 0
        while j_lo < o_w and j_lo * s_w + v - p_left < 0:
            j_lo += 1
        j_hi = o_w
        while j_hi > j_lo and (j_hi - 1) * s_w + v - p_left >= wd:
            j_hi -= 1
        for i in range(o_h):
            r = i * s_h + u - p_top
            out = n * per_image + i * o_w
            if r < 0 or r >= h:
                for j in range(o_w):
                    cols[row, out + j] = 0.0
                continue
            for j in range(j_lo):
                cols[row, out + j] = 0.0
            q0 = v - p_left
            if s_w == 1:  # the common case: a contiguous copy the compiler can vectorise
                for j in range(j_lo, j_hi):
                    cols[row, out + j] = x[n_start + n, c, r, j + q0]
            else:
                for j in range(j_lo, j_hi):
                    cols[row, out + j] = x[n_start + n, c, r, j * s_w + q0]
            for j in range(j_hi, o_w):
                cols[row, out + j] = 0.0


@njit(**JIT)
def col2im_kernel(dcols, n_start, f_h, f_w, s_h, s_w, p_top, p_left, o_h, o_w, dx):
    """dx[n_start + n, c] = sum over the taps (u, v) of dcols scattered back to the pixels they were read from."""
    _, n_c, h, wd = dx.shape
    per_image = o_h * o_w
    n_batch = dcols.shape[1] // per_image
    for task in prange(n_batch * n_c):
        n = task // n_c
        c = task % n_c
        plane = dx[n_start + n, c]
        plane[:, :] = 0.0
        for u in range(f_h):
            for v in range(f_w):
                row = (c * f_h + u) * f_w + v
                j_lo = 0
                while j_lo < o_w and j_lo * s_w + v - p_left < 0:
                    j_lo += 1
                j_hi = o_w
                while j_hi > j_lo and (j_hi - 1) * s_w + v - p_left >= wd:
                    j_hi -= 1
                q0 = v - p_left
                for i in range(o_h):
                    r = i * s_h + u - p_top
                    if r < 0 or r >= h:
                        continue
                    out = n * per_image + i * o_w
                    if s_w == 1:
                        for j in range(j_lo, j_hi):
                            plane[r, j + q0] += dcols[row, out + j]
                    else:
                        for j in range(j_lo, j_hi):
                            plane[r, j * s_w + q0] += dcols[row, out + j]


@njit(**JIT)
def bias_epilogue_kernel(yk, b, relu, n_start, y):
    """y[n_start + n, k] = yk[k, n] + b[k], then max(., 0) when relu: filters-first to NCHW in one pass."""
    n_k = yk.shape[0]
    _, _, o_h, o_w = y.shape
    per_image = o_h * o_w
    n_batch = yk.shape[1] // per_image
    for task in prange(n_batch * n_k):
        n = task // n_k
        k = task % n_k
        bias = b[k]
        src = n * per_image
        for i in range(o_h):
            for j in range(o_w):
                val = yk[k, src + i * o_w + j] + bias
                if relu and val < 0.0:
                    val = 0.0
                y[n_start + n, k, i, j] = val


@njit(**JIT)
def bias_relu_maxpool_epilogue_kernel(yk, b, o_h, o_w, f_h, f_w, s_h, s_w, n_start, y, argmax):
    """y = maxpool(relu(yk + b)) in NCHW; argmax = the winner's flat index i*OW + j in the conv output, or -1
    when the whole window was <= 0 (ReLU passed no gradient there, so backward skips it).

    For a window with a positive maximum, the first maximum of relu(z) is the first maximum of z, which is what
    an unfused ReLU followed by max-pool would route the gradient to.
    """
    n_k = yk.shape[0]
    _, _, p_h, p_w = y.shape
    per_image = o_h * o_w
    n_batch = yk.shape[1] // per_image
    for task in prange(n_batch * n_k):
        n = task // n_k
        k = task % n_k
        bias = b[k]
        src = n * per_image
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


@njit(**JIT)
def dy_prologue_kernel(dy, y, relu, n_start, dyk, db_parts):
    """dyk[k, (n, i, j)] = dy[n_start + n, k, i, j], masked by y > 0 when relu (y is the ReLU's output).
    db_parts[k, n] = sum_{i, j} dyk[k, (n, i, j)], so the bias gradient costs no extra pass."""
    n_k = dyk.shape[0]
    _, _, o_h, o_w = dy.shape
    per_image = o_h * o_w
    n_batch = dyk.shape[1] // per_image
    for task in prange(n_k * n_batch):
        k = task // n_batch
        n = task % n_batch
        dst = n * per_image
        acc = 0.0
        for i in range(o_h):
            for j in range(o_w):
                g = dy[n_start + n, k, i, j]
                if relu and y[n_start + n, k, i, j] <= 0.0:
                    g = 0.0
                dyk[k, dst + i * o_w + j] = g
                acc += g
        db_parts[k, n] = acc


@njit(**JIT)
def maxpool_dy_prologue_kernel(dpooled, argmax, n_start, per_image, dyk, db_parts):
    """dyk[k, (n, at)] += dpooled[n, k, pi, pj] at each window's winner `at` (none where argmax is -1);
    db_parts[k, n] = the sum of what was routed, which is this image's share of the bias gradient."""
    n_k = dyk.shape[0]
    _, _, p_h, p_w = dpooled.shape
    n_batch = dyk.shape[1] // per_image
    for task in prange(n_k * n_batch):
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
    """A reusable buffer from `workspace` (a dict owned by the caller), reallocated only when its shape changes.

    Big temporaries (the conv2 im2col matrix is 63 MB at batch 100) come straight from mmap when allocated
    fresh, so every step would pay their page faults again; reusing them removes that cost.
    """
    if workspace is None:
        return np.empty(shape, dtype=dtype)
    buf = workspace.get(key)
    if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
        buf = np.empty(shape, dtype=dtype)
        workspace[key] = buf
    return buf
