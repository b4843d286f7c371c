"""Learned meso-scale hotspot closure: tokenizer VAEs, latent dynamics, PARC baseline, training.

The hydrocode-facing API (:mod:`closure.api`) is exported here lazily, so ``import closure``
stays cheap: ``closure.Closure.load()``, ``closure.query(...)``, ``closure.QueryResult``.
"""

from typing import Any

__all__ = ["Closure", "QueryResult", "query"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from closure import api

        return getattr(api, name)
    raise AttributeError(f"module 'closure' has no attribute {name!r}")
