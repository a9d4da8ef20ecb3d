"""Layers: forward and backward over the kernels, each owning its parameters and what backward needs.

Every layer has `forward(x, training)`, `backward(dy) -> dx`, `params()` and `output_shape(input_shape)`.
Shapes exclude the batch: a conv layer maps (C, H, W) to (K, OH, OW).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from convtui.core import kernels
from convtui.core.initializers import INITIALIZERS


@dataclass
class Param:
    """A trainable array and its gradient, named `<layer>.<w|b>` for checkpoints."""

    name: str
    value: np.ndarray
    grad: np.ndarray = field(init=False)

    def __post_init__(self):
        self.grad = np.zeros_like(self.value)


class Layer:
    name = "layer"

    def forward(self, x, training: bool = False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def params(self) -> list[Param]:
        return []

    def output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def describe(self) -> str:
        return type(self).__name__


class Conv2D(Layer):
    """y = conv(x, w) + b over NCHW input; w (K, C, FH, FW)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding="same",
                 init="he_normal", rng=None, dtype=np.float32, name="conv"):
        rng = rng if rng is not None else np.random.default_rng(0)
        f_h, f_w = kernels._pair(kernel_size)
        self.name, self.stride, self.padding = name, kernels._pair(stride), padding
        fan_in, fan_out = in_channels * f_h * f_w, out_channels * f_h * f_w
        shape = (out_channels, in_channels, f_h, f_w)
        self.w = Param(f"{name}.w", INITIALIZERS[init](shape, fan_in, fan_out, rng, dtype))
        self.b = Param(f"{name}.b", np.zeros(out_channels, dtype=dtype))
        self._x = None
        # Reused im2col / GEMM buffers, and the forward's im2col matrix for backward (see convtui.core.conv).
        self.workspace: dict = {}

    def forward(self, x, training=False):
        self._x = x
        return kernels.conv2d_forward(x, self.w.value, self.b.value, self.stride, self.padding,
                                      workspace=self.workspace)

    def backward(self, dy, input_grad=True):
        dx, self.w.grad[...], self.b.grad[...] = kernels.conv2d_backward(
            self._x, self.w.value, dy, self.stride, self.padding, input_grad=input_grad, workspace=self.workspace)
        return dx

    def params(self):
        return [self.w, self.b]

    def output_shape(self, input_shape):
        c, h, w = input_shape
        k, _, f_h, f_w = self.w.value.shape
        pads = kernels.resolve_padding(self.padding, h, w, f_h, f_w, *self.stride)
        return (k, kernels.conv_output_size(h, f_h, self.stride[0], pads[0], pads[1]),
                kernels.conv_output_size(w, f_w, self.stride[1], pads[2], pads[3]))

    def describe(self):
        k, c, f_h, f_w = self.w.value.shape
        return f"Conv2D {f_h}x{f_w}x{k} stride {self.stride[0]} {self.padding}"


class MaxPool2D(Layer):
    def __init__(self, pool=2, stride=None, name="maxpool"):
        self.name, self.pool = name, kernels._pair(pool)
        self.stride = kernels._pair(stride if stride is not None else pool)
        self._argmax = self._x_shape = None

    def forward(self, x, training=False):
        y, self._argmax = kernels.maxpool2d_forward(x, self.pool, self.stride)
        self._x_shape = x.shape
        return y

    def backward(self, dy):
        return kernels.maxpool2d_backward(dy, self._argmax, self._x_shape)

    def output_shape(self, input_shape):
        c, h, w = input_shape
        return (c, kernels.pool_output_size(h, self.pool[0], self.stride[0]),
                kernels.pool_output_size(w, self.pool[1], self.stride[1]))

    def describe(self):
        return f"MaxPool2D {self.pool[0]}x{self.pool[1]} stride {self.stride[0]}"


class MeanPool2D(MaxPool2D):
    def __init__(self, pool=2, stride=None, name="meanpool"):
        super().__init__(pool, stride, name)

    def forward(self, x, training=False):
        self._x_shape = x.shape
        return kernels.meanpool2d_forward(x, self.pool, self.stride)

    def backward(self, dy):
        return kernels.meanpool2d_backward(dy, self._x_shape, self.pool, self.stride)

    def describe(self):
        return f"MeanPool2D {self.pool[0]}x{self.pool[1]} stride {self.stride[0]}"


