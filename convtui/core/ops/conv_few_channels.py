"""Direct conv + ReLU + max-pool for stride-1 layers with few input channels (the lecture's first layer: 1 x 5x5).

Why not im2col + GEMM there: with C*FH*FW = 25 the GEMM's inner dimension is 25, so BLAS spends its time moving
the 25 x N*OH*OW im2col matrix and the 32 x N*OH*OW result through memory (18 MB per batch of 100) rather than
computing. Here the work is long contiguous loops on one image plane at a time, which stay in L1.

The trick is to compute each output row over the padded width WP instead of OW: then for a filter tap (u, v)
the output plane, read as one flat array, is a shifted flat view of the padded input plane,
    z_flat[i*WP + j] += w[k, c, u, v] * x_pad_flat[c, (i + u)*WP + (j + v)]    for all i, j at once,
one axpy of (OH - 1)*WP + OW values per tap. The WP - OW extra columns per row are never read back (about 14%
more multiply-adds than the nominal count for the lecture's 28x28 'same' layer, and no work is skipped).
Backward uses the same views: dz (built from the pooling winners, zero elsewhere, including the extra columns)
    dw[k, c, u, v] = sum_flat dz_flat * x_pad_flat shifted by (u, v)         (a dot product per tap)
    dx_pad_flat[c] shifted by (u, v) += w[k, c, u, v] * dz_flat               (an axpy per tap)

Every kernel here is private; `conv.conv2d_relu_maxpool_forward` / `_backward` choose this path. Each is a serial
body over a range of tasks and a wrapper that splits the tasks over the threads (`jit`).
"""

from __future__ import annotations

import numpy as np

from convtui.core.ops.jit import SERIAL, run_range
from convtui.core.ops.kernel_cache import njit

# The dot products sum in eight-or-sixteen-wide partial sums (reassociation): otherwise LLVM keeps a float sum
# scalar, and dw would take several times longer than the forward. `contract` lets mul + add become one FMA.
JIT_REASSOCIATE = dict(SERIAL, fastmath={"reassoc", "contract", "nsz"})


@njit(**JIT_REASSOCIATE)
def _conv_relu_maxpool_range(xp, w, b, o_h, o_w, pf_h, pf_w, ps_h, ps_w, with_argmax, y, argmax, z, start, stop):
    """y = maxpool(relu(conv(x_pad, w) + b)) in NCHW for stride 1; xp (N, C, HP, WP) padded, w (K, C, FH, FW).

    argmax (when with_argmax) = i*OW + j of each window's first maximum, -1 where the window was <= 0, as
    `conv_kernels.bias_relu_maxpool_epilogue_kernel` picks it. One task per image and filter; z (length,) holds
    the task's conv plane.
    """
    n_batch, n_c, h_pad, w_pad = xp.shape
    n_k, _, f_h, f_w = w.shape
    _, _, p_h, p_w = y.shape
    flat = xp.reshape(n_batch, n_c, h_pad * w_pad)
    length = (o_h - 1) * w_pad + o_w  # the last row stops at OW: every shifted view stays inside the plane
    for task in range(start, stop):
        n = task // n_k
        k = task % n_k
        z[:] = 0.0  # conv output of (n, k), rows WP apart
        for c in range(n_c):
            for u in range(f_h):
                v = 0
                while v + 5 <= f_w:  # five taps per sweep: one load and store of z per five multiply-adds
                    w0, w1, w2, w3, w4 = w[k, c, u, v], w[k, c, u, v + 1], w[k, c, u, v + 2], w[k, c, u, v + 3], \
                        w[k, c, u, v + 4]
                    src = flat[n, c, u * w_pad + v:u * w_pad + v + length + 4]
                    for t in range(length):
                        z[t] += w0 * src[t] + w1 * src[t + 1] + w2 * src[t + 2] + w3 * src[t + 3] + w4 * src[t + 4]
                    v += 5
                for tap in range(v, f_w):  # the taps left over after the five-wide sweeps
                    weight = w[k, c, u, tap]
                    src = flat[n, c, u * w_pad + tap:u * w_pad + tap + length]
                    for t in range(length):
                        z[t] += weight * src[t]
        _pool_plane(z, w_pad, b[k], o_h, o_w, pf_h, pf_w, ps_h, ps_w, with_argmax, y[n, k],
                    argmax[n, k] if with_argmax else argmax[0, 0])


