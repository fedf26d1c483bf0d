r"""Attention pooling as kernel regression (Nadaraya, 1964; Watson, 1964), in NumPy.

A query :math:`x` is compared with every key :math:`x_j` by a Gaussian kernel, and the kernel
values, normalized to sum to one, weight the values :math:`y_j`:

.. math:: f(x) = \sum_j \alpha(x, x_j)\, y_j, \qquad
          \alpha(x, x_j) = \mathrm{softmax}_j\!\left(-\frac{(x - x_j)^2}{2h^2}\right).

The bandwidth :math:`h` sets how soft the lookup is: :math:`h \to 0` gives the nearest key's
value (a hard lookup), :math:`h \to \infty` the mean of all values. Queries and keys here are
scalars (positions on a line), so their arrays have shapes ``(..., L_q)`` and ``(..., L_k)``.
"""
from __future__ import annotations

import math

import numpy as np

from attnlib.checks import check_count, check_generator, check_real
from attnlib.numpy._validate import as_float_array
from attnlib.numpy.softmax import softmax


def _check_bandwidth(bandwidth) -> float:
    if bandwidth is not None and not isinstance(bandwidth, (str, bytes)) and np.ndim(bandwidth) != 0:
        raise ValueError(f"bandwidth must be a positive number, got an array of shape "
                         f"{np.shape(bandwidth)}")
    try:
        h = check_real(bandwidth, "bandwidth", finite=False)
    except ValueError:
        raise ValueError(f"bandwidth must be a positive, finite number, got {bandwidth!r}") from None
    if not (h > 0 and math.isfinite(h)):
        raise ValueError(f"bandwidth must be a positive, finite number, got {bandwidth!r}")
    return h


def _check_positions(x_query, x_key) -> tuple[np.ndarray, np.ndarray, tuple]:
    q = as_float_array(x_query, "query positions")
    k = as_float_array(x_key, "key positions")
    for name, a, dims in (("query positions", q, "(..., L_q)"), ("key positions", k, "(..., L_k)")):
        if a.ndim < 1:
            raise ValueError(f"{name} must have shape {dims}, got shape {a.shape}")
    try:
        batch = np.broadcast_shapes(q.shape[:-1], k.shape[:-1])
    except ValueError:
        raise ValueError(f"batch dimensions do not broadcast: query positions {q.shape}, "
                         f"key positions {k.shape}") from None
    return q, k, batch


def gaussian_kernel_scores(x_query, x_key, bandwidth: float) -> np.ndarray:
    r"""Scores of a Gaussian kernel: :math:`s_{ij} = -(x_i - x_j)^2 / (2h^2)`.

    Parameters
    ----------
    x_query : array_like, shape (..., L_q)
        Query positions (scalars).
    x_key : array_like, shape (..., L_k)
        Key positions (scalars).
    bandwidth : float
        The kernel width :math:`h > 0`.

    Returns
    -------
    numpy.ndarray, shape (..., L_q, L_k)
        Row :math:`i` holds query :math:`i`'s scores against every key; all are :math:`\le 0`.

    Raises
    ------
    ValueError
        When a position array has no axis, the batch axes do not broadcast, or the bandwidth
        is not a positive number.
    """
    h = _check_bandwidth(bandwidth)
    q, k, _ = _check_positions(x_query, x_key)
    diff = q[..., :, None] - k[..., None, :]
    # A Python float keeps float32 inputs float32.
    return -(diff * diff) * (0.5 / (h * h))


def gaussian_kernel_weights(x_query, x_key, bandwidth: float, mask=None) -> np.ndarray:
    r"""Attention weights of a Gaussian kernel: :math:`\mathrm{softmax}_j(-(x_i - x_j)^2 / (2h^2))`.

    The softmax is max-subtracted, so even a tiny bandwidth gives finite weights (all of them
    on the nearest key) instead of 0/0.

    Parameters
    ----------
    x_query : array_like, shape (..., L_q)
        Query positions.
    x_key : array_like, shape (..., L_k)
        Key positions.
    bandwidth : float
        The kernel width :math:`h > 0`.
    mask : array_like of bool, optional
        Broadcastable to (..., L_q, L_k); True where a query may attend to a key (for example
        ``~np.eye(n, dtype=bool)`` to leave each point out of its own prediction).

    Returns
    -------
    numpy.ndarray, shape (..., L_q, L_k)
        Each row sums to one (or is all zeros when fully masked).
    """
    scores = gaussian_kernel_scores(x_query, x_key, bandwidth)
    return softmax(scores, axis=-1, mask=mask)


