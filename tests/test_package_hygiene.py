"""Package hygiene: importing convtui changes nothing in the process, the core stays headless, the module graph
has no cycles and no module grows past about 400 lines.

The import checks run in fresh subprocesses (an import is only observable once per process) and walk the
package with `pkgutil.walk_packages`, so a new module is covered the day it is added. `convtui.__main__` is the
one module left out: importing it *is* running the program.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from convtui import runtime

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "convtui"
MAX_LINES = 400
HEADLESS_FORBIDDEN = ("textual", "textual_plotext", "plotext", "rich", "convtui.tui")


def run_python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=env)


def clean_env() -> dict:
    """This environment without the variables `runtime.configure` would set, so that an import which sets one
    (even with `setdefault`) shows up as a change."""
    env = {k: v for k, v in os.environ.items()
           if k not in runtime.LAYER_VARIABLES and k not in runtime.THREAD_VARIABLES}
    env["PYTHONPATH"] = str(ROOT)
    return env


# Runs in the subprocess: baseline first, then every module, checking after each one so an offender is named.
SIDE_EFFECTS_SCRIPT = textwrap.dedent("""
    import json, os, pkgutil, sys
    os.umask(0o027)  # not the usual 0o022, so an import that "restores" a default is caught too

    def umask():
        with open("/proc/self/status") as status:
            return next(line.split()[1] for line in status if line.startswith("Umask:"))

    import numba
    numba.set_num_threads(1)  # not the default (all cores), so an import that sets "all cores" is caught
    def state():
        return {"environ": dict(os.environ), "umask": umask(), "numba_threads": numba.get_num_threads()}

    baseline = state()
    import convtui
    checked, changes = ["convtui"], []
    def check(name):
        now = state()
        for key in baseline:
            if now[key] != baseline[key]:
                if key == "environ":
                    diff = {k: (baseline[key].get(k), now[key].get(k))
                            for k in set(now[key]) | set(baseline[key]) if now[key].get(k) != baseline[key].get(k)}
                else:
                    diff = (baseline[key], now[key])
                changes.append([name, key, repr(diff)])
                baseline[key] = now[key]  # report each change once, at the module that made it
    check("convtui")
    for info in pkgutil.walk_packages(convtui.__path__, "convtui."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        __import__(info.name)
        checked.append(info.name)
        check(info.name)
    print(json.dumps({"checked": checked, "changes": changes}))
""")


@pytest.fixture(scope="module")
def import_report() -> dict:
    result = run_python(SIDE_EFFECTS_SCRIPT, env=clean_env())
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def expected_modules(folder: Path, prefix: str) -> set[str]:
    """Every module file under `folder`, named as an import would name it (packages by their folder)."""
    names = set()
    for path in folder.rglob("*.py"):
        if not (path.parent / "__init__.py").exists() or path.stem == "__main__":
            continue
        parts = path.relative_to(folder).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        names.add(".".join((prefix, *parts)) if parts else prefix)
    return names


@pytest.mark.slow
def test_the_walk_reaches_every_module(import_report):
    assert set(import_report["checked"]) == expected_modules(PACKAGE, "convtui")


@pytest.mark.slow
def test_importing_any_module_leaves_environ_umask_and_numba_threads_alone(import_report):
    assert import_report["changes"] == [], "\n".join(" ".join(change) for change in import_report["changes"])


@pytest.mark.slow
def test_core_modules_never_import_the_terminal_libraries():
    code = textwrap.dedent(f"""
        import json, pkgutil, sys
        import convtui.core
        forbidden = {HEADLESS_FORBIDDEN!r}
        checked, leaks = ["convtui.core"], []
        for info in pkgutil.walk_packages(convtui.core.__path__, "convtui.core."):
            __import__(info.name)
            checked.append(info.name)
            leaked = [m for m in forbidden if m in sys.modules]
            if leaked:
                leaks.append([info.name, leaked])
                break
        print(json.dumps({{"checked": checked, "leaks": leaks}}))
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["leaks"] == []
    assert set(report["checked"]) == expected_modules(PACKAGE / "core", "convtui.core")


@pytest.mark.slow
def test_importing_the_core_and_the_app_keeps_the_environment():
    """The issue's own check, verbatim."""
    result = subprocess.run(
        [sys.executable, "-c",
         "import os; e = dict(os.environ); import convtui.core, convtui.tui.app; assert e == dict(os.environ)"],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------------------ the module graph

def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the convtui modules it imports, at module level or inside functions.

    `from a.b import c` points at `a.b.c` when that is a module, else at `a.b`. Importing `a.b.c` also runs the
    `__init__` of `a` and `a.b`, but those are not counted as edges: a package that re-exports its submodules
    would otherwise be "a cycle" with each of them.
    """
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    packages = {name for name, path in files.items() if path.name == "__init__.py"}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        edges = graph.setdefault(name, set())
        package = name if name in packages else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names if alias.name in files)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from .x import y, from .. import z
                    base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    target = f"{source}.{alias.name}"
                    if target in files:
                        edges.add(target)
                    elif source in files:
                        edges.add(source)
        edges.discard(name)
    return graph


def cycle_components(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan): each is one tangle of cycles."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(set(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per tangle, as a closed path."""
    return [_path_through(graph, component) for component in cycle_components(graph)]


def _path_through(graph, component) -> list[str]:
    """A shortest closed path inside one strongly connected component, starting at its first module by name."""
    start = min(component)
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for target in sorted(graph[path[-1]] & component):
            if target == start:
                return path + [start]
            if target not in seen:
                seen.add(target)
                paths.append(path + [target])
    return sorted(component)


def test_the_graph_sees_module_and_function_level_imports():
    graph = import_graph()
    assert "convtui.core.ops.conv_direct" in graph["convtui.core.ops.conv"]  # from convtui.core.ops import conv_direct
    assert "convtui.core.ops" in graph["convtui.core.training.snapshots"]  # from convtui.core.ops import softmax
    # The app imports its screens inside methods, so they are loaded only when shown.
    assert "convtui.tui.screens.help" in graph["convtui.tui.app"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def describe(graph, components) -> str:
    return "import cycles:\n" + "\n".join(
        f"{' -> '.join(_path_through(graph, c))} (modules in the tangle: {', '.join(sorted(c))})" for c in components)


def test_no_import_cycles_inside_the_package():
    graph = import_graph()
    components = cycle_components(graph)
    assert components == [], describe(graph, components)


def test_no_module_is_over_400_lines():
    long = {str(path.relative_to(ROOT)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"
