"""Approximate Riemann solvers (HLLC with HLL fallback) on states rotated to the face normal.

Both take primitive face states and the energy/sound speed the caller computed from its EOS, so
single-fluid and diffuse-interface models share the wave-speed and star-state logic.
"""

import numba as nb

HLLC, HLL = 0, 1
RIEMANN_SOLVERS = {"hllc": HLLC, "hll": HLL}


def riemann_code(name: str) -> int:
    try:
        return RIEMANN_SOLVERS[name.lower()]
    except KeyError:
        raise ValueError(f"riemann={name!r} is not one of {sorted(RIEMANN_SOLVERS)}") from None


@nb.njit(cache=True, inline="always")
def wave_speeds(rL, uL, pL, cL, rR, uR, pR, cR):
    """Davis estimates S_L, S_R and the HLLC contact speed S_star."""
    sL = min(uL - cL, uR - cR)
    sR = max(uL + cL, uR + cR)
    den = rL * (sL - uL) - rR * (sR - uR)
    if den == 0.0:
        return sL, sR, 0.5 * (uL + uR), False
    sS = (pR - pL + rL * uL * (sL - uL) - rR * uR * (sR - uR)) / den
    ok = sL < sS < sR
    return sL, sR, sS, ok


@nb.njit(cache=True, inline="always")
def star_factor(r, u, s, sS):
    """(S_K - u_K)/(S_K - S_star): the factor scaling conserved densities of side K into U*_K."""
    return (s - u) / (s - sS)


@nb.njit(cache=True, inline="always")
def star_energy(r, u, p, E, s, sS):
    """Star-region total energy per volume for side K (Toro eq. 10.39), already times the factor."""
    f = (s - u) / (s - sS)
    return f * (E + (sS - u) * (r * sS + p / (s - u)))