def nadaraya_watson(x_query, x_key, y_key, bandwidth: float, mask=None) -> tuple[np.ndarray, np.ndarray]:
    r"""Nadaraya–Watson kernel regression: the attention-weighted average of the values.

    .. math:: f(x_i) = \sum_j \alpha_{ij}\, y_j, \qquad
              \alpha_{ij} = \mathrm{softmax}_j\!\left(-\frac{(x_i - x_j)^2}{2h^2}\right)

    Parameters
    ----------
    x_query : array_like, shape (..., L_q)
        Query positions, where to predict.
    x_key : array_like, shape (..., L_k)
        Key positions (the training inputs).
    y_key : array_like, shape (..., L_k)
        Values (the training targets), one per key.
    bandwidth : float
        The kernel width :math:`h > 0`.
    mask : array_like of bool, optional
        Broadcastable to (..., L_q, L_k); True = may attend.

    Returns
    -------
    prediction : numpy.ndarray, shape (..., L_q)
    weights : numpy.ndarray, shape (..., L_q, L_k)

    Raises
    ------
    ValueError
        When ``y_key`` does not have one value per key, or as :func:`gaussian_kernel_scores`.
    """
    _, k, _ = _check_positions(x_query, x_key)
    y = as_float_array(y_key, "values")
    if y.ndim < 1 or y.shape[-1] != (k.shape[-1] if k.ndim else -1):
        raise ValueError(f"values must have one entry per key: values have shape {y.shape}, "
                         f"key positions {k.shape} (both (..., L_k))")
    weights = gaussian_kernel_weights(x_query, x_key, bandwidth, mask=mask)
    pred = (weights @ y[..., :, None])[..., 0]
    return pred, weights


def bandwidth_loss_and_grad(x_query, y_query, x_key, y_key, bandwidth: float,
                            mask=None) -> tuple[float, float]:
    r"""Mean squared error of Nadaraya–Watson predictions and its derivative in the bandwidth.

    With :math:`d_{ij} = x_i - x_j`, :math:`f_i = \sum_j \alpha_{ij} y_j` and
    :math:`L = \frac1n \sum_i (f_i - t_i)^2`, the chain rule through the softmax gives

    .. math:: \frac{\partial f_i}{\partial h} = \sum_j \alpha_{ij}\,(y_j - f_i)\,\frac{d_{ij}^2}{h^3},
              \qquad
              \frac{\partial L}{\partial h} = \frac2n \sum_i (f_i - t_i)\,\frac{\partial f_i}{\partial h}.

    Parameters
    ----------
    x_query : array_like, shape (n,)
        Query positions.
    y_query : array_like, shape (n,)
        Targets :math:`t_i` at the queries.
    x_key : array_like, shape (m,)
        Key positions.
    y_key : array_like, shape (m,)
        Values at the keys.
    bandwidth : float
        The kernel width :math:`h > 0`.
    mask : array_like of bool, optional
        Broadcastable to (n, m); True = may attend.

    Returns
    -------
    loss : float
    grad : float
        :math:`\partial L / \partial h`.
    """
    h = _check_bandwidth(bandwidth)
    t = as_float_array(y_query, "targets").astype(np.float64, copy=False)
    xq = as_float_array(x_query, "query positions").astype(np.float64, copy=False)
    if t.shape != xq.shape:
        raise ValueError(f"targets must have one entry per query: targets have shape {t.shape}, "
                         f"query positions {xq.shape}")
    y = as_float_array(y_key, "values").astype(np.float64, copy=False)
    xk = as_float_array(x_key, "key positions").astype(np.float64, copy=False)
    f, w = nadaraya_watson(xq, xk, y, h, mask=mask)
    d2 = (xq[..., :, None] - xk[..., None, :]) ** 2
    df = np.sum(w * (y[..., None, :] - f[..., :, None]) * d2, axis=-1) / h**3
    r = f - t
    return float(np.mean(r * r)), float(2.0 * np.mean(r * df))


