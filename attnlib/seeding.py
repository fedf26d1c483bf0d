"""One helper seeds every source of randomness the course uses."""
from __future__ import annotations

import random
import sys

import numpy as np

# The last seed given to seed(), so attnlib.torch can seed PyTorch when it is imported later.
_last_seed: int | None = None


def seed(value: int = 0) -> np.random.Generator:
    """Seed Python, NumPy and PyTorch; return a fresh NumPy generator.

    A notebook calls this once at the top, so running it twice prints the same numbers. PyTorch
    is seeded now if it is already imported, otherwise when :mod:`attnlib.torch` is first
    imported (so NumPy-only chapters never pay for importing PyTorch).

    Parameters
    ----------
    value : int
        The seed.

    Returns
    -------
    numpy.random.Generator
        A generator seeded with ``value``; prefer it to NumPy's global state.
    """
    global _last_seed
    _last_seed = value
    random.seed(value)
    np.random.seed(value)
    seed_torch_if_imported(value)
    return np.random.default_rng(value)


def seed_torch_if_imported(value: int | None = None) -> None:
    """Seed PyTorch with ``value`` (default: the last seed given to :func:`seed`) if it is imported."""
    value = _last_seed if value is None else value
    torch = sys.modules.get("torch")
    if torch is not None and value is not None:
        torch.manual_seed(value)
