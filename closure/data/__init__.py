"""Pore-collapse training data: physics setup, geometry generators, data sets and the CLI.

``python -m closure.data generate --scale micro --n 200 --seed 0 --out micro.h5`` writes a data
set; ``python -m closure.data show micro.h5`` summarizes it. Parameters and their sources live in
:mod:`closure.data.params`; the physics choices and their measured consequences in
``docs/data.md``.
"""

from .collapse import SampleResult, build_solver, hugoniot_state, run_sample, simulate
from .config import load_data_config

__all__ = ["SampleResult", "build_solver", "hugoniot_state", "load_data_config", "run_sample",
           "simulate"]
