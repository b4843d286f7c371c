"""HDF5 layout of the pore-collapse data sets, incremental writing, resume and manifests.

Layout (N samples, n_t frames, C = 4 channels, H = ny, W = nx; shock travels along +W)::

    /                   attrs: format, format_version, scale, seed, n_samples, created, config
                               (JSON of the resolved data config), channels (HDF5 string
                               array), dt, dx, dy, norm_ranges, hotspot_threshold,
                               hotspot_excess, frame, generator
    /fields             (N, n_t, 4, H, W) float32, normalized T, P, mu, lam (see
                        closure.data.collapse); same attrs channels, dt, dx, dy, norm_ranges;
                        NaN until a sample is done
    /extras/u|v         (N, n_t, H, W) float32, velocity in m/s
    /times              (n_t,) frame times (s), frame k at k*dt
    /x, /y              (W,), (H,) cell centres (m)
    /meta               (N,) compound table, one row per sample (META_FIELDS)
    /pores              (N,) JSON text: the sample's pore list (closure.data.geometry)
    /stats/<name>       (N, n_t) float64 per-frame statistics (STATS: peak_T, hot_area_T,
                        hotspot_area, hotspot_area_excess, burned_fraction F(t), ...)
    /status             (N,) int8: 0 pending, 1 done, 2 failed
    /errors             (N,) text: the failure message of failed samples

A file is written sample by sample and flushed after each one; ``status`` is set last, so an
interrupted run keeps every finished sample and ``generate`` on the same file resumes with the
others (the stored config, seed and size must match).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np

from ..files import atomic_write_bytes, portable_paths, sha256_of
from ..normalization import CHANNELS, HOTSPOT_EXCESS_K, HOTSPOT_THRESHOLD_K, NORM_RANGES
from .collapse import EXTRAS, STAT_NAMES, SampleResult
from .config import config_json, from_json

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "META_FIELDS",
    "STATS",
    "create_dataset",
    "open_for_resume",
    "write_sample",
    "mark_failed",
    "pending_indices",
    "summary",
    "write_manifest",
    "file_sha256",
]

FORMAT = "closure-pore-collapse"
#: 2: channels T, P, mu, lam (lam left the extras), burned fraction and excess-hotspot stats
FORMAT_VERSION = 2
PENDING, DONE, FAILED = 0, 1, 2

META_FIELDS: list[tuple[str, str]] = [
    ("index", "i8"), ("seed", "i8"), ("sample_seed", "i8"),
    ("u_p", "f8"), ("shock_pressure", "f8"), ("shock_speed", "f8"), ("hugoniot_T", "f8"),
    ("porosity", "f8"), ("target_porosity", "f8"), ("n_pores", "i4"),
    ("r_eq_mean", "f8"), ("r_eq_min", "f8"), ("r_eq_max", "f8"),
    ("peak_T", "f8"), ("peak_hot_area_T", "f8"), ("peak_hotspot_fraction", "f8"),
    ("final_hotspot_fraction", "f8"),
    ("peak_hotspot_excess_fraction", "f8"), ("final_burned_fraction", "f8"),
    ("max_lam", "f8"), ("steps", "i8"), ("wall_s", "f8"),
]
META_DTYPE = np.dtype(META_FIELDS)
STATS = STAT_NAMES
_STR = h5py.string_dtype()


def _norm_json() -> str:
    return json.dumps({c: list(NORM_RANGES[c]) for c in CHANNELS})


def channels_attr() -> np.ndarray:
    """The ``channels`` attribute: an HDF5 array of variable-length UTF-8 strings (readers of
    files written before take a JSON string as well, closure.normalization.check_channels)."""
    return np.array(list(CHANNELS), dtype=h5py.string_dtype())


def create_dataset(path: str | Path, cfg: dict, n: int, seed: int) -> h5py.File:
    """Create an empty data set for ``n`` samples (all pending); returns the open file."""
    g, tm = cfg["grid"], cfg["time"]
    H, W, dx = g["ny"], g["nx"], g["dx"]
    n_t = tm["n_frames"] + 1
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True)
    h5 = h5py.File(path, "w")
    attrs = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "scale": cfg["scale"],
        "seed": int(seed), "n_samples": int(n), "created": datetime.now(UTC).isoformat(),
        "config": config_json(cfg), "channels": channels_attr(),
        "dt": float(tm["frame_dt"]), "dx": float(dx), "dy": float(dx),
        "norm_ranges": _norm_json(), "hotspot_threshold": float(HOTSPOT_THRESHOLD_K),
        "hotspot_excess": float(HOTSPOT_EXCESS_K),
        "frame": "shocked HMX at rest; unshocked sample enters at x_high with u = -u_p",
        "generator": "python -m closure.data generate",
        "generated_by": json.dumps(code_provenance()),
    }
    h5.attrs.update(attrs)
    comp = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    f = h5.create_dataset("fields", (n, n_t, len(CHANNELS), H, W), np.float32,
                          chunks=(1, n_t, len(CHANNELS), H, W), fillvalue=np.nan, **comp)
    for k in ("channels", "dt", "dx", "dy", "norm_ranges"):
        f.attrs[k] = attrs[k]
    f.attrs["units"] = json.dumps({"T": "K", "P": "Pa", "mu": "1", "lam": "1"})
    ex = h5.create_group("extras")
    units = {"u": "m/s", "v": "m/s"}
    for k in EXTRAS:
        d = ex.create_dataset(k, (n, n_t, H, W), np.float32, chunks=(1, n_t, H, W),
                              fillvalue=np.nan, **comp)
        d.attrs["units"] = units[k]
    h5["times"] = np.arange(n_t) * float(tm["frame_dt"])
    h5["x"] = (np.arange(W) + 0.5) * dx
    h5["y"] = (np.arange(H) + 0.5) * dx
    meta = np.zeros(n, META_DTYPE)
    meta["index"] = np.arange(n)
    meta["seed"] = seed
    h5.create_dataset("meta", data=meta)
    h5.create_dataset("pores", (n,), _STR)
    st = h5.create_group("stats")
    for k in STATS:
        st.create_dataset(k, (n, n_t), np.float64, fillvalue=np.nan)
    h5.create_dataset("status", (n,), np.int8)
    h5.create_dataset("errors", (n,), _STR)
    h5.flush()
    return h5


def open_for_resume(path: str | Path, cfg: dict, n: int, seed: int) -> h5py.File:
    """Open an existing data set for resuming; its config, seed and size must match."""
    h5 = h5py.File(path, "r+")
    try:
        if h5.attrs.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} file (format={h5.attrs.get('format')!r})")
        for key, want in (("scale", cfg["scale"]), ("seed", seed), ("n_samples", n)):
            have = h5.attrs[key]
            if (have.decode() if isinstance(have, bytes) else have) != want:
                raise ValueError(f"cannot resume {path}: it has {key}={have!r}, this run asks "
                                 f"for {key}={want!r} (use another --out or the same options)")
        stored = from_json(h5.attrs["config"])
        if config_json(stored) != config_json(cfg):
            diff = _first_difference(stored, cfg)
            raise ValueError(f"cannot resume {path}: its config differs at {diff}")
        # which code wrote the samples after this point (its kernels may differ from the
        # creator's; the manifest reports both)
        resumed = json.loads(h5.attrs.get("resumed_by", "[]"))
        resumed.append({"time": datetime.now(UTC).isoformat(), **code_provenance()})
        h5.attrs["resumed_by"] = json.dumps(resumed)
    except Exception:
        h5.close()
        raise
    return h5


def _first_difference(a, b, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}{k} (present in only one)"
            if a[k] != b[k]:
                return _first_difference(a[k], b[k], f"{path}{k}.")
    return f"{path.rstrip('.')}: stored {a!r}, requested {b!r}"


def pending_indices(h5: h5py.File) -> list[int]:
    """Samples not yet done (pending or failed: a resume retries failures)."""
    status = h5["status"][...]
    return [int(i) for i in np.nonzero(status != DONE)[0]]


def write_sample(h5: h5py.File, res: SampleResult) -> None:
    """Store one finished sample and mark it done (status is written last, then flushed)."""
    i = int(res.meta["index"])
    h5["fields"][i] = res.fields
    for k in EXTRAS:
        h5["extras"][k][i] = res.extras[k]
    for k in STATS:
        h5["stats"][k][i] = res.stats[k]
    row = np.zeros((), META_DTYPE)
    for name, _ in META_FIELDS:
        row[name] = res.meta[name]
    h5["meta"][i] = row
    h5["pores"][i] = json.dumps(res.pores)
    h5["errors"][i] = ""
    h5.flush()
    h5["status"][i] = DONE
    h5.flush()


def mark_failed(h5: h5py.File, index: int, message: str) -> None:
    h5["errors"][index] = message
    h5["status"][index] = FAILED
    h5.flush()


def _describe(x: np.ndarray) -> dict:
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {}
    q = np.percentile(x, [5, 50, 95])
    return {"min": float(x.min()), "p5": float(q[0]), "median": float(q[1]),
            "mean": float(x.mean()), "p95": float(q[2]), "max": float(x.max())}


def summary(h5: h5py.File) -> dict:
    """Summary statistics of the finished samples (hotspot temperature and area, loading)."""
    status = h5["status"][...]
    done = status == DONE
    meta = h5["meta"][...][done]
    H, W = h5["fields"].shape[-2:]
    area = H * W * float(h5.attrs["dx"]) * float(h5.attrs["dy"])
    hs_area = h5["stats"]["hotspot_area"][...][done]
    hs_T = h5["stats"]["hotspot_T"][...][done]
    hot = hs_area > 0
    out = {
        "n_samples": int(status.size), "n_done": int(done.sum()),
        "n_failed": int((status == FAILED).sum()),
        "u_p": _describe(meta["u_p"]), "shock_pressure": _describe(meta["shock_pressure"]),
        "porosity": _describe(meta["porosity"]), "n_pores": _describe(meta["n_pores"]),
        "r_eq_mean": _describe(meta["r_eq_mean"]),
        "peak_T": _describe(meta["peak_T"]),
        "peak_hot_area_T": _describe(meta["peak_hot_area_T"]),
        "peak_hotspot_fraction": _describe(meta["peak_hotspot_fraction"]),
        "final_hotspot_fraction": _describe(meta["final_hotspot_fraction"]),
        "hotspot_area_fraction_all_frames": _describe(hs_area.ravel() / area),
        "hotspot_T_frames_with_hotspot": _describe(hs_T[hot]),
        "samples_with_hotspot": int((meta["peak_hotspot_fraction"] > 0).sum()),
        "max_lam": _describe(meta["max_lam"]),
        "final_burned_fraction": _describe(meta["final_burned_fraction"]),
        "peak_hotspot_excess_fraction": _describe(meta["peak_hotspot_excess_fraction"]),
        "steps": _describe(meta["steps"]), "wall_s": _describe(meta["wall_s"]),
        "by_pressure": _by_pressure(meta, h5["stats"], done, area),
    }
    return out


def pressure_bins(p: np.ndarray, n_bins: int = 5) -> np.ndarray:
    """Bin edges (Pa), evenly spaced in log p over the samples' range (the loading draws log p
    uniformly)."""
    lo, hi = float(np.min(p)), float(np.max(p))
    if hi <= lo:
        return np.array([lo * 0.999, hi * 1.001])
    return np.geomspace(lo, hi * (1 + 1e-12), n_bins + 1)


def _by_pressure(meta: np.ndarray, stats: h5py.Group, done: np.ndarray, area: float) -> list:
    """Per shock-pressure bin: samples, final burned fraction F (mean, spread), peak hotspot T,
    areas (T > threshold and T > bulk + excess), and the bin's mean F(t) curve."""
    if meta.size == 0:
        return []
    p = meta["shock_pressure"]
    edges = pressure_bins(p)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    F = stats["burned_fraction"][...][done]
    out = []
    for b in range(len(edges) - 1):
        m = which == b
        if not m.any():
            continue
        out.append({
            "p_lo_GPa": float(edges[b] / 1e9), "p_hi_GPa": float(edges[b + 1] / 1e9),
            "n": int(m.sum()),
            "final_burned_fraction": _describe(meta["final_burned_fraction"][m]),
            "final_burned_fraction_std": float(np.std(meta["final_burned_fraction"][m])),
            "ignited": int((meta["max_lam"][m] > 0.5).sum()),
            "peak_T": _describe(meta["peak_T"][m]),
            "peak_hot_area_T": _describe(meta["peak_hot_area_T"][m]),
            "peak_hotspot_fraction": _describe(meta["peak_hotspot_fraction"][m]),
            "peak_hotspot_excess_fraction": _describe(meta["peak_hotspot_excess_fraction"][m]),
            "mean_F_t": np.nanmean(F[m], axis=0).tolist(),
        })
    return out


