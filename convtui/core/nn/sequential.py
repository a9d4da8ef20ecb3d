"""Sequential: layers applied in order, run as fused steps, with explicit named state and an architecture as data.

`state_dict()` is every parameter and buffer under a stable name (`conv1.w`, `dense1.b`, ...), as plain arrays;
`architecture()` is the input shape and each layer's `spec()`. Together they are the whole model: a checkpoint
stores both, `architectures.build_from_architecture` rebuilds the model from the file alone, and
`inference_copy` builds a second model from the same specs.
"""

from __future__ import annotations

import numpy as np

from convtui.core import ops
from convtui.core.nn.layers import Conv2D, Dense, MaxPool2D, Param, ReLU
from convtui.core.nn.specs import layer_from_spec

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
        y, self._argmax = ops.conv2d_relu_maxpool_forward(
            x, conv.w.value, conv.b.value, conv.stride, conv.padding, self.pool.pool, self.pool.stride,
            workspace=conv.workspace, with_argmax=training)  # inference never runs backward: no argmax
        return y

    def backward(self, dy, input_grad=True):
        conv = self.conv
        dx, conv.w.grad[...], conv.b.grad[...] = ops.conv2d_relu_maxpool_backward(
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
        self._y = ops.conv2d_forward(x, conv.w.value, conv.b.value, conv.stride, conv.padding, relu=True,
                                         workspace=conv.workspace)
        return self._y

    def backward(self, dy, input_grad=True):
        conv = self.conv
        dx, conv.w.grad[...], conv.b.grad[...] = ops.conv2d_backward(
            self._x, conv.w.value, dy, conv.stride, conv.padding, relu_y=self._y, input_grad=input_grad,
            workspace=conv.workspace)
        return dx


class _DenseRelu:
    """Dense -> ReLU fused: bias and ReLU are one pass in place on the GEMM's output, so no second (N, out) array."""

    def __init__(self, dense):
        self.dense = dense

    def forward(self, x, training=False):
        self._y = self.dense.forward(x, training, relu=True)
        return self._y

    def backward(self, dy, input_grad=True):
        return self.dense.backward(ops.relu_backward(dy, self._y), input_grad=input_grad)


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
        """Inference in batches, so a 10,000-image test set does not need one huge activation. A diverging model
        gives inf and NaN logits quietly: its callers check and say so in one line, not as NumPy's warnings."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            return np.concatenate([self.forward(x[i:i + batch_size], training=False)
                                   for i in range(0, len(x), batch_size)])

    def shapes(self) -> list[tuple[str, tuple]]:
        """(description, output shape) per layer, for summaries and the receptive-field lesson."""
        out, shape = [], self.input_shape
        for layer in self.layers:
            shape = layer.output_shape(shape)
            out.append((layer.describe(), shape))
        return out

    def buffers(self) -> dict[str, np.ndarray]:
        return {f"{layer.name}.{key}": value for layer in self.layers for key, value in layer.buffers().items()}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer by its stable name, as the live arrays (copy them to keep a snapshot)."""
        state = {p.name: p.value for p in self.params()}
        state.update(self.buffers())
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy `state` into this model's arrays. Names and shapes must match exactly: a ValueError says which
        entry differs (nothing is copied then)."""
        mine = self.state_dict()
        missing, unexpected = sorted(set(mine) - set(state)), sorted(set(state) - set(mine))
        if missing or unexpected:
            parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + \
                    ([f"unexpected {', '.join(unexpected[:3])}"] if unexpected else [])
            raise ValueError(f"weights do not match the model ({'; '.join(parts)})")
        for name, target in mine.items():
            if np.shape(state[name]) != target.shape:
                raise ValueError(f"{name} has shape {np.shape(state[name])}, the model needs {target.shape}")
        for name, target in mine.items():
            target[...] = state[name]

    def architecture(self) -> dict:
        """The model as data: {"input_shape": [C, H, W], "layers": [spec, ...]} (JSON-ready)."""
        return {"input_shape": list(self.input_shape), "layers": [layer.spec() for layer in self.layers]}

    def inference_copy(self) -> "Sequential":
        """A second model with its own copy of the weights, for prediction on another thread while training goes
        on. Only the named state is copied, never the activations the layers keep for backward (tens of MB for
        the cnn) or the conv's reusable buffers (sharing those would mix two models' data)."""
        # Built from the specs directly, not through `architectures` (which imports this module): the weights
        # are loaded next and inference drops nothing, so the generator is never drawn from.
        unused = np.random.default_rng(0)
        clone = Sequential([layer_from_spec(spec, unused, unused, self.dtype, init_weights=False)
                            for spec in self.architecture()["layers"]], input_shape=self.input_shape)
        clone.load_state_dict(self.state_dict())
        return clone

    @property
    def dtype(self):
        params = self.params()
        return params[0].value.dtype if params else np.float32
