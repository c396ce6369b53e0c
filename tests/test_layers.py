"""Imports point down the layers written in docs/architecture.md, no module imports itself through others,
and loading the configuration loads no implementation."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = (
    "hold",  # the package root: its version only
    "hold.utils",
    "hold.geometry",
    "config",  # the hold.config package, preprocess.config, hold.data.synthetic.config
    "hold.hand",
    "hold.data",
    "hold.fields",
    "hold.render",
    "hold.params",
    "hold.losses",
    "hold.diagnosis",
    "hold.model",
    "hold.data.synthetic",
    "hold.run",
    "hold.run_logger",
    "hold.system",
    "hold.refine",
    "hold.stages",
    "hold.final",
    "hold.eval",
    "hold.export",
    "preprocess",
    "hold.cli",
    "hold.demo",
    "hold.suite",
)
"""Lowest first: a module may import from its own layer and the layers before it."""
IMPLEMENTATION_PACKAGES = ("hold.model", "hold.render", "hold.eval", "hold.export", "hold.refine")


def layer(module: str) -> str:
    """The layer of a dotted module name: the longest prefix in LAYERS, config modules apart."""
    if module == "hold.config" or module.startswith("hold.config.") or module.endswith(".config"):
        return "config"
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return ".".join(parts[:n])
    raise AssertionError(f"{module}: in no layer of tests/test_layers.py")


def modules() -> dict[str, Path]:
    out = {}
    for top in ("hold", "preprocess"):
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def imports(path: Path, known: dict[str, Path], module_level_only: bool = False) -> set[str]:
    """The project modules ``path`` imports (``from pkg import submodule`` counts as the submodule)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    out = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m in known}


def test_imports_point_down_the_layers():
    known = modules()
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = []
    for name, path in known.items():
        for target in imports(path, known):
            if rank[layer(target)] > rank[layer(name)]:
                upward.append(f"{name} ({layer(name)}) imports {target} ({layer(target)})")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycles():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue  # a package and its own modules (__init__ docstrings only)
            if state.get(nxt) == 1:
                cycles.append(" → ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(cycles)


def test_loading_the_configuration_loads_no_implementation():
    code = (
        "import sys, hold.config; "
        "print('\\n'.join(m for m in sys.modules if m.startswith(('hold', 'torch'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names = loaded.stdout.split()
    assert "torch" not in names
    heavy = [
        m
        for m in names
        if m in IMPLEMENTATION_PACKAGES or m.startswith(tuple(f"{p}." for p in IMPLEMENTATION_PACKAGES))
    ]
    assert not heavy, heavy
