"""Softmax: turn scores into weights that are positive and sum to one."""
from __future__ import annotations

import numpy as np

from attnlib.numpy._validate import as_float_array, check_axis, check_mask


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

    Notes
    -----
    Non-finite scores follow ``torch.softmax``, so the NumPy and PyTorch twins agree:

    - NaN propagates: a slice with a NaN among its allowed entries is NaN throughout.
    - A slice with a ``+inf`` among its allowed entries is NaN throughout too (``inf - inf`` is
      undefined; ``torch.softmax([inf, 0])`` is ``[nan, nan]``).
    - ``-inf`` entries get weight exactly 0. A slice whose allowed entries are all ``-inf``, or
      that has none, gets zeros (attnlib's rule for a fully masked row; ``torch.softmax``
      without a mask gives NaN there).
    - An empty ``axis`` (no keys) gives an empty result, as ``torch.softmax`` does.

    Raises
    ------
    ValueError
        When ``x`` is not real and numeric, ``axis`` does not index it, or the mask is not
        boolean or does not broadcast to ``x``.
    """
    x = as_float_array(x, "scores")
    axis = check_axis(axis, x.ndim, "scores")
    if mask is not None:
        mask = check_mask(mask, x.shape)
        x = np.where(mask, x, -np.inf)
    if x.shape[axis] == 0:  # no keys: nothing to normalise (np.max would fail on the empty axis)
        return np.zeros(x.shape, dtype=x.dtype)
    m = np.max(x, axis=axis, keepdims=True)
    # A slice with +inf has no defined softmax: NaN there, as torch.softmax gives.
    pos_inf = m == np.inf
    if pos_inf.any():
        x = np.where(pos_inf, 0, x).astype(x.dtype, copy=False)
        m = np.where(pos_inf, 0, m).astype(x.dtype, copy=False)
    # A slice that is entirely masked has max -inf; shift it by 0 so exp gives 0, not NaN.
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype, copy=False)
    e = np.exp(x - m)
    total = np.sum(e, axis=axis, keepdims=True)
    out = e / np.where(total == 0, 1, total).astype(x.dtype, copy=False)
    if pos_inf.any():
        out[np.broadcast_to(pos_inf, out.shape)] = np.nan
    return out
