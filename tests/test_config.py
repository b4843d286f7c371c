"""Strict run-config validation (macro.config), the CLI's one-line errors, the progress unit."""

from __future__ import annotations

import copy
import io
import math
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

import macro.config as mc
from macro.cli import main
from macro.config import SCHEMA, ConfigError, ListOf, Num, Table, load_config
from macro.solver import NonPhysicalStateError, time_bar, time_unit

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

BASE = """
title = "tiny"
[model]
type = "euler"
eos = { type = "IdealGas", gamma = 1.4 }
products = { type = "IdealGas", gamma = 1.4 }
Q = 1.0
[reaction]
type = "Arrhenius"
k = 1.0
Ta = 1.0
[grid]
nx = 8
[numerics]
cfl = 0.5
[time]
t_end = 0.01
n_frames = 0
[boundary]
x_low = "piston"
x_high = "transmissive"
piston_velocity = { x_low = 0.1 }
[problem]
type = "regions"
background = { rho = 1.0, p = 1.0 }
[[problem.regions]]
shape = "circle"
center = [0.5, 0.5]
radius = 0.1
state = { rho = 2.0, p = 1.0 }
[output]
plots = false
[detonation]
track = false
"""

CLOSURE = {"type": "closure", "provider": "pkg.mod:factory", "mode": "table"}


def patched(path: tuple, value, base: str = BASE) -> dict:
    """BASE with ``value`` set at ``path`` (section, key, ... list indices as ints)."""
    cfg = tomllib.loads(base)
    node = cfg
    for p in path[:-1]:
        node = node[p] if isinstance(p, int) else node.setdefault(p, {})
    node[path[-1]] = value
    return cfg


def test_base_config_is_valid():
    cfg = load_config(tomllib.loads(BASE))
    assert cfg["numerics"] == {"cfl": 0.5, "order": 2, "limiter": "mc", "riemann": "hllc"}
    assert load_config(cfg) == cfg


UNKNOWN_KEYS = [  # (path, the message names section, key and the suggestion)
    (("numerics", "cfll"), "[numerics] unknown key 'cfll' (did you mean 'cfl'?); "
                           "allowed: ['cfl', 'limiter', 'order', 'riemann']"),
    (("grid", "nxx"), "[grid] unknown key 'nxx' (did you mean 'nx'?)"),
    (("time", "t_ned"), "[time] unknown key 't_ned' (did you mean 't_end'?)"),
    (("model", "prodcts"), "[model] unknown key 'prodcts' (did you mean 'products'?)"),
    (("model", "eos", "gama"), "[model.eos] unknown key 'gama' (did you mean 'gamma'?)"),
    (("reaction", "Taa"), "[reaction] unknown key 'Taa' (did you mean 'Ta'?); "
                          "allowed for type = 'Arrhenius': ['T_ignition', 'Ta', 'alpha_min', "
                          "'k', 'type']"),
    (("boundary", "x_lwo"), "[boundary] unknown key 'x_lwo' (did you mean 'x_low'?)"),
    (("boundary", "piston_velocity", "x_hihg"),
     "[boundary.piston_velocity] unknown key 'x_hihg' (did you mean 'x_high'?)"),
    (("problem", "backgrund"), "[problem] unknown key 'backgrund' (did you mean 'background'?)"),
    (("problem", "regions", 0, "radus"),
     "[problem.regions][0] unknown key 'radus' (did you mean 'radius'?)"),
    (("problem", "regions", 0, "state", "rhoo"),
     "[problem.regions][0].state unknown key 'rhoo' (did you mean 'rho'?)"),
    (("output", "plot"), "[output] unknown key 'plot' (did you mean 'plots'?)"),
    (("detonation", "front_presure"),
     "[detonation] unknown key 'front_presure' (did you mean 'front_pressure'?)"),
    (("nmerics",), "unknown section 'nmerics' (did you mean 'numerics'?)"),
]

