"""Scale: the same operations on arrays larger than memory, chunked by dask (:mod:`tconv.scale.dask`).

``import tconv`` imports only this package's registration (:func:`tconv.core.functional.register_array_type`
of dask arrays, told apart by :mod:`tconv.scale.arrays`); a dask argument to any public function or layer
loads :mod:`tconv.scale.dask`, and dask with it.
"""

from ..core.functional import register_array_type
from .arrays import is_dask


def _dask() -> object:
    from . import dask  # which imports dask only inside its functions

    return dask


# ``import tconv`` imports this package (and no dask): every public function and layer then hands a
# dask argument to tconv.scale.dask, loaded by the first one
register_array_type(is_dask, _dask)
