"""Convolution, plain and fused with ReLU and max-pool: im2col in Numba, one BLAS GEMM per chunk in NumPy.

y[n, k, i, j] = b[k] + sum_{c, u, v} w[k, c, u, v] * x_pad[n, c, i*s_h + u, j*s_w + v]

Layout and lowering are described in `conv_kernels`. Numba's own `np.dot` would need SciPy, so the GEMMs are
called from here through NumPy's BLAS, between the parallel Numba passes. Images are processed in chunks
whose im2col matrix stays under `COLS_BUDGET_BYTES`, so a 10,000-image inference batch never builds a
600 MB matrix. A `workspace` dict, kept by the caller (a layer), holds the big buffers across calls and the
forward pass's im2col matrix for its backward pass.
"""

from __future__ import annotations

import numpy as np

from convtui.core.ops import conv_direct, conv_few_channels, conv_kernels as ck, conv_nhwc, conv_winograd
from convtui.core.ops.jit import parts_for
from convtui.core.ops.pooling import maxpool2d_forward
from convtui.core.ops.shapes import conv_output_size, pair, pool_output_size, resolve_padding

# The largest im2col matrix (or GEMM result) per chunk. Batch 100 of the lecture's first layer needs 10 MB: one
# chunk, kept for backward; a 1,000-image inference batch is cut into chunks instead of taking 180 MB.
COLS_BUDGET_BYTES = 32 * 1024 * 1024
# The channels-last forward's im2col matrix is not kept for backward, so each thread builds it a few images at a
# time: at most this many bytes, which the GEMM and the pooling then read from cache. The cnn's conv2 (batch 100,
# 2 threads) took 13.5-14.3 ms with chunks of 3 to 5 images (1.9 to 3.1 MB), 14.2 with 1 and 18-20 with 25.
CHANNELS_LAST_BUDGET_BYTES = 3 * 1024 * 1024
# Images per step of a thread in the Winograd path (conv_winograd). The cnn's conv2 inference, batch 100, two threads,
# medians of 10 alternating rounds, in two sittings: 10.0 / 11.0 ms with 6, 10.4 / 10.9 with 4, 10.3 / 10.9 with 8,
# 11.1 / 10.9 with 12, 11.1 / 11.7 with 2 and 13.0 / 14.2 with 25 (whose buffers outgrow the L2 cache).
WINOGRAD_CHUNK = 6
# conv + ReLU + max-pool backward scatters each pooling winner's patch directly (see conv_kernels) when the
# input has at least this many channels, so that the inner loop over channels is long enough to vectorise.
SPARSE_MIN_CHANNELS = 8
# Stride-1 conv + ReLU + max-pool with at most this many input channels and patch values (C*FH*FW) runs as
# direct loops on flat image planes (conv_few_channels): the GEMM of the lecture's first layer is only 25 deep,
# so im2col + GEMM mostly moves memory. Measured on that layer (1 x 5x5, batch 100, one thread, CPU time):
# forward 5.6 -> 4.7 ms, backward without dx 6.0 -> 4.2 ms. Other shapes were not measured, so they keep the GEMM.
FEW_CHANNELS_MAX_CHANNELS = 1
FEW_CHANNELS_MAX_ROWS = 32