WRONG_TYPES = [  # (path, bad value, expected message)
    (("title",), 3, "title=3 must be a string"),
    (("model", "Q"), "1", "[model] Q='1' must be a finite number"),
    (("model", "eos"), 1.4, "[model] eos=1.4 must be a table"),
    (("model", "eos", "gamma"), "1.4", "[model.eos] gamma='1.4' must be a finite number"),
    (("reaction", "k"), True, "[reaction] k=true must be a finite number"),
    (("grid", "nx"), 8.0, "[grid] nx=8.0 must be an integer >= 4"),
    (("numerics", "cfl"), True, "[numerics] cfl=true must be a number in (0, 1]"),
    (("numerics", "limiter"), 2, "[numerics] limiter=2 must be one of ['mc', 'minmod', "
                                 "'vanleer']"),
    (("time", "t_end"), "1e-3", "[time] t_end='1e-3' must be a number > 0"),
    (("boundary", "x_low"), True, "[boundary] x_low=true must be one of ['inflow', "),
    (("boundary", "piston_velocity"), 0.1, "[boundary] piston_velocity=0.1 must be a table"),
    (("problem", "regions"), {"shape": "box"}, "[problem] regions={'shape': 'box'} must be a "
                                               "list of"),
    (("problem", "regions", 0, "center"), 0.5,
     "[problem.regions][0] center=0.5 must be a list of 2 finite numbers"),
    (("problem", "background", "rho"), "1", "[problem.background] rho='1' must be a number > 0"),
    (("output", "plots"), "yes", "[output] plots='yes' must be true or false"),
    (("detonation", "track"), 1, "[detonation] track=1 must be true or false"),
]

OUT_OF_RANGE = [  # (path, bad value, expected message)
    (("model", "type"), "eulr", "[model] type='eulr' is not one of ['euler', 'five_equation'] "
                                "(did you mean 'euler'?)"),
    (("model", "Q"), math.inf, "[model] Q=inf must be a finite number"),
    (("model", "eos", "gamma"), 1.0, "[model.eos] gamma=1.0 must be finite and > 1"),
    (("model", "eos", "type"), "Tillotson", "[model.eos] type='Tillotson' is not one of "
                                            "['Hayes', 'IdealGas', 'JWL', 'MieGruneisen', "
                                            "'StiffenedGas']"),
    (("reaction", "k"), -1.0, "[reaction] Arrhenius k=-1.0 must be finite and > 0"),
    (("reaction", "type"), "Kriging", "[reaction] type='Kriging' is not one of "
                                      "['Arrhenius', 'LeeTarver', 'closure']"),
    (("grid", "nx"), 2, "[grid] nx=2 must be an integer >= 4"),
    (("grid", "ny"), 2, "[grid] ny=2 must be 1 (a 1D run) or an integer >= 4"),
    (("grid", "x_max"), -1.0, "[grid] x_max=-1.0 must be > x_min = 0.0"),
    (("numerics", "cfl"), 1.5, "[numerics] cfl=1.5 must be a number in (0, 1]"),
    (("numerics", "cfl"), 0, "[numerics] cfl=0 must be a number in (0, 1]"),
    (("numerics", "order"), 1, "[numerics] order=1 must be an integer in {2, 3}"),
    (("numerics", "limiter"), "superbee", "[numerics] limiter='superbee' is not one of "
                                          "['mc', 'minmod', 'vanleer']"),
    (("numerics", "riemann"), "roe", "[numerics] riemann='roe' is not one of ['hll', 'hllc']"),
    (("time", "t_end"), 0.0, "[time] t_end=0.0 must be a number > 0"),
    (("time", "n_frames"), -1, "[time] n_frames=-1 must be an integer >= 0"),
    (("boundary", "x_high"), "outflow", "[boundary] x_high='outflow' is not one of ['inflow', "
                                        "'periodic', 'piston', 'reflective', 'transmissive']"),
    (("boundary", "piston_pressure"), {"x_low": -5e9},
     "[boundary.piston_pressure] x_low=-5000000000.0 must be a number > 0"),
    (("boundary", "x_high"), "periodic", "[boundary] periodic boundary must be set on both "
                                         "x_low and x_high"),
    (("problem", "type"), "riemman", "[problem] type='riemman' is not one of ['regions', "
                                     "'riemann'] (did you mean 'riemann'?)"),
    (("problem", "regions", 0, "radius"), 0.0,
     "[problem.regions][0] radius=0.0 must be a number > 0"),
    (("problem", "regions", 0, "state", "rho"), -1.0,
     "[problem.regions][0].state rho=-1.0 must be a number > 0"),
    (("problem", "background", "lam"), 1.5,
     "[problem.background] lam=1.5 must be a number in [0, 1]"),
    (("output", "checkpoint_every"), -1, "[output] checkpoint_every=-1 must be an integer >= 0"),
    (("detonation", "criterion"), "sped", "[detonation] criterion='sped' is not one of "
                                          "['pressure', 'speed', 'wedge'] (did you mean 'speed'?)"),
    (("pop", "length_factor"), 1.0, "[pop] length_factor=1.0 must be a number > 1"),
    (("pop", "dx"), -1e-5, "[pop] dx=-1e-05 must be a number > 0"),
    (("detonation", "fraction"), 2.0, "[detonation] fraction=2.0 must be a number in (0, 1.5]"),
    (("detonation", "lead_window_cells"), 0,
     "[detonation] lead_window_cells=0 must be an integer >= 1"),
]

