"""Shape rules of attention, shared by the NumPy and PyTorch twins (they work on plain tuples).

Errors are ValueError exceptions that name the offending shapes, for example
"keys have d_k=32 but queries d_k=64".
"""
from __future__ import annotations

import numpy as np


def attention_scores_shape(q_shape, k_shape, v_shape) -> tuple:
    """Check queries (..., L_q, d_k), keys (..., L_k, d_k), values (..., L_k, d_v).

    Returns
    -------
    tuple
        The scores' shape (..., L_q, L_k), with the batch dimensions of all three broadcast.
    """
    q_shape, k_shape, v_shape = tuple(q_shape), tuple(k_shape), tuple(v_shape)
    for name, shape, dims in (("queries", q_shape, "(..., L_q, d_k)"), ("keys", k_shape, "(..., L_k, d_k)"),
                              ("values", v_shape, "(..., L_k, d_v)")):
        if len(shape) < 2:
            raise ValueError(f"{name} must have shape {dims}, got shape {shape}")
    if k_shape[-1] != q_shape[-1]:
        raise ValueError(f"keys have d_k={k_shape[-1]} but queries d_k={q_shape[-1]} "
                         f"(keys {k_shape}, queries {q_shape})")
    if v_shape[-2] != k_shape[-2]:
        raise ValueError(f"values have L_k={v_shape[-2]} but keys L_k={k_shape[-2]} "
                         f"(values {v_shape}, keys {k_shape})")
    try:
        batch = np.broadcast_shapes(q_shape[:-2], k_shape[:-2], v_shape[:-2])
    except ValueError:
        raise ValueError(f"batch dimensions do not broadcast: queries {q_shape}, keys {k_shape}, "
                         f"values {v_shape}") from None
    return (*batch, q_shape[-2], k_shape[-2])


def check_mask_shape(mask_shape, scores_shape) -> None:
    """Check that a mask of ``mask_shape`` broadcasts to ``scores_shape`` without enlarging it."""
    mask_shape, scores_shape = tuple(mask_shape), tuple(scores_shape)
    try:
        shape = np.broadcast_shapes(mask_shape, scores_shape)
    except ValueError:
        raise ValueError(f"mask of shape {mask_shape} does not broadcast to the scores' shape "
                         f"{scores_shape} (..., L_q, L_k)") from None
    if shape != scores_shape:
        raise ValueError(f"mask of shape {mask_shape} would enlarge the scores' shape "
                         f"{scores_shape} (..., L_q, L_k) to {shape}")


def check_count(n, name: str) -> int:
    """Check that ``n`` is a non-negative integer (a count or a length); return it as an int.

    Integral floats (``4.0``) are accepted; ``4.5``, ``-1``, ``True`` and non-numbers are not.

    Raises
    ------
    ValueError
        Naming ``name`` and the value.
    """
    try:
        ok = not isinstance(n, bool) and int(n) == n and n >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    return int(n)


def check_num_heads(d_model: int, num_heads) -> int:
    """Check that ``num_heads`` is a positive integer dividing ``d_model``; return it as an int."""
    if isinstance(num_heads, bool) or int(num_heads) != num_heads or num_heads < 1:
        raise ValueError(f"num_heads must be a positive integer, got {num_heads!r}")
    if d_model % int(num_heads):
        raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}: each head "
                         f"needs d_model / num_heads features")
    return int(num_heads)


def check_single_query(query, keys, mask, query_size: int, key_size: int) -> None:
    """Shapes of one-query attention (Part II): query (B, H_dec), keys (B, L, H_enc), mask (B, L)."""
    if query.ndim != 2 or keys.ndim != 3 or query.shape[0] != keys.shape[0]:
        raise ValueError(f"query must be (B, H_dec) and keys (B, L, H_enc) with the same B, got "
                         f"{tuple(query.shape)} and {tuple(keys.shape)}")
    if query.shape[1] != query_size or keys.shape[2] != key_size:
        raise ValueError(f"this attention takes queries of size {query_size} and keys of size {key_size}, "
                         f"got query {tuple(query.shape)} and keys {tuple(keys.shape)}")
    if mask is not None and tuple(mask.shape) != tuple(keys.shape[:2]):
        raise ValueError(f"mask {tuple(mask.shape)} must be (B, L) = {tuple(keys.shape[:2])}")
