"""Input checks shared by the NumPy functions: clear ValueErrors that name the shapes."""
from __future__ import annotations

import numpy as np


def as_float_array(x, name: str) -> np.ndarray:
    """Return ``x`` as a floating array, keeping float16/32/64 and promoting anything else to float64."""
    arr = np.asarray(x)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def check_qkv(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> tuple:
    """Check the shapes of queries, keys and values; return their broadcast batch shape."""
    for name, arr, dims in (("queries", q, "(..., L_q, d_k)"), ("keys", k, "(..., L_k, d_k)"),
                            ("values", v, "(..., L_k, d_v)")):
        if arr.ndim < 2:
            raise ValueError(f"{name} must have shape {dims}, got shape {arr.shape}")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"keys have d_k={k.shape[-1]} but queries d_k={q.shape[-1]} "
                         f"(keys {k.shape}, queries {q.shape})")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"values have L_k={v.shape[-2]} but keys L_k={k.shape[-2]} "
                         f"(values {v.shape}, keys {k.shape})")
    try:
        return np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ValueError(f"batch dimensions do not broadcast: queries {q.shape}, keys {k.shape}, "
                         f"values {v.shape}") from None


def check_mask(mask, target_shape: tuple) -> np.ndarray:
    """Check that ``mask`` is boolean and broadcasts to ``target_shape`` = (..., L_q, L_k)."""
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise ValueError(f"mask must be boolean with True = may attend, got dtype {mask.dtype} "
                         f"(an additive float mask is not accepted: use mask = scores_allowed > 0)")
    try:
        shape = np.broadcast_shapes(mask.shape, target_shape)
    except ValueError:
        raise ValueError(f"mask of shape {mask.shape} does not broadcast to the scores' shape "
                         f"{target_shape} (..., L_q, L_k)") from None
    if shape != tuple(target_shape):
        raise ValueError(f"mask of shape {mask.shape} would enlarge the scores' shape "
                         f"{tuple(target_shape)} (..., L_q, L_k) to {shape}")
    return mask
