"""The numeric kernels on plain arrays: `from convtui.core import ops`, then `ops.conv2d_forward(...)`.

Layout: NCHW float32 for training (float64 works everywhere, for gradient checks and the lessons' small grids).
`stride` is an int or (s_h, s_w); `padding` is 'valid', 'same' (TensorFlow's, odd pixel after), an int, (p_h, p_w)
or (top, bottom, left, right). Each public function validates its input and calls private Numba kernels, each a
serial `@njit(nogil=True, cache=True)` body over a range of tasks that `jit` splits over threads. The rooms:

- `shapes`: output-size and padding rules, `out = (n + 2p - f) // s + 1`;
- `conv` (im2col + BLAS GEMM, fused ReLU and max-pool), `conv_kernels` (its Numba passes, NCHW), `conv_nhwc`
  (channels-last im2col and the sparse backward from the pooling winners), `conv_few_channels` (direct loops for
  a first layer of one channel), `conv_winograd` (a 5x5 conv + 2x2 pool by Winograd F(4x4, 5x5), in training and inference),
  `conv_direct` (float64 direct loops, bit-identical wherever an image sits in a batch);
- `pooling`, `elementwise` (bias + ReLU, sigmoid, dropout), `loss` (softmax, softmax cross-entropy), `updates`
  (Adam, SGD);
- `jit` (compile options, and how a kernel's tasks are split over threads), `kernel_cache` (the `njit` every
  kernel module uses: Numba's disk cache, tolerant of damaged files and full disks), `blas_threads` (OpenBLAS held
  to one thread while each of our threads runs its own GEMMs).

`tests/core/naive.py` holds a plain-loop reference of each kernel. This module only re-exports the public names.
"""

from convtui.core.ops.conv import (conv2d_backward, conv2d_forward, conv2d_relu_maxpool_backward,
                                   conv2d_relu_maxpool_forward)
from convtui.core.ops.elementwise import (add_bias_in_place, dropout_backward, dropout_forward, relu_backward,
                                          relu_forward, sigmoid_backward, sigmoid_forward)
from convtui.core.ops.loss import softmax, softmax_cross_entropy
from convtui.core.ops.pooling import maxpool2d_backward, maxpool2d_forward, meanpool2d_backward, meanpool2d_forward
from convtui.core.ops.shapes import conv_output_size, pair, pool_output_size, resolve_padding, same_padding
from convtui.core.ops.updates import adam_update, sgd_update

__all__ = [
    "adam_update", "add_bias_in_place", "conv2d_backward", "conv2d_forward", "conv2d_relu_maxpool_backward",
    "conv2d_relu_maxpool_forward", "conv_output_size", "dropout_backward", "dropout_forward", "maxpool2d_backward",
    "maxpool2d_forward", "meanpool2d_backward", "meanpool2d_forward", "pair", "pool_output_size", "relu_backward",
    "relu_forward", "resolve_padding", "same_padding", "sgd_update", "sigmoid_backward",
    "sigmoid_forward", "softmax", "softmax_cross_entropy",
]