CLOSURE_CASES = [  # [reaction] type = "closure" and its growth table
    ({"mdoe": "table"}, "[reaction] unknown key 'mdoe' (did you mean 'mode'?); "
                        "allowed for type = 'closure'"),
    ({"seed": 1.5}, "[reaction] seed=1.5 must be an integer >= 0"),
    ({"ignition_max": 2.0}, "[reaction] ignition_max=2.0 must be a number in [0, 1]"),
    ({"shock_gate": "on"}, "[reaction] shock_gate='on' must be true or false"),
    ({"growth": 3}, "[reaction] growth=3 must be one of ["),
    ({"growth": "NOPE"}, "[reaction] growth='NOPE' is not one of ["),
    ({"growth": {"G11": 1.0}}, "[reaction.growth] unknown key 'G11' (did you mean 'G1'?)"),
    ({"growth": {"G1": -1.0}}, "[reaction.growth] G1=-1.0 must be a number >= 0"),
    ({"provider_args": 1}, "[reaction] provider_args=1 must be a table"),
]


def _raises(cfg: dict, expected: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    msg = str(info.value)
    assert expected in msg, msg
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("path, expected", UNKNOWN_KEYS, ids=lambda v: str(v)[:40])
def test_unknown_key_is_rejected_with_a_suggestion(path, expected):
    _raises(patched(path, {} if len(path) == 1 else 1.0), expected)


@pytest.mark.parametrize("path, value, expected", WRONG_TYPES, ids=lambda v: str(v)[:40])
def test_wrong_type_is_rejected(path, value, expected):
    _raises(patched(path, value), expected)


@pytest.mark.parametrize("path, value, expected", OUT_OF_RANGE, ids=lambda v: str(v)[:40])
def test_out_of_range_value_is_rejected(path, value, expected):
    _raises(patched(path, value), expected)


@pytest.mark.parametrize("entries, expected", CLOSURE_CASES, ids=lambda v: str(v)[:40])
def test_closure_reaction_entries(entries, expected):
    _raises(patched(("reaction",), {**CLOSURE, **entries}), expected)


def test_cross_key_and_required_rules():
    _raises(patched(("boundary", "x_low"), "reflective"),
            "[boundary] piston_velocity.x_low needs x_low = 'piston' (got x_low = 'reflective')")
    _raises(patched(("boundary", "piston_velocity"), {}),
            "[boundary] x_low = 'piston' needs piston_velocity")
    _raises(patched(("boundary", "x_high"), "inflow"), "[boundary] x_high = 'inflow' needs inflow")
    cfg = tomllib.loads(BASE)
    del cfg["grid"]["nx"]
    _raises(cfg, "[grid] needs 'nx' (an integer >= 4)")
    cfg = tomllib.loads(BASE)
    del cfg["problem"]["background"]
    _raises(cfg, "[problem] needs 'background'")
    cfg = tomllib.loads(BASE)
    del cfg["time"]
    _raises(cfg, "config needs a [time] section")
    cfg = tomllib.loads(BASE)
    del cfg["model"]["eos"]
    _raises(cfg, "[model] needs 'eos'")
    # shape decides the allowed keys; a box takes no radius
    _raises(patched(("problem", "regions", 0, "shape"), "box"),
            "[problem.regions][0] unknown key 'center'; allowed for shape = 'box'")
    # a key at the top level that belongs to a section
    _raises(patched(("cfl",), 0.5), "unknown key 'cfl' (it belongs under [numerics])")
    # material only with LeeTarver, an eos table needs its required fields
    _raises(patched(("reaction", "material"), "PBX9501"),
            "[reaction] unknown key 'material'; allowed for type = 'Arrhenius'")
    _raises(patched(("model", "eos"), {"type": "StiffenedGas", "gamma": 4.4}),
            "[model.eos] needs 'p_inf'")


def test_five_equation_model_keys():
    base = (EXAMPLES / "water_air.toml").read_text()
    _raises(patched(("model", "kapila"), "yes", base), "[model] kapila='yes' must be true or false")
    _raises(patched(("problem", "background", "alpha1"), 1.5, base),
            "[problem.background] alpha1=1.5 must be a number in [0, 1]")
    _raises(patched(("problem", "background", "alpha"), 0.5, base),
            "[problem.background] unknown key 'alpha' (did you mean 'alpha1'?); allowed: "
            "['alpha1', 'lam', 'p', 'rho1', 'rho2', 'u', 'v']")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_loads(path):
    cfg = load_config(path)
    assert cfg["numerics"]["cfl"] > 0 and cfg["time"]["t_end"] > 0
    assert cfg["output"]["plots"] is True or cfg["output"]["plots"] is False
    if cfg["model"].get("material"):  # presets expanded
        assert {"eos", "products", "Q"} <= set(cfg["model"])
    if isinstance((cfg.get("reaction") or {}).get("growth"), dict):
        assert "G1" in cfg["reaction"]["growth"]
    assert load_config(cfg) == cfg  # a resolved config is itself valid


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid\nnx = 4\n")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load_config(bad)


def test_material_presets_are_asked_not_hard_coded(monkeypatch):
    """A renamed preset is accepted in [model], [reaction] and growth without schema edits."""
    renamed = {"OTHER": mc.material_presets()["PBX9501"]}
    monkeypatch.setattr(mc, "material_presets", lambda: renamed)
    ig = tomllib.loads((EXAMPLES / "detonation_1d_ig.toml").read_text())
    ig["model"]["material"] = ig["reaction"]["material"] = "OTHER"
    cfg = load_config(ig)
    assert cfg["model"]["eos"]["type"] == "MieGruneisen"
    assert cfg["reaction"]["G1"] == renamed["OTHER"]["lee_tarver"]["G1"]
    _raises(patched(("model", "material"), "PBX9501"),
            "[model] material='PBX9501' is not one of ['OTHER']")
    _raises(patched(("reaction",), {**CLOSURE, "growth": "PBX9501"}),
            "[reaction] growth='PBX9501' is not one of ['OTHER']")


def test_a_new_section_is_one_schema_entry(monkeypatch):
    monkeypatch.setitem(SCHEMA, "sweep", Table(keys={"pressures": ListOf(item=Num(gt=0))}))
    assert load_config(patched(("sweep", "pressures"), [4e9, 8e9]))["sweep"]["pressures"] == \
        [4e9, 8e9]
    _raises(patched(("sweep", "presures"), []),
            "[sweep] unknown key 'presures' (did you mean 'pressures'?)")
    _raises(patched(("sweep", "pressures"), [4e9, -1.0]),
            "[sweep.pressures][1]=-1.0 must be a number > 0")


def test_from_config_validates_overrides():
    from macro.simulation import Simulation

    with pytest.raises(ConfigError, match=r"\[time\] t_end=-1.0 must be a number > 0"):
        Simulation.from_config(tomllib.loads(BASE), t_end=-1.0)
    with pytest.raises(ConfigError, match=r"\[numerics\] unknown key 'cfll'"):
        Simulation.from_config(tomllib.loads(BASE), numerics__cfll=0.5)


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------

TYPO = BASE.replace("cfl = 0.5", "cfll = 0.5")


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m macro run`` in a subprocess with an empty Numba cache of its own."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"), NUMBA_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "macro", "run", *args, "--no-plots"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_cli_config_error_is_one_line_and_status_2(tmp_path):
    (tmp_path / "typo.toml").write_text(TYPO)
    proc = run_cli(tmp_path, "typo.toml")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: [numerics] unknown key 'cfll' "
                                                   "(did you mean 'cfl'?); allowed: "), lines
    assert proc.stdout == "" and not (tmp_path / "typo.h5").exists()
    # validation failed before anything was compiled: the run's Numba cache stayed empty
    cache = tmp_path / "numba_cache"
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_cli_missing_file_and_debug_traceback(tmp_path):
    proc = run_cli(tmp_path, "nope.toml")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["error: config file nope.toml does not exist"]
    (tmp_path / "typo.toml").write_text(TYPO)
    proc = run_cli(tmp_path, "typo.toml", "--debug")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Traceback (most recent call last):")
    assert "macro.config.ConfigError: [numerics] unknown key 'cfll'" in proc.stderr


