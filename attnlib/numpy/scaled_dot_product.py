"""Scaled dot-product attention (Vaswani et al., 2017) in NumPy."""
from __future__ import annotations

import math

import numpy as np

from attnlib.numpy._validate import as_float_array, check_mask, check_qkv
from attnlib.numpy.softmax import softmax


def scaled_dot_product_attention(q, k, v, mask=None) -> tuple[np.ndarray, np.ndarray]:
    r"""Attend from queries to keys and return the weighted sum of values.

    .. math:: \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right) V

    Parameters
    ----------
    q : array_like, shape (..., L_q, d_k)
        Queries.
    k : array_like, shape (..., L_k, d_k)
        Keys.
    v : array_like, shape (..., L_k, d_v)
        Values.
    mask : array_like of bool, optional
        Broadcastable to (..., L_q, L_k); True where a query may attend to a key. A query with no
        allowed key gets all-zero weights and a zero output.

    Returns
    -------
    output : numpy.ndarray, shape (..., L_q, d_v)
        With no keys (``L_k = 0``) all zeros, as ``torch.nn.functional.scaled_dot_product_attention``
        and :func:`attnlib.torch.scaled_dot_product_attention` give.
    weights : numpy.ndarray, shape (..., L_q, L_k)
        Each row sums to one (or is all zeros when fully masked). NaN or ``+inf`` in the scores
        makes the row NaN, as in PyTorch (see :func:`attnlib.numpy.softmax`).

    Raises
    ------
    ValueError
        When the shapes disagree (the message names them), ``d_k`` is 0, or the mask is not
        boolean.
    """
    q, k, v = (as_float_array(a, n) for a, n in ((q, "queries"), (k, "keys"), (v, "values")))
    batch = check_qkv(q, k, v)
    if q.shape[-1] == 0:
        raise ValueError(f"queries and keys have d_k=0: the scores are scaled by 1/sqrt(d_k), so d_k "
                         f"must be at least 1 (queries {q.shape}, keys {k.shape})")
    scores_shape = (*batch, q.shape[-2], k.shape[-2])
    if mask is not None:
        mask = check_mask(mask, scores_shape)
    # Scale by a Python float so float32 inputs stay float32.
    scores = (q @ np.swapaxes(k, -1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    # Values may carry batch dims that queries and keys lack: weights span the full batch.
    scores = np.broadcast_to(scores, scores_shape)
    weights = softmax(scores, axis=-1, mask=mask)
    return weights @ v, weights
