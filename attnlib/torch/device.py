"""Where tensors live: the GPU when there is one, the CPU otherwise."""
from __future__ import annotations

import torch

__all__ = ["default_device"]


def default_device() -> torch.device:
    """Return ``cuda`` when a CUDA GPU is available, else ``mps`` on Apple silicon, else ``cpu``.

    Returns
    -------
    torch.device
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
