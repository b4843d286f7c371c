"""Approximate Riemann solvers (HLLC with HLL fallback) on states rotated to the face normal:
the pieces that the single-fluid (:mod:`macro.euler`) and the diffuse-interface
(:mod:`macro.multi`) flux loops share.

Each model's loop reads its primitive face states and the energy and sound speed it computed
from its EOS, and builds its fluxes from these branch-free pieces: Davis wave speeds and the
contact speed, the HLL flux of one conserved variable, and the HLLC star-state factor and
energy of the side the contact leaves behind. Every case is computed and one selected, so the
loops vectorise.
"""

import numba as nb

HLLC, HLL = 0, 1
RIEMANN_SOLVERS = {"hllc": HLLC, "hll": HLL}


def riemann_code(name: str) -> int:
    try:
        return RIEMANN_SOLVERS[name.lower()]
    except KeyError:
        raise ValueError(f"riemann={name!r} is not one of {sorted(RIEMANN_SOLVERS)}") from None


@nb.njit(cache=True, inline="always", error_model="numpy")
def davis_speeds(rL, uL, pL, cL, rR, uR, pR, cR):
    """Davis estimates S_L, S_R, the HLLC contact speed S_star (Toro 10.37) and whether the
    HLLC star states are usable (``S_L < S_star < S_R``; else the caller takes HLL)."""
    sL = min(uL - cL, uR - cR)
    sR = max(uL + cL, uR + cR)
    den = rL * (sL - uL) - rR * (sR - uR)
    sS = (pR - pL + rL * uL * (sL - uL) - rR * uR * (sR - uR)) / den
    ok = den != 0.0 and sL < sS and sS < sR
    return sL, sR, sS, ok


@nb.njit(cache=True, inline="always", error_model="numpy")
def hll_flux(fL, fR, qL, qR, sL, sR, a, inv):
    """HLL flux of a conserved variable with left/right values qL, qR and physical fluxes fL,
    fR; ``a = sR*sL`` and ``inv = 1/(sR - sL)`` are the face's (computed once per face)."""
    return (sR * fL - sL * fR + a * (qR - qL)) * inv


@nb.njit(cache=True, inline="always", error_model="numpy")
def star_state(s, un, r, p, E, sS):
    """(f, E*) of the side with wave speed s: f = (S_K - u_K)/(S_K - S_star) scales its
    conserved densities into U*_K, E* is its star-region total energy (Toro 10.39)."""
    fs = (s - un) / (s - sS)
    return fs, fs * (E + (sS - un) * (r * sS + p / (s - un)))
