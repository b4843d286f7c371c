"""Table mode: bilinear interpolation of the (Ps, t) response table, the MES-IG rate, and the
per-cell clock, fused into one C++ call for a hydrocode's steady state (:func:`table_step`)."""

from __future__ import annotations

import numpy as np
import torch

from closure.kernels.dispatch import CUDA_TABLE_MIN_BATCH, Backend, _module, as_backend, run

__all__ = ["advance_cells", "table_lookup", "table_lookup_torch", "table_step",
           "table_step_reference"]


def table_lookup_torch(nodes, dt_t, tab_a, tab_t, tab_u, ps, t0, t1, shocked, thr):
    """Pure-PyTorch reference of :func:`table_lookup` (float64 throughout)."""
    nd = torch.as_tensor(np.asarray(nodes, np.float64))
    A = torch.as_tensor(np.asarray(tab_a, np.float64))
    Tt = torch.as_tensor(np.asarray(tab_t, np.float64))
    U = torch.as_tensor(np.asarray(tab_u, np.float64))
    p = torch.as_tensor(np.asarray(ps, np.float64))
    a0 = torch.as_tensor(np.asarray(t0, np.float64))
    a1 = torch.as_tensor(np.asarray(t1, np.float64))
    sh = torch.as_tensor(np.asarray(shocked, np.uint8)).bool()
    nP, nT = A.shape
    i = (torch.searchsorted(nd, p, right=True) - 1).clamp(0, nP - 2)
    fp = ((p - nd[i]) / (nd[i + 1] - nd[i])).clamp(0.0, 1.0)

    def t_idx(t):
        s = t / float(dt_t)
        s = torch.where(s > 0, s, torch.zeros_like(s)).clamp(max=float(nT - 1))
        k = torch.floor(s).to(torch.int64).clamp(max=nT - 2)
        return k, s - k

    def bil(tab, k, f):
        r0a, r0b = tab[i, k], tab[i, k + 1]
        r1a, r1b = tab[i + 1, k], tab[i + 1, k + 1]
        a = r0a + f * (r0b - r0a)
        b = r1a + f * (r1b - r1a)
        return a + fp * (b - a)

    k0, f0 = t_idx(a0)
    k1, f1 = t_idx(a1)
    A0, A1 = bil(A, k0, f0), bil(A, k1, f1)
    d = A1 - A0
    rate = torch.where(d > 0, d / (a1 - a0), torch.zeros_like(d))
    z = torch.zeros_like(p)
    out = (torch.where(sh, A1, z), torch.where(sh, bil(Tt, k1, f1), torch.full_like(p, thr)),
           torch.where(sh, bil(U, k1, f1), z), torch.where(sh, rate, z))
    return tuple(o.numpy() for o in out)


