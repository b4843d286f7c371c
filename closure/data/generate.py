"""Generate a data set: samples in parallel processes, a progress bar, resume, manifest.

``generate(...)`` is what ``python -m closure.data generate`` runs. Sample ``i`` of a data set
with seed ``S`` depends only on (resolved config, S, i) (see
:func:`closure.data.collapse.sample_seed`), so any number of workers, any order and any number
of interruptions give the same arrays.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from tqdm.auto import tqdm

from . import dataset
from .collapse import run_sample

__all__ = ["generate", "GenerationError"]


class GenerationError(RuntimeError):
    """Some samples failed (their indices and messages are in the file's ``errors``)."""


def _init_worker(threads: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def _work(cfg: dict, seed: int, index: int):
    try:
        return index, run_sample(cfg, seed, index), None
    except Exception as exc:  # reported per sample; the run goes on with the others
        return index, None, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"


def generate(cfg: dict, n: int, seed: int, out: str | Path, *, workers: int = 1,
             threads_per_worker: int = 1, progress: bool = True, stop_after: int | None = None,
             manifest: bool = True) -> Path:
    """Write (or resume) the data set ``out`` with ``n`` samples; returns its path.

    ``workers`` > 1 runs samples in that many spawned processes with ``threads_per_worker``
    Numba threads each; ``workers == 1`` runs in this process with the current thread count.
    ``stop_after`` stops after that many new samples (used by the resume test).
    """
    if n < 1:
        raise ValueError(f"--n {n} must be >= 1")
    if workers < 1:
        raise ValueError(f"--workers {workers} must be >= 1")
    out = Path(out)
    h5 = (dataset.open_for_resume(out, cfg, n, seed) if out.exists()
          else dataset.create_dataset(out, cfg, n, seed))
    failures: dict[int, str] = {}
    try:
        todo = dataset.pending_indices(h5)
        if stop_after is not None:
            todo = todo[:stop_after]
        bar = tqdm(total=n, initial=n - len(dataset.pending_indices(h5)), disable=not progress,
                   unit="sample", desc=f"{cfg['scale']} {out.name}")

        def store(index, res, err):
            if err is not None:
                failures[index] = err
                dataset.mark_failed(h5, index, err)
            else:
                dataset.write_sample(h5, res)
                bar.set_postfix(u_p=f"{res.meta['u_p']:.0f}", peak_T=f"{res.meta['peak_T']:.0f}",
                                s=f"{res.meta['wall_s']:.1f}")
            bar.update(1)

        if workers == 1:
            for i in todo:
                store(*_work(cfg, seed, i))
        else:
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                     initializer=_init_worker,
                                     initargs=(threads_per_worker,)) as pool:
                queue = list(todo)
                running = set()
                try:
                    while queue or running:
                        while queue and len(running) < 2 * workers:
                            running.add(pool.submit(_work, cfg, seed, queue.pop(0)))
                        done, running = wait(running, return_when=FIRST_COMPLETED)
                        for fut in done:
                            store(*fut.result())
                except BaseException:
                    for fut in running:
                        fut.cancel()
                    raise
        bar.close()
        complete = not dataset.pending_indices(h5)
    finally:
        h5.close()
    if failures:
        lines = "\n".join(f"  sample {i}: {msg.splitlines()[0]}"
                          for i, msg in sorted(failures.items()))
        raise GenerationError(f"{len(failures)} sample(s) of {out} failed (rerun the same command "
                              f"to retry them):\n{lines}")
    if manifest and complete:
        dataset.write_manifest(out)
    return out


def default_workers() -> int:
    return max(1, (os.cpu_count() or 1))
