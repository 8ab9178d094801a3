"""The package's shape: imports point down the layers only, and there is no import cycle --
function-local imports included, so none can be hiding one."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnvsdnn"
# The layers, top to bottom (the README's Architecture section draws them). A module may import
# modules of its own package and of packages in lower layers; packages of one layer may import
# each other as long as no cycle forms.
LAYERS = [
    {"__main__"},
    {"cli"},
    {"analysis", "bench"},
    {"run"},
    {"config"},
    {"engines", "data", "evaluation"},
    {"errors", "ui", "env", "host", "safe_io", "__init__"},
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every cnnvsdnn module ``name`` imports, at any depth of its code."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:  # `import a.b.c` where only a.b is ours, say
                t = t.rpartition(".")[0]
            if t.startswith("cnnvsdnn") and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_imports_of_every_kind():
    """Relative, absolute, function-local and submodule imports are all edges."""
    g = _graph()
    assert "cnnvsdnn.engines.layer_types" in g["cnnvsdnn.engines.numba.model"]  # from ..x import
    assert "cnnvsdnn.run.loop" in g["cnnvsdnn.run"]  # from .loop import train
    assert "cnnvsdnn.analysis.summarize" in g["cnnvsdnn.cli.commands"]  # from ..a import mod
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_even_through_function_local_imports():
    assert _cycles(_graph()) == []


def test_every_package_has_a_layer():
    assert {_package(m) for m in _graph()} <= set(RANK)


def test_imports_point_down_the_layers():
    up = sorted(f"{a} -> {b}" for a, targets in _graph().items() for b in targets
                if RANK[_package(b)] < RANK[_package(a)])
    assert up == [], "imports that point up a layer:\n" + "\n".join(up)


def test_packages_of_one_layer_form_no_cycle():
    pkg_graph: dict[str, set[str]] = {}
    for a, targets in _graph().items():
        for b in targets:
            if _package(a) != _package(b):
                pkg_graph.setdefault(_package(a), set()).add(_package(b))
    assert _cycles(pkg_graph) == []
