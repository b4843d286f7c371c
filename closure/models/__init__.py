"""Networks of the closure: tokenizer VAEs, latent dynamics (micro/meso) and the PARC baseline."""

from closure.models.dynamics import (
    DynamicsLossWeights,
    LatentClosureModel,
    LatentDynamics,
    dynamics_losses,
    meso_substeps,
    state_norm,
)
from closure.models.parc import PARCv2
from closure.models.unet import UNet
from closure.models.vae import (
    FieldVAE,
    PerceptualLoss,
    Tokenizer,
    VAELossWeights,
    vae_losses,
)

__all__ = [
    "DynamicsLossWeights",
    "FieldVAE",
    "LatentClosureModel",
    "LatentDynamics",
    "PARCv2",
    "PerceptualLoss",
    "Tokenizer",
    "UNet",
    "VAELossWeights",
    "dynamics_losses",
    "meso_substeps",
    "state_norm",
    "vae_losses",
]
