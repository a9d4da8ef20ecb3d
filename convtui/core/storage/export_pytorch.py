"""Export a checkpoint as PyTorch would hold it: a safetensors state_dict, and `model.py` code that loads it.

`export_safetensors` writes the weights under the names of the equivalent `torch.nn.Sequential` (see
`torch_names`), with metadata recording our architecture and how inputs are scaled, so `convtui import` can
rebuild the model without guessing. `export_pytorch` writes a folder: that file as `model.safetensors` and a
readable `model.py` defining the nn.Sequential and `load()`. convtui itself never imports torch: the code is text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from convtui import __version__
from convtui.core.storage import atomic, safetensors_format
from convtui.core.storage.checkpoint import INPUT_SCALING, Checkpoint
from convtui.core.storage.torch_names import export_metadata, expected_shapes, to_torch_state, torch_modules

WEIGHTS_FILE, CODE_FILE = "model.safetensors", "model.py"


def torch_state(checkpoint: Checkpoint) -> dict[str, np.ndarray]:
    """The checkpoint's weights as the nn.Sequential's float32 state_dict."""
    state = {name: np.asarray(value, dtype=np.float32) for name, value in checkpoint.state_dict().items()}
    return to_torch_state(checkpoint.architecture, state)


def export_safetensors(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Write the weights as a PyTorch-named safetensors file (readable by `safetensors.numpy.load_file`)."""
    metadata = export_metadata(checkpoint.model_name, checkpoint.architecture, INPUT_SCALING)
    return safetensors_format.save(path, torch_state(checkpoint), metadata)


def _shape_text(shape: tuple) -> str:
    return "(N, " + ", ".join(str(n) for n in shape) + ")"


def model_source(checkpoint: Checkpoint) -> str:
    """`model.py`: the equivalent nn.Sequential as readable code, with `build()` and `load()`."""
    architecture = checkpoint.architecture
    input_shape = tuple(architecture["input_shape"])
    modules = torch_modules(architecture)
    classes = modules[-1].output_shape[0]
    lines = []
    for module in modules:
        note = f"{module.layer}: -> {_shape_text(module.output_shape)}"
        if module.cls == "ZeroPad2d":
            note = f"{module.layer}: TensorFlow SAME padding puts the odd pixel after -> " \
                   f"{_shape_text(module.output_shape)}"
        elif module.cls == "Dropout":
            note = f"{module.layer}: only while training; nothing in eval mode"
        lines.append(f"        {module.call()},  # {module.index} {note}")
    names = list(expected_shapes(architecture))
    shown_names = ", ".join(f'"{name}"' for name in names[:2]) + (", ..." if len(names) > 2 else "")
    trained = checkpoint.trained()
    return f'''"""convtui's `{checkpoint.model_name}` model as PyTorch code ({trained} trained; convtui {__version__}).

Input:  a float32 tensor of shape {_shape_text(input_shape)}, scaled exactly as convtui scales pixels:
        pixel / 255, so a uint8 0..255 image becomes 0.0..1.0 (no mean/std normalisation).
Output: logits of shape (N, {classes}), one score per class; softmax turns them into probabilities, argmax
        gives the predicted digit.

Needs `pip install torch safetensors`. Usage:

    import torch
    from model import load

    model = load()  # eval mode, weights from {WEIGHTS_FILE} next to this file
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)

The weights are stored under this nn.Sequential's state_dict names ({shown_names}). nn.Linear keeps
its weight as (out, in): convtui's dense weights (in, out), transposed. Conv weights are (out, in, kh, kw) in both.
"""

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

WEIGHTS = Path(__file__).with_name("{WEIGHTS_FILE}")


def build() -> nn.Sequential:
    """The network, layer by layer as convtui runs it (comments: convtui's layer name and the output shape).
    Pooling has ceil_mode=True because convtui keeps a partial window at the edge (7x7 pooled by 2 gives 4x4)."""
    return nn.Sequential(
{chr(10).join(lines)}
    )


def load(path=WEIGHTS) -> nn.Sequential:
    """The trained model in eval mode (Dropout off), its weights loaded from `path`."""
    model = build()
    model.load_state_dict(load_file(str(path)))  # strict: every name and shape must match
    return model.eval()


if __name__ == "__main__":
    model = load()
    print(model)
    with torch.no_grad():
        print("output for a blank image:", model(torch.zeros(1, {", ".join(map(str, input_shape))})).shape)
'''


def export_pytorch(checkpoint: Checkpoint, folder: str | Path) -> list[Path]:
    """Write `folder/model.py` and `folder/model.safetensors` (the folder is created if needed)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise atomic.WriteError(f"cannot create {folder}: {exc.strerror or exc}") from None
    source = model_source(checkpoint)
    compile(source, CODE_FILE, "exec")  # a generator bug must fail here, not on the learner's machine
    weights = export_safetensors(checkpoint, folder / WEIGHTS_FILE)
    code = folder / CODE_FILE
    atomic.write_text(code, source)
    return [code, weights]
