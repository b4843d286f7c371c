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


def make_model_dir(path: Path, *, seed: int = 0, n_t: int = 7, enc_gain: float = 1.5,
                   dec_gain: float = 2.5, drift: float = 0.02, t_center: float = 800.0) -> Path:
    torch.manual_seed(seed)
    tok = Tokenizer(base_channels=4)
    dyn = LatentDynamics(base_channels=4, reps=1, dropout=0.0)
    model = LatentClosureModel(tok, dyn, substeps=2)
    with torch.no_grad():
        # random init: the decoder's default init shrinks the signal layer by layer (its output
        # would be its bias); these gains keep the decoded T sensitive to the latent (and so to
        # Ps), and the output bias is set so that T straddles the 875 K threshold
        vae = tok.vaes["T"]
        for name, mod in vae.named_modules():
            if isinstance(mod, torch.nn.Conv2d) and mod is not vae.to_logvar:
                mod.weight.mul_(enc_gain if name.startswith("enc") or name == "to_mean"
                                else dec_gain)
        from closure.initial import microstructure_bank, synthetic_frame1

        x = torch.from_numpy(synthetic_frame1(10e9, microstructure_bank(1, 0, GRID)[0], GRID))
        m, _ = tok.encode(x[None])
        t_mean = float(vae.decode(m[:, :4]).mean())
        vae.dec_out.bias -= t_mean - (t_center - 300.0) / 4700.0
        # dynamics: decoupled nets off (identity; random ones blow the latents up within a few
        # steps), a drift of the coupled mean net so the response changes with time
        for nets in (dyn.decoupled_mean, dyn.decoupled_logvar):
            for net in nets.values():
                net.out.weight.zero_()
                net.out.bias.zero_()
        # drift: the coupled mean net adds a constant to the T latents every micro step, with
        # the sign that makes the decoded hotspot area grow (hotspots grow after the shock)
        out = dyn.coupled_mean.out
        out.weight.zero_()
        out.bias.zero_()
        out.bias[:4] = drift
        hot0 = float((vae.decode(m[:, :4]) > (875.0 - 300.0) / 4700.0).float().mean())
        hot1 = float((vae.decode(m[:, :4] + 4 * drift) > (875.0 - 300.0) / 4700.0).float().mean())
        if hot1 < hot0:
            out.bias[:4] = -drift
    arch = {"tokenizer": {"base_channels": 4, "latent_channels": 4},
            "dynamics": {"base_channels": 4, "reps": 1, "dropout": 0.0},
            "substeps": 2, "coupled": True}
    save_model(path, model, kind="latent", architecture=arch,
               data={"meso": {"dt": 2.5e-10, "n_t": n_t, "grid": list(GRID)}})
    return Path(path)


def random_pressures(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(0.0, 18e9, n)
