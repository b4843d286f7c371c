"""Build script: package metadata lives in pyproject.toml.

The compiled closure kernels in csrc/ are added here (C++ always, CUDA only when nvcc is found)
once they exist; the hydro core is pure Python + Numba and needs no build step.
"""

from setuptools import setup

setup()
