"""Compiled loops (numba) for what BLAS cannot do: col2im, im2col and the direct (grouped) kernel.

Every kernel works on rank-3 spatial arrays; 1-d and 2-d problems arrive with leading singleton
dimensions (size 1, kernel 1, stride 1, dilation 1, crop 0). Symbols as in
:mod:`tconv.engine.algorithms`; ``p`` is the crop before (``spec.core_crop``), so small pixel ``i``
and tap ``t`` meet large pixel ``j = i*s + t*d - p``.

:func:`subpixel_tiles` calls BLAS itself, through the product function it is given
(:func:`tconv.engine.blas.gemm`: NumPy's BLAS, which :mod:`tconv.engine.threads` limits).

Every kernel is serial and releases the GIL: the engine's worker threads (:mod:`tconv.engine.fast`)
run them side by side on shares that never write the same pixel. None is a numba ``parallel=True``
function: numba's workqueue threading layer aborts the process when two Python threads enter
parallel code at once, and tconv is called from several threads (servers, data loaders, dask).

Compiled on first use and cached on disk (``cache=True``): a new process pays only the load.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@numba.njit(cache=True, inline="always")
def _span(size_in, s, off, size_out):
    """The ``i`` in ``[0, size_in)`` with ``0 <= i*s + off < size_out``, as (lo, hi)."""
    lo = 0
    if off < 0:
        lo = (-off + s - 1) // s
    hi = size_in
    last = size_out - 1 - off
    if last < 0:
        return 0, 0
    if last // s + 1 < hi:
        hi = last // s + 1
    return lo, max(lo, hi)


def _col2im(cols, y, n_first, c_first, f0, f1, f2, s0, s1, s2, d0, d1, d2, p0, p1, p2, bias, assign):
    """Plane-by-plane col2im: ``y[n_first+b, c_first+o, j] += cols[o, t0, t1, t2, b, i0-f0, i1-f1, i2-f2]``
    with ``j = i*s + t*d - p``.

    cols: ``(Cl, k0, k1, k2, B, R0, R1, R2)`` (a GEMM result: rows (o, t), columns input pixels);
    y: ``(N, C, L0, L1, L2)``, updated in place; one task per output plane. With ``assign``
    (kernel == stride, dilation 1, no output_padding past the full result: every pixel is met by
    exactly one tap) pixels are written once, ``cols + bias[c_first+o]``, so ``y`` needs no
    initialisation.
    """
    Cl, k0, k1, k2, B, R0, R1, n2 = cols.shape
    L0, L1, L2 = y.shape[2], y.shape[3], y.shape[4]
    for job in range(B * Cl):
        b = job // Cl
        o = job % Cl
        plane = y[n_first + b, c_first + o]
        add = bias[c_first + o] if assign else 0.0
        for t0 in range(k0):
            a0_lo, a0_hi = _span(R0, s0, f0 * s0 + t0 * d0 - p0, L0)
            for t1 in range(k1):
                a1_lo, a1_hi = _span(R1, s1, f1 * s1 + t1 * d1 - p1, L1)
                for t2 in range(k2):
                    off2 = f2 * s2 + t2 * d2 - p2
                    i2_lo, i2_hi = _span(n2, s2, off2, L2)
                    if i2_hi <= i2_lo:
                        continue
                    start = i2_lo * s2 + off2
                    stop = (i2_hi - 1) * s2 + off2 + 1
                    src = cols[o, t0, t1, t2, b]
                    for a0 in range(a0_lo, a0_hi):
                        j0 = (f0 + a0) * s0 + t0 * d0 - p0
                        for a1 in range(a1_lo, a1_hi):
                            j1 = (f1 + a1) * s1 + t1 * d1 - p1
                            # views, not offsets: numba then drops its negative-index checks
                            dst = plane[j0, j1, start:stop:s2]
                            row = src[a0, a1, i2_lo:i2_hi]
                            if assign:
                                for i in range(i2_hi - i2_lo):
                                    dst[i] = row[i] + add
                            else:
                                for i in range(i2_hi - i2_lo):
                                    dst[i] += row[i]


def _col2im_phased(cols, y, n_first, c_first, f0, f1, f2, s0, s1, s2, d0, d1, d2, p0, p1, p2,
                   j0_lo, j0_hi, j1_lo, j1_hi, j2_lo, j2_hi, acc):
    """:func:`_col2im` for a last stride ``s2 > 1``: each plane's sums are gathered per phase of the
    last dimension, where a tap's input row lands as one contiguous run (additions that vectorise,
    instead of read-modify-writes ``s2`` apart), then written into the plane once.

    ``acc``: scratch of at least ``J0*J1*s2*M2`` elements (``J*`` the visited output rows,
    ``M2 = n2 + (k2-1)*d2//s2 + 1``); its element ``[.., q, m]`` sums output ``j2 = (f2+m)*s2 + q - p2``.
    Only output pixels in ``[j*_lo, j*_hi)`` are visited: this chunk reaches no other; the sums are
    added to ``y``. (Where each pixel meets one tap, kernel == stride, :func:`_col2im` writes them
    in one pass; here that would be three.)
    """
    Cl, k0, k1, k2, B, R0, R1, n2 = cols.shape
    L0, L1 = y.shape[2], y.shape[3]
    M2 = n2 + ((k2 - 1) * d2) // s2 + 1
    J0, J1 = j0_hi - j0_lo, j1_hi - j1_lo
    if J0 <= 0 or J1 <= 0 or j2_hi <= j2_lo:
        return
    rows = acc[: J0 * J1 * s2 * M2].reshape(J0, J1, s2, M2)
    for job in range(B * Cl):
        b = job // Cl
        o = job % Cl
        plane = y[n_first + b, c_first + o]
        rows[:] = 0
        for t0 in range(k0):
            a0_lo, a0_hi = _span(R0, s0, f0 * s0 + t0 * d0 - p0, L0)
            for t1 in range(k1):
                a1_lo, a1_hi = _span(R1, s1, f1 * s1 + t1 * d1 - p1, L1)
                for t2 in range(k2):
                    q = (t2 * d2) % s2
                    shift = (t2 * d2) // s2
                    src = cols[o, t0, t1, t2, b]
                    for a0 in range(a0_lo, a0_hi):
                        j0 = (f0 + a0) * s0 + t0 * d0 - p0
                        if j0 < j0_lo or j0 >= j0_hi:
                            continue
                        for a1 in range(a1_lo, a1_hi):
                            j1 = (f1 + a1) * s1 + t1 * d1 - p1
                            if j1 < j1_lo or j1 >= j1_hi:
                                continue
                            # views from index 0: numba drops its negative-index checks, vectorises
                            dst = rows[j0 - j0_lo, j1 - j1_lo, q, shift : shift + n2]
                            row = src[a0, a1]
                            for i in range(n2):
                                dst[i] += row[i]
        for q in range(s2):
            # the visited pixels of phase q: j2 = (f2+m)*s2 + q - p2 in [j2_lo, j2_hi), 0 <= m < M2
            m_lo = max(0, -((q - p2 - j2_lo) // s2) - f2)
            m_hi = min(M2, (j2_hi - 1 + p2 - q) // s2 + 1 - f2)
            if m_hi <= m_lo:
                continue
            first = (f2 + m_lo) * s2 + q - p2
            for j0 in range(j0_lo, j0_hi):
                for j1 in range(j1_lo, j1_hi):
                    dst = plane[j0, j1, first : first + (m_hi - m_lo - 1) * s2 + 1 : s2]
                    src = rows[j0 - j0_lo, j1 - j1_lo, q, m_lo:m_hi]
                    for m in range(m_hi - m_lo):
                        dst[m] += src[m]


def _im2col(big, cols, n_first, c_first, f0, f1, f2, s0, s1, s2, d0, d1, d2, p0, p1, p2):
    """The transpose of :func:`_col2im`: ``cols[o, t0, t1, t2, b, i0-f0, i1-f1, i2-f2] =
    big[n_first+b, c_first+o, j]`` with ``j = i*s + t*d - p``, zero where ``j`` falls outside.

    big: ``(N, C, L0, L1, L2)``; cols: ``(Cl, k0, k1, k2, B, R0, R1, R2)``, overwritten.
    """
    Cl, k0, k1, k2, B, R0, R1, n2 = cols.shape
    L0, L1, L2 = big.shape[2], big.shape[3], big.shape[4]
    for job in range(B * Cl):
        b = job // Cl
        o = job % Cl
        plane = big[n_first + b, c_first + o]
        for t0 in range(k0):
            a0_lo, a0_hi = _span(R0, s0, f0 * s0 + t0 * d0 - p0, L0)
            for t1 in range(k1):
                a1_lo, a1_hi = _span(R1, s1, f1 * s1 + t1 * d1 - p1, L1)
                for t2 in range(k2):
                    dst = cols[o, t0, t1, t2, b]
                    off2 = f2 * s2 + t2 * d2 - p2
                    i2_lo, i2_hi = _span(n2, s2, off2, L2)
                    for a0 in range(R0):
                        for a1 in range(R1):
                            row = dst[a0, a1]
                            if a0 < a0_lo or a0 >= a0_hi or a1 < a1_lo or a1 >= a1_hi:
                                row[:] = 0
                                continue
                            row[:i2_lo] = 0
                            row[i2_hi:] = 0
                            if i2_hi <= i2_lo:
                                continue
                            j0 = (f0 + a0) * s0 + t0 * d0 - p0
                            j1 = (f1 + a1) * s1 + t1 * d1 - p1
                            src = plane[j0, j1, i2_lo * s2 + off2 : (i2_hi - 1) * s2 + off2 + 1 : s2]
                            part = row[i2_lo:i2_hi]
                            for i in range(i2_hi - i2_lo):
                                part[i] = src[i]


def _direct(x, w, y, groups, tab0, cnt0, tab1, cnt1, ptab, pcnt, s2, p2, first, last):
    """``y[n, g*Cl+o, j] = sum x[n, g*Cs+c, i] * w[g*Cs+c, o, t]`` for few channels per group
    (depthwise), output-stationary: every output pixel is written once.

    x: ``(N, G*Cs, n0, n1, n2)``, w: ``(G*Cs, Cl, k0, k1, k2)``, y: ``(N, G*Cl, L0, L1, L2)``, written.
    ``tab0/cnt0``, ``tab1/cnt1``: per output coordinate of the first two dimensions the ``(t, i)``
    that reach it (:func:`tconv.engine.taps.reach_table`); ``ptab/pcnt``: per phase ``q`` of the last
    dimension its taps ``(t, u)`` (:func:`tconv.engine.taps.dim_phases`). Computes output planes
    ``[first, last)`` of the ``N*G*Cl`` (``(n, g*Cl+o)`` flattened): the engine's workers take
    disjoint ranges. For each output row and phase, the taps are summed into a contiguous buffer
    ``acc[m]`` — the inner loop ``acc[m] += w * x[base - u + m]`` runs over views from index 0, so
    numba vectorises it — and the buffer is stored into the row's phase once.
    """
    N, C_small, n0, n1, n2 = x.shape
    _, Cl, k0, k1, k2 = w.shape
    L0, L1, L2 = y.shape[2], y.shape[3], y.shape[4]
    Cs = C_small // groups
    acc = np.empty(L2 // s2 + 1, dtype=y.dtype)
    for job in range(first, last):
        n = job // (groups * Cl)
        oc = job % (groups * Cl)
        g = oc // Cl
        o = oc % Cl
        plane = y[n, oc]
        for j0 in range(L0):
            for j1 in range(L1):
                row = plane[j0, j1]
                for q in range(s2):
                    first = (q - p2) % s2
                    if first >= L2:
                        continue
                    count = (L2 - 1 - first) // s2 + 1
                    base = (first + p2 - q) // s2
                    buf = acc[:count]
                    buf[:] = 0
                    for c in range(g * Cs, (g + 1) * Cs):
                        for a0 in range(cnt0[j0]):
                            t0, i0 = tab0[j0, a0, 0], tab0[j0, a0, 1]
                            for a1 in range(cnt1[j1]):
                                t1, i1 = tab1[j1, a1, 0], tab1[j1, a1, 1]
                                xrow = x[n, c, i0, i1]
                                for a2 in range(pcnt[q]):
                                    t2, u = ptab[q, a2, 0], ptab[q, a2, 1]
                                    lo = max(0, u - base)
                                    hi = min(count, n2 - base + u)
                                    if hi <= lo:
                                        continue
                                    wv = w[c, o, t0, t1, t2]
                                    # views from index 0: numba drops its wraparound checks and
                                    # vectorises
                                    bs = buf[lo:hi]
                                    xs = xrow[base - u + lo : base - u + hi]
                                    for i in range(hi - lo):
                                        bs[i] += wv * xs[i]
                    dst = row[first : first + s2 * (count - 1) + 1 : s2]
                    for m in range(count):
                        dst[m] = buf[m]


def _col2im_gather(cols, y, n_first, c_first, f0, f1, f2, tab0, cnt0, tab1, cnt1, tab2, cnt2,
                   j0_lo, j0_hi, j1_lo, j1_hi, j2_lo, j2_hi, ts, cs):
    """col2im for a chunk of GEMM columns, gathered per block of output pixels.

    ``y[n_first+b, c_first+o, j] += cols[b, i0-f0, i1-f1, i2-f2, t0, t1, t2, o]`` over every
    ``(t, i)`` with ``j = i*s + t*d - p``. cols: ``(B, R0, R1, R2, k0, k1, k2, Cl)`` (GEMM rows are input
    pixels, columns (tap, channel)); y: ``(N, C, L0, L1, L2)``, updated in place. ``tab*[j]`` lists the
    ``(t, i)`` pairs reaching output coordinate ``j`` (``cnt*[j]`` of them), so the loops divide
    nothing; only output coordinates in ``[j*_lo, j*_hi)`` can be reached by this chunk.
    ``ts``, ``cs``: where a pixel's value of (flat) tap ``t`` and channel ``o`` lies among its
    ``k0*k1*k2*Cl``: at ``t*ts + o*cs``; ``(Cl, 1)`` as the shape says, ``(1, k0*k1*k2)`` for columns
    (channel, tap), the weight's own order.

    Each task sums a run of up to 64 pixels along the last dimension channels-last (contiguous
    ``Cl``-long additions that vectorize), then adds the run into each channel plane at once; tasks
    own disjoint runs, so none write the same pixel.
    """
    B, R0, R1, R2, k0, k1, k2, Cl = cols.shape
    cf = cols.reshape(cols.size)
    P = k0 * k1 * k2 * Cl
    J0, J1 = j0_hi - j0_lo, j1_hi - j1_lo
    runs = (j2_hi - j2_lo + 63) // 64
    for job in range(B * J0 * J1 * runs):
        b = job // (J0 * J1 * runs)
        j0 = j0_lo + (job // (J1 * runs)) % J0
        j1 = j1_lo + (job // runs) % J1
        lo = j2_lo + (job % runs) * 64
        hi = min(j2_hi, lo + 64)
        acc = np.zeros((hi - lo, Cl), dtype=y.dtype)
        for u0 in range(cnt0[j0]):
            t0 = tab0[j0, u0, 0]
            a0 = tab0[j0, u0, 1] - f0
            if a0 < 0 or a0 >= R0:
                continue
            for u1 in range(cnt1[j1]):
                t1 = tab1[j1, u1, 0]
                a1 = tab1[j1, u1, 1] - f1
                if a1 < 0 or a1 >= R1:
                    continue
                base = (b * R0 + a0) * R1 + a1
                for j2 in range(lo, hi):
                    dst = acc[j2 - lo]
                    for u2 in range(cnt2[j2]):
                        a2 = tab2[j2, u2, 1] - f2
                        if a2 < 0 or a2 >= R2:
                            continue
                        cb = (base * R2 + a2) * P + ((t0 * k1 + t1) * k2 + tab2[j2, u2, 0]) * ts
                        # a slice, not offsets: numba then knows the indices are non-negative and
                        # vectorizes (measured 13x on this loop)
                        if cs == 1:
                            src = cf[cb : cb + Cl]
                            for o in range(Cl):
                                dst[o] += src[o]
                        else:
                            apart = cf[cb : cb + (Cl - 1) * cs + 1 : cs]
                            for o in range(Cl):
                                dst[o] += apart[o]
        for o in range(Cl):
            row = y[n_first + b, c_first + o, j0, j1, lo:hi]
            for p in range(hi - lo):
                row[p] += acc[p, o]


def _phase_cols(xp, cols, n_first, c_first, channels, taps, b0, b1, b2):
    """One phase's im2col (:mod:`tconv.engine.phase`):
    ``cols[c, a, b, m0, m1, m2] = xp[n_first+b, c_first+c, b0-u0+m0, b1-u1+m1, b2-u2+m2]`` with
    ``(u0, u1, u2) = taps[a]``; ``xp`` is zero-padded so that every index is inside it."""
    T, nb = cols.shape[1], cols.shape[2]
    c0, c1, c2 = cols.shape[3], cols.shape[4], cols.shape[5]
    for c in range(channels):
        for a in range(T):
            o0, o1, o2 = b0 - taps[a, 0], b1 - taps[a, 1], b2 - taps[a, 2]
            for b in range(nb):
                src = xp[n_first + b, c_first + c]
                dst = cols[c, a, b]
                for m0 in range(c0):
                    for m1 in range(c1):
                        # slices from index 0: numba knows the indices are in range and vectorizes
                        row = src[o0 + m0, o1 + m1, o2 : o2 + c2]
                        out = dst[m0, m1]
                        for m2 in range(c2):
                            out[m2] = row[m2]


def _phase_cols_last(xcl, cols, n_first, taps, b0, b1, b2):
    """One phase's im2col, channels innermost (:mod:`tconv.engine.phase`):
    ``cols[b, m0, m1, m2, a, :] = xcl[n_first+b, b0-u0+m0, b1-u1+m1, b2-u2+m2, :]`` with
    ``(u0, u1, u2) = taps[a]``; ``xcl`` (one group's input, channels last) is zero-padded so that
    every index is inside it. Each copy is a run of all the group's channels."""
    nb, c0, c1, c2, T, C = cols.shape
    for b in range(nb):
        for m0 in range(c0):
            for m1 in range(c1):
                for m2 in range(c2):
                    for a in range(T):
                        src = xcl[n_first + b, b0 - taps[a, 0] + m0, b1 - taps[a, 1] + m1,
                                  b2 - taps[a, 2] + m2]
                        dst = cols[b, m0, m1, m2, a]
                        for c in range(C):
                            dst[c] = src[c]


# Serial, and without the GIL: the engine's worker threads run them side by side.
direct = numba.njit(nogil=True, cache=True)(_direct)
col2im = numba.njit(nogil=True, cache=True)(_col2im)
col2im_phased = numba.njit(nogil=True, cache=True)(_col2im_phased)
im2col = numba.njit(nogil=True, cache=True)(_im2col)
col2im_gather = numba.njit(nogil=True, cache=True)(_col2im_gather)
phase_cols = numba.njit(nogil=True, cache=True)(_phase_cols)
phase_cols_last = numba.njit(nogil=True, cache=True)(_phase_cols_last)


@intrinsic
def gemm_call(typingctx, fn, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, like):
    """``C = op(A) @ op(B)`` through the CBLAS product at address ``fn``
    (:func:`tconv.engine.blas.gemm`), row-major, ``alpha`` 1, ``beta`` 0: ``ta``/``tb`` 111 or 112
    (transpose), ``A``/``B``/``C`` addresses (``a.ctypes.data``), ``lda``/``ldb``/``ldc`` row
    strides in elements, ``like`` any array of the product's dtype (float32: ``sgemm``, float64:
    ``dgemm``)."""
    sig = types.void(fn, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, like)

    def codegen(context, builder, signature, args):
        i32, i64, byte_ptr = ir.IntType(32), ir.IntType(64), ir.IntType(8).as_pointer()
        real = context.get_value_type(signature.args[-1].dtype)
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, real, byte_ptr, i64,
                                               byte_ptr, i64, real, byte_ptr, i64])

        def value(i, kind):
            v = context.cast(builder, args[i], signature.args[i], types.int64)
            if kind == "ptr":
                return builder.inttoptr(v, byte_ptr)
            return builder.trunc(v, i32) if kind == "enum" else v

        call = builder.inttoptr(value(0, "int"), fnty.as_pointer())
        builder.call(call, [ir.Constant(i32, 101), value(1, "enum"), value(2, "enum"),
                            value(3, "int"), value(4, "int"), value(5, "int"), ir.Constant(real, 1.0),
                            value(6, "ptr"), value(7, "int"), value(8, "ptr"), value(9, "int"),
                            ir.Constant(real, 0.0), value(10, "ptr"), value(11, "int")])
        return context.get_dummy_value()

    return sig, codegen