def test_cli_non_physical_state_is_a_user_error(tmp_path, monkeypatch, capsys):
    from macro.simulation import Simulation

    def blow_up(*args, **kwargs):
        raise NonPhysicalStateError("p", (3,), 7, 1.5e-6, tmp_path / "last_good.h5")

    monkeypatch.setattr(Simulation, "from_config", blow_up)
    (tmp_path / "ok.toml").write_text(BASE)
    assert main(["run", str(tmp_path / "ok.toml")]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: non-physical p in cell (3,) at step 7, t=1.500000e-06 s; last good "
                   f"state written to {tmp_path / 'last_good.h5'}\n")
    with pytest.raises(NonPhysicalStateError):
        main(["run", str(tmp_path / "ok.toml"), "--debug"])


# ---------------------------------------------------------------------------------------------
# progress bar
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("t_end, unit", [
    (1.3e-6, "us"), (8e-6, "us"), (2.29e-4, "us"), (1e-3, "ms"), (0.25, "ms"), (1.0, "s"),
    (30.0, "s"), (5e3, "s"), (5e-10, "ns"), (2e-8, "ns"), (0.0, "s"),
])
def test_progress_unit_puts_t_end_between_1_and_1000(t_end, unit):
    name, seconds = time_unit(t_end)
    assert name == unit
    assert seconds == {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
    if 1e-9 <= t_end < 1e3:
        assert 1.0 <= t_end / seconds < 1000.0


def test_progress_bar_shows_simulated_time_in_that_unit():
    bar = time_bar(0.0, 1.3e-6, file=io.StringIO(), mininterval=0)
    time.sleep(0.05)
    bar.update(0.34e-6 / bar.seconds)
    text = str(bar)
    bar.close()
    assert "t = 0.34/1.30 us" in text and " 26%" in text
    assert "us/s" in text or "s/us" in text  # simulated us per wall second (or inverse)
    assert "Gs" not in text and "ks" not in text
    restart = time_bar(0.5, 30.0, file=io.StringIO())
    assert restart.seconds == 1.0 and "t = 0.5/30.0 s" in str(restart)
    restart.close()


def test_config_module_is_one_concept():
    """simulation re-exports load_config; the schema is where the defaults come from."""
    import macro.simulation as ms

    assert ms.load_config is load_config and ms.ConfigError is ConfigError
    assert mc.DEFAULTS["numerics"]["cfl"] == SCHEMA["numerics"].keys["cfl"].default
    cfg = copy.deepcopy(tomllib.loads(BASE))
    del cfg["numerics"]
    assert load_config(cfg)["numerics"] == mc.DEFAULTS["numerics"]
