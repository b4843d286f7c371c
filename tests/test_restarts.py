"""Restarts that resume well before the end of a run, with real per-cell closure state."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from macro.simulation import Simulation, load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_restart_early_with_real_closure_state(tmp_path):
    """A tiny random-weight closure (online mode): checkpoint at step 12 of ~40, after cells
    have shocked and hold closure state; the resumed run's fields, closure state and
    shock-tracker history equal the uninterrupted run's bit for bit."""
    closure = pytest.importorskip("closure")
    util = pytest.importorskip("closure_testutil")
    import torch

    torch.set_num_threads(1)
    model_dir = util.make_model_dir(tmp_path / "tiny")
    cfg = load_config(EXAMPLES / "detonation_1d.toml")
    cfg["grid"].update(nx=40, x_max=0.0012)
    cfg["time"].update(t_end=0.16e-6, n_frames=2)
    cfg["reaction"]["mode"] = "online"
    cfg["output"].update(checkpoint_every=12, plots=False)
    cfg["detonation"] = {"front_pressure": 2e9, "xt_frames": 50}

    def closure_rate():
        return closure.Closure.load(model_dir, table=False)

    c_full = closure_rate()
    full = Simulation.from_config(cfg, rate=c_full).run(tmp_path / "full.h5")
    assert full.steps >= 36  # the checkpoint below is well before the end

    # the interrupted run: stops right after its first checkpoint
    c1 = closure_rate()
    sim = Simulation.from_config(cfg, rate=c1)
    ckpt = tmp_path / "ckpt.h5"
    sim.solver.advance(full.t, callback=sim.tracker, checkpoint_path=ckpt, checkpoint_every=12,
                       max_steps=12)
    with h5py.File(ckpt) as f:
        assert int(f.attrs["step"]) == 12
        provider = [k for k in f if k.startswith("rate_state.provider.")]
        assert provider and c1.n_cells > 0  # shocked cells carry closure state
        assert f["extra_shock_tracker.t"].size > 0

    c2 = closure_rate()
    resumed = Simulation.from_config(cfg, rate=c2).run(tmp_path / "resumed.h5", restart=ckpt)
    assert resumed.steps == full.steps and resumed.t == full.t
    for k in full.fields:
        assert np.array_equal(full.fields[k], resumed.fields[k]), k
    s_full, s_res = c_full.state_dict(), c2.state_dict()
    assert s_full.keys() == s_res.keys()
    for k in s_full:
        assert np.array_equal(s_full[k], s_res[k]), k
    for k in full.history:
        assert np.array_equal(full.history[k], resumed.history[k]), k