class Dense(Layer):
    """y = x @ w + b; w (in, out)."""

    def __init__(self, in_features, out_features, init="glorot_uniform", rng=None, dtype=np.float32, name="dense"):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.name = name
        self.w = Param(f"{name}.w", INITIALIZERS[init]((in_features, out_features), in_features, out_features, rng, dtype))
        self.b = Param(f"{name}.b", np.zeros(out_features, dtype=dtype))
        self._x = None

    def forward(self, x, training=False):
        self._x = x
        y = np.matmul(x, self.w.value)
        y += self.b.value  # in place: no second (N, out) array
        return y

    def backward(self, dy, input_grad=True):
        # The gradients go straight into Param.grad: no temporary the size of w (12 MB for the cnn's dense1).
        np.matmul(self._x.T, dy, out=self.w.grad)
        np.sum(dy, axis=0, out=self.b.grad)
        return np.matmul(dy, self.w.value.T) if input_grad else None

    def params(self):
        return [self.w, self.b]

    def output_shape(self, input_shape):
        return (self.w.value.shape[1],)

    def describe(self):
        return f"Dense {self.w.value.shape[1]}"


class ReLU(Layer):
    name = "relu"

    def forward(self, x, training=False):
        self._y = kernels.relu_forward(x)
        return self._y

    def backward(self, dy):
        return kernels.relu_backward(dy, self._y)


class Sigmoid(Layer):
    name = "sigmoid"

    def forward(self, x, training=False):
        self._y = kernels.sigmoid_forward(x)
        return self._y

    def backward(self, dy):
        return kernels.sigmoid_backward(dy, self._y)


class Dropout(Layer):
    """Inverted dropout: active only when training, so inference needs no rescaling."""

    def __init__(self, rate, rng=None, name="dropout"):
        self.name, self.rate = name, float(rate)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self._mask = None

    def forward(self, x, training=False):
        if not training:
            self._mask = None
            return x
        y, self._mask = kernels.dropout_forward(x, self.rate, self.rng)
        return y

    def backward(self, dy):
        return kernels.dropout_backward(dy, self._mask)

    def describe(self):
        return f"Dropout {self.rate:g}"


class Flatten(Layer):
    name = "flatten"

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._shape)

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)


# Inference batches larger than this run in slices of this size (a 1,000-image batch of the cnn would otherwise
# add about 250 MB of conv buffers to the training process, against a 600 MB budget).
INFERENCE_CHUNK = 256


class _ConvReluMaxPool:
    """Conv2D -> ReLU -> MaxPool2D run as one fused step: the conv output is read once, never stored as NCHW."""

    def __init__(self, conv, pool):
        self.conv, self.pool = conv, pool

    def forward(self, x, training=False):
        conv = self.conv
        self._x = x
        y, self._argmax = kernels.conv2d_relu_maxpool_forward(
            x, conv.w.value, conv.b.value, conv.stride, conv.padding, self.pool.pool, self.pool.stride,
            workspace=conv.workspace)
        return y

    def backward(self, dy, input_grad=True):
        conv = self.conv
        dx, conv.w.grad[...], conv.b.grad[...] = kernels.conv2d_relu_maxpool_backward(
            self._x, conv.w.value, dy, self._argmax, conv.stride, conv.padding, input_grad=input_grad,
            workspace=conv.workspace)
        return dx


class _ConvRelu:
    """Conv2D -> ReLU fused: the bias and the ReLU are applied as the GEMM result is laid out as NCHW."""

    def __init__(self, conv):
        self.conv = conv

    def forward(self, x, training=False):
        conv = self.conv
        self._x = x
        self._y = kernels.conv2d_forward(x, conv.w.value, conv.b.value, conv.stride, conv.padding, relu=True,
                                         workspace=conv.workspace)
        return self._y

    def backward(self, dy, input_grad=True):
        conv = self.conv
        dx, conv.w.grad[...], conv.b.grad[...] = kernels.conv2d_backward(
            self._x, conv.w.value, dy, conv.stride, conv.padding, relu_y=self._y, input_grad=input_grad,
            workspace=conv.workspace)
        return dx


