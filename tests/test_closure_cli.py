"""The ``closure`` command (closure/cli.py): info, errors, and the old module entry points."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from closure import kernels
from closure.api import DEFAULT_MODEL_DIR
from closure.cli import main
from closure.table import TABLE_FILE, Table


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def test_info_on_the_shipped_model_prints_envelope_horizon_table_and_kernel_path(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    rows = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
    tab = Table.load(DEFAULT_MODEL_DIR / TABLE_FILE)
    lo, hi = np.asarray(tab.envelope) / 1e9
    assert rows["envelope"].startswith(f"Ps {lo:.2f}-{hi:.2f} GPa")
    assert rows["horizon"].startswith("19 meso steps")
    assert rows["table"].startswith(f"{TABLE_FILE}: {len(tab.nodes)} Ps nodes")
    assert rows["kernels"].split()[0] == kernels.resolve_backend()
    assert rows["dispatch"].startswith("unet: ") and "; decode: " in rows["dispatch"]
    assert "latent model" in rows["card"] and str(DEFAULT_MODEL_DIR) == rows["model"]


def test_info_of_a_model_without_table_says_so(tmp_path, capsys):
    from closure_testutil import make_model_dir

    d = make_model_dir(tmp_path / "m", n_t=4)
    assert main(["info", str(d)]) == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert rows["table"].startswith("none (online mode only; build it: closure table build")
    assert rows["horizon"].startswith("2 meso steps")


def test_info_calibrate_measures_the_kernel_families_again(tmp_path, capsys):
    from closure_testutil import make_model_dir

    d = make_model_dir(tmp_path / "m", n_t=4)
    assert main(["info", str(d), "--calibrate"]) == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    if kernels.Backend().name == "cpp":  # auto on the C++ backend: timed on both paths
        assert rows["dispatch"].count("measured") == 2 and "cpp " in rows["dispatch"]
        assert "torch " in rows["dispatch"]
    else:
        assert rows["dispatch"].startswith(f"unet: {kernels.Backend().name}")


def test_bad_model_dir_is_one_error_line_and_status_2(tmp_path):
    r = _run("-m", "closure", "info", str(tmp_path / "nowhere"))
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nowhere" in lines[0]
    dbg = _run("-m", "closure", "--debug", "info", str(tmp_path / "nowhere"))
    assert dbg.returncode == 2 and "Traceback" in dbg.stderr
    assert dbg.stderr.strip().splitlines()[-1] == lines[0]


@pytest.mark.parametrize("argv", [["bogus"], ["table"], ["info", "a", "b"], []])
def test_usage_errors_are_one_line_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: closure")


def test_old_module_entry_points_still_run(tmp_path):
    from closure_testutil import make_model_dir

    d = make_model_dir(tmp_path / "m", n_t=4)
    r = _run("-m", "closure.table", "build", str(d), "--n-initial", "3", "--max-nodes", "3",
             "--n-micro", "2", "--threads", "1")
    assert r.returncode == 0, r.stderr
    r = _run("-m", "closure.table", "show", str(d / TABLE_FILE))
    assert r.returncode == 0 and "3 Ps nodes" in r.stdout
    r = _run("-m", "closure.train", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and r.stderr.startswith("error: ")
