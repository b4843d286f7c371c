"""``run_distributed``: the launcher of a distributed run. It splits the ranks into solver
ranks and closure workers, builds the provider or the solver rank's
:class:`~macro.simulation.Simulation` on its :class:`~macro.parallel.domain.DistributedDomain`
and runs :meth:`Simulation.run <macro.simulation.Simulation.run>`, the run loop of serial
runs; workers serve queries until every solver rank is done."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import load_config
from ..problem import build_grid
from ..simulation import Result, Simulation
from .comm import (
    CollectiveValueError,
    ParallelRunError,
    env_timeout,
    format_exc,
    install_excepthook,
)
from .domain import DistributedDomain
from .workers import WorkerProxy, is_provider_config, make_provider, serve

__all__ = ["run_distributed"]


def run_distributed(config: str | Path | dict, *, closure_workers: int = 0,
                    output: str | Path | None = None, restart: str | Path | None = None,
                    checkpoint: str | Path | None = None, progress: bool = False,
                    plots: bool | None = None, rate=None, provider=None, comm=None,
                    timeout: float | None = None, max_steps: int | None = None) -> Result | None:
    """Run a config on every rank of ``comm`` (default COMM_WORLD); call it on every rank.

    The last ``closure_workers`` ranks hold the rate provider (``provider``: an object with
    ``query`` or a zero-argument factory; else the config's ``[reaction] provider`` factory)
    and answer the other ranks' queries; with 0 every solver rank holds its own. ``rate``
    (a built-in rate) replaces the config's reaction. Returns the
    :class:`~macro.simulation.Result` on rank 0 (fields included), a Result without fields on
    the other solver ranks and None on workers. ``timeout`` (s, default MACRO_MPI_TIMEOUT or
    600) bounds a solver rank's wait for a worker's reply; waits between solver ranks get twice
    that and an idle worker three times, so the innermost wait expires first and names the
    rank that hung (then MPI_Abort ends the job).
    """
    from mpi4py import MPI

    install_excepthook()
    timeout = env_timeout() if timeout is None else float(timeout)
    world = comm if comm is not None else MPI.COMM_WORLD
    K, wrank = world.Get_size(), world.Get_rank()
    M = closure_workers
    if isinstance(M, bool) or not isinstance(M, int | np.integer) or not (0 <= M < K):
        raise CollectiveValueError(
            f"closure_workers={closure_workers!r} must be an integer in [0, {K - 1}] with {K} "
            "MPI ranks (at least one solver rank)")
    S = K - M
    is_worker = wrank >= S
    sub = world.Split(1 if is_worker else 0, wrank)
    err = None
    sim = domain = holder = None
    try:
        cfg = load_config(config)
        wants_provider = provider is not None or is_provider_config(cfg)
        if M > 0 and not wants_provider:
            raise ValueError("closure workers need a rate provider: [reaction] type = "
                             "'closure' with provider = 'module:factory' in the config")
        if is_worker:
            holder = make_provider(cfg, provider)
        else:
            proxy = None
            if M > 0:  # the coupling adapter wraps the proxy as it wraps a provider
                grid = build_grid(cfg["grid"])
                proxy = WorkerProxy(world, list(range(S, K)), grid.nx * grid.ny, timeout)
                run_rate = proxy
            elif wants_provider:
                run_rate = make_provider(cfg, provider)
            else:
                run_rate = rate
            domain = DistributedDomain.from_config(cfg, sub, proxy=proxy, timeout=timeout,
                                                   world=world)
            sim = Simulation(cfg, rate=run_rate, domain=domain)
            if M > 0 and getattr(sim.rate, "provider", None) is not proxy:
                raise TypeError("the rate adapter does not expose its provider (.provider)")
    except Exception as exc:
        err = format_exc(exc)
    errors = world.allgather(err)
    bad = [(r, e) for r, e in enumerate(errors) if e is not None]
    if bad:
        r, e = bad[0]
        raise ParallelRunError(f"set-up failed on rank {r}: {e}")

    if is_worker:
        message = serve(world, holder, S, timeout)
        if message is not None:
            raise ParallelRunError(message)
        return None
    try:
        result = sim.run(output, progress=progress, restart=restart, checkpoint=checkpoint,
                         plots=plots, max_steps=max_steps)
    except BaseException as exc:
        domain.stop_workers(f"solver rank {wrank}: {exc}")
        raise
    domain.stop_workers(None)
    return result