@njit(**SERIAL)
def _pool_plane(z, w_pad, bias, o_h, o_w, pf_h, pf_w, ps_h, ps_w, with_argmax, out_y, out_at):
    """out_y = maxpool(relu(z + bias)) of one conv plane z (flat, rows w_pad apart); out_at = the winners."""
    p_h, p_w = out_y.shape
    if pf_h == 2 and pf_w == 2 and ps_h == 2 and ps_w == 2 and o_h == 2 * p_h and o_w == 2 * p_w:
        # The lecture's 2x2 pool over an even map: whole windows only, a straight-line body that vectorises.
        for pi in range(p_h):
            top = z[2 * pi * w_pad:2 * pi * w_pad + o_w]
            bottom = z[(2 * pi + 1) * w_pad:(2 * pi + 1) * w_pad + o_w]
            y_row = out_y[pi]
            at_row = out_at[pi] if with_argmax else out_at[0]
            for pj in range(p_w):
                # First maximum in row-major order (a, b, c, d), as the generic loop below picks it.
                a = top[2 * pj] + bias
                b_ = top[2 * pj + 1] + bias
                c_ = bottom[2 * pj] + bias
                d = bottom[2 * pj + 1] + bias
                upper = a if a >= b_ else b_
                lower = c_ if c_ >= d else d
                best = upper if upper >= lower else lower
                y_row[pj] = best if best > 0.0 else 0.0
                if with_argmax:
                    # Arithmetic on the comparisons, not branches: they are random, so branches mispredict
                    # (measured: 9x slower on MNIST-like data). Ties go to the first cell in row-major order.
                    right_top = np.int32(a < b_)
                    right_bottom = np.int32(c_ < d)
                    bottom_row = np.int32(upper < lower)
                    col = 2 * pj + (right_top ^ ((-bottom_row) & (right_top ^ right_bottom)))
                    alive = np.int32(best > 0.0)
                    at_row[pj] = alive * ((2 * pi + bottom_row) * o_w + col + 1) - 1  # -1 where the window died
        return
    for pi in range(p_h):
        r_end = min(pi * ps_h + pf_h, o_h)
        for pj in range(p_w):
            q_end = min(pj * ps_w + pf_w, o_w)
            best_at = pi * ps_h * o_w + pj * ps_w
            best = z[pi * ps_h * w_pad + pj * ps_w] + bias
            for r in range(pi * ps_h, r_end):
                for q in range(pj * ps_w, q_end):
                    # The bias is added before comparing, so rounding ties break as in the unfused path.
                    val = z[r * w_pad + q] + bias
                    better = val > best
                    best_at = r * o_w + q if better else best_at
                    best = val if better else best
            alive = best > 0.0
            out_y[pi, pj] = best if alive else 0.0
            if with_argmax:
                out_at[pi, pj] = best_at if alive else -1


@njit(**SERIAL)
def _winners_plane(dpooled, argmax, n, k, padded_at, dz):
    """dz (flat, rows WP apart) = the pooled gradient routed to each window's winner, zero elsewhere; returns
    the sum routed, which is this image's share of db[k]. padded_at[i*OW + j] = i*WP + j: a table, because an
    integer division per winner (at // OW) would cost more than the rest of this loop."""
    dz[:] = 0.0
    _, _, p_h, p_w = dpooled.shape
    total = 0.0
    for pi in range(p_h):
        for pj in range(p_w):
            at = argmax[n, k, pi, pj]
            if at >= 0:
                g = dpooled[n, k, pi, pj]
                dz[padded_at[at]] += g  # += : overlapping windows may pick the same cell
                total += g
    return total


