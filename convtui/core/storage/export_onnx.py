"""Export a checkpoint as an ONNX graph (opset 17), for Netron and ONNX Runtime.

The graph is built node by node from the architecture with the `onnx` package, an optional extra
(`pip install 'convtui[export]'`) imported only here and only when asked. One node per layer: Conv (with the
exact, possibly uneven, padding), Relu, Sigmoid, MaxPool / AveragePool (ceil_mode, as our pooling keeps partial
edge windows), Flatten, and Gemm for a dense layer, which takes our (in, out) weight as it is. Dropout has no
node: it does nothing at inference. Input `input` is (N, C, H, W) float32 scaled pixel / 255; output `logits`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from convtui import __version__
from convtui.core import ops
from convtui.core.storage import atomic
from convtui.core.storage.checkpoint import INPUT_SCALING, Checkpoint
from convtui.core.storage.torch_names import ExportError, torch_modules

OPSET = 17
IR_VERSION = 8  # the oldest IR that carries opset 17: older ONNX Runtimes open the file too
INSTALL_HINT = "install it with pip install 'convtui[export]'"


def _import_onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ExportError(f"ONNX export needs the onnx package, which is not installed: {INSTALL_HINT}") from None
    return onnx, helper, numpy_helper


def build_onnx_model(checkpoint: Checkpoint):
    """The checkpoint as an `onnx.ModelProto` (ExportError if the architecture cannot be expressed exactly)."""
    onnx, helper, numpy_helper = _import_onnx()
    architecture = checkpoint.architecture
    torch_modules(architecture)  # the same exactness checks as the PyTorch export (pooled sizes)
    state = checkpoint.state_dict()
    shape = tuple(architecture["input_shape"])
    nodes, weights, current = [], [], "input"

    def weight(name: str, value) -> str:
        weights.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    for spec in architecture["layers"]:
        kind, name = spec["kind"], spec["name"]
        output = name
        if kind == "Conv2D":
            (f_h, f_w), (s_h, s_w) = ops.pair(spec["kernel_size"]), ops.pair(spec["stride"])
            top, bottom, left, right = ops.resolve_padding(spec["padding"], shape[1], shape[2], f_h, f_w, s_h, s_w)
            nodes.append(helper.make_node(
                "Conv", [current, weight(f"{name}.w", state[f"{name}.w"]), weight(f"{name}.b", state[f"{name}.b"])],
                [output], name=name, kernel_shape=[f_h, f_w], strides=[s_h, s_w],
                pads=[top, left, bottom, right]))  # ONNX order: all begins, then all ends
            shape = (spec["out_channels"], ops.conv_output_size(shape[1], f_h, s_h, top, bottom),
                     ops.conv_output_size(shape[2], f_w, s_w, left, right))
        elif kind in ("MaxPool2D", "MeanPool2D"):
            (f_h, f_w), (s_h, s_w) = ops.pair(spec["pool"]), ops.pair(spec["stride"])
            extra = {"count_include_pad": 0} if kind == "MeanPool2D" else {}
            nodes.append(helper.make_node("MaxPool" if kind == "MaxPool2D" else "AveragePool", [current], [output],
                                          name=name, kernel_shape=[f_h, f_w], strides=[s_h, s_w], ceil_mode=1,
                                          **extra))
            shape = (shape[0], ops.pool_output_size(shape[1], f_h, s_h), ops.pool_output_size(shape[2], f_w, s_w))
        elif kind == "Flatten":
            nodes.append(helper.make_node("Flatten", [current], [output], name=name, axis=1))
            shape = (int(np.prod(shape)),)
        elif kind == "Dense":
            # Gemm: Y = A @ B + C, with B our (in, out) weight as it is.
            nodes.append(helper.make_node(
                "Gemm", [current, weight(f"{name}.w", state[f"{name}.w"]), weight(f"{name}.b", state[f"{name}.b"])],
                [output], name=name))
            shape = (spec["out_features"],)
        elif kind in ("ReLU", "Sigmoid"):
            nodes.append(helper.make_node("Relu" if kind == "ReLU" else "Sigmoid", [current], [output], name=name))
        else:  # Dropout: identity at inference, so no node
            continue
        current = output
    nodes[-1].output[0] = "logits"
    input_shape = list(architecture["input_shape"])
    graph = helper.make_graph(
        nodes, f"convtui_{checkpoint.model_name.replace('-', '_')}",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["N", shape[0]])],
        initializer=weights,
        doc_string=f"input: (N, {', '.join(map(str, input_shape))}) float32, {INPUT_SCALING}; output: logits")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="convtui",
                              producer_version=__version__,
                              doc_string=f"convtui {checkpoint.model_name}, {checkpoint.trained()} trained")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"convtui.model": checkpoint.model_name, "convtui.input": INPUT_SCALING,
                                   "convtui.architecture": json.dumps(_jsonable(architecture))})
    onnx.checker.check_model(model)
    return model


def _jsonable(architecture: dict) -> dict:
    return {"input_shape": list(architecture["input_shape"]), "layers": list(architecture["layers"])}


def export_onnx(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Write the checkpoint as an ONNX file at `path`."""
    model = build_onnx_model(checkpoint)
    path = Path(path)
    atomic.write_with(path, lambda handle: handle.write(model.SerializeToString()))
    return path
