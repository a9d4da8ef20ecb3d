"""Layers: forward and backward over the kernels, each owning its parameters and what backward needs.

Every layer has `forward(x, training)`, `backward(dy) -> dx` and `output_shape(input_shape)`, and says what it
holds: `params()` (trainable, with gradients), `buffers()` (other state a checkpoint must keep, by name; none of
today's layers has one, a BatchNorm's running statistics would) and `spec()` (its kind and hyper-parameters as
plain data, from which `architectures.layer_from_spec` builds it again). Everything else a layer keeps, such as
the activations cached for backward, is scratch: it is never saved or copied.
Shapes exclude the batch: a conv layer maps (C, H, W) to (K, OH, OW).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from convtui.core import ops
from convtui.core.nn.initializers import INITIALIZERS


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

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trainable state saved with the weights, by short name (saved as `<layer>.<name>`)."""
        return {}

    def hyperparameters(self) -> dict:
        """What the constructor needs besides the layer's name, as JSON-ready values."""
        return {}

    def spec(self) -> dict:
        """This layer as data: {"kind": ..., "name": ..., **hyperparameters}."""
        return {"kind": type(self).__name__, "name": self.name, **self.hyperparameters()}

    def output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def describe(self) -> str:
        return type(self).__name__


class Conv2D(Layer):
    """y = conv(x, w) + b over NCHW input; w (K, C, FH, FW)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding="same",
                 init="he_normal", rng=None, dtype=np.float32, name="conv"):
        rng = rng if rng is not None else np.random.default_rng(0)
        f_h, f_w = ops.pair(kernel_size)
        self.name, self.stride, self.padding, self.init = name, ops.pair(stride), padding, init
        fan_in, fan_out = in_channels * f_h * f_w, out_channels * f_h * f_w
        shape = (out_channels, in_channels, f_h, f_w)
        self.w = Param(f"{name}.w", INITIALIZERS[init](shape, fan_in, fan_out, rng, dtype))
        self.b = Param(f"{name}.b", np.zeros(out_channels, dtype=dtype))
        self._x = None
        # Reused im2col / GEMM buffers, and the forward's im2col matrix for backward (see convtui.core.ops.conv).
        self.workspace: dict = {}

    def forward(self, x, training=False):
        self._x = x
        return ops.conv2d_forward(x, self.w.value, self.b.value, self.stride, self.padding,
                                      workspace=self.workspace)

    def backward(self, dy, input_grad=True):
        dx, self.w.grad[...], self.b.grad[...] = ops.conv2d_backward(
            self._x, self.w.value, dy, self.stride, self.padding, input_grad=input_grad, workspace=self.workspace)
        return dx

    def params(self):
        return [self.w, self.b]

    def hyperparameters(self):
        k, c, f_h, f_w = self.w.value.shape
        padding = self.padding if isinstance(self.padding, (str, int)) else [int(v) for v in self.padding]
        return {"in_channels": c, "out_channels": k, "kernel_size": [f_h, f_w], "stride": list(self.stride),
                "padding": padding, "init": self.init}

    def output_shape(self, input_shape):
        c, h, w = input_shape
        k, _, f_h, f_w = self.w.value.shape
        pads = ops.resolve_padding(self.padding, h, w, f_h, f_w, *self.stride)
        return (k, ops.conv_output_size(h, f_h, self.stride[0], pads[0], pads[1]),
                ops.conv_output_size(w, f_w, self.stride[1], pads[2], pads[3]))

    def describe(self):
        k, c, f_h, f_w = self.w.value.shape
        return f"Conv2D {f_h}x{f_w}x{k} stride {self.stride[0]} {self.padding}"


class MaxPool2D(Layer):
    def __init__(self, pool=2, stride=None, name="maxpool"):
        self.name, self.pool = name, ops.pair(pool)
        self.stride = ops.pair(stride if stride is not None else pool)
        self._argmax = self._x_shape = None

    def hyperparameters(self):
        return {"pool": list(self.pool), "stride": list(self.stride)}

    def forward(self, x, training=False):
        y, self._argmax = ops.maxpool2d_forward(x, self.pool, self.stride)
        self._x_shape = x.shape
        return y

    def backward(self, dy):
        return ops.maxpool2d_backward(dy, self._argmax, self._x_shape)

    def output_shape(self, input_shape):
        c, h, w = input_shape
        return (c, ops.pool_output_size(h, self.pool[0], self.stride[0]),
                ops.pool_output_size(w, self.pool[1], self.stride[1]))

    def describe(self):
        return f"MaxPool2D {self.pool[0]}x{self.pool[1]} stride {self.stride[0]}"


class MeanPool2D(MaxPool2D):
    def __init__(self, pool=2, stride=None, name="meanpool"):
        super().__init__(pool, stride, name)

    def forward(self, x, training=False):
        self._x_shape = x.shape
        return ops.meanpool2d_forward(x, self.pool, self.stride)

    def backward(self, dy):
        return ops.meanpool2d_backward(dy, self._x_shape, self.pool, self.stride)

    def describe(self):
        return f"MeanPool2D {self.pool[0]}x{self.pool[1]} stride {self.stride[0]}"


class Dense(Layer):
    """y = x @ w + b; w (in, out)."""

    def __init__(self, in_features, out_features, init="glorot_uniform", rng=None, dtype=np.float32, name="dense"):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.name, self.init = name, init
        self.w = Param(f"{name}.w", INITIALIZERS[init]((in_features, out_features), in_features, out_features, rng, dtype))
        self.b = Param(f"{name}.b", np.zeros(out_features, dtype=dtype))
        self._x = None

    def forward(self, x, training=False, relu=False):
        """The fused Dense + ReLU step passes `relu=True`: the ReLU then rides the bias's pass over the output."""
        self._x = x
        return ops.add_bias_in_place(np.matmul(x, self.w.value), self.b.value, relu)  # no second (N, out) array

    def backward(self, dy, input_grad=True):
        # The gradients go straight into Param.grad: no temporary the size of w (12 MB for the cnn's dense1).
        np.matmul(self._x.T, dy, out=self.w.grad)
        np.sum(dy, axis=0, out=self.b.grad)
        return np.matmul(dy, self.w.value.T) if input_grad else None

    def params(self):
        return [self.w, self.b]

    def hyperparameters(self):
        return {"in_features": self.w.value.shape[0], "out_features": self.w.value.shape[1], "init": self.init}

    def output_shape(self, input_shape):
        return (self.w.value.shape[1],)

    def describe(self):
        return f"Dense {self.w.value.shape[1]}"


class ReLU(Layer):
    name = "relu"

    def forward(self, x, training=False):
        self._y = ops.relu_forward(x)
        return self._y

    def backward(self, dy):
        return ops.relu_backward(dy, self._y)


class Sigmoid(Layer):
    name = "sigmoid"

    def forward(self, x, training=False):
        self._y = ops.sigmoid_forward(x)
        return self._y

    def backward(self, dy):
        return ops.sigmoid_backward(dy, self._y)


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
        y, self._mask = ops.dropout_forward(x, self.rate, self.rng)
        return y

    def backward(self, dy):
        return ops.dropout_backward(dy, self._mask)

    def hyperparameters(self):
        return {"rate": self.rate}

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
