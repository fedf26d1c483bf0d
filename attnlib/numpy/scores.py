r"""Alignment scores: how well each query matches each key, before the softmax.

All score functions take queries ``q`` of shape ``(..., L_q, d_q)`` and keys ``k`` of shape
``(..., L_k, d_k)`` and return scores of shape ``(..., L_q, L_k)``, row :math:`i` for query
:math:`i`. The families, in the order they appeared:

=============  =====================================================  =================================
name           score :math:`a(q, k)`                                  from
=============  =====================================================  =================================
additive       :math:`v^\top \tanh(W_q^\top q + W_k^\top k)`          Bahdanau et al. (2015)
dot            :math:`q^\top k`                                       Luong et al. (2015)
general        :math:`q^\top W k`                                     Luong et al. (2015)
concat         :math:`v^\top \tanh(W^\top [q; k])`                    Luong et al. (2015)
scaled dot     :math:`q^\top k / \sqrt{d_k}`                          Vaswani et al. (2017)
=============  =====================================================  =================================

Vectors are rows in code, so :math:`W_q^\top q` is ``q @ W_q``.
"""
from __future__ import annotations

import math

import numpy as np

from attnlib.checks import check_generator, check_positive_count
from attnlib.numpy._validate import as_float_array, check_axis
from attnlib.numpy.softmax import softmax


def _check_qk(q, k, same_dim: bool = True) -> tuple[np.ndarray, np.ndarray, tuple]:
    q = as_float_array(q, "queries")
    k = as_float_array(k, "keys")
    for name, a, dims in (("queries", q, "(..., L_q, d_q)"), ("keys", k, "(..., L_k, d_k)")):
        if a.ndim < 2:
            raise ValueError(f"{name} must have shape {dims}, got shape {a.shape}")
    if same_dim and q.shape[-1] != k.shape[-1]:
        raise ValueError(f"keys have d_k={k.shape[-1]} but queries d_k={q.shape[-1]} "
                         f"(keys {k.shape}, queries {q.shape})")
    try:
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    except ValueError:
        raise ValueError(f"batch dimensions do not broadcast: queries {q.shape}, keys {k.shape}") from None
    return q, k, batch


def _check_matrix(W, name: str, rows: int, rows_name: str, cols: int | None = None,
                  cols_name: str = "") -> np.ndarray:
    W = as_float_array(W, name)
    want = f"({rows_name}, {cols_name or 'h'})"
    if W.ndim != 2 or W.shape[0] != rows or (cols is not None and W.shape[1] != cols):
        got = f"{rows_name}={rows}" + (f", {cols_name}={cols}" if cols is not None else "")
        raise ValueError(f"{name} must have shape {want} with {got}, got shape {W.shape}")
    return W


def _check_v(v, hidden: int, names: str) -> np.ndarray:
    v = as_float_array(v, "v")
    if v.shape != (hidden,):
        raise ValueError(f"v must have shape (h,) with h={hidden} (the columns of {names}), "
                         f"got shape {v.shape}")
    return v


def dot_scores(q, k) -> np.ndarray:
    r"""Dot-product scores :math:`a(q, k) = q \cdot k` (Luong's *dot*).

    Parameters
    ----------
    q : array_like, shape (..., L_q, d_k)
        Queries.
    k : array_like, shape (..., L_k, d_k)
        Keys.

    Returns
    -------
    numpy.ndarray, shape (..., L_q, L_k)

    Raises
    ------
    ValueError
        When queries and keys differ in ``d_k`` or their batch axes do not broadcast.
    """
    q, k, _ = _check_qk(q, k)
    return q @ np.swapaxes(k, -1, -2)


def scaled_dot_scores(q, k) -> np.ndarray:
    r"""Scaled dot-product scores :math:`a(q, k) = q \cdot k / \sqrt{d_k}` (Vaswani et al.).

    Parameters
    ----------
    q : array_like, shape (..., L_q, d_k)
        Queries.
    k : array_like, shape (..., L_k, d_k)
        Keys.

    Returns
    -------
    numpy.ndarray, shape (..., L_q, L_k)
    """
    q, k, _ = _check_qk(q, k)
    if q.shape[-1] == 0:
        raise ValueError(f"queries and keys have d_k=0: the scores are scaled by 1/sqrt(d_k), so d_k "
                         f"must be at least 1 (queries {q.shape}, keys {k.shape})")
    return (q @ np.swapaxes(k, -1, -2)) * (1.0 / math.sqrt(q.shape[-1]))


