"""Tiny meso latent models for the closure tests (random weights, scaled so they respond).

Decoded temperatures straddle the 875 K threshold and depend on the (Ps-dependent) input patch,
and the coupled nets drift, so areas and rates are non-trivial without any training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from closure.modelcard import save_model
from closure.models import LatentClosureModel, LatentDynamics, Tokenizer

GRID = (32, 48)


def make_model_dir(path: Path, *, seed: int = 0, n_t: int = 7, enc_gain: float = 3.0,
                   dec_gain: float = 2.5, drift: float = 0.05) -> Path:
    torch.manual_seed(seed)
    tok = Tokenizer(base_channels=4)
    dyn = LatentDynamics(base_channels=4, reps=1, dropout=0.0)
    model = LatentClosureModel(tok, dyn, substeps=2)
    with torch.no_grad():
        # random init shrinks the signal layer by layer; these gains keep the T field's latent
        # sensitive to the input (Ps) and the decoded T spread over ~+-500 K around ~400 K
        for vae in tok.vaes.values():
            for name, mod in vae.named_modules():
                if isinstance(mod, torch.nn.Conv2d) and mod is not vae.to_logvar:
                    mod.weight.mul_(enc_gain if name.startswith("enc") or name == "to_mean"
                                    else dec_gain)
        # a drift of the coupled nets so the response changes with time
        for p in dyn.coupled_mean.out.parameters():
            p.normal_(0.0, drift)
    arch = {"tokenizer": {"base_channels": 4, "latent_channels": 4},
            "dynamics": {"base_channels": 4, "reps": 1, "dropout": 0.0},
            "substeps": 2, "coupled": True}
    save_model(path, model, kind="latent", architecture=arch,
               data={"meso": {"dt": 2.5e-10, "n_t": n_t, "grid": list(GRID)}})
    return Path(path)


def random_pressures(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(0.0, 18e9, n)