class _DenseRelu:
    """Dense -> ReLU fused: the ReLU is applied in place on the GEMM's output, so no second (N, out) array."""

    def __init__(self, dense):
        self.dense = dense

    def forward(self, x, training=False):
        self._y = self.dense.forward(x, training)
        np.maximum(self._y, 0, out=self._y)
        return self._y

    def backward(self, dy, input_grad=True):
        return self.dense.backward(kernels.relu_backward(dy, self._y), input_grad=input_grad)


def fused_steps(layers):
    """The layers grouped into the steps Sequential runs: Conv2D + ReLU (+ MaxPool2D) and Dense + ReLU become
    one fused step each.

    The fused steps compute exactly what the layers compute one by one (tests/core/test_layers.py checks it);
    they only skip the intermediate arrays. Exact types are matched, so a subclass keeps its own behaviour.
    """
    steps, i = [], 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        after = layers[i + 2] if i + 2 < len(layers) else None
        if type(layer) is Conv2D and type(nxt) is ReLU:
            if type(after) is MaxPool2D:
                steps.append(_ConvReluMaxPool(layer, after))
                i += 3
            else:
                steps.append(_ConvRelu(layer))
                i += 2
            continue
        if type(layer) is Dense and type(nxt) is ReLU:
            steps.append(_DenseRelu(layer))
            i += 2
            continue
        steps.append(layer)
        i += 1
    return steps


_WEIGHTED_STEPS = (Conv2D, Dense, _ConvRelu, _ConvReluMaxPool, _DenseRelu)


class Sequential:
    """Layers applied in order; the last one gives logits (softmax lives in the fused loss).

    forward/backward run fused steps (see `fused_steps`), so the layers' own cached activations are not filled
    in by them; call the layers one by one to inspect intermediate maps.
    """

    def __init__(self, layers, input_shape=(1, 28, 28)):
        self.layers = list(layers)
        self.input_shape = tuple(input_shape)
        self._steps, self._steps_of = None, None

    def _plan(self):
        key = tuple(map(id, self.layers))  # rebuilt if someone edits self.layers
        if key != self._steps_of:
            self._steps, self._steps_of = fused_steps(self.layers), key
        return self._steps

    def forward(self, x, training=False):
        if not training and len(x) > INFERENCE_CHUNK:
            # Inference is per image, so big batches run in slices: same logits, bounded workspaces.
            return np.concatenate([self.forward(x[i:i + INFERENCE_CHUNK], training=False)
                                   for i in range(0, len(x), INFERENCE_CHUNK)])
        self._ran = self._plan()
        for step in self._ran:
            x = step.forward(x, training)
        return x

    def backward(self, dy, input_grad=True):
        """dL/dy of the logits -> every Param.grad, and dL/dx of the input (None when input_grad is False:
        the trainer needs only the parameter gradients, and the first layer's dx is a whole GEMM)."""
        steps = self._ran
        # The first step with weights may skip its dx: the steps before it (a Flatten, say) have nothing to learn.
        first = next((i for i, step in enumerate(steps) if isinstance(step, _WEIGHTED_STEPS)), 0)
        for i in range(len(steps) - 1, -1, -1):
            step = steps[i]
            if i == first and isinstance(step, _WEIGHTED_STEPS):
                dy = step.backward(dy, input_grad=input_grad)
            else:
                dy = step.backward(dy)
            if dy is None:
                return None
        return dy

    def params(self) -> list[Param]:
        return [p for layer in self.layers for p in layer.params()]

    def predict_logits(self, x, batch_size=1000):
        """Inference in batches, so a 10,000-image test set does not need one huge activation."""
        return np.concatenate([self.forward(x[i:i + batch_size], training=False)
                               for i in range(0, len(x), batch_size)])

    def shapes(self) -> list[tuple[str, tuple]]:
        """(description, output shape) per layer, for summaries and the receptive-field lesson."""
        out, shape = [], self.input_shape
        for layer in self.layers:
            shape = layer.output_shape(shape)
            out.append((layer.describe(), shape))
        return out
