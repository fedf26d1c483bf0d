"""Boolean attention masks. Convention: True = may attend (as in PyTorch's SDPA)."""
from __future__ import annotations

import numpy as np

from attnlib.checks import check_count


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
    L_q = check_count(L_q, "L_q")
    L_k = L_q if L_k is None else check_count(L_k, "L_k")
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

    Raises
    ------
    ValueError
        When ``max_len`` is not a non-negative integer, or ``lengths`` is not a 1-D array of
        integers in ``[0, max_len]``.
    """
    max_len = check_count(max_len, "max_len")
    if lengths is None:
        raise ValueError("lengths must be a 1-D array of integers, got None")
    try:
        lengths = np.asarray(lengths)
    except ValueError:
        raise ValueError("lengths must be a 1-D array of integers, got a ragged sequence") from None
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be a 1-D array of integers, got shape {lengths.shape} "
                         f"and dtype {lengths.dtype}")
    if np.any(lengths < 0) or np.any(lengths > max_len):
        raise ValueError(f"lengths must lie in [0, max_len={max_len}], got {lengths.tolist()}")
    return np.arange(max_len)[None, :] < lengths[:, None]


def key_padding_mask(lengths, L_q: int, max_len: int) -> np.ndarray:
    """Padding mask laid out for the scores: every query may attend to the real keys only.

    This is :func:`padding_mask` broadcast along a query axis, ``padding_mask(lengths,
    max_len)[:, None, :]``, materialised to its full shape so that it can be printed or drawn.

    Parameters
    ----------
    lengths : array_like of int, shape (B,)
        The true length of each key sequence.
    L_q : int
        Number of queries (for self-attention, ``max_len`` again).
    max_len : int
        The padded length of the keys, ``L_k``.

    Returns
    -------
    numpy.ndarray of bool, shape (B, L_q, max_len)
        ``mask[b, i, j]`` is True where ``j < lengths[b]``, whatever the query ``i``.
    """
    L_q = check_count(L_q, "L_q")
    keys = padding_mask(lengths, max_len)
    return np.broadcast_to(keys[:, None, :], (keys.shape[0], L_q, keys.shape[1])).copy()


def combine_masks(*masks) -> np.ndarray | None:
    """Combine boolean masks by logical AND: a key is allowed only where every mask allows it.

    The masks broadcast against each other as NumPy arrays do, so a (B, 1, L_k) padding mask and
    an (L_q, L_k) causal mask give a (B, L_q, L_k) mask. ``None`` entries (no mask) are skipped.

    Parameters
    ----------
    *masks : array_like of bool or None
        Masks with True = may attend, with shapes that broadcast together.

    Returns
    -------
    numpy.ndarray of bool or None
        The broadcast shape of the masks; None when every mask is None (nothing is blocked).

    Raises
    ------
    ValueError
        When a mask is not boolean or the shapes do not broadcast (the message names them).
    """
    arrays = []
    for i, m in enumerate(masks):
        if m is None:
            continue
        try:
            arrays.append(np.asarray(m))
        except ValueError:
            raise ValueError(f"mask {i} is not an array with a regular shape (ragged nested lists)") from None
    for a in arrays:
        if a.dtype != bool:
            raise ValueError(f"masks must be boolean with True = may attend, got dtype {a.dtype} "
                             f"for the mask of shape {a.shape}")
    if not arrays:
        return None
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        raise ValueError("masks of shapes " + ", ".join(str(a.shape) for a in arrays)
                         + " do not broadcast together") from None
    out = np.ones(shape, dtype=bool)
    for a in arrays:
        out &= a
    return out
