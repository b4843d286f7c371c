"""Pore geometries: random single pores (micro) and non-overlapping pore sets (meso).

A pore is a plain dict (JSON-serializable, stored per sample in the data set)::

    {"shape": "circle",  "x": xc, "y": yc, "r": r}
    {"shape": "ellipse", "x": xc, "y": yc, "a": a, "b": b, "phi": phi}   # a >= b, phi from +x
    {"shape": "fourier", "x": xc, "y": yc, "r0": r0, "ak": [...], "bk": [...], "k0": k0}

with the outline ``r(theta) = r0 (1 + sum_k ak cos(k theta) + bk sin(k theta))``, k = k0, k0+1, ...
Lengths in m. The domain is [0, Lx] x [0, Ly], periodic in y. :func:`gas_fraction` rasterizes
pores into the per-cell gas volume fraction with 8x8 sub-cell sampling.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = [
    "outline_radius",
    "pore_area",
    "bounding_radius",
    "x_extent",
    "min_radius",
    "equivalent_radius",
    "gas_fraction",
    "random_pore",
    "micro_pores",
    "meso_pores",
]

_THETA = np.linspace(0.0, 2.0 * np.pi, 2049)[:-1]


def outline_radius(pore: dict, theta: np.ndarray) -> np.ndarray:
    """Distance from the pore centre to its outline in direction ``theta`` (radians from +x)."""
    shape = pore["shape"]
    theta = np.asarray(theta, float)
    if shape == "circle":
        return np.full_like(theta, pore["r"])
    if shape == "ellipse":
        a, b, t = pore["a"], pore["b"], theta - pore["phi"]
        return a * b / np.sqrt((b * np.cos(t)) ** 2 + (a * np.sin(t)) ** 2)
    if shape == "fourier":
        g = np.zeros_like(theta)
        for i, (ak, bk) in enumerate(zip(pore["ak"], pore["bk"], strict=True)):
            k = pore["k0"] + i
            g += ak * np.cos(k * theta) + bk * np.sin(k * theta)
        return pore["r0"] * (1.0 + g)
    raise ValueError(f"pore shape {shape!r} is not one of ['circle', 'ellipse', 'fourier']")


def pore_area(pore: dict) -> float:
    """Exact area (m^2) of the outline (trapezoid rule on 2048 angles for Fourier pores)."""
    if pore["shape"] == "circle":
        return math.pi * pore["r"] ** 2
    if pore["shape"] == "ellipse":
        return math.pi * pore["a"] * pore["b"]
    r = outline_radius(pore, _THETA)
    return float(0.5 * np.mean(r * r) * 2.0 * np.pi)


def equivalent_radius(pore: dict) -> float:
    """Radius of the circle with the pore's area."""
    return math.sqrt(pore_area(pore) / math.pi)


def bounding_radius(pore: dict) -> float:
    return float(outline_radius(pore, _THETA).max())


def min_radius(pore: dict) -> float:
    """Smallest centre-to-outline distance (for ellipses: the semi-minor axis)."""
    return float(outline_radius(pore, _THETA).min())


def x_extent(pore: dict) -> tuple[float, float]:
    """(left, right) extent of the outline from the centre along x (both >= 0)."""
    x = outline_radius(pore, _THETA) * np.cos(_THETA)
    return float(-x.min()), float(x.max())


_KIND = {"circle": 0, "ellipse": 1, "fourier": 2}
_NO_MODES = np.zeros(0)