def general_scores(q, k, W) -> np.ndarray:
    r"""Bilinear scores :math:`a(q, k) = q^\top W k` (Luong's *general*).

    Parameters
    ----------
    q : array_like, shape (..., L_q, d_q)
        Queries.
    k : array_like, shape (..., L_k, d_k)
        Keys; ``d_k`` may differ from ``d_q``.
    W : array_like, shape (d_q, d_k)
        The learned matrix.

    Returns
    -------
    numpy.ndarray, shape (..., L_q, L_k)

    Raises
    ------
    ValueError
        When ``W`` is not (d_q, d_k) or the batch axes do not broadcast.
    """
    q, k, _ = _check_qk(q, k, same_dim=False)
    W = _check_matrix(W, "W", q.shape[-1], "d_q", k.shape[-1], "d_k")
    return (q @ W) @ np.swapaxes(k, -1, -2)


def additive_scores(q, k, W_q, W_k, v) -> np.ndarray:
    r"""Additive scores :math:`a(q, k) = v^\top \tanh(q W_q + k W_k)` (Bahdanau et al.).

    A one-hidden-layer network scores every (query, key) pair: project both to ``h`` hidden
    units, add, squash with ``tanh``, and read out with ``v``.

    Parameters
    ----------
    q : array_like, shape (..., L_q, d_q)
        Queries (in Bahdanau's model, the decoder state).
    k : array_like, shape (..., L_k, d_k)
        Keys (the encoder states); ``d_k`` may differ from ``d_q``.
    W_q : array_like, shape (d_q, h)
    W_k : array_like, shape (d_k, h)
    v : array_like, shape (h,)

    Returns
    -------
    numpy.ndarray, shape (..., L_q, L_k)
        ``out[..., i, j] = v @ tanh(q[..., i, :] @ W_q + k[..., j, :] @ W_k)``.

    Raises
    ------
    ValueError
        When a matrix does not fit the queries, keys or ``v`` (the message names the shapes).
    """
    q, k, _ = _check_qk(q, k, same_dim=False)
    W_q = _check_matrix(W_q, "W_q", q.shape[-1], "d_q")
    W_k = _check_matrix(W_k, "W_k", k.shape[-1], "d_k", W_q.shape[1], "h")
    v = _check_v(v, W_q.shape[1], "W_q and W_k")
    hidden = np.tanh((q @ W_q)[..., :, None, :] + (k @ W_k)[..., None, :, :])
    return hidden @ v


def concat_scores(q, k, W, v) -> np.ndarray:
    r"""Concat scores :math:`a(q, k) = v^\top \tanh(W^\top [q; k])` (Luong's *concat*).

    The same network as :func:`additive_scores`, written with one matrix on the concatenated
    pair: the first ``d_q`` rows of ``W`` act on the query, the rest on the key.

    Parameters
    ----------
    q : array_like, shape (..., L_q, d_q)
    k : array_like, shape (..., L_k, d_k)
    W : array_like, shape (d_q + d_k, h)
    v : array_like, shape (h,)

    Returns
    -------
    numpy.ndarray, shape (..., L_q, L_k)
    """
    q, k, _ = _check_qk(q, k, same_dim=False)
    d_q, d_k = q.shape[-1], k.shape[-1]
    W = as_float_array(W, "W")
    if W.ndim != 2 or W.shape[0] != d_q + d_k:
        raise ValueError(f"W must have shape (d_q + d_k, h) with d_q + d_k={d_q + d_k} "
                         f"(queries {q.shape}, keys {k.shape}), got shape {W.shape}")
    return additive_scores(q, k, W[:d_q], W[d_q:], v)


def softmax_jacobian(x) -> np.ndarray:
    r"""Jacobian of the softmax over the last axis: :math:`J = \mathrm{diag}(p) - p p^\top`.

    :math:`J_{ij} = \partial p_i / \partial x_j = p_i(\delta_{ij} - p_j)` with
    :math:`p = \mathrm{softmax}(x)`. When :math:`p` is nearly one-hot every entry is nearly 0:
    a saturated softmax passes (almost) no gradient back to its scores.

    Parameters
    ----------
    x : array_like, shape (..., n)
        Scores (logits).

    Returns
    -------
    numpy.ndarray, shape (..., n, n)
        Symmetric; each row and column sums to zero.
    """
    x = as_float_array(x, "scores")
    if x.ndim < 1:
        raise ValueError(f"scores must have shape (..., n), got shape {x.shape}")
    p = softmax(x, axis=-1)
    return p[..., :, None] * np.eye(x.shape[-1], dtype=x.dtype) - p[..., :, None] * p[..., None, :]


