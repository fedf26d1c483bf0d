"""Input checks shared by the NumPy functions: clear ValueErrors that name the shapes."""
from __future__ import annotations

import numpy as np

from attnlib.shapes import attention_scores_shape, check_mask_shape


def as_float_array(x, name: str) -> np.ndarray:
    """Return ``x`` as a floating array, keeping float16/32/64 and promoting anything else to float64."""
    if x is None:
        raise ValueError(f"{name} must be an array of real numbers, got None")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError, RuntimeError) as err:  # ragged nested lists, objects numpy cannot read
        if type(x).__module__.startswith("torch"):
            raise ValueError(f"{name} is a torch tensor NumPy cannot read ({err}): pass "
                             f"{name}.detach().cpu().numpy(), or use the attnlib.torch twin") from None
        raise ValueError(f"{name} must be an array of real numbers with a regular shape (not ragged "
                         f"nested lists), got {type(x).__name__}: {err}") from None
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def as_index_array(x, name: str, ndim: int | None = None) -> np.ndarray:
    """Return ``x`` as an integer array (an empty list gives an empty int64 array).

    Refuses floats (``1.7`` would be truncated to 1 without a word) and booleans, and checks the
    number of axes when ``ndim`` is given.
    """
    if x is None:
        raise ValueError(f"{name} must be an array of integers, got None")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of integers with a regular shape, got "
                         f"{type(x).__name__}") from None
    if arr.size == 0 and not np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.int64)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    return arr


def check_axis(axis, ndim: int, name: str = "scores") -> int:
    """Check that ``axis`` is an int that indexes an array of ``ndim`` axes; return it non-negative."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis={axis} is out of range for {name} with {ndim} axes "
                         f"(valid: {-ndim} to {ndim - 1})" if ndim else
                         f"{name} must have at least one axis for axis={axis}, got a 0-d array")
    return int(axis) % ndim


def check_qkv(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> tuple:
    """Check the shapes of queries, keys and values; return their broadcast batch shape."""
    return attention_scores_shape(q.shape, k.shape, v.shape)[:-2]


def check_mask(mask, target_shape: tuple) -> np.ndarray:
    """Check that ``mask`` is boolean and broadcasts to ``target_shape`` = (..., L_q, L_k)."""
    if mask is None:
        raise ValueError("mask must be a boolean array with True = may attend, got None")
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise ValueError(f"mask must be boolean with True = may attend, got dtype {mask.dtype} "
                         f"(an additive float mask is not accepted: use mask = scores_allowed > 0)")
    check_mask_shape(mask.shape, target_shape)
    return mask


def check_words(tokens, name: str = "tokens") -> list:
    """``tokens`` as a list of str (one word each).

    Any iterable of str is accepted (a list, a tuple, an array of str); a bare string, whose
    items would be its characters, None and items that are not str are refused (TypeError).
    """
    if isinstance(tokens, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of str (one word each), got a single "
                        f"{type(tokens).__name__}: split it first, e.g. {name}.split(), or wrap it as [word]")
    try:
        tokens = list(tokens)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of str, got {type(tokens).__name__}") from None
    for i, t in enumerate(tokens):
        if not isinstance(t, str):
            raise TypeError(f"{name} must be a sequence of str, but item {i} is {type(t).__name__}")
    return tokens
