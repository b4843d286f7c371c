"""Test support for the MPI runs: a stateful, deterministic mock closure provider.

Importable by worker ranks as ``mpi_support:MockProvider`` (tests put this directory on
PYTHONPATH). It follows the closure's ``query`` contract: per-cell state keyed by cell id,
created the first time a cell sees a pressure above ``p_shock``, a response that depends only
on the cell's own state and inputs (so results cannot depend on how cells are batched or which
rank holds them), ``state_dict``/``load_state_dict`` for checkpoints.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class MockResponse:
    reaction_rate: np.ndarray
    hotspot_area_fraction: np.ndarray
    hotspot_temperature: np.ndarray
    uncertainty: np.ndarray
    status: np.ndarray


class MockProvider:
    """Per shocked cell: peak pressure ``ps`` and time since the shock ``age``.

    ``reaction_rate = k * (ps / p_shock - 1) * age / (age + tau)`` (grows after the shock, so
    the answer depends on the stored state); cells never shocked answer 0 with status 1.
    ``fail_on_call`` (> 0): the n-th query raises (to test error propagation);
    ``hang_on_call``: the n-th query never returns (a hung worker, to test the timeouts);
    ``die_on_call``: the n-th query kills the process (SIGKILL: a dead worker);
    ``freeze_on_call``: the n-th query writes the pid to ``freeze_pid_file`` and stops the
    process (SIGSTOP: a worker that neither answers nor exits, which no launcher cleans up).
    """

    def __init__(self, k: float = 1.0, p_shock: float = 2.0, tau: float = 0.5,
                 fail_on_call: int = 0, hang_on_call: int = 0, die_on_call: int = 0,
                 freeze_on_call: int = 0, freeze_pid_file: str = "worker.pid"):
        self.k, self.p_shock, self.tau = float(k), float(p_shock), float(tau)
        self.fail_on_call = int(fail_on_call)
        self.hang_on_call = int(hang_on_call)
        self.die_on_call = int(die_on_call)
        self.freeze_on_call, self.freeze_pid_file = int(freeze_on_call), str(freeze_pid_file)
        self.calls = 0
        self.ids = np.zeros(0, np.int64)
        self.ps = np.zeros(0)
        self.age = np.zeros(0)

    def query(self, cell_ids, pressure, dt, *, mode="table", deterministic=True, seed=None):
        ids = np.asarray(cell_ids)
        p = np.asarray(pressure, dtype=np.float64)
        if ids.dtype != np.int64 or ids.ndim != 1 or p.shape != ids.shape:
            raise TypeError(f"cell_ids must be int64 (N,) and pressure (N,), got {ids.dtype} "
                            f"{ids.shape} / {p.shape}")
        if mode not in ("table", "online"):
            raise ValueError(f"mode={mode!r} is not one of ['table', 'online']")
        self.calls += 1
        if self.fail_on_call and self.calls >= self.fail_on_call:
            raise RuntimeError(f"mock provider failure on call {self.calls} "
                               f"(cells {ids[:3].tolist()}...)")
        if self.hang_on_call and self.calls >= self.hang_on_call:
            time.sleep(3600.0)
        if self.die_on_call and self.calls >= self.die_on_call:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.freeze_on_call and self.calls >= self.freeze_on_call:
            with open(self.freeze_pid_file, "w") as f:
                f.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGSTOP)
        dt = np.broadcast_to(np.asarray(dt, dtype=np.float64), ids.shape)
        pos = np.searchsorted(self.ids, ids)
        known = (pos < self.ids.size) & (self.ids[np.minimum(pos, self.ids.size - 1)] == ids) \
            if self.ids.size else np.zeros(ids.shape, bool)
        new = ~known & (p > self.p_shock)
        if new.any():  # create state for newly shocked cells, keep the arrays sorted by id
            ids_all = np.concatenate([self.ids, ids[new]])
            order = np.argsort(ids_all, kind="stable")
            self.ids = ids_all[order]
            self.ps = np.concatenate([self.ps, p[new]])[order]
            self.age = np.concatenate([self.age, np.zeros(int(new.sum()))])[order]
            pos = np.searchsorted(self.ids, ids)
            known = known | new
        idx = pos[known]
        self.ps[idx] = np.maximum(self.ps[idx], p[known])
        self.age[idx] += dt[known]
        rate = np.zeros(ids.shape)
        a, s = self.age[idx], self.ps[idx]
        rate[known] = self.k * (s / self.p_shock - 1.0) * a / (a + self.tau)
        frac = np.zeros(ids.shape)
        frac[known] = a / (a + self.tau)
        status = np.where(known, 0, 1).astype(np.int64)
        return MockResponse(reaction_rate=rate, hotspot_area_fraction=frac,
                            hotspot_temperature=np.where(known, 300.0 + 100.0 * frac, 300.0),
                            uncertainty=0.1 * frac, status=status)

    def state_dict(self) -> dict:
        return {"ids": self.ids.copy(), "ps": self.ps.copy(), "age": self.age.copy(),
                "calls": np.int64(self.calls)}

    def load_state_dict(self, state) -> None:
        self.ids = np.asarray(state["ids"], np.int64).copy()
        self.ps = np.asarray(state["ps"], np.float64).copy()
        self.age = np.asarray(state["age"], np.float64).copy()
        self.calls = int(state["calls"])
