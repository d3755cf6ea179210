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
    # functional picks and runs an algorithm, and hands a dask input to scale (imported only then)
    "core": {"engine", "scale"},
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
