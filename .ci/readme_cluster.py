"""The README's cluster example, as printed, on a small zarr array, checked against the in-memory layer.

Run by .ci/check-wheel in a venv holding only the wheel and its `dask` extra, from a folder outside the
checkout: ``python readme_cluster.py path/to/README.md``. The example is written to a script of its own
and run as ``__main__`` (its worker processes import it, hence its guard); it reads ``x.zarr`` and
writes ``y.zarr`` in the working folder.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import dask.array as da
import numpy as np
import zarr

import tconv


def cluster_example(readme: Path) -> str:
    """The python block of "## Larger than memory" that hands the work to a ``distributed.Client``."""
    text = readme.read_text()
    start = text.index("## Larger than memory\n")
    section = text[start:text.find("\n## ", start + 1)]
    blocks = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "Client(" in b]
    if len(blocks) != 1:
        sys.exit(f"readme_cluster: expected one cluster example in README's Larger than memory, "
                 f"found {len(blocks)}")
    return blocks[0]


def main() -> None:
    script = Path("cluster_example.py")
    script.write_text(cluster_example(Path(sys.argv[1])))
    # the input the README's first example writes, smaller: 2 images of 64 channels, 24 x 20
    x = np.random.default_rng(0).standard_normal((2, 64, 24, 20)).astype(np.float32)
    da.from_array(x, chunks=(1, 64, 8, 10)).to_zarr("x.zarr", mode="w")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    if done.returncode:  # its progress bar is shown only then
        sys.exit(f"readme_cluster: the example failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    y = zarr.open_array("y.zarr", mode="r")
    expected = tconv.ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1, rng=0)(x)
    assert y.shape == expected.shape == (2, 32, 48, 40), (y.shape, expected.shape)
    np.testing.assert_allclose(y[...], expected, rtol=1e-4, atol=1e-5)
    import dask
    import distributed

    print(f"readme_cluster: the README's cluster example wrote the in-memory result {y.shape} "
          f"(tconv {tconv.__version__}, dask {dask.__version__}, distributed {distributed.__version__}, "
          f"zarr {zarr.__version__})")


if __name__ == "__main__":
    main()
