"""Softmax: turn scores into weights that are positive and sum to one."""
from __future__ import annotations

import numpy as np

from attnlib.numpy._validate import as_float_array, check_mask


def softmax(x, axis: int = -1, mask=None) -> np.ndarray:
    r"""Numerically stable softmax along ``axis``.

    .. math:: \mathrm{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \quad m = \max_j x_j

    Subtracting the maximum changes nothing mathematically but keeps ``exp`` from overflowing,
    so logits of magnitude 1e4 give finite weights.

    Parameters
    ----------
    x : array_like, shape (...)
        Scores. Float dtypes are kept (float32 stays float32); integers become float64.
    axis : int
        The axis the weights sum to one along.
    mask : array_like of bool, optional
        Broadcastable to ``x``; True where an entry may receive weight. Masked entries get
        exactly 0, and a slice with no allowed entry gets all zeros (never NaN).

    Returns
    -------
    numpy.ndarray, same shape and dtype as ``x``
    """
    x = as_float_array(x, "scores")
    if mask is not None:
        mask = check_mask(mask, x.shape)
        x = np.where(mask, x, -np.inf)
    m = np.max(x, axis=axis, keepdims=True)
    # A slice that is entirely masked has max -inf; shift it by 0 so exp gives 0, not NaN.
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype, copy=False)
    e = np.exp(x - m)
    total = np.sum(e, axis=axis, keepdims=True)
    return e / np.where(total == 0, 1, total).astype(x.dtype, copy=False)
