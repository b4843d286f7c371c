"""Ghost-cell fill against a cell-by-cell reference, every boundary kind on every side."""

import itertools

import numpy as np
import pytest

from macro.boundary import INFLOW, NG, PERIODIC, PISTON, REFLECTIVE, TRANSMISSIVE, fill_ghosts

KINDS = (TRANSMISSIVE, REFLECTIVE, PERIODIC, PISTON, INFLOW)


def _reference(U, codes, uwall, inflow, nrho, mx, my, iE):
    """Each ghost cell on its own: x ghosts of interior rows, then whole y ghost rows."""
    _, NY, NX = U.shape
    g = NG

    def put(dst, src, code, normal, side):
        if code == INFLOW:
            U[(slice(None), *dst)] = inflow[side]
            return
        U[(slice(None), *dst)] = U[(slice(None), *src)]
        if code in (REFLECTIVE, PISTON):
            rho = sum(U[(k, *src)] for k in range(nrho))
            m = U[(normal, *src)]
            mg = 2.0 * rho * uwall[side] - m
            U[(normal, *dst)] = mg
            U[(iE, *dst)] += 0.5 * (mg * mg - m * m) / rho

    def src_of(code, l, n, low):
        if code == PERIODIC:
            return n - g - 1 - l if low else g + l
        if code == TRANSMISSIVE:
            return g if low else n - g - 1
        return g + l if low else n - g - 1 - l

    rows = range(g, NY - g) if NY > 1 else range(1)
    for l in range(g):
        for j in rows:
            put((j, g - 1 - l), (j, src_of(codes[0], l, NX, True)), codes[0], mx, 0)
            put((j, NX - g + l), (j, src_of(codes[1], l, NX, False)), codes[1], mx, 1)
    if NY == 1:
        return
    for l in range(g):
        for i in range(NX):
            put((g - 1 - l, i), (src_of(codes[2], l, NY, True), i), codes[2], my, 2)
            put((NY - g + l, i), (src_of(codes[3], l, NY, False), i), codes[3], my, 3)


def _pairs():
    # periodic comes in pairs on an axis
    axis = [(a, b) for a, b in itertools.product(KINDS, KINDS)
            if (a == PERIODIC) == (b == PERIODIC)]
    return axis


@pytest.mark.parametrize("shape", [(7, 1, 9), (7, 1, 5), (5, 8, 11), (7, 5, 5), (4, 6, 37)])
def test_fill_ghosts_matches_the_cell_by_cell_reference(shape):
    rng = np.random.default_rng(20261207 + shape[2])
    nv, NY, NX = shape
    xs = _pairs()
    ys = _pairs() if NY > 1 else [(TRANSMISSIVE, TRANSMISSIVE)]
    for (c0, c1), (c2, c3) in itertools.product(xs, ys):
        codes = np.array([c0, c1, c2, c3], dtype=np.int64)
        U = rng.uniform(0.5, 2.0, shape)
        uwall = rng.uniform(-3.0, 3.0, 4)
        inflow = rng.uniform(0.5, 2.0, (4, nv))
        want = U.copy()
        _reference(want, codes, uwall, inflow, 2, 2, 3 if nv > 3 else 2, nv - 1)
        got = U.copy()
        fill_ghosts(got, codes, uwall, inflow, 2, 2, 3 if nv > 3 else 2, nv - 1)
        assert np.array_equal(got, want), (codes, shape)
        # the interior is never written
        if NY > 1:
            assert np.array_equal(got[:, NG:-NG, NG:-NG], U[:, NG:-NG, NG:-NG])
