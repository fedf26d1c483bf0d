"""Boolean attention masks. Convention: True = may attend (as in PyTorch's SDPA)."""
from __future__ import annotations

import numpy as np


def causal_mask(L_q: int, L_k: int | None = None) -> np.ndarray:
    """Mask that lets query ``i`` attend to keys ``j <= i`` only (no peeking at the future).

    Parameters
    ----------
    L_q : int
        Number of queries.
    L_k : int, optional
        Number of keys; defaults to ``L_q``.

    Returns
    -------
    numpy.ndarray of bool, shape (L_q, L_k)
        ``mask[i, j]`` is True where ``j <= i``.
    """
    L_k = L_q if L_k is None else L_k
    for name, n in (("L_q", L_q), ("L_k", L_k)):
        if int(n) != n or n < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    return np.arange(L_k)[None, :] <= np.arange(L_q)[:, None]


def padding_mask(lengths, max_len: int) -> np.ndarray:
    """Mask that marks the real (non-padding) tokens of each sequence in a batch.

    Parameters
    ----------
    lengths : array_like of int, shape (B,)
        The true length of each sequence.
    max_len : int
        The padded length.

    Returns
    -------
    numpy.ndarray of bool, shape (B, max_len)
        ``mask[b, t]`` is True where ``t < lengths[b]``. To use it as a key mask for scores of
        shape (B, L_q, L_k), index it as ``mask[:, None, :]``.
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be a 1-D array of integers, got shape {lengths.shape} "
                         f"and dtype {lengths.dtype}")
    if np.any(lengths < 0) or np.any(lengths > max_len):
        raise ValueError(f"lengths must lie in [0, max_len={max_len}], got {lengths.tolist()}")
    return np.arange(max_len)[None, :] < lengths[:, None]