class _Geometry:
    """Resolved sizes of one convolution call."""

    def __init__(self, x, w, stride, padding, budget=None):
        if x.ndim != 4 or w.ndim != 4:
            raise ValueError(f"conv2d wants x (N, C, H, W) and w (K, C, FH, FW), got {x.shape} and {w.shape}")
        if x.shape[1] != w.shape[1]:
            raise ValueError(f"conv2d: x has {x.shape[1]} channels but w expects {w.shape[1]}")
        self.s_h, self.s_w = pair(stride)
        if self.s_h < 1 or self.s_w < 1:
            raise ValueError(f"stride must be >= 1, got {stride!r}")
        self.n, self.c, self.h, self.w = x.shape
        self.k, _, self.f_h, self.f_w = w.shape
        self.pads = resolve_padding(padding, self.h, self.w, self.f_h, self.f_w, self.s_h, self.s_w)
        self.o_h = conv_output_size(self.h, self.f_h, self.s_h, self.pads[0], self.pads[1])
        self.o_w = conv_output_size(self.w, self.f_w, self.s_w, self.pads[2], self.pads[3])
        if self.o_h < 1 or self.o_w < 1:
            raise ValueError(f"conv2d: a {self.f_h}x{self.f_w} filter does not fit a {self.h}x{self.w} input")
        self.rows = self.c * self.f_h * self.f_w
        self.per_image = self.o_h * self.o_w
        self.dtype = np.result_type(x.dtype, w.dtype, np.float32)
        per_image_bytes = max(self.rows, self.k) * self.per_image * self.dtype.itemsize
        budget = COLS_BUDGET_BYTES if budget is None else budget
        self.chunk = max(1, min(self.n, budget // max(per_image_bytes, 1)))

    def chunks(self):
        for start in range(0, self.n, self.chunk):
            yield start, min(self.chunk, self.n - start)

    def im2col(self, x, start, count, cols):
        ck.im2col_kernel(x, start, self.f_h, self.f_w, self.s_h, self.s_w, self.pads[0], self.pads[2],
                         self.o_h, self.o_w, cols)

    def col2im(self, dcols, start, dx):
        ck.col2im_kernel(dcols, start, self.f_h, self.f_w, self.s_h, self.s_w, self.pads[0], self.pads[2],
                         self.o_h, self.o_w, dx)


def _prepare(x, w, b, dtype):
    x = np.ascontiguousarray(x, dtype=dtype)
    w = np.ascontiguousarray(w, dtype=dtype)
    b = np.zeros(w.shape[0], dtype=dtype) if b is None else np.ascontiguousarray(b, dtype=dtype)
    return x, w, b


def _forward_chunks(x_in, x, w, geo, workspace, epilogue):
    """im2col + GEMM per chunk; `epilogue(yk, start)` writes that chunk's result. Keeps cols for backward,
    tagged with the caller's own array `x_in`, so backward reuses them only for that same input."""
    w2 = w.reshape(geo.k, geo.rows)  # (K, C*FH*FW)
    for start, count in geo.chunks():
        cols = ck.empty_like_shape(workspace, "cols", (geo.rows, count * geo.per_image), geo.dtype)
        geo.im2col(x, start, count, cols)
        yk = ck.empty_like_shape(workspace, "yk", (geo.k, count * geo.per_image), geo.dtype)
        np.matmul(w2, cols, out=yk)  # (K, N*OH*OW): the one big GEMM
        epilogue(yk, start)
    if workspace is not None:
        # Backward may reuse the matrix only if it covers the whole batch, and only for this very x.
        workspace["cols_of"] = x_in if geo.chunk == geo.n else None


def conv2d_forward(x, w, b=None, stride=1, padding="valid", relu=False, workspace=None):
    """y = conv(x, w) + b (then max(y, 0) if relu).  x (N, C, H, W), w (K, C, FH, FW), b (K,) -> (N, K, OH, OW)."""
    geo = _Geometry(x, w, stride, padding)
    x_in, (x, w, b) = x, _prepare(x, w, b, geo.dtype)
    y = np.empty((geo.n, geo.k, geo.o_h, geo.o_w), dtype=geo.dtype)
    if geo.dtype == np.float64:  # bit-reproducible direct loops for the lessons and the gradient checks
        conv_direct.conv2d_forward_kernel(x, w, b, geo.s_h, geo.s_w, geo.pads[0], geo.pads[2], y)
        return np.maximum(y, 0.0, out=y) if relu else y
    _forward_chunks(x_in, x, w, geo, workspace, lambda yk, start: ck.bias_epilogue_kernel(yk, b, relu, start, y))
    return y


def conv2d_relu_maxpool_forward(x, w, b, stride=1, padding="valid", pool=2, pool_stride=None, workspace=None,
                                with_argmax=True):
    """y = maxpool(relu(conv(x, w) + b)) in one pass over the conv output, which is never stored as NCHW.

    Returns (y, argmax): argmax[n, k, pi, pj] is the flat index i * OW + j of the window's winner in the conv
    output, or -1 where the whole window was <= 0 (no gradient flows there). Inference, which needs no
    backward, passes with_argmax=False and gets (y, None): the fast paths then skip the winners' bookkeeping.
    """
    y, argmax = _conv2d_relu_maxpool_forward(x, w, b, stride, padding, pool, pool_stride, workspace, with_argmax)
    return y, (argmax if with_argmax else None)


def _conv2d_relu_maxpool_forward(x, w, b, stride, padding, pool, pool_stride, workspace, with_argmax):
    geo = _Geometry(x, w, stride, padding)
    x_in, (x, w, b) = x, _prepare(x, w, b, geo.dtype)
    f_h, f_w = pair(pool)
    ps_h, ps_w = pair(pool_stride if pool_stride is not None else pool)
    if min(f_h, f_w, ps_h, ps_w) < 1:
        raise ValueError(f"pool window and stride must be >= 1, got {pool!r} and {pool_stride!r}")
    p_h, p_w = pool_output_size(geo.o_h, f_h, ps_h), pool_output_size(geo.o_w, f_w, ps_w)
    if geo.dtype == np.float64:  # the three steps one by one, on the bit-reproducible direct loops

        y, argmax = maxpool2d_forward(conv2d_forward(x, w, b, stride, padding, relu=True), (f_h, f_w), (ps_h, ps_w))
        argmax[y <= 0.0] = -1  # the ReLU closed the whole window: no gradient flows through it
        return y, argmax
    y = np.empty((geo.n, geo.k, p_h, p_w), dtype=geo.dtype)
    # Without argmax the kernels still take an array, one element, that they never write.
    argmax = np.empty(y.shape if with_argmax else (1, 1, 1, 1), dtype=np.int32)
    if _few_channels(geo):
        _few_channels_forward(x_in, x, w, b, geo, (f_h, f_w, ps_h, ps_w), workspace, y, argmax, with_argmax)
        return y, argmax
    if _takes_winograd(geo, (f_h, f_w, ps_h, ps_w)):
        _winograd_forward(x_in, x, w, b, geo, workspace, y, argmax, with_argmax)
        return y, argmax
    if geo.c >= SPARSE_MIN_CHANNELS:
        geo = _Geometry(x, w, stride, padding, CHANNELS_LAST_BUDGET_BYTES)
        _channels_last_forward(x_in, x, w, b, geo, (f_h, f_w, ps_h, ps_w), workspace, y, argmax, with_argmax)
        return y, argmax
    argmax = argmax if with_argmax else np.empty(y.shape, dtype=np.int32)  # this path always fills it

    def epilogue(yk, start):
        ck.bias_relu_maxpool_epilogue_kernel(yk, b, geo.o_h, geo.o_w, f_h, f_w, ps_h, ps_w, start, y, argmax)

    _forward_chunks(x_in, x, w, geo, workspace, epilogue)
    return y, argmax


def _takes_winograd(geo, pool) -> bool:
    """Whether this float32 conv + ReLU + max-pool runs by Winograd (`_winograd_forward`)."""
    return geo.dtype == np.float32 and geo.c >= SPARSE_MIN_CHANNELS and conv_winograd.applies(geo, pool)


def _padded_nhwc_buffer(geo, workspace):
    """The workspace's (N, HP, WP, C) buffer for x's padded channels-last copy, not yet filled."""
    top, bottom, left, right = geo.pads
    padded = (geo.n, geo.h + top + bottom, geo.w + left + right, geo.c)  # NHWC: channels innermost
    return ck.empty_like_shape(workspace, "x_nhwc", padded, geo.dtype)


def _padded_nhwc(x_in, x, geo, workspace):
    """x as (N, HP, WP, C) with the padding as zeros, kept in the workspace tagged with the caller's x_in."""
    xp = _padded_nhwc_buffer(geo, workspace)
    conv_nhwc.nchw_to_padded_nhwc_kernel(x, geo.pads[0], geo.pads[2], xp)
    if workspace is not None:
        workspace["x_nhwc_of"] = x_in
    return xp


def _few_channels(geo):
    return (geo.c <= FEW_CHANNELS_MAX_CHANNELS and geo.c < SPARSE_MIN_CHANNELS and geo.rows <= FEW_CHANNELS_MAX_ROWS
            and geo.s_h == geo.s_w == 1)


def _padded_nchw(x_in, x, geo, workspace):
    """x with its padding as zeros, (N, C, HP, WP), kept in the workspace tagged with the caller's x_in."""
    top, bottom, left, right = geo.pads
    xp = ck.empty_like_shape(workspace, "x_padded", (geo.n, geo.c, geo.h + top + bottom, geo.w + left + right),
                             geo.dtype)
    if top or bottom or left or right:
        xp[...] = 0.0
    xp[:, :, top:top + geo.h, left:left + geo.w] = x
    if workspace is not None:
        workspace["x_padded_of"] = x_in
        workspace["cols_of"] = None  # no im2col matrix of this input exists
    return xp


def _few_channels_forward(x_in, x, w, b, geo, pool, workspace, y, argmax, with_argmax):
    """conv + ReLU + max-pool as direct loops on flat image planes (see conv_few_channels)."""
    f_h, f_w, ps_h, ps_w = pool
    xp = _padded_nchw(x_in, x, geo, workspace)
    conv_few_channels.conv_relu_maxpool_kernel(xp, w, b, geo.o_h, geo.o_w, f_h, f_w, ps_h, ps_w, with_argmax,
                                               y, argmax)


def _few_channels_backward(x_in, x, w, dy, argmax, geo, input_grad, workspace):
    top, _, left, _ = geo.pads
    if workspace is not None and workspace.get("x_padded_of") is x_in:
        xp = workspace["x_padded"]  # the forward's padded copy of this very input
    else:
        xp = _padded_nchw(x_in, x, geo, workspace)
    dw = np.empty(w.shape, dtype=geo.dtype)
    db = np.empty(geo.k, dtype=geo.dtype)
    rows, columns = np.divmod(np.arange(geo.per_image, dtype=np.int64), geo.o_w)
    padded_at = rows * xp.shape[3] + columns  # i*OW + j -> i*WP + j, where the kernels' flat planes keep it
    conv_few_channels.conv_maxpool_weight_grad_kernel(xp, dy, argmax, geo.o_h, geo.o_w, padded_at, dw, db)
    dx = None
    if input_grad:
        dxp = ck.empty_like_shape(workspace, "dx_padded", xp.shape, geo.dtype)
        conv_few_channels.conv_maxpool_input_grad_kernel(w, dy, argmax, geo.o_h, geo.o_w, padded_at, dxp)
        dx = dxp[:, :, top:top + geo.h, left:left + geo.w].copy()
    return dx, dw, db


def _channels_last_forward(x_in, x, w, b, geo, pool, workspace, y, argmax, with_argmax):
    """conv + ReLU + max-pool through the padded NHWC input (kept for the sparse backward): per thread, im2col of
    whole filter rows, GEMM cols_t @ w_t.T -> (chunk*OH*OW, K), and the pooling epilogue vectorised over K."""
    xp = _padded_nhwc_buffer(geo, workspace)  # filled by the parts, image by image
    w_t = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(geo.k, geo.rows)  # (K, FH*FW*C)

    def buffers(parts):
        rows = min(geo.chunk, -(-geo.n // parts)) * geo.per_image  # no more than one part's share of images
        return [(ck.empty_like_shape(workspace, f"cols_t{part}", (rows, geo.rows), geo.dtype),
                 ck.empty_like_shape(workspace, f"y_t{part}", (rows, geo.k), geo.dtype)) for part in range(parts)]

    conv_nhwc.conv_relu_maxpool_forward_kernel(x, (geo.pads[0], geo.pads[2]), xp, w_t, b,
                                               (geo.f_h, geo.f_w, geo.s_h, geo.s_w, geo.o_h, geo.o_w), pool,
                                               geo.chunk, buffers, with_argmax, y, argmax)
    if workspace is not None:
        workspace["x_nhwc_of"] = x_in


def _winograd_forward(x_in, x, w, b, geo, workspace, y, argmax, with_argmax):
    """conv 5x5 + ReLU + max-pool 2x2 by Winograd (conv_winograd): per thread, WINOGRAD_CHUNK images at a time through
    tiles u (tiles, 64, C), the GEMMs' result m (flat, 64 x tiles x K) and the pooled outputs and winners (images,
    PH, PW, K). Training's padded copy of x is kept for the sparse backward, tagged with x_in; inference's is its
    own, so an evaluation between a step's forward and backward leaves the step's copy alone."""
    t_h, t_w = conv_winograd.tiles_for(geo.o_h, geo.o_w)
    key = "wino_train_xp" if with_argmax else "wino_xp"
    xp = ck.empty_like_shape(workspace, key, conv_winograd.padded_shape(geo.n, geo.c, t_h, t_w), geo.dtype)

    def buffers(parts, chunk):
        rows, pooled = chunk * t_h * t_w, (chunk, *y.shape[2:], geo.k)
        return [(ck.empty_like_shape(workspace, f"wino_u{part}", (rows, conv_winograd.POSITIONS, geo.c), geo.dtype),
                 ck.empty_like_shape(workspace, f"wino_m{part}", (conv_winograd.POSITIONS * rows * geo.k,), geo.dtype),
                 ck.empty_like_shape(workspace, f"wino_pooled{part}", pooled, geo.dtype),
                 ck.empty_like_shape(workspace, f"wino_pooled_at{part}", pooled, np.int32))
                for part in range(parts)]

    conv_winograd.conv_relu_maxpool_forward(x, (geo.pads[0], geo.pads[2]), xp, _winograd_filters(w, workspace), b,
                                            y, argmax, with_argmax, WINOGRAD_CHUNK, buffers)
    if workspace is not None and with_argmax:
        workspace["wino_train_xp_of"] = x_in


def _winograd_filters(w, workspace):
    """conv_winograd.transformed_filters(w), kept in the workspace with a copy of the w it came from: an evaluation
    runs many batches through the same weights, and comparing them costs a tenth of transforming them again."""
    if workspace is None:
        return conv_winograd.transformed_filters(w)
    kept = workspace.get("wino_filters_of")
    if kept is None or kept.shape != w.shape or kept.dtype != w.dtype or not np.array_equal(kept, w):
        workspace["wino_filters"] = conv_winograd.transformed_filters(w)
        workspace["wino_filters_of"] = w.copy()
    return workspace["wino_filters"]


def _backward_chunks(x_in, x, w, geo, workspace, prologue, input_grad):
    """Per chunk: dyk from the prologue, then db, dw = dyk @ cols.T and dx = col2im(w2.T @ dyk)."""
    w2 = w.reshape(geo.k, geo.rows)
    dw2 = np.zeros((geo.k, geo.rows), dtype=geo.dtype)
    db = np.zeros(geo.k, dtype=geo.dtype)
    dx = np.empty(x.shape, dtype=geo.dtype) if input_grad else None
    reuse = workspace is not None and workspace.get("cols_of") is x_in and geo.chunk == geo.n
    single = geo.chunk == geo.n
    for start, count in geo.chunks():
        columns = count * geo.per_image
        dyk = ck.empty_like_shape(workspace, "dyk", (geo.k, columns), geo.dtype)
        db_parts = np.empty((geo.k, count), dtype=np.float64)
        prologue(dyk, start, db_parts)
        db += db_parts.sum(axis=1)
        if reuse:
            cols = workspace["cols"]
        else:
            cols = ck.empty_like_shape(workspace, "cols", (geo.rows, columns), geo.dtype)
            geo.im2col(x, start, count, cols)
        if single:
            np.matmul(dyk, cols.T, out=dw2)
        else:
            dw2 += dyk @ cols.T
        if input_grad:
            dcols = ck.empty_like_shape(workspace, "dcols", (geo.rows, columns), geo.dtype)
            np.matmul(w2.T, dyk, out=dcols)
            geo.col2im(dcols, start, dx)
    if workspace is not None and not reuse:
        workspace["cols_of"] = None
    return dx, dw2.reshape(w.shape), db


def conv2d_backward(x, w, dy, stride=1, padding="valid", relu_y=None, input_grad=True, workspace=None):
    """Gradients of y = conv(x, w) + b given dL/dy: (dx, dw, db) with the shapes of x, w and b.

    With `relu_y` (the output of a fused conv + ReLU), dy is first masked by relu_y > 0. With input_grad=False,
    dx is None and its GEMM is skipped (the first layer of a network needs no dx).
    """
    geo = _Geometry(x, w, stride, padding)
    x_in, (x, w, _) = x, _prepare(x, w, None, geo.dtype)
    if dy.shape != (geo.n, geo.k, geo.o_h, geo.o_w):
        raise ValueError(f"conv2d_backward: dy has shape {dy.shape}, expected {(geo.n, geo.k, geo.o_h, geo.o_w)}")
    dy = np.ascontiguousarray(dy, dtype=geo.dtype)
    if geo.dtype == np.float64:
        return _direct_backward(x, w, dy if relu_y is None else np.where(relu_y > 0, dy, 0.0), geo, input_grad)
    relu = relu_y is not None
    mask = np.ascontiguousarray(relu_y, dtype=geo.dtype) if relu else dy

    def prologue(dyk, start, db_parts):
        ck.dy_prologue_kernel(dy, mask, relu, start, dyk, db_parts)

    return _backward_chunks(x_in, x, w, geo, workspace, prologue, input_grad)


def _direct_backward(x, w, dy, geo, input_grad):
    dx = np.zeros_like(x) if input_grad else None
    dw = np.empty_like(w)
    db = np.empty(geo.k, dtype=geo.dtype)
    if input_grad:
        conv_direct.conv2d_backward_input_kernel(w, dy, geo.s_h, geo.s_w, geo.pads[0], geo.pads[2], dx)
    conv_direct.conv2d_backward_weight_kernel(x, dy, geo.s_h, geo.s_w, geo.pads[0], geo.pads[2], dw, db)
    return dx, dw, db


def conv2d_relu_maxpool_backward(x, w, dy, argmax, stride=1, padding="valid", input_grad=True, workspace=None):
    """Gradients of maxpool(relu(conv(x, w) + b)) given dL/dy of the pooled output and the forward's argmax."""
    geo = _Geometry(x, w, stride, padding)
    x_in, (x, w, _) = x, _prepare(x, w, None, geo.dtype)
    if argmax is None:
        raise ValueError("conv2d_relu_maxpool_backward needs the argmax of a forward run with with_argmax=True")
    if dy.shape != argmax.shape or dy.shape[:2] != (geo.n, geo.k):
        raise ValueError(f"conv2d_relu_maxpool_backward: dy {dy.shape} does not match argmax {argmax.shape}")
    dy = np.ascontiguousarray(dy, dtype=geo.dtype)
    if geo.dtype == np.float64:  # route dy to the winners, then the direct loops
        dz = np.zeros((geo.n, geo.k, geo.per_image), dtype=geo.dtype)
        n_index, k_index, _, _ = np.nonzero(argmax >= 0)
        np.add.at(dz, (n_index, k_index, argmax[argmax >= 0]), dy[argmax >= 0])
        return _direct_backward(x, w, dz.reshape(geo.n, geo.k, geo.o_h, geo.o_w), geo, input_grad)
    if _few_channels(geo):
        return _few_channels_backward(x_in, x, w, dy, argmax, geo, input_grad, workspace)
    if geo.c >= SPARSE_MIN_CHANNELS:
        return _sparse_maxpool_backward(x_in, x, w, dy, argmax, geo, input_grad, workspace)

    def prologue(dyk, start, db_parts):
        ck.maxpool_dy_prologue_kernel(dy, argmax, start, geo.per_image, dyk, db_parts)

    return _backward_chunks(x_in, x, w, geo, workspace, prologue, input_grad)


def _sparse_maxpool_backward(x_in, x, w, dy, argmax, geo, input_grad, workspace):
    """Backward of conv + ReLU + max-pool from the pooling winners alone (see conv_kernels): about a quarter of
    the dense GEMMs' work for a 2x2 pool, and no im2col matrix."""
    top, bottom, left, right = geo.pads
    if workspace is not None and workspace.get("wino_train_xp_of") is x_in:
        xp = workspace["wino_train_xp"]  # the Winograd forward's copy: whole tiles, so more zeros past the edge
    elif workspace is not None and workspace.get("x_nhwc_of") is x_in:
        xp = workspace["x_nhwc"]  # the forward's padded NHWC copy of this very input
    else:
        xp = _padded_nhwc(x_in, x, geo, workspace)
    padded = xp.shape
    # Viewed as (N, HP, WP*C) and (K, FH, FW*C): one filter row of a patch is one contiguous run of FW*C values.
    run = geo.f_w * geo.c
    n_parts = parts_for(dy.size * geo.rows, geo.n)  # one part per thread, each with its own dw
    dw_parts = np.empty((n_parts, geo.k, geo.f_h, run), dtype=geo.dtype)
    db_parts = np.empty((n_parts, geo.k), dtype=np.float64)
    w_t = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(geo.k, geo.f_h, run)  # (K, FH, FW*C)
    dxp = ck.empty_like_shape(workspace, "dx_nhwc", padded, geo.dtype) if input_grad else xp
    out_rows, out_columns = np.divmod(np.arange(geo.per_image, dtype=np.int64), geo.o_w)
    conv_nhwc.maxpool_sparse_backward_kernel(xp.reshape(padded[0], padded[1], -1), w_t, dy, argmax,
                                             out_rows * geo.s_h, out_columns * (geo.s_w * geo.c), input_grad,
                                             dw_parts, db_parts, dxp.reshape(padded[0], padded[1], -1))
    dw_t = dw_parts.sum(axis=0)
    db = db_parts.sum(axis=0).astype(geo.dtype)
    dx = None
    if input_grad:
        dx = np.empty(x.shape, dtype=geo.dtype)
        conv_nhwc.padded_nhwc_to_nchw_kernel(dxp, top, left, dx)
    dw_t = dw_t.reshape(geo.k, geo.f_h, geo.f_w, geo.c)
    return dx, np.ascontiguousarray(dw_t.transpose(0, 3, 1, 2)), db
