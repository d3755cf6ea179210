"""Scale: the same operations on arrays larger than memory, chunked by dask (:mod:`tconv.scale.dask`).

Nothing here is imported by ``import tconv``; a dask argument to any public function or layer loads it.
"""