@numba.njit(cache=True)
def _outline_at(kind: int, p0: float, p1: float, p2: float, p3: float, ak: np.ndarray,
                bk: np.ndarray, k0: int, c: float, s: float) -> float:
    """:func:`outline_radius` in the direction (cos theta, sin theta) = (``c``, ``s``): the
    angle's multiples by rotation instead of trigonometric calls (round-off ~1e-15 relative,
    which moves a sample across the outline only if it lies that close to it). Parameters:
    circle ``p0`` = r; ellipse ``p0, p1, p2, p3`` = a, b, cos phi, sin phi; Fourier ``p0`` = r0."""
    if kind == 0:
        return p0
    if kind == 1:  # t = theta - phi
        ct = c * p2 + s * p3
        st = s * p2 - c * p3
        a, b = p0, p1
        return a * b / math.sqrt((b * ct) ** 2 + (a * st) ** 2)
    ck, sk = 1.0, 0.0  # (cos, sin) of k theta, from k = 0 to k0
    sb = s if k0 >= 0 else -s
    for _ in range(abs(k0)):
        ck, sk = ck * c - sk * sb, sk * c + ck * sb
    g = 0.0
    for i in range(ak.size):
        g += ak[i] * ck + bk[i] * sk
        ck, sk = ck * c - sk * s, sk * c + ck * s
    return p0 * (1.0 + g)


@numba.njit(cache=True)
def _add_pore(frac: np.ndarray, kind: int, xc: float, yc: float, p0: float, p1: float,
              p2: float, p3: float, ak: np.ndarray, bk: np.ndarray, k0: int, r_in: float,
              r_out: float,
              rows: np.ndarray, cols: np.ndarray, offs: np.ndarray, dx: float) -> None:
    """Adds one pore's sub-sampled area fraction over the cells ``rows`` x ``cols``.

    A run of ``sub`` samples (one sample row of a cell) nearer than ``r_in`` (inside the
    outline for every angle) or beyond ``r_out`` counts at once; only samples in the ring
    between get the outline test."""
    ny = frac.shape[0]
    Ly = ny * dx
    sub = offs.size
    in2, out2 = (r_in * (1.0 - 1e-9)) ** 2, (r_out * (1.0 + 1e-9)) ** 2
    count = np.zeros(cols.size, np.int64)
    for row in rows:
        count[:] = 0
        for sy in range(sub):
            # y offset from the centre, folded into [-Ly/2, Ly/2) (periodic in y)
            u = (row * dx + offs[sy]) - yc + 0.5 * Ly
            m = np.fmod(u, Ly)
            if m != 0.0 and (m < 0.0) != (Ly < 0.0):
                m += Ly
            ddy = m - 0.5 * Ly
            for c in range(cols.size):
                x0 = (cols[c] * dx + offs[0]) - xc
                x1 = (cols[c] * dx + offs[sub - 1]) - xc
                far = max(abs(x0), abs(x1))
                near = 0.0 if x0 <= 0.0 <= x1 else min(abs(x0), abs(x1))
                if far * far + ddy * ddy < in2:
                    count[c] += sub
                    continue
                if near * near + ddy * ddy > out2:
                    continue
                for sx in range(sub):
                    ddx = (cols[c] * dx + offs[sx]) - xc
                    rr = math.hypot(ddx, ddy)
                    if rr < r_in or (rr < r_out and (rr == 0.0 or rr < _outline_at(
                            kind, p0, p1, p2, p3, ak, bk, k0, ddx / rr, ddy / rr))):
                        count[c] += 1
        jr = row % ny
        if jr < 0:
            jr += ny
        for c in range(cols.size):
            frac[jr, cols[c]] += count[c] / (sub * sub)


def _radius_bounds(pore: dict) -> tuple[float, float, float]:
    """(r_in, r_out, R): radii inside / beyond which every point is inside / outside the
    outline, with a margin for round-off, and the :func:`bounding_radius` that sizes the cell
    box. Fourier pores: the extremes over :data:`_THETA` widened by the most the outline can
    move between two of its angles (|dr/dtheta| <= r0 sum k (|ak| + |bk|))."""
    r = outline_radius(pore, _THETA)
    R = float(r.max())
    if pore["shape"] == "circle":
        return pore["r"], pore["r"], R
    if pore["shape"] == "ellipse":
        lo, hi = min(pore["a"], pore["b"]), max(pore["a"], pore["b"])
    else:
        k = pore["k0"] + np.arange(len(pore["ak"]))
        slope = pore["r0"] * float(np.sum(np.abs(k) * (np.abs(pore["ak"]) +
                                                       np.abs(pore["bk"]))))
        step = 0.5 * (_THETA[1] - _THETA[0]) * slope
        lo, hi = float(r.min()) - step, R + step
    return lo * (1.0 - 1e-9), hi * (1.0 + 1e-9), R


