"""The shipped closure (``closure.Closure.load()``) coupled into the macro SDT problem.

Kept apart from tests/test_detonation.py (which uses a mock provider) because it needs the
default closure weights and tables; it skips, naming what is missing, until they are shipped.
"""

from pathlib import Path

import numpy as np
import pytest

from macro.coupling import QueryRate
from macro.simulation import Simulation, load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _closure_or_skip():
    closure = pytest.importorskip("closure")
    if not hasattr(closure, "Closure"):
        pytest.skip("closure.Closure does not exist yet (issue 5)")
    try:
        return closure.Closure.load()
    except FileNotFoundError as exc:  # weights/tables not shipped yet
        pytest.skip(f"default closure not shipped: {exc}")


def _run(provider, P, nx=200, length=0.006, t_end=0.9e-6):
    cfg = load_config(EXAMPLES / "detonation_1d.toml")
    cfg["grid"].update(nx=nx, x_max=length)
    cfg["time"].update(t_end=t_end, n_frames=0)
    cfg["boundary"]["piston_pressure"] = {"x_low": P}
    sim = Simulation.from_config(cfg, rate=provider)
    assert isinstance(sim.rate, QueryRate)
    return sim.run()


def test_shipped_closure_detonates_high_not_low():
    hi = _run(_closure_or_skip(), 12e9)
    rd = hi.run_distance()
    assert rd.detonated, "12 GPa input should detonate within 6 mm"
    assert hi.fields["lam"].max() == 1.0
    lo = _run(_closure_or_skip(), 0.5e9)
    assert not lo.run_distance().detonated
    assert lo.fields["lam"].max() < 0.05


def test_config_provider_entry_builds_the_closure():
    _closure_or_skip()
    cfg = load_config(EXAMPLES / "detonation_1d.toml")
    cfg["grid"]["nx"] = 40
    cfg["time"].update(t_end=2e-8, n_frames=0)
    sim = Simulation.from_config(cfg)
    assert type(sim.rate.provider).__name__ == "Closure"
    res = sim.run()
    assert np.all(np.isfinite(res.fields["lam"]))
