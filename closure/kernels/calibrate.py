"""Per-family choice under ``auto``: the C++ kernels or PyTorch, whichever is faster here.

The C++ kernels are not faster everywhere: on a CPU where they run the portable path, or where
PyTorch's oneDNN is unusually strong, PyTorch can win (an AVX2-only EPYC ran the online closure
2.2x slower on the C++ kernels before they had an AVX2 path). So under ``auto`` with the C++
backend, the runner times each kernel family (:data:`FAMILIES`) on both paths once, on the
model's own shapes and the runner's batch sizes, and uses the faster one. The result is cached
per machine and model in ``<cache dir>/kernel_dispatch.json`` (``$CLOSURE_CACHE_DIR``, else
``$XDG_CACHE_HOME/porous-closure``, else ``~/.cache/porous-closure``; written atomically), keyed
by the CPU model, the C++ kernels' instruction-set path, the thread counts, the PyTorch version
and a hash of the model's layer shapes (speed depends on shapes, not weights). A calibration
costs about a second on the shipped model; ``closure info --calibrate`` measures again.

``$CLOSURE_DISPATCH=rules`` skips the measurement: C++ where its AVX-512 or AVX2 path runs,
PyTorch on the portable path (benchmarks/results/closure_*.json).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from closure.files import atomic_write_bytes

__all__ = ["FAMILIES", "cache_file", "choose", "cpu_model", "family_key", "measure", "resolve",
           "rule_choice", "shape_hash"]

#: kernel families with a C++ and a PyTorch implementation of the same work per online step:
#: ``unet`` the latent dynamics' U-Nets (csrc/latent_unet.cpp), ``decode`` the T decoder with
#: the hotspot head (csrc/decoder_body.cpp)
FAMILIES = ("unet", "decode")
CACHE_ENV = "CLOSURE_CACHE_DIR"
DISPATCH_ENV = "CLOSURE_DISPATCH"
CACHE_NAME = "kernel_dispatch.json"
_FORMAT = 1

#: choices made in this process, by key (the file is read once per key)
_memo: dict[str, dict[str, Any]] = {}


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what :mod:`platform` says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            fields: dict[str, str] = {}
            for line in fh:
                key, sep, val = line.partition(":")
                if sep and key.strip() not in fields:
                    fields[key.strip()] = val.strip()
                if not line.strip() and fields:
                    break  # the first processor's block
        if "model name" in fields:
            return fields["model name"]
        if "CPU part" in fields:  # aarch64 Linux: implementer and part numbers
            return (f"{platform.machine()} implementer {fields.get('CPU implementer', '?')} "
                    f"part {fields['CPU part']}")
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cache_file() -> Path:
    """Where the calibrations are kept."""
    d = os.environ.get(CACHE_ENV)
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        d = str(Path(base) / "porous-closure")
    return Path(d) / CACHE_NAME


def shape_hash(*modules: torch.nn.Module, extra: Any = None) -> str:
    """sha256 (16 hex digits) of the modules' parameter names and shapes and ``extra``."""
    h = hashlib.sha256(repr(extra).encode())
    for mod in modules:
        for name, p in mod.named_parameters():
            h.update(f"{name}:{tuple(p.shape)};".encode())
    return h.hexdigest()[:16]


def family_key(family: str, isa: str, threads: int, model: str) -> str:
    """The cache key of one family's choice on this machine."""
    return (f"{family}|{cpu_model()}|isa={isa}|threads={threads}|torch={torch.__version__}|"
            f"model={model}")


def rule_choice(isa: str) -> str:
    """The choice without measuring: C++ where it runs a vector path of its own."""
    return "cpp" if isa in ("avx512", "avx2") else "torch"


def measure(fns: Mapping[str, Callable[[], Any]], repeats: int = 3,
            timer: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Seconds per call of each candidate: one warm-up call each, then ``repeats`` rounds
    interleaved (load changes on a shared machine hit every candidate alike); the minimum,
    the least disturbed by other jobs."""
    for fn in fns.values():
        fn()
    ts: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = timer()
            fn()
            ts[k].append(timer() - t0)
    return {k: min(v) for k, v in ts.items()}


def choose(seconds: Mapping[str, float], order: tuple[str, ...] = ("cpp", "torch")) -> str:
    """The fastest candidate; on a tie the first in ``order``."""
    rank = {k: i for i, k in enumerate(order)}
    return min(seconds, key=lambda k: (seconds[k], rank.get(k, len(rank))))


def _read() -> dict[str, Any]:
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _write(key: str, record: dict[str, Any]) -> None:
    """Add one record to the cache file (read, merge, atomic replace); a cache that cannot be
    written only costs a calibration in the next process."""
    entries = _read()
    entries[key] = record
    try:
        atomic_write_bytes(cache_file(), (json.dumps({"format": _FORMAT, "entries": entries},
                                                     indent=1, sort_keys=True) + "\n").encode())
    except OSError as exc:
        warnings.warn(f"kernel dispatch cache {cache_file()} not written ({exc})",
                      RuntimeWarning, stacklevel=3)


def resolve(key: str, isa: str, bench: Callable[[], Mapping[str, Callable[[], Any]]], *,
            refresh: bool = False) -> dict[str, Any]:
    """The record of ``key``: ``{"choice": "cpp" | "torch", "seconds": {...} | None, "source":
    "measured" | "cached" | "rules", ...}``, from this process's memo, the cache file, or, when
    neither has it (or ``refresh``), measured now on the candidates ``bench()`` returns and
    cached. Under ``$CLOSURE_DISPATCH=rules`` nothing is measured."""
    if os.environ.get(DISPATCH_ENV, "").strip().lower() == "rules":
        return {"choice": rule_choice(isa), "seconds": None, "source": "rules"}
    if not refresh:
        if key in _memo:
            return _memo[key]
        rec = _read().get(key)
        if isinstance(rec, dict) and rec.get("choice") in ("cpp", "torch"):
            _memo[key] = {**rec, "source": "cached"}
            return _memo[key]
    seconds = measure(bench())
    rec = {"choice": choose(seconds), "seconds": seconds, "source": "measured",
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "ratio_torch_over_cpp": seconds["torch"] / seconds["cpp"]
           if seconds.get("cpp") else None}
    _write(key, {k: v for k, v in rec.items() if k != "source"})
    _memo[key] = rec
    return rec


def describe(records: Mapping[str, Mapping[str, Any]]) -> str:
    """One line for ``closure info``: each family's choice and the times behind it."""
    parts = []
    for fam, rec in records.items():
        s = rec.get("seconds")
        how = rec.get("source", "?")
        if s:
            times = ", ".join(f"{k} {v * 1e3:.3g} ms" for k, v in sorted(s.items()))
            parts.append(f"{fam}: {rec['choice']} ({times}; {how})")
        else:
            parts.append(f"{fam}: {rec['choice']} ({how})")
    return "; ".join(parts)
