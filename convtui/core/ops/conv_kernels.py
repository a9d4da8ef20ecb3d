"""The Numba halves of convolution as im2col + one BLAS GEMM per layer (the GEMMs run in NumPy).

Why this shape: a GEMM runs near the machine's float32 peak, a hand-written convolution loop does not. The
lowering is `cols (C*FH*FW, N*OH*OW)`: row (c, u, v), column (n, i, j), so that for one filter tap (u, v) and
one image the columns are consecutive output pixels, and the GEMM `w.reshape(K, C*FH*FW) @ cols` yields the
conv output as `yk (K, N*OH*OW)`, filters first. The epilogues below read yk once and write the NCHW result
with the bias, the ReLU and the max-pool folded into that single pass, so no transpose or extra sweep is needed.
Backward mirrors it: the prologues turn dL/dy (NCHW, maybe pooled) into `dyk (K, N*OH*OW)`; then
`dw = dyk @ cols.T`, `dcols = w2.T @ dyk`, and `col2im` adds dcols back into dx.

Every kernel here is private; `convtui.core.ops` wraps them with validation.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

JIT = dict(nogil=True, parallel=True, cache=True)


@njit(**JIT)
def im2col_kernel(x, n_start, f_h, f_w, s_h, s_w, p_top, p_left, o_h, o_w, cols):
    """cols[(c, u, v), (n, i, j)] = x_pad[n_start + n, c, i*s_h + u, j*s_w + v] for the images of this chunk.

    Inner loops index 1-D views with a counter that starts at 0: numba can then prove the index is not
    negative, drop its wraparound check, and vectorise the copy (about 5x faster than plain 4-D indexing).
    """
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
        src = yk[k, n * per_image:(n + 1) * per_image]
        dst = y[n_start + n, k].reshape(per_image)
        for t in range(per_image):
            val = src[t] + bias
            if relu:
                val = max(val, 0.0)
            dst[t] = val

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
    # The lecture's 2x2 pool with stride 2 over an even map has only whole windows: a straight-line path.
    whole_2x2 = f_h == 2 and f_w == 2 and s_h == 2 and s_w == 2 and o_h == 2 * p_h and o_w == 2 * p_w
    for task in prange(n_batch * n_k):
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


# ----------------------------------------------------------------------------------------------------
# Backward through conv + ReLU + max-pool without GEMMs: only one cell per pooling window gets a gradient.
# dz (the gradient at the conv output) is nonzero only at the windows' winners, which is at most a quarter of
# the cells for a 2x2 pool, and none at all where the ReLU cut the whole window. So instead of the dense GEMMs
# dw = dz @ cols.T and dx = col2im(w.T @ dz), each winner adds its filter-sized patch directly:
#   dw[k, :, u, v] += g * x_pad[n, :, i*s_h + u, j*s_w + v]     dx_pad[n, :, i*s_h + u, j*s_w + v] += g * w[k, :, u, v]
# Channels are made the innermost axis (NHWC, padded) so that the patch updates are contiguous vector loops.
# ----------------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True)
def nchw_to_padded_nhwc_kernel(x, p_top, p_left, xp):
    """xp[n, p_top + r, p_left + q, c] = x[n, c, r, q], zeros in the border."""
    n_batch, n_c, h, wd = x.shape
    _, h_pad, w_pad, _ = xp.shape
    for n in prange(n_batch):
        xp[n] = 0.0
        for r in range(h):
            for q in range(wd):
                for c in range(n_c):
                    xp[n, p_top + r, p_left + q, c] = x[n, c, r, q]


@njit(nogil=True, cache=True)
def padded_nhwc_to_nchw_kernel(xp, p_top, p_left, x):
    """x[n, c, r, q] = xp[n, p_top + r, p_left + q, c]: the inverse crop and transpose."""
    n_batch, n_c, h, wd = x.shape
    for task in prange(n_batch * n_c):
        n = task // n_c
        c = task % n_c
        for r in range(h):
            for q in range(wd):
                x[n, c, r, q] = xp[n, p_top + r, p_left + q, c]


@njit(**JIT)
def maxpool_sparse_backward_kernel(xp, w_t, dpooled, argmax, patch_row, patch_start, input_grad,
                                   dw_parts, db_parts, dxp):
    """For every winner (n, k, i, j) with gradient g, in one pass:
        dw_parts[t, k, u, (v, c)] += g * xp[n, i*s_h + u, (j*s_w + v, c)]      db_parts[t, k] += g
        dxp[n, i*s_h + u, (j*s_w + v, c)] += g * w_t[k, u, (v, c)]             (when input_grad)
    xp and dxp are (N, HP, WP*C) and w_t (K, FH, FW*C): one filter row of a patch is one contiguous run.
    Winner `at` = i*OW + j has its patch at row patch_row[at] = i*s_h, offset patch_start[at] = j*s_w*C: tables,
    not two integer divisions per winner.

    Task t takes the images t, t + T, t + 2T, ...: interleaving balances tasks even though the number of winners
    per image varies, each image's dxp belongs to one task, and each task sums its dw into its own part (the
    caller adds the T parts), so there are no races.
    """
    n_batch, n_k, p_h, p_w = dpooled.shape
    n_parts, _, f_h, run = dw_parts.shape
    for part in prange(n_parts):
        dw = dw_parts[part]
        dw[:, :, :] = 0.0
        db_parts[part, :] = 0.0
        for n in range(part, n_batch, n_parts):
            if input_grad:
                dxp[n] = 0.0
            for k in range(n_k):
                acc_b = 0.0
                for pi in range(p_h):
                    for pj in range(p_w):
                        at = argmax[n, k, pi, pj]
                        if at < 0:
                            continue
                        g = dpooled[n, k, pi, pj]
                        acc_b += g
                        r0 = patch_row[at]
                        base = patch_start[at]
                        for u in range(f_h):
                            # 1-D views indexed by the loop counter alone: numba then knows the index is not
                            # negative, skips its wraparound check, and the loop vectorises.
                            dst = dw[k, u]
                            src = xp[n, r0 + u, base:base + run]
                            for t in range(run):
                                dst[t] += g * src[t]
                            if input_grad:
                                dst_x = dxp[n, r0 + u, base:base + run]
                                src_w = w_t[k, u]
                                for t in range(run):
                                    dst_x[t] += g * src_w[t]
                db_parts[part, k] += acc_b


# ----------------------------------------------------------------------------------------------------
# The channels-last forward used with the sparse backward: im2col from the padded NHWC input copies whole
# filter rows (FW*C contiguous values) at a time, which is several times faster than gathering NCHW rows of a
# few pixels; the GEMM then yields the conv output as (N*OH*OW, K), and the epilogue pools it, vectorised over K.
# ----------------------------------------------------------------------------------------------------

@njit(**JIT)
def im2col_nhwc_kernel(xp, n_start, f_h, f_w, s_h, s_w, o_h, o_w, n_c, cols_t):
    """cols_t[(n, i, j), (u, v, c)] = xp[n_start + n, i*s_h + u, (j*s_w + v, c)]; xp is (N, HP, WP*C)."""
    per_image = o_h * o_w
    count = cols_t.shape[0] // per_image
    run = f_w * n_c
    for task in prange(count * o_h):
        n = task // o_h
        i = task % o_h
        for j in range(o_w):
            dst = cols_t[n * per_image + i * o_w + j]
            start = j * s_w * n_c
            for u in range(f_h):
                src = xp[n_start + n, i * s_h + u, start:start + run]
                part = dst[u * run:(u + 1) * run]
                for t in range(run):
                    part[t] = src[t]


@njit(nogil=True, cache=True)
def nhwc_bias_relu_maxpool_epilogue_kernel(y_t, b, o_h, o_w, f_h, f_w, s_h, s_w, n_start, with_argmax, y, argmax):
    """As bias_relu_maxpool_epilogue_kernel, from the conv output y_t (N*OH*OW, K): y = maxpool(relu(y_t + b))
    in NCHW, argmax (when with_argmax) = i*OW + j of the first maximum, -1 where the window was <= 0. One task
    per pooled row."""
    n_k = y_t.shape[1]
    _, _, p_h, p_w = y.shape
    per_image = o_h * o_w
    n_batch = y_t.shape[0] // per_image
    for task in prange(n_batch * p_h):
        n = task // p_h
        pi = task % p_h
        best = np.empty(n_k, dtype=y_t.dtype)
        best_at = np.empty(n_k, dtype=np.int32)
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
