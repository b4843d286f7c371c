"""Worker-side provider for tests/test_mpmd.py: the MPI test provider with ``release``."""

import numpy as np
from mpi_support import MockProvider


class ReleasingMock(MockProvider):
    def release(self, ids):
        keep = ~np.isin(self.ids, np.asarray(ids))
        self.ids, self.ps, self.age = self.ids[keep], self.ps[keep], self.age[keep]
        return int((~keep).sum())


def _client_lines(text: str) -> list:
    """The ``[client r] ...`` lines of a job's stderr. The launcher forwards each rank's
    output in its own chunks, and two clients' lines have arrived run together with no newline
    between them, so the text is split at the marker, not only at newlines."""
    return [("[client " + part).split("\n", 1)[0].strip()
            for part in text.split("[client ")[1:]]


def client_errors(cmd: list, cwd, env: dict, n_clients: int = 2,
                  limit: float = 90.0) -> tuple[list, float]:
    """Run an MPMD job until every client has printed its ``[client r] ...`` line on stderr
    (or ``limit`` s pass), then kill a worker frozen by ``freeze_on_call`` (its pid file in
    ``cwd``) so the launcher ends. Returns (the client lines, seconds until they were all
    there)."""
    import os
    import signal
    import subprocess
    import time
    from pathlib import Path

    cwd = Path(cwd)
    err = cwd / "stderr.txt"
    t0 = time.monotonic()
    lines: list = []
    with open(err, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=fh)
        try:
            while time.monotonic() - t0 < limit:
                lines = _client_lines(err.read_text())
                if len(lines) == n_clients:
                    time.sleep(0.5)  # let the last line finish arriving
                    lines = _client_lines(err.read_text())
                    break
                time.sleep(0.2)
            elapsed = time.monotonic() - t0
        finally:
            pid = cwd / "worker.pid"
            if pid.exists():
                os.kill(int(pid.read_text()), signal.SIGKILL)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert len(lines) == n_clients, err.read_text()[-3000:]
    return lines, elapsed