def gas_fraction(pores: list[dict], nx: int, ny: int, dx: float, sub: int = 8) -> np.ndarray:
    """Per-cell pore (gas) area fraction, shape (ny, nx), periodic in y, ``sub`` x ``sub`` samples.

    Pores may not overlap (their fractions are summed); the sum is checked to stay <= 1.
    """
    frac = np.zeros((ny, nx))
    offs = (np.arange(sub) + 0.5) / sub * dx  # sub-sample offsets inside a cell
    for pore in pores:
        kind = _KIND.get(pore["shape"])
        if kind is None:
            raise ValueError(f"pore shape {pore['shape']!r} is not one of {list(_KIND)}")
        r_in, r_out, R = _radius_bounds(pore)
        xc, yc = pore["x"], pore["y"]
        i0 = max(int(math.floor((xc - R) / dx)) - 1, 0)
        i1 = min(int(math.ceil((xc + R) / dx)) + 1, nx)
        if i1 <= i0:
            continue
        j0 = int(math.floor((yc - R) / dx)) - 1
        j1 = int(math.ceil((yc + R) / dx)) + 1
        rows = np.arange(j0, j1)
        if rows.size > ny:
            rows = np.arange(ny)
        modes, k0 = (_NO_MODES, _NO_MODES), 0
        if kind == 0:
            prm = (pore["r"], 0.0, 0.0, 0.0)
        elif kind == 1:
            prm = (pore["a"], pore["b"], math.cos(pore["phi"]), math.sin(pore["phi"]))
        else:
            prm = (pore["r0"], 0.0, 0.0, 0.0)
            modes = (np.asarray(pore["ak"], float), np.asarray(pore["bk"], float))
            k0 = int(pore["k0"])
        _add_pore(frac, kind, float(xc), float(yc), *map(float, prm), *modes, k0, r_in, r_out,
                  rows, np.arange(i0, i1), offs, float(dx))
    if frac.max(initial=0.0) > 1.0 + 1e-12:
        j, i = np.unravel_index(np.argmax(frac), frac.shape)
        raise ValueError(f"pores overlap in cell (i={i}, j={j}): gas fraction {frac[j, i]:.3f}")
    return np.minimum(frac, 1.0)


def _uniform(rng: np.random.Generator, pair) -> float:
    return float(rng.uniform(pair[0], pair[1]))


def random_pore(rng: np.random.Generator, geo: dict, radius_range=None) -> dict:
    """A pore shape centred at the origin, drawn from the ``geometry`` config section.

    Sizes: circles and Fourier pores have their equivalent (area) radius uniform in ``radius``;
    ellipses too (``sqrt(a b)``), with ``a/b`` uniform in ``aspect``; every shape's smallest local
    radius (semi-minor axis, Fourier minimum) is raised to ``min_radius`` if needed.
    """
    shape = str(rng.choice(geo["shapes"]))
    rr = radius_range or geo["radius"]
    rmin = geo["min_radius"]
    if shape == "circle":
        return {"shape": "circle", "x": 0.0, "y": 0.0, "r": max(_uniform(rng, rr), rmin)}
    if shape == "ellipse":
        ar = _uniform(rng, geo["aspect"])
        b = max(_uniform(rng, rr) / math.sqrt(ar), rmin)  # equivalent radius sqrt(ab) in range
        a = b * ar
        return {"shape": "ellipse", "x": 0.0, "y": 0.0, "a": a, "b": b,
                "phi": float(rng.uniform(0.0, np.pi))}
    k0, k1 = (int(k) for k in geo["fourier_modes"])
    ks = np.arange(k0, k1 + 1)
    ak = rng.normal(size=ks.size) / ks
    bk = rng.normal(size=ks.size) / ks
    unit = {"shape": "fourier", "x": 0.0, "y": 0.0, "r0": 1.0, "ak": ak.tolist(),
            "bk": bk.tolist(), "k0": k0}
    g = outline_radius(unit, _THETA) - 1.0
    amp = geo["fourier_amplitude"] * float(rng.uniform(0.5, 1.0))
    scale = amp / max(float(np.abs(g).max()), 1e-12)
    ak, bk = ak * scale, bk * scale
    r_eq = _uniform(rng, rr)
    pore = {"shape": "fourier", "x": 0.0, "y": 0.0, "r0": 1.0, "ak": ak.tolist(),
            "bk": bk.tolist(), "k0": k0}
    r0 = r_eq / equivalent_radius(pore)
    r0 = max(r0, rmin / min_radius(pore))  # smallest local radius >= min_radius
    pore["r0"] = r0
    return pore


