"""Learned meso-scale hotspot closure: tokenizer VAEs, latent dynamics, PARC baseline, training."""