def entropy(p, axis: int = -1) -> np.ndarray:
    r"""Shannon entropy :math:`H(p) = -\sum_j p_j \log p_j` in nats, with :math:`0 \log 0 = 0`.

    0 for a one-hot row (a hard lookup), :math:`\log n` for uniform weights over :math:`n` keys.

    Parameters
    ----------
    p : array_like, shape (...)
        Probabilities (attention weights) along ``axis``: non-negative, each slice summing to
        one. An all-zero slice (the weights of a fully masked query) is accepted and has entropy
        0; a slice holding NaN gives NaN (NaN propagates, as from :func:`attnlib.numpy.softmax`).
    axis : int
        The axis that sums to one.

    Returns
    -------
    numpy.ndarray
        ``p``'s shape without ``axis``.

    Raises
    ------
    ValueError
        When ``p`` has a negative entry or a slice whose sum is not 1 (within ``max(1e-4, n * eps)``
        for ``n`` entries in ``p``'s dtype): pass ``softmax(scores)``, not the scores.
    """
    p = as_float_array(p, "weights")
    axis = check_axis(axis, p.ndim, "weights")
    n = p.shape[axis]
    tol = max(1e-4, n * float(np.finfo(p.dtype).eps))
    if np.any(p < -tol):
        raise ValueError(f"weights must be probabilities (non-negative, summing to 1 along axis={axis}), "
                         f"but the smallest is {float(np.nanmin(p)):.4g}: pass softmax(scores), not the scores")
    sums = np.sum(p, axis=axis, dtype=np.float64)
    bad = ~(np.isnan(sums) | (np.abs(sums - 1.0) <= tol) | (sums == 0))
    if np.any(bad):
        raise ValueError(f"weights must sum to 1 along axis={axis} (within {tol:.1g}; an all-zero row "
                         f"of a fully masked query is allowed), but a row sums to {float(sums[bad].flat[0]):.6g}: "
                         f"pass softmax(scores), not the scores")
    logp = np.log(np.where(p > 0, p, 1.0))
    return -np.sum(p * logp, axis=axis)


def _as_list(values, name: str) -> list:
    """A sequence of sizes as a list; a single number or a string is refused."""
    if isinstance(values, (str, bytes)) or np.ndim(values) != 1:
        raise ValueError(f"{name} must be a sequence of integers, got {values!r}")
    return list(values)


def dot_product_variance(d_ks, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    r"""Empirical variance of :math:`q \cdot k` and of :math:`q \cdot k / \sqrt{d_k}` for unit-variance entries.

    With independent entries of mean 0 and variance 1, :math:`\mathrm{Var}(q \cdot k) = d_k`:
    each of the :math:`d_k` products has variance 1 and they are uncorrelated.

    Parameters
    ----------
    d_ks : sequence of int
        Dimensions to measure.
    n_samples : int
        Random (q, k) pairs per dimension.
    rng : numpy.random.Generator

    Returns
    -------
    var_dot : numpy.ndarray, shape (len(d_ks),)
    var_scaled : numpy.ndarray, shape (len(d_ks),)
    """
    d_ks = [check_positive_count(d, "each of d_ks") for d in _as_list(d_ks, "d_ks")]
    n_samples = check_positive_count(n_samples, "n_samples")
    rng = check_generator(rng)
    var_dot, var_scaled = [], []
    for d in d_ks:
        q = rng.standard_normal((n_samples, int(d)))
        k = rng.standard_normal((n_samples, int(d)))
        dots = np.einsum("nd,nd->n", q, k)
        var_dot.append(dots.var())
        var_scaled.append((dots / math.sqrt(d)).var())
    return np.array(var_dot), np.array(var_scaled)


def softmax_saturation(d_ks, n_keys: int, n_samples: int, rng: np.random.Generator) -> dict:
    r"""How saturated the softmax of random dot-product scores is, without and with :math:`1/\sqrt{d_k}`.

    For each :math:`d_k`, draws ``n_samples`` queries and ``n_keys`` keys with standard-normal
    entries, and averages over the queries the largest weight and the Frobenius norm of the
    softmax Jacobian (how much gradient reaches the scores).

    Parameters
    ----------
    d_ks : sequence of int
    n_keys : int
        Keys per query (the softmax length).
    n_samples : int
        Queries per dimension.
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``"max_weight"`` and ``"jacobian_norm"``, each a dict with ``"dot"`` and ``"scaled"``
        arrays of shape (len(d_ks),).
    """
    d_ks = [check_positive_count(d, "each of d_ks") for d in _as_list(d_ks, "d_ks")]
    n_keys = check_positive_count(n_keys, "n_keys")
    n_samples = check_positive_count(n_samples, "n_samples")
    rng = check_generator(rng)
    out = {"max_weight": {"dot": [], "scaled": []}, "jacobian_norm": {"dot": [], "scaled": []}}
    for d in d_ks:
        q = rng.standard_normal((n_samples, 1, int(d)))
        k = rng.standard_normal((n_samples, n_keys, int(d)))
        s = dot_scores(q, k)[:, 0, :]
        for name, scores in (("dot", s), ("scaled", s / math.sqrt(d))):
            out["max_weight"][name].append(softmax(scores).max(-1).mean())
            out["jacobian_norm"][name].append(
                np.linalg.norm(softmax_jacobian(scores), axis=(-2, -1)).mean())
    return {m: {n: np.array(v) for n, v in d.items()} for m, d in out.items()}
