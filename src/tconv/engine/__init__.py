"""How the numbers are computed: the algorithm registry and the reference algorithms
(:mod:`.algorithms`), the fast engine (:mod:`.fast`: BLAS products and worker threads) and its
compiled loops (:mod:`.kernels`, numba, loaded on first use)."""
