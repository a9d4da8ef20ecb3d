"""The numeric core stays headless: importing it never pulls in textual (checked in a clean subprocess)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Every module of the core, found on disk (never a hand-kept list that a new module could slip past).
CORE_MODULES = ["convtui.core"] + sorted(
    "convtui.core." + ".".join(path.relative_to(ROOT / "convtui" / "core").with_suffix("").parts)
    for path in (ROOT / "convtui" / "core").rglob("*.py") if path.name != "__init__.py")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_core_never_imports_textual():
    code = ("import importlib, sys\n"
            f"for name in {CORE_MODULES!r}:\n"
            "    importlib.import_module(name)\n"
            "bad = [m for m in ('textual', 'plotext', 'textual_plotext', 'rich', 'convtui.tui') if m in sys.modules]\n"
            "print('leaked:', bad)\n")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "leaked: []"


def test_cli_parser_does_not_load_numpy_so_threads_can_still_be_set():
    # OpenBLAS reads OPENBLAS_NUM_THREADS once, when numpy loads: `convtui train --threads T` sets it in run().
    result = run_python("import sys\nfrom convtui.cli import build_parser\nbuild_parser()\n"
                        "print('numpy' in sys.modules)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