def fit_bandwidth(x, y, bandwidth: float = 1.0, lr: float = 0.5, steps: int = 100) -> tuple[float, dict]:
    r"""Learn the bandwidth by gradient descent on the leave-one-out squared error.

    Every training point is a query that may attend to all *other* points (mask
    ``~eye``): without leaving it out, :math:`h \to 0` would copy each target and
    win trivially. Descent runs on :math:`\log h`, which keeps :math:`h` positive:
    :math:`\partial L / \partial \log h = h\, \partial L / \partial h`.

    Parameters
    ----------
    x : array_like, shape (n,)
        Training inputs (the keys, and the queries).
    y : array_like, shape (n,)
        Training targets (the values).
    bandwidth : float
        Starting bandwidth.
    lr : float
        Step size on :math:`\log h`.
    steps : int
        Number of gradient steps.

    Returns
    -------
    bandwidth : float
        The learned bandwidth.
    history : dict
        ``"bandwidth"`` and ``"loss"``: arrays of shape (steps + 1,), before each step and at
        the end.
    """
    x = as_float_array(x, "x").astype(np.float64, copy=False)
    y = as_float_array(y, "y").astype(np.float64, copy=False)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {x.shape} and {y.shape}")
    if len(x) < 2:
        raise ValueError(f"need at least 2 points to leave one out, got {len(x)}")
    lr = check_real(lr, "lr", non_negative=True)
    steps = check_count(steps, "steps")
    leave_one_out = ~np.eye(len(x), dtype=bool)
    log_h = math.log(_check_bandwidth(bandwidth))
    hs, losses = [], []
    for step in range(steps + 1):
        h = math.exp(log_h)
        loss, grad = bandwidth_loss_and_grad(x, y, x, y, h, mask=leave_one_out)
        hs.append(h)
        losses.append(loss)
        if step < steps:
            log_h -= lr * h * grad
    return hs[-1], {"bandwidth": np.array(hs), "loss": np.array(losses)}


def toy_regression(n: int, rng: np.random.Generator, noise: float = 0.5,
                   low: float = 0.0, high: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    r"""A 1-D regression problem: :math:`y = 2\sin x + x^{0.8} + \varepsilon`, sorted by :math:`x`.

    Parameters
    ----------
    n : int
        Number of points.
    rng : numpy.random.Generator
        Source of randomness (``attnlib.seed(0)`` gives one).
    noise : float
        Standard deviation of the Gaussian noise :math:`\varepsilon`.
    low, high : float
        The inputs are uniform on [low, high).

    Returns
    -------
    x : numpy.ndarray, shape (n,)
    y : numpy.ndarray, shape (n,)
    """
    n = check_count(n, "n")
    rng = check_generator(rng)
    noise = check_real(noise, "noise", non_negative=True)
    low, high = check_real(low, "low"), check_real(high, "high")
    if low > high:
        raise ValueError(f"need low <= high, got low={low!r} and high={high!r}")
    x = np.sort(rng.uniform(low, high, size=n))
    return x, toy_target(x) + noise * rng.normal(size=n)


def toy_target(x) -> np.ndarray:
    r"""The noise-free function of :func:`toy_regression`, :math:`2\sin x + x^{0.8}`.

    Parameters
    ----------
    x : array_like, shape (...), non-negative

    Returns
    -------
    numpy.ndarray, shape (...)
    """
    x = as_float_array(x, "x").astype(np.float64, copy=False)
    if np.any(x < 0):
        raise ValueError(f"x must be non-negative (x ** 0.8 of a negative number is NaN), got a minimum "
                         f"of {float(np.min(x)):.4g}")
    return 2.0 * np.sin(x) + x ** 0.8


def qkv_projections(X, W_q, W_k, W_v) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Queries, keys and values of one input sequence: :math:`Q = XW_Q,\ K = XW_K,\ V = XW_V`.

    Self-attention draws all three from the same tokens; only the learned matrices differ.

    Parameters
    ----------
    X : array_like, shape (..., L, d_model)
        Token vectors.
    W_q : array_like, shape (d_model, d_k)
    W_k : array_like, shape (d_model, d_k)
    W_v : array_like, shape (d_model, d_v)

    Returns
    -------
    Q : numpy.ndarray, shape (..., L, d_k)
    K : numpy.ndarray, shape (..., L, d_k)
    V : numpy.ndarray, shape (..., L, d_v)

    Raises
    ------
    ValueError
        When a matrix's rows do not match ``d_model`` or ``W_q`` and ``W_k`` differ in ``d_k``.
    """
    X = as_float_array(X, "X")
    if X.ndim < 2:
        raise ValueError(f"X must have shape (..., L, d_model), got shape {X.shape}")
    mats = []
    for name, W in (("W_q", W_q), ("W_k", W_k), ("W_v", W_v)):
        W = as_float_array(W, name)
        if W.ndim != 2 or W.shape[0] != X.shape[-1]:
            raise ValueError(f"{name} must have shape (d_model, d) with d_model={X.shape[-1]} "
                             f"(X {X.shape}), got shape {W.shape}")
        mats.append(W)
    if mats[0].shape[1] != mats[1].shape[1]:
        raise ValueError(f"W_q and W_k must give the same d_k: W_q {mats[0].shape}, W_k {mats[1].shape}")
    return X @ mats[0], X @ mats[1], X @ mats[2]


__all__ = ["gaussian_kernel_scores", "gaussian_kernel_weights", "nadaraya_watson",
           "bandwidth_loss_and_grad", "fit_bandwidth", "toy_regression", "toy_target",
           "qkv_projections"]
