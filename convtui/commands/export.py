"""`convtui export RUN_DIR|CHECKPOINT --format {safetensors,pytorch,onnx} --out PATH`: take the model anywhere.

- safetensors: one file, the weights under the equivalent torch.nn.Sequential's state_dict names, with metadata
  recording the architecture and the input scaling (`convtui import` reads it back).
- pytorch: a folder holding `model.py` (the nn.Sequential as readable code, and `load()`) and `model.safetensors`.
- onnx: one ONNX file (opset 17) for Netron and ONNX Runtime; needs the extra `pip install 'convtui[export]'`.

Exit codes: 0 written, 1 a checkpoint that cannot be read, a missing onnx package or a file that cannot be
written, 2 a bad flag.
"""

from __future__ import annotations

from pathlib import Path

from convtui.core.errors import EXIT_OK, UsageError

FORMATS = ("safetensors", "pytorch", "onnx")
SUFFIXES = {".safetensors": "safetensors", ".onnx": "onnx"}


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "export", help="write a checkpoint as safetensors, PyTorch code + weights, or ONNX",
        description="Export a trained model to safetensors (PyTorch state_dict names), a PyTorch model.py with "
                    "its weights, or ONNX. Inputs stay as convtui feeds them: (N, 1, 28, 28) float32, pixel / 255.")
    parser.add_argument("source", metavar="RUN_DIR|CHECKPOINT", help="a run folder or its checkpoint.npz")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="safetensors (a file), pytorch (a folder: model.py + model.safetensors) or onnx "
                             "(a file); default: from --out's suffix (.safetensors, .onnx, else pytorch)")
    parser.add_argument("--out", metavar="PATH", required=True,
                        help="the file to write (safetensors, onnx) or the folder (pytorch)")


def _format_of(args) -> str:
    if args.format is not None:
        return args.format
    return SUFFIXES.get(Path(args.out).suffix.lower(), "pytorch")


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} KB"


def run(args) -> int:
    from convtui.core.storage.atomic import WriteError
    from convtui.core.storage.checkpoint import load_checkpoint
    from convtui.core.storage.run_folder import CHECKPOINT_FILE

    source, out, fmt = Path(args.source), Path(args.out), _format_of(args)
    if not str(args.out).strip():
        raise UsageError("--out needs a path")
    checkpoint_path = source / CHECKPOINT_FILE if source.is_dir() else source
    if fmt == "pytorch":
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} is a file; the pytorch format writes a folder (model.py and weights)")
    elif out.is_dir():
        raise UsageError(f"--out {out} is a folder; the {fmt} format writes one file")
    elif out.exists() and checkpoint_path.exists() and out.resolve() == checkpoint_path.resolve():
        raise UsageError(f"--out {out} is the checkpoint being exported")
    checkpoint = load_checkpoint(checkpoint_path)
    # Files the export writes over are named as replaced: exporting again is normal, but never silent.
    there_before = ({p.resolve() for p in out.iterdir()} if out.is_dir() else
                    {out.resolve()} if out.exists() else set())
    if fmt != "pytorch":
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(f"cannot create {out.parent}: {exc.strerror or exc}") from None
    if fmt == "safetensors":
        from convtui.core.storage.export_pytorch import export_safetensors

        written = [export_safetensors(checkpoint, out)]
    elif fmt == "pytorch":
        from convtui.core.storage.export_pytorch import export_pytorch

        written = export_pytorch(checkpoint, out)
    else:
        from convtui.core.storage.export_onnx import export_onnx

        written = [export_onnx(checkpoint, out)]
    print(f"exported {checkpoint.model_name} ({checkpoint.trained()} trained, {checkpoint.path}) as {fmt}:")
    for path in written:
        replaced = ", replaced the file that was there" if path.resolve() in there_before else ""
        print(f"  {path} ({_size(path)}{replaced})")
    return EXIT_OK
