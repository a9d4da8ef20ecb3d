"""Direct-loop convolution kernels, used for float64 (the lessons' small grids and the gradient checks).

Each output is summed in one fixed order, so an identical input patch always gives a bit-identical output,
wherever it sits in the batch; the lessons' brute-force checks (perturb a pixel, see which outputs move) rely
on that. BLAS GEMMs, used for float32 training, do not promise it.
"""

from __future__ import annotations

from convtui.core.ops.jit import SERIAL
from convtui.core.ops.kernel_cache import njit


@njit(**SERIAL)
def conv2d_forward_kernel(x, w, b, s_h, s_w, p_top, p_left, y):
    n_batch, n_c, h, wd = x.shape
    n_k, _, f_h, f_w = w.shape
    _, _, o_h, o_w = y.shape
    for nk in range(n_batch * n_k):
        n = nk // n_k
        k = nk % n_k
        for i in range(o_h):
            for j in range(o_w):
                acc = b[k]
                for c in range(n_c):
                    for u in range(f_h):
                        r = i * s_h + u - p_top
                        if r < 0 or r >= h:
                            continue
                        for v in range(f_w):
                            q = j * s_w + v - p_left
                            if q < 0 or q >= wd:
                                continue
                            acc += w[k, c, u, v] * x[n, c, r, q]
                y[n, k, i, j] = acc


@njit(**SERIAL)
def conv2d_backward_input_kernel(w, dy, s_h, s_w, p_top, p_left, dx):
    n_batch, n_c, h, wd = dx.shape
    n_k, _, f_h, f_w = w.shape
    _, _, o_h, o_w = dy.shape
    for nc in range(n_batch * n_c):
        n = nc // n_c
        c = nc % n_c
        for k in range(n_k):
            for i in range(o_h):
                for j in range(o_w):
                    g = dy[n, k, i, j]
                    for u in range(f_h):
                        r = i * s_h + u - p_top
                        if r < 0 or r >= h:
                            continue
                        for v in range(f_w):
                            q = j * s_w + v - p_left
                            if q < 0 or q >= wd:
                                continue
                            dx[n, c, r, q] += g * w[k, c, u, v]


@njit(**SERIAL)
def conv2d_backward_weight_kernel(x, dy, s_h, s_w, p_top, p_left, dw, db):
    n_batch, n_c, h, wd = x.shape
    n_k, _, f_h, f_w = dw.shape
    _, _, o_h, o_w = dy.shape
    for kc in range(n_k * n_c):
        k = kc // n_c
        c = kc % n_c
        for u in range(f_h):
            for v in range(f_w):
                acc = 0.0
                for n in range(n_batch):
                    for i in range(o_h):
                        r = i * s_h + u - p_top
                        if r < 0 or r >= h:
                            continue
                        for j in range(o_w):
                            q = j * s_w + v - p_left
                            if q < 0 or q >= wd:
                                continue
                            acc += dy[n, k, i, j] * x[n, c, r, q]
                dw[k, c, u, v] = acc
        if c == 0:
            acc_b = 0.0
            for n in range(n_batch):
                for i in range(o_h):
                    for j in range(o_w):
                        acc_b += dy[n, k, i, j]
            db[k] = acc_b