def _subpixel_tiles(x, wp, bias, y, tiles, T, e, s, p, mlo, B, groups, pbuf, rbuf, runs, gemm):
    """The fused sub-pixel tiles (:mod:`tconv.engine.subpixel`): per tile, an im2col of the input
    it needs, one product, and each output pixel of the tile written once.

    x: ``(N, G*Cs, n0, n1, n2)``; wp: ``(G, Cl*S, Cs*T0*T1*T2)``, rows ``(o, q0, q1, q2)``, columns
    ``(c, u0, u1, u2)``; bias: ``(G*Cl,)``; y: ``(N, G*Cl, L0, L1, L2)``, written. Core pixel ``j``
    of phase ``q`` in block ``m`` (``j = m*s + q - p``) is ``sum over (c, u) of
    wp[(o, q), (c, u)] * x[m - u*e]`` (zero outside ``x``; ``e`` the taps' step per dimension).
    Blocks ``m`` run from ``mlo``, ``B`` per dimension; the rows of the block grid are
    ``(n, m0, m1)`` flattened, its columns ``m2``. A tile ``(g, r0, r1, a0, a1)`` is rows
    ``[r0, r1)``, columns ``[a0, a1)`` of group ``g``: tiles never share an output pixel.
    ``pbuf``/``rbuf``: flat scratch for the largest tile's columns and product. ``runs``: multiply
    transposed, ``cols.T @ wp.T`` (rows blocks, columns ``(o, q)``), so that a block's ``s2`` phases
    along the last dimension are a contiguous run, written as one (for a large last stride, where
    the other order writes each product row to pixels ``s2`` apart).
    ``gemm``: the product function's address (:func:`tconv.engine.blas.gemm`).
    """
    n0, n1, n2 = x.shape[2], x.shape[3], x.shape[4]
    L0, L1, L2 = y.shape[2], y.shape[3], y.shape[4]
    Cs = x.shape[1] // groups
    Cl = y.shape[1] // groups
    T0, T1, T2 = T[0], T[1], T[2]
    e0, e1, e2 = e[0], e[1], e[2]
    s0, s1, s2 = s[0], s[1], s[2]
    B0, B1 = B[0], B[1]
    K = Cs * T0 * T1 * T2
    S = s0 * s1 * s2
    # per block row: its sample and block coordinates, divided out once per tile (not per tap and
    # row: on a small layer the divisions took most of the kernel's time)
    rows_n = np.empty((tiles[:, 2] - tiles[:, 1]).max() if tiles.shape[0] else 0, np.int64)
    rows_m0 = np.empty_like(rows_n)
    rows_m1 = np.empty_like(rows_n)
    for ti in range(tiles.shape[0]):
        g, r0, r1, a0, a1 = tiles[ti, 0], tiles[ti, 1], tiles[ti, 2], tiles[ti, 3], tiles[ti, 4]
        W = a1 - a0
        M = (r1 - r0) * W
        P = pbuf[: K * M].reshape((K, M))
        R = rbuf[: Cl * S * M].reshape((Cl * S, M))
        for r in range(r0, r1):
            rows_n[r - r0] = r // (B0 * B1)
            rows_m0[r - r0] = mlo[0] + (r // B1) % B0
            rows_m1[r - r0] = mlo[1] + r % B1
        for c in range(Cs):
            for u0 in range(T0):
                for u1 in range(T1):
                    for u2 in range(T2):
                        row = P[((c * T0 + u0) * T1 + u1) * T2 + u2]
                        # the input columns of this tap: i2 = mlo2 + a - u2*e2 for a in [a0, a1)
                        first = mlo[2] + a0 - u2 * e2
                        lo = max(0, -first)
                        hi = min(W, n2 - first)
                        for rr in range(r1 - r0):
                            dst = row[rr * W : (rr + 1) * W]
                            i0 = rows_m0[rr] - u0 * e0
                            i1 = rows_m1[rr] - u1 * e1
                            if i0 < 0 or i0 >= n0 or i1 < 0 or i1 >= n1 or hi <= lo:
                                dst[:] = 0
                                continue
                            dst[:lo] = 0
                            dst[hi:] = 0
                            # slices from index 0: numba knows the indices are in range and
                            # vectorizes
                            src = x[rows_n[rr], g * Cs + c, i0, i1, first + lo : first + hi]
                            part = dst[lo:hi]
                            for i in range(hi - lo):
                                part[i] = src[i]
        if runs:
            Rt = rbuf[: M * Cl * S].reshape((M, Cl * S))
            gemm_call(gemm, 112, 112, M, Cl * S, K, P.ctypes.data, M, wp[g].ctypes.data, K,
                      Rt.ctypes.data, Cl * S, rbuf)
            for rr in range(r1 - r0):
                n, m0, m1 = rows_n[rr], rows_m0[rr], rows_m1[rr]
                for o in range(Cl):
                    add = bias[g * Cl + o]
                    for q0 in range(s0):
                        j0 = m0 * s0 + q0 - p[0]
                        if j0 < 0 or j0 >= L0:
                            continue
                        for q1 in range(s1):
                            j1 = m1 * s1 + q1 - p[1]
                            if j1 < 0 or j1 >= L1:
                                continue
                            row = y[n, g * Cl + o, j0, j1]
                            base = ((o * s0 + q0) * s1 + q1) * s2
                            for a in range(W):
                                j2 = (mlo[2] + a0 + a) * s2 - p[2]  # the pixel of phase 0
                                lo = max(0, -j2)
                                hi = min(s2, L2 - j2)
                                if hi <= lo:
                                    continue
                                src = Rt[rr * W + a, base + lo : base + hi]
                                dst = row[j2 + lo : j2 + hi]
                                for i in range(hi - lo):
                                    dst[i] = src[i] + add
            continue
        gemm_call(gemm, 111, 111, Cl * S, M, K, wp[g].ctypes.data, K, P.ctypes.data, M,
                  R.ctypes.data, M, rbuf)
        for o in range(Cl):
            add = bias[g * Cl + o]
            for q0 in range(s0):
                for q1 in range(s1):
                    for q2 in range(s2):
                        src_row = R[((o * s0 + q0) * s1 + q1) * s2 + q2]
                        # the columns whose pixel j2 = (mlo2 + a)*s2 + q2 - p2 is in [0, L2)
                        j2_first = (mlo[2] + a0) * s2 + q2 - p[2]
                        lo = 0
                        if j2_first < 0:
                            lo = (-j2_first + s2 - 1) // s2
                        hi = min(W, (L2 - 1 - j2_first) // s2 + 1) if L2 - 1 - j2_first >= 0 else 0
                        if hi <= lo:
                            continue
                        for rr in range(r1 - r0):
                            j0 = rows_m0[rr] * s0 + q0 - p[0]
                            j1 = rows_m1[rr] * s1 + q1 - p[1]
                            if j0 < 0 or j0 >= L0 or j1 < 0 or j1 >= L1:
                                continue
                            start = j2_first + lo * s2
                            dst = y[rows_n[rr], g * Cl + o, j0, j1,
                                    start : start + (hi - lo - 1) * s2 + 1 : s2]
                            src = src_row[rr * W + lo : rr * W + hi]
                            for i in range(hi - lo):
                                dst[i] = src[i] + add


subpixel_tiles = numba.njit(nogil=True, cache=True)(_subpixel_tiles)


_PRIME = np.uint64(0x100000001B3)
_SEED = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(nogil=True, cache=True)
def checksum(words):
    """A 64-bit checksum of ``words`` (uint64): four multiply-xor chains (``h = (h ^ v) * prime``),
    so that changing, moving or swapping any word changes it (up to 2**-64 collisions). Runs near
    memory speed: 3-4x faster than ``zlib.crc32`` (14 MB: 1.0 ms against 3.6 ms)."""
    h0 = _SEED
    h1 = _SEED ^ np.uint64(1)
    h2 = _SEED ^ np.uint64(2)
    h3 = _SEED ^ np.uint64(3)
    n = words.size // 4 * 4
    for i in range(0, n, 4):
        h0 = (h0 ^ words[i]) * _PRIME
        h1 = (h1 ^ words[i + 1]) * _PRIME
        h2 = (h2 ^ words[i + 2]) * _PRIME
        h3 = (h3 ^ words[i + 3]) * _PRIME
    for i in range(n, words.size):
        h0 = (h0 ^ words[i]) * _PRIME
    return (((h0 * _PRIME ^ h1) * _PRIME ^ h2) * _PRIME) ^ h3


@numba.njit(nogil=True, cache=True)
def checksum_strided(a):
    """A 64-bit checksum of the values of ``a`` (5-d, unsigned integers of a float's width, any
    strides: a cut kernel's taps as they lie in the weight), the same multiply-xor chains as
    :func:`checksum`, four of them over neighbouring second-axis rows. Read in place: copying a
    view whose rows are a few taps long first cost ~7x as much."""
    h0 = _SEED
    h1 = _SEED ^ np.uint64(1)
    h2 = _SEED ^ np.uint64(2)
    h3 = _SEED ^ np.uint64(3)
    A, B, K0, K1, K2 = a.shape
    B4 = B // 4 * 4
    for i in range(A):
        for o in range(0, B4, 4):
            for t0 in range(K0):
                for t1 in range(K1):
                    for t2 in range(K2):
                        h0 = (h0 ^ np.uint64(a[i, o, t0, t1, t2])) * _PRIME
                        h1 = (h1 ^ np.uint64(a[i, o + 1, t0, t1, t2])) * _PRIME
                        h2 = (h2 ^ np.uint64(a[i, o + 2, t0, t1, t2])) * _PRIME
                        h3 = (h3 ^ np.uint64(a[i, o + 3, t0, t1, t2])) * _PRIME
        for o in range(B4, B):
            for t0 in range(K0):
                for t1 in range(K1):
                    for t2 in range(K2):
                        h0 = (h0 ^ np.uint64(a[i, o, t0, t1, t2])) * _PRIME
    return (((h0 * _PRIME ^ h1) * _PRIME ^ h2) * _PRIME) ^ h3
