"""The architecture as the tree shows it: imports go one way, layers know no exporter, each rule
is stated once (every entry point refuses a bad output_padding with the same words)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import tconv
from tconv.interop import convert

SRC = Path(tconv.__file__).parent

#: What each subpackage may import from tconv (besides itself).
ALLOWED = {
    # functional picks and runs an algorithm; a dask input goes to whatever scale registered
    "core": {"engine"},
    "engine": {"core"},
    "scale": {"core", "engine"},
    "explainer": {"core", "engine"},
    "interop": {"core"},
}


def _tconv_imports(path: Path) -> set[str]:
    """The tconv subpackages a module imports (relative imports resolved)."""
    package = path.relative_to(SRC).parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                parts = base + (node.module.split(".") if node.module else [])
                if not parts:  # "from .. import x": the names are subpackages
                    parts = [alias.name for alias in node.names]
                    found.update(parts)
                    continue
                found.add(parts[0])
            elif node.module and node.module.startswith("tconv."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("tconv."))
    return found


def _module_graph() -> dict[str, set[str]]:
    """Every module of src/tconv (``tconv.engine.fast``, packages by their name) and the tconv modules it
    imports, at module level or inside a function alike; ``from .x import name`` imports module
    ``x.name`` when there is one, else ``x``."""
    def name_of(path: Path) -> str:
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name_of(p): p for p in SRC.rglob("*.py")}

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = (package.split(".")[: len(package.split(".")) - node.level + 1] if node.level
                        else [])
                target = ".".join(base + ([node.module] if node.module else []))
                if target.split(".")[0] == "tconv":
                    targets.update(f"{target}.{a.name}" if f"{target}.{a.name}" in modules else known(target)
                                   for a in node.names)
            elif isinstance(node, ast.Import):
                targets.update(known(a.name) for a in node.names if a.name.split(".")[0] == "tconv")
        graph[module] = targets - {module, None}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycle():
    graph = _module_graph()
    assert graph["tconv.engine.phase"] >= {"tconv.engine.fast", "tconv.engine.taps"}  # edges are seen
    assert "tconv.scale.dask" in graph["tconv.scale"]  # a function-level import counts too
    assert _cycles(graph) == []
    # and the detector finds one where there is one
    assert _cycles({**graph, "tconv.engine.taps": {"tconv.engine.phase"}}) == [
        ["tconv.engine.fast", "tconv.engine.phase", "tconv.engine.taps"]]  # phase -> fast -> taps


def test_a_dask_input_reaches_scale_through_the_registry_and_import_tconv_loads_no_dask():
    from tconv.core import functional
    from tconv.scale import arrays

    assert [claims for claims, _ in functional._DEFERRED] == [arrays.is_dask]
    code = ("import sys, tconv; print(sorted(m for m in sys.modules if m.split('.')[0] == 'dask' "
            "or m == 'tconv.scale.dask'))")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_go_one_way(package):
    for path in sorted((SRC / package).glob("*.py")):
        extra = _tconv_imports(path) - ALLOWED[package] - {package}
        assert not extra, f"{path.name} imports {extra}"


def test_layers_know_no_exporter_and_explain_shadows_no_module():
    for name in ("to_onnx", "from_torch", "to_torch"):
        assert not hasattr(tconv.ConvTranspose2d, name) and not hasattr(tconv.Conv2d, name)
    assert callable(tconv.explain)
    assert importlib.util.find_spec("tconv.explain") is None


def test_the_output_padding_rule_says_the_same_everywhere():
    rule = "output_padding must be smaller than either stride or dilation in every dimension"
    x, w = np.ones((1, 1, 3)), np.ones((1, 1, 3))
    calls = [
        lambda: tconv.conv_transpose(x, w, stride=2, output_padding=2),
        lambda: tconv.ConvTranspose1d(1, 1, 3, stride=2, output_padding=2),
        lambda: tconv.explain(x[0], w, stride=2, output_padding=2),
        lambda: convert(dict(in_channels=1, out_channels=1, kernel_size=(3,), stride=2, output_padding=2),
                        "torch", "tconv"),
        lambda: tconv.explainer.output_shape((3,), 3, stride=2, output_padding=2),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=rule):
            call()
