"""Numba finite-volume hydrocode for 1D/2D (reactive, multi-material) compressible flow."""
