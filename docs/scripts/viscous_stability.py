"""Stability of the explicit viscous sub-step on data-generation states: how far below the
forward-Euler limit of the discrete stress operator the sub-step of ``macro.transport`` runs.

The sub-step is ``h = SAFETY dx^2 / D_max`` (``D = 4/3 mu/rho``, SAFETY 0.1). With the face
viscosities and densities of a state fixed, the momentum update is linear in the velocities,
``d(u, v)/dt = A (u, v)``, A the operator of ``macro.transport._viscous`` (harmonic face means,
tangential derivatives from four cells) divided by the cell densities. For each state this
script (1) finds A's eight eigenvalues of largest magnitude (ARPACK, A applied as the kernel
itself applies it) and the forward-Euler limit ``min 2 (-Re l)/|l|^2`` they set, and (2) runs
300 forward-Euler steps of ``fac * h`` from random velocities and reports the norm's growth
(below 1: stable). States: default micro samples stopped part-way through their horizon
(``benchmarks/bench_datagen.py``'s states and two more). Writes docs/viscous_stability.json.

    python docs/scripts/viscous_stability.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "viscous_stability.json"
STATES = ((0, 0.5), (1, 0.5), (1, 0.9), (5, 0.3))  # (micro sample, fraction of the horizon)
FACTORS = (1.0, 2.0, 2.5, 3.0, 3.5)
N_STEPS = 300


def _operator(solver):
    """(matvec of A on interior (u, v), interior densities, the kernel's sub-step h)."""
    from macro import transport as tr
    from macro.boundary import NG, fill_ghosts
    from macro.multi import AR1, AR2, EN, MX, MY

    U = solver.U.copy()
    g, b, m = solver.grid, solver.boundaries, solver.model
    NY, NX = U.shape[1:]
    W = np.zeros((tr.NW, NY, NX))
    fill_ghosts(U, b.codes, b.uwall, b.inflow, 2, MX, MY, EN)
    h = tr._velocity_cells(U, W, m._tp, g.dx, g.dy, True)
    tr._seal_open_sides(W, b.codes, True)
    tr._face_viscosities(W, True)
    inner = (slice(NG, NY - NG), slice(NG, NX - NG))
    rho = (U[AR1] + U[AR2])[inner]
    ni = rho.size
    B = np.empty((11, NX))

    def matvec(v):
        v = np.asarray(v).real
        X = U.copy()
        X[MX] = 0.0
        X[MY] = 0.0
        X[EN] = 0.0
        X[MX][inner] = v[:ni].reshape(rho.shape) * rho
        X[MY][inner] = v[ni:].reshape(rho.shape) * rho
        # ghosts: periodic in y; the x sides are sealed (zero face viscosity), their
        # velocities enter nothing
        for k in (MX, MY):
            X[k, :NG] = X[k, NY - 2 * NG:NY - NG]
            X[k, NY - NG:] = X[k, NG:2 * NG]
        tr._velocities(X, W)
        before = X[MX].copy(), X[MY].copy()
        tr._viscous(X, W, B, 1.0, g.dx, g.dy, True)
        return np.concatenate([((X[MX] - before[0])[inner] / rho).ravel(),
                               ((X[MY] - before[1])[inner] / rho).ravel()])

    return matvec, rho, h


def main() -> None:
    from scipy.sparse.linalg import LinearOperator, eigs

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_datagen import _datagen_state

    from closure.data import load_data_config

    cfg = load_data_config("micro")
    rows = []
    for index, frac in STATES:
        solver, _, _ = _datagen_state(cfg, index, frac)
        matvec, rho, h = _operator(solver)
        n = 2 * rho.size
        lam = eigs(LinearOperator((n, n), matvec=matvec, dtype=float), k=8, which="LM",
                   return_eigenvectors=False, maxiter=5000, tol=1e-6)
        h_fe = float(min(2.0 * -l.real / abs(l) ** 2 for l in lam))
        rng = np.random.default_rng(index)
        growth = {}
        for fac in FACTORS:
            v = rng.standard_normal(n)
            n0 = np.linalg.norm(v)
            for _ in range(N_STEPS):
                v = v + fac * h * matvec(v)
            growth[str(fac)] = float(np.linalg.norm(v) / n0)
        row = {"sample": index, "fraction_of_horizon": frac, "t": solver.t, "h_kernel": h,
               "h_fe_limit": h_fe, "limit_over_kernel": h_fe / h,
               "max_abs_eigenvalue": float(np.max(np.abs(lam))),
               "max_abs_imag": float(np.max(np.abs(lam.imag))),
               "max_real": float(np.max(lam.real)), "growth_after_steps": growth}
        rows.append(row)
        print(f"sample {index} at {frac:.1f} of the horizon: kernel h {h:.3e} s, FE limit "
              f"{h_fe:.3e} s (x{h_fe / h:.2f}); norm growth over {N_STEPS} steps of fac*h: "
              + ", ".join(f"{f}: {gr:.2g}" for f, gr in growth.items()), flush=True)
    doc = {"steps": N_STEPS, "factors": FACTORS, "states": rows}
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(OUT)
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