@njit(**JIT_REASSOCIATE)
def _conv_maxpool_weight_grad_range(xp, dpooled, argmax, o_h, o_w, padded_at, dw, db, dz, grad, start, stop):
    """dw (K, C, FH, FW) and db (K,) of stride-1 conv + ReLU + max-pool; one task per filter, over all images.
    dz (length,) and grad (C, FH, FW) float64 are the task's gradient plane and sums."""
    n_batch, n_c, h_pad, w_pad = xp.shape
    n_k, _, f_h, f_w = dw.shape
    flat = xp.reshape(n_batch, n_c, h_pad * w_pad)
    length = (o_h - 1) * w_pad + o_w
    for k in range(start, stop):
        grad[:, :, :] = 0.0
        bias_grad = 0.0
        for n in range(n_batch):
            bias_grad += _winners_plane(dpooled, argmax, n, k, padded_at, dz)
            for c in range(n_c):
                for u in range(f_h):
                    v = 0
                    while v + 5 <= f_w:  # five taps per sweep: five independent sums share each load of dz
                        src = flat[n, c, u * w_pad + v:u * w_pad + v + length + 4]
                        acc0 = acc1 = acc2 = acc3 = acc4 = np.float32(0.0)
                        for t in range(length):
                            g = dz[t]
                            acc0 += g * src[t]
                            acc1 += g * src[t + 1]
                            acc2 += g * src[t + 2]
                            acc3 += g * src[t + 3]
                            acc4 += g * src[t + 4]
                        grad[c, u, v] += acc0
                        grad[c, u, v + 1] += acc1
                        grad[c, u, v + 2] += acc2
                        grad[c, u, v + 3] += acc3
                        grad[c, u, v + 4] += acc4
                        v += 5
                    for tap in range(v, f_w):
                        src = flat[n, c, u * w_pad + tap:u * w_pad + tap + length]
                        acc = np.float32(0.0)
                        for t in range(length):
                            acc += dz[t] * src[t]
                        grad[c, u, tap] += acc
        for c in range(n_c):
            for u in range(f_h):
                for v in range(f_w):
                    dw[k, c, u, v] = grad[c, u, v]
        db[k] = bias_grad


@njit(**JIT_REASSOCIATE)
def _conv_maxpool_input_grad_range(w, dpooled, argmax, o_h, o_w, padded_at, dxp, dz, start, stop):
    """dxp (N, C, HP, WP), the padded dx of stride-1 conv + ReLU + max-pool; one task per image. dz (length,) is
    the task's gradient plane."""
    n_batch, n_c, h_pad, w_pad = dxp.shape
    n_k, _, f_h, f_w = w.shape
    flat = dxp.reshape(n_batch, n_c, h_pad * w_pad)
    length = (o_h - 1) * w_pad + o_w
    for n in range(start, stop):
        flat[n] = 0.0
        for k in range(n_k):
            _winners_plane(dpooled, argmax, n, k, padded_at, dz)
            for c in range(n_c):
                for u in range(f_h):
                    for v in range(f_w):
                        weight = w[k, c, u, v]
                        dst = flat[n, c, u * w_pad + v:u * w_pad + v + length]
                        for t in range(length):
                            dst[t] += weight * dz[t]


# The wrappers: how many tasks each body has, how many elements it touches (which decides the split), and each
# part's working arrays: made here rather than in the kernels, whose cold compile would otherwise include NumPy's
# allocators (about 0.1 s for each type of array made).

def _plane_length(o_h, o_w, w_pad):
    return (o_h - 1) * w_pad + o_w  # a conv plane over the padded width, its last row stopping at OW


def _planes(length, dtype):
    return lambda parts: [(np.empty(length, dtype=dtype),) for _ in range(parts)]


def conv_relu_maxpool_kernel(xp, w, b, o_h, o_w, pf_h, pf_w, ps_h, ps_w, with_argmax, y, argmax):
    tasks = xp.shape[0] * w.shape[0]  # (image, filter)
    run_range(_conv_relu_maxpool_range, tasks * o_h * o_w, tasks, xp, w, b, o_h, o_w, pf_h, pf_w, ps_h, ps_w,
              with_argmax, y, argmax, scratch=_planes(_plane_length(o_h, o_w, xp.shape[3]), y.dtype))


def conv_maxpool_weight_grad_kernel(xp, dpooled, argmax, o_h, o_w, padded_at, dw, db):
    length = _plane_length(o_h, o_w, xp.shape[3])

    def scratch(parts):
        return [(np.empty(length, dtype=dw.dtype), np.empty(dw.shape[1:], dtype=np.float64)) for _ in range(parts)]

    run_range(_conv_maxpool_weight_grad_range, dpooled.shape[0] * dw.shape[0] * o_h * o_w, dw.shape[0], xp, dpooled,
              argmax, o_h, o_w, padded_at, dw, db, scratch=scratch)  # one task per filter


def conv_maxpool_input_grad_kernel(w, dpooled, argmax, o_h, o_w, padded_at, dxp):
    run_range(_conv_maxpool_input_grad_range, dxp.size * w.shape[0], dxp.shape[0], w, dpooled, argmax, o_h, o_w,
              padded_at, dxp, scratch=_planes(_plane_length(o_h, o_w, dxp.shape[3]), dxp.dtype))  # one per image
