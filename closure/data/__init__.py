"""Pore-collapse training data: physics setup, geometry generators, data sets and the CLI.

``python -m closure.data generate --scale micro --n 200 --seed 0 --out micro.h5`` writes a data
set; ``python -m closure.data show micro.h5`` summarizes it. Parameters and their sources live in
:mod:`closure.data.params`; the physics choices and their measured consequences in
``docs/data.md``.

Names are imported on first use (PEP 562): the closure's serving path reads parameters from
:mod:`closure.data.params` without importing the generator (:mod:`closure.data.collapse`, which
imports the hydrocode's solver and Numba kernels).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["SampleResult", "build_solver", "hugoniot_state", "load_data_config", "run_sample",
           "simulate"]

#: public name -> submodule that defines it
_LAZY = {"SampleResult": "collapse", "build_solver": "collapse", "hugoniot_state": "params",
         "load_data_config": "config", "run_sample": "collapse", "simulate": "collapse"}

if TYPE_CHECKING:
    from .collapse import SampleResult, build_solver, run_sample, simulate
    from .config import load_data_config
    from .params import hugoniot_state


def __getattr__(name: str) -> Any:
    sub = _LAZY.get(name)
    if sub is None:
        raise AttributeError(f"module 'closure.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{sub}"), name)
    globals()[name] = value
    return value