def micro_pores(rng: np.random.Generator, geo: dict, nx: int, ny: int, dx: float) -> list[dict]:
    """One random pore; its leading edge ``lead_gap`` behind x_low, random height (periodic)."""
    pore = random_pore(rng, geo)
    left, right = x_extent(pore)
    pore["x"] = _uniform(rng, geo["lead_gap"]) + left
    pore["y"] = float(rng.uniform(0.0, ny * dx))
    if pore["x"] + right > nx * dx:
        raise ValueError(f"pore of x extent {left + right:.3e} m does not fit the domain length "
                         f"{nx * dx:.3e} m after a lead gap; enlarge [grid] nx")
    return [pore]


def meso_pores(rng: np.random.Generator, geo: dict, nx: int, ny: int, dx: float,
               ) -> tuple[list[dict], float]:
    """Non-overlapping random pores up to a random target porosity; returns (pores, target).

    Random sequential addition: pores are drawn like micro pores and placed uniformly in
    [margin, Lx - margin] x [0, Ly) if their bounding circles keep ``gap`` from every placed pore
    (periodic in y). The last pore is shrunk (never below ``min_radius``) to meet the target, so
    the porosity misses it by at most half the smallest pore's area.
    """
    Lx, Ly = nx * dx, ny * dx
    target = _uniform(rng, geo["porosity"]) * Lx * Ly
    placed: list[dict] = []
    radii: list[float] = []
    area = 0.0
    tries = 0
    while area < target and tries < geo["max_tries"]:
        tries += 1
        pore = random_pore(rng, geo)
        a = pore_area(pore)
        remaining = target - area
        if a > remaining:
            shrunk = _scaled(pore, math.sqrt(remaining / a))
            a_min = math.pi * geo["min_radius"] ** 2
            if min_radius(shrunk) >= geo["min_radius"] * (1 - 1e-12):
                pore, a = shrunk, remaining
            elif remaining >= 0.5 * a_min:  # the smallest allowed pore gets closest
                pore, a = {"shape": "circle", "x": 0.0, "y": 0.0, "r": geo["min_radius"]}, a_min
            else:
                break  # closer to the target without another pore
        R = bounding_radius(pore)
        left, right = x_extent(pore)
        lo, hi = geo["margin"] + left, Lx - geo["margin"] - right
        if hi <= lo:
            continue
        x = float(rng.uniform(lo, hi))
        y = float(rng.uniform(0.0, Ly))
        ok = True
        for q, Rq in zip(placed, radii, strict=True):
            dyp = abs(y - q["y"]) % Ly
            dyp = min(dyp, Ly - dyp)
            if math.hypot(x - q["x"], dyp) < R + Rq + geo["gap"]:
                ok = False
                break
        if 2 * R + geo["gap"] > Ly:
            ok = False
        if not ok:
            continue
        pore["x"], pore["y"] = x, y
        placed.append(pore)
        radii.append(R)
        area += a
    return placed, target / (Lx * Ly)


def _scaled(pore: dict, f: float) -> dict:
    p = dict(pore)
    for k in ("r", "a", "b", "r0"):
        if k in p:
            p[k] = p[k] * f
    return p
