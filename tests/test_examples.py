"""Every shipped example config runs (a few steps through the Python API), and the README's
main command runs as written (the part after the install)."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from macro.simulation import Simulation, load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_config_runs(path, tmp_path):
    cfg = load_config(path)
    cfg["output"]["plots"] = False
    cfg["time"]["n_frames"] = 0
    res = Simulation.from_config(cfg).run(tmp_path / "out.h5", max_steps=5)
    assert res.steps == 5
    for k, v in res.fields.items():
        assert np.all(np.isfinite(v)), k
    with h5py.File(tmp_path / "out.h5") as f:  # the final state as the run left it
        for k in ("rho", "p", "u"):
            assert np.array_equal(f["final"][k][...], np.asarray(res.fields[k])), k


def _readme_main_command() -> list[str]:
    text = (ROOT / "README.md").read_text()
    line = next(ln for ln in text.splitlines() if "python -m macro run" in ln and "pip" in ln)
    run = re.search(r"python -m macro run .*$", line).group(0)
    return shlex.split(run)


@pytest.mark.slow
def test_readme_main_command_runs(tmp_path):
    argv = _readme_main_command()
    assert argv[:4] == ["python", "-m", "macro", "run"]
    cfg = ROOT / argv[4]
    assert cfg.exists(), argv
    out = argv[argv.index("--output") + 1]
    proc = subprocess.run([sys.executable, "-m", "macro", "run", str(cfg), *argv[5:],
                           "--no-progress"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with h5py.File(tmp_path / out) as f:
        rho, p = f["final"]["rho"][...], f["final"]["p"][...]
        assert rho.size > 0 and np.all(np.isfinite(rho)) and np.all(rho > 0)
        assert np.all(np.isfinite(p)) and p.max() > 1e9  # shocked (GPa), not the initial state
