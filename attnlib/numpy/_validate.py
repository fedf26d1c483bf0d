"""Input checks shared by the NumPy functions: clear ValueErrors that name the shapes."""
from __future__ import annotations

import numpy as np

from attnlib.shapes import attention_scores_shape, check_mask_shape


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
    return attention_scores_shape(q.shape, k.shape, v.shape)[:-2]


def check_mask(mask, target_shape: tuple) -> np.ndarray:
    """Check that ``mask`` is boolean and broadcasts to ``target_shape`` = (..., L_q, L_k)."""
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise ValueError(f"mask must be boolean with True = may attend, got dtype {mask.dtype} "
                         f"(an additive float mask is not accepted: use mask = scores_allowed > 0)")
    check_mask_shape(mask.shape, target_shape)
    return mask
