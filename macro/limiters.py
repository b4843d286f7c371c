"""TVD slope limiters for MUSCL reconstruction (one place for the limiter codes)."""

import numba as nb

MINMOD, MC, VANLEER = 0, 1, 2
LIMITERS = {"minmod": MINMOD, "mc": MC, "vanleer": VANLEER}


def limiter_code(name: str) -> int:
    try:
        return LIMITERS[name.lower()]
    except KeyError:
        raise ValueError(f"limiter={name!r} is not one of {sorted(LIMITERS)}") from None


# One function per limiter so that hot loops can pick the limiter once, outside the loop, and
# stay branch-free (vectorisable) inside. Every branch below is a select on computed values.


@nb.njit(cache=True, inline="always", error_model="numpy")
def minmod_slope(dm, dp):
    s = dm if abs(dm) < abs(dp) else dp
    return 0.0 if dm * dp <= 0.0 else s


@nb.njit(cache=True, inline="always", error_model="numpy")
def mc_slope(dm, dp):
    c = 0.5 * (dm + dp)
    a = 2.0 * dm
    b = 2.0 * dp
    s = 1.0 if c > 0.0 else -1.0
    m = s * min(abs(c), abs(a), abs(b))
    return 0.0 if dm * dp <= 0.0 else m


@nb.njit(cache=True, inline="always", error_model="numpy")
def vanleer_slope(dm, dp):
    m = 2.0 * dm * dp / (dm + dp)
    return 0.0 if dm * dp <= 0.0 else m


@nb.njit(cache=True, inline="always", error_model="numpy")
def limited_slope(kind, dm, dp):
    """Limited cell slope from the backward (dm) and forward (dp) differences."""
    if kind == MINMOD:
        return minmod_slope(dm, dp)
    if kind == MC:
        return mc_slope(dm, dp)
    return vanleer_slope(dm, dp)


@nb.njit(cache=True, inline="always", error_model="numpy")
def faces(kind, wm, w0, wp):
    """(left face, right face) values of the middle cell."""
    s = 0.5 * limited_slope(kind, w0 - wm, wp - w0)
    return w0 - s, w0 + s
