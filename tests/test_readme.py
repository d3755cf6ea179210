"""The README's code runs as printed: every ```python block in order from an empty folder (the
"Larger than memory" example writing the in-memory numbers), and the `tconv apply` lines parse."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tconv

README = Path(__file__).resolve().parents[1] / "README.md"


def _section_code(title: str, language: str) -> list[str]:
    """The ```language blocks of the README's section ``## title``, in order."""
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end > 0 else None]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def test_the_readme_apply_examples_parse():
    """Every ``tconv apply`` line of the section is accepted by the command's parser."""
    from tconv import cli

    lines = [line for block in _section_code("Larger than memory", "sh") for line in block.splitlines()
             if line.startswith("tconv apply")]
    assert len(lines) == 4
    for line in lines:
        with pytest.raises(SystemExit) as done:  # parsed, then --help
            cli.main([*line.split()[1:], "--help"])
        assert done.value.code == 0


def test_every_python_block_runs_in_order_from_an_empty_folder(tmp_path):
    """What a reader meets who copies the README's ```python blocks, top to bottom, into one session
    in an empty folder (Keras on JAX, as the porting block sets it): none fails. The ```py blocks
    (JAX and Flax, tests/test_bridges_*.py) and shell blocks are run where their sections are tested."""
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 6
    script = "\n".join(f"exec(compile({block!r}, 'README.md block {i}', 'exec'), namespace)"
                       for i, block in enumerate(blocks))
    done = subprocess.run([sys.executable, "-c", f"namespace = {{'__name__': '__main__'}}\n{script}\n"
                           "print('all blocks ran')"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0 and "all blocks ran" in done.stdout, done.stderr[-3000:]
    # "Larger than memory": the zarr input went through the layer block by block (in a session and
    # on a cluster) and wrote the in-memory numbers
    example = _section_code("Larger than memory", "python")[0]
    assert "da.from_zarr" in example and "ProgressBar" in example and "to_zarr" in example
    zarr = pytest.importorskip("zarr")
    x = zarr.open_array(tmp_path / "x.zarr", mode="r")[...]
    y = zarr.open_array(tmp_path / "y.zarr", mode="r")
    layer = tconv.ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1, rng=0)
    assert y.shape == (2, 32, 512, 512) and y.chunks == (1, 32, 128, 128)
    np.testing.assert_allclose(y[...], layer(x), rtol=1e-4, atol=1e-5)