def table_lookup(nodes: np.ndarray, dt_t: float, tab_a: np.ndarray, tab_t: np.ndarray,
                 tab_u: np.ndarray, ps: np.ndarray, t0: np.ndarray, t1: np.ndarray,
                 shocked: np.ndarray, thr: float, *, backend: Backend | str | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Table-mode response of N cells: (A(t1), T_hs(t1), U(t1), rate) float64 (N,) each.

    Tables (nP, nT) on Ps ``nodes`` (increasing) x t = k ``dt_t``; bilinear in (Ps, t), Ps
    clamped to the nodes, t beyond the last node holds the last value. ``rate = max(0, A(t1) -
    A(t0)) / (t1 - t0)``. Cells with ``shocked == 0`` get (0, thr, 0, 0).
    """
    args = (np.ascontiguousarray(nodes, np.float64), float(dt_t),
            np.ascontiguousarray(tab_a, np.float64), np.ascontiguousarray(tab_t, np.float64),
            np.ascontiguousarray(tab_u, np.float64), np.ascontiguousarray(ps, np.float64),
            np.ascontiguousarray(t0, np.float64), np.ascontiguousarray(t1, np.float64),
            np.ascontiguousarray(shocked, np.uint8), float(thr))
    be = as_backend(backend)
    # host arrays: below this size the copies to and from the GPU cost more than they gain
    host = len(args[5]) < CUDA_TABLE_MIN_BATCH and be.auto_cuda
    return run("table_lookup", be, table_lookup_torch, args, name="cpp" if host else None)


def advance_cells(ps_old: np.ndarray, t_old: np.ndarray, steps_old: np.ndarray,
                  frac_old: np.ndarray, pressure: np.ndarray, dt: np.ndarray | float,
                  dt_meso: float, ps_window: float,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell clock of the closure over a call of length ``dt``: (Ps, t since shock, whole
    meso steps, fraction of the next). Ps is the running max of the pressure while the cell's age
    at the call's start is below ``ps_window``; meso steps accumulate ``dt / dt_meso`` exactly
    (whole steps plus a fraction in [0, 1)), so many small calls equal one large one."""
    ps = np.where(t_old < ps_window, np.maximum(ps_old, pressure), ps_old)
    x = frac_old + dt / dt_meso
    whole = np.floor(x)
    return ps, t_old + dt, steps_old + whole.astype(np.int64), x - whole


def table_step_reference(nodes, dt_t, tab_a, tab_t, tab_u, ps_old, t_old, steps_old, frac_old,
                         pressure, dt, dt_meso, ps_window, env_lo, env_hi, status_ok,
                         status_outside, *, backend: Backend | str | None = "torch"):
    """:func:`table_step` composed of :func:`advance_cells` and :func:`table_lookup` (on
    ``backend``; the default is the pure reference)."""
    ps, t1, steps, frac = advance_cells(ps_old, t_old, steps_old, frac_old, pressure, dt,
                                        dt_meso, ps_window)
    status = np.where((ps < env_lo) | (ps > env_hi), status_outside, status_ok).astype(np.int32)
    a, t_hs, u, rate = table_lookup(nodes, dt_t, tab_a, tab_t, tab_u, ps, t_old, t1,
                                    np.ones(ps.shape, np.uint8), 0.0, backend=backend)
    return ps, t1, steps, frac, status, a, t_hs, u, rate


def table_step(nodes: np.ndarray, dt_t: float, tab_a: np.ndarray, tab_t: np.ndarray,
               tab_u: np.ndarray, ps_old: np.ndarray, t_old: np.ndarray, steps_old: np.ndarray,
               frac_old: np.ndarray, pressure: np.ndarray, dt: np.ndarray | float,
               dt_meso: float, ps_window: float, env_lo: float, env_hi: float,
               status_ok: int, status_outside: int, *, backend: Backend | str | None = None,
               ) -> tuple[np.ndarray, ...]:
    """A table-mode call of N cells that all have state, fused on the C++ backend: the clock of
    :func:`advance_cells`, the status (``status_outside`` where Ps leaves [env_lo, env_hi], else
    ``status_ok``) and :func:`table_lookup` at (Ps, t_old, t_new). ``dt`` scalar or (N,).
    Returns (Ps, t, steps, frac, status, A, T_hs, U, rate), each (N,)."""
    d = np.asarray(dt, np.float64)
    args = (np.ascontiguousarray(nodes, np.float64), float(dt_t),
            np.ascontiguousarray(tab_a, np.float64), np.ascontiguousarray(tab_t, np.float64),
            np.ascontiguousarray(tab_u, np.float64), np.ascontiguousarray(ps_old, np.float64),
            np.ascontiguousarray(t_old, np.float64), np.ascontiguousarray(steps_old, np.int64),
            np.ascontiguousarray(frac_old, np.float64),
            np.ascontiguousarray(pressure, np.float64), d if d.ndim else d.reshape(1),
            float(dt_meso), float(ps_window), float(env_lo), float(env_hi), int(status_ok),
            int(status_outside))
    be = as_backend(backend)
    b = be.name
    if b == "cuda" and len(args[9]) < CUDA_TABLE_MIN_BATCH and be.auto_cuda:
        b = "cpp"
    if b == "cpp":
        return _module("cpp").table_step(*args)
    # no fused kernel on the GPU: the clock on the host, the lookup on the backend
    return table_step_reference(*args, backend=be)