def code_provenance() -> dict:
    """The code that runs now: git commit, dirty flag, kernel file hashes (a data set records
    the generator's at creation and at every resume; a manifest also the describer's)."""
    import subprocess

    import macro

    root = Path(__file__).resolve().parents[2]
    here = Path(macro.__file__).resolve().parent
    # the package's place, relative to the repository (another checkout: by its name only)
    out: dict = {"macro": str(portable_paths(str(here), root)) if here.is_relative_to(root)
                 else f"{here.parent.name}/macro (another checkout)"}
    for name in ("multi.py", "stepper.py", "riemann.py", "transport.py", "solver.py",
                 "reaction.py", "eos.py"):
        f = Path(macro.__file__).parent / name
        if f.exists():
            out[f"macro/{name} sha256"] = file_sha256(f)
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "macro",
                                "closure/data"], capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            out["dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of the file at ``path`` (:func:`closure.files.sha256_of`)."""
    return sha256_of(Path(path))


def write_manifest(path: str | Path, out: str | Path | None = None) -> Path:
    """Write ``<file>.manifest.json``: sha256, sizes, config, per-sample provenance, summary."""
    path = Path(path)
    with h5py.File(path, "r") as h5:
        fields = h5["fields"]
        meta = h5["meta"][...]
        status = h5["status"][...]
        samples = []
        for i in range(fields.shape[0]):
            row = {name: (meta[name][i].item()) for name, _ in META_FIELDS}
            row["status"] = int(status[i])
            if status[i] == DONE:
                row["fields_sha256"] = sha256_of(np.ascontiguousarray(fields[i]).tobytes())
            samples.append(row)
        doc = {
            "file": path.name,
            "sha256": file_sha256(path),
            "size_bytes": os.path.getsize(path),
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "scale": h5.attrs["scale"], "seed": int(h5.attrs["seed"]),
            "created": h5.attrs["created"],
            "shape": {"fields": list(fields.shape), "channels": list(CHANNELS)},
            "dt": float(h5.attrs["dt"]), "dx": float(h5.attrs["dx"]),
            "norm_ranges": json.loads(h5.attrs["norm_ranges"]),
            "hotspot_threshold": float(h5.attrs["hotspot_threshold"]),
            "config": from_json(h5.attrs["config"]),
            "code": code_provenance(),
            # the code that created the file and any that resumed it (absent: a file written
            # before the generator recorded itself)
            "generated_by": (json.loads(h5.attrs["generated_by"])
                             if "generated_by" in h5.attrs else None),
            "resumed_by": json.loads(h5.attrs.get("resumed_by", "[]")),
            "summary": summary(h5),
            "samples": samples,
        }
    target = Path(out) if out is not None else path.with_name(path.name + ".manifest.json")
    text = json.dumps(portable_paths(_finite(doc)), indent=1, default=_jsonable,
                      allow_nan=False) + "\n"
    atomic_write_bytes(target, text.encode())
    return target


def _finite(x):
    """NaN/inf -> None recursively (strict JSON)."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    if isinstance(x, float | np.floating) and not np.isfinite(x):
        return None
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, bytes):
        return x.decode()
    return x


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, bytes):
        return x.decode()
    raise TypeError(f"not JSON serializable: {type(x)}")
