"""A client program of MPMD closure workers, as another hydrocode would be one (run by
tests/test_mpmd.py under ``mpiexec -n 2 python mpmd_client.py OUT SEED : -n 1 <workers>``).

Each client rank advances its own cells (ids rank*10**6 + k) along seeded random pressure
histories: queries of random subsets (scalar or per-cell dt alternating), releases, and writes
its call sequence and every answer to ``OUT/client<rank>.npz`` for the test to replay in-process.
Errors are printed as ``[client r] error: ...`` and exit with status 3 (no MPI_Abort: the other
client must get to report its own error)."""

import sys

import numpy as np


def main() -> int:
    out, seed, steps, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    from macro.parallel.mpmd import connect

    closure, comm = connect()
    rank = comm.Get_rank()
    rng = np.random.default_rng([seed, rank])
    cells = rank * 10**6 + rng.choice(10**5, 12, replace=False).astype(np.int64)
    record: dict = {"mode": np.array(mode)}
    try:
        for k in range(steps):
            sel = np.sort(rng.choice(cells.size, rng.integers(1, cells.size + 1), replace=False))
            ids = cells[sel]
            p = rng.uniform(2e9, 15e9, ids.size) * (rng.random(ids.size) < 0.8)
            dt = 2e-10 * (1 + rng.random(ids.size)) if k % 2 else 2.5e-10
            res = closure.query(ids, p, dt, mode=mode, deterministic=True)
            record[f"q{k}_ids"], record[f"q{k}_p"] = ids, p
            record[f"q{k}_dt"] = np.atleast_1d(dt)
            for name, v in res.fields.items():
                record[f"q{k}_r_{name}"] = v
            if k % 4 == 3:  # forget a few cells; they start afresh when queried again
                gone = cells[rng.choice(cells.size, 3, replace=False)]
                closure.release(gone)
                record[f"q{k}_released"] = gone
        comm.Barrier()
    except Exception as exc:  # noqa: BLE001 - reported to the test, which checks the message
        print(f"[client {rank}] error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 3
    closure.stop(None)
    np.savez(f"{out}/client{rank}.npz", **record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
