r"""Multi-head attention (Vaswani et al., 2017) in NumPy, and a measurement of its cost.

.. math::

    \mathrm{head}_h = \mathrm{Attention}(X_q W_Q^{(h)},\, X_{kv} W_K^{(h)},\, X_{kv} W_V^{(h)}),
    \qquad \mathrm{MHA} = [\mathrm{head}_1, \dots, \mathrm{head}_H]\, W_O

where :math:`W_Q^{(h)}` is the :math:`h`-th block of :math:`d_\text{head} = d_\text{model}/H`
columns of :math:`W_Q` (and likewise for K and V). Projecting once with the full matrix and then
splitting the columns into heads computes all heads in one matrix product.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from attnlib.checks import check_count, check_positive_count, check_real
from attnlib.numpy._validate import as_float_array, check_mask, check_words
from attnlib.numpy.scaled_dot_product import scaled_dot_product_attention
from attnlib.shapes import check_num_heads


def _as_array(x) -> np.ndarray:
    """``x`` as an array of any dtype (heads are a reshape: ints stay ints); None and ragged lists refused."""
    if x is None:
        raise ValueError("x must be an array, got None")
    try:
        return np.asarray(x)
    except ValueError:
        raise ValueError(f"x must be an array with a regular shape (not ragged nested lists), got "
                         f"{type(x).__name__}") from None


def split_heads(x, num_heads: int) -> np.ndarray:
    """Split the feature axis into heads: (..., L, d_model) -> (..., H, L, d_head).

    Head ``h`` gets the contiguous block of features ``h * d_head : (h + 1) * d_head``, with
    ``d_head = d_model // num_heads``: the reshape splits the last axis into (H, d_head), then the
    head axis moves in front of the sequence axis.

    Parameters
    ----------
    x : array_like, shape (..., L, d_model)
    num_heads : int
        Must divide ``d_model``.

    Returns
    -------
    numpy.ndarray, shape (..., H, L, d_head)

    Raises
    ------
    ValueError
        When ``x`` has fewer than 2 axes or ``d_model`` is not divisible by ``num_heads``.
    """
    x = _as_array(x)
    if x.ndim < 2:
        raise ValueError(f"x must have shape (..., L, d_model), got shape {x.shape}")
    H = check_num_heads(x.shape[-1], check_positive_count(num_heads, "num_heads"))
    *batch, L, d_model = x.shape
    return np.swapaxes(x.reshape(*batch, L, H, d_model // H), -2, -3)


def merge_heads(x) -> np.ndarray:
    """Concatenate the heads again: (..., H, L, d_head) -> (..., L, H * d_head).

    The inverse of :func:`split_heads`: ``merge_heads(split_heads(x, H))`` equals ``x``.

    Parameters
    ----------
    x : array_like, shape (..., H, L, d_head)

    Returns
    -------
    numpy.ndarray, shape (..., L, H * d_head)

    Raises
    ------
    ValueError
        When ``x`` has fewer than 3 axes.
    """
    x = _as_array(x)
    if x.ndim < 3:
        raise ValueError(f"x must have shape (..., H, L, d_head), got shape {x.shape}")
    *batch, H, L, d_head = x.shape
    return np.swapaxes(x, -2, -3).reshape(*batch, L, H * d_head)


def multi_head_attention(x_q, x_kv, W_q, W_k, W_v, W_o, num_heads: int,
                         mask=None) -> tuple[np.ndarray, np.ndarray]:
    r"""Multi-head scaled dot-product attention from ``x_q`` to ``x_kv``.

    Projects ``Q = x_q @ W_q``, ``K = x_kv @ W_k``, ``V = x_kv @ W_v``, splits each into
    ``num_heads`` heads of ``d_head = d_model // num_heads`` features, runs scaled dot-product
    attention in every head at once (scaled by :math:`\sqrt{d_\text{head}}`), concatenates the
    heads and applies the output projection ``W_o``. Self-attention is ``x_kv = x_q``.
    There are no biases (as ``torch.nn.MultiheadAttention(..., bias=False)``).

    Parameters
    ----------
    x_q : array_like, shape (..., L_q, d_model)
        The sequence that asks (queries).
    x_kv : array_like, shape (..., L_k, d_model)
        The sequence attended to (keys and values); batch axes broadcast with ``x_q``'s.
    W_q, W_k, W_v, W_o : array_like, shape (d_model, d_model)
        Projections, applied as ``x @ W``.
    num_heads : int
        Number of heads H; must divide ``d_model``.
    mask : array_like of bool, optional
        Broadcastable to (..., L_q, L_k); True where a query may attend to a key. The same mask
        applies to every head. A query with no allowed key gets a zero output from each head.

    Returns
    -------
    output : numpy.ndarray, shape (..., L_q, d_model)
    weights : numpy.ndarray, shape (..., H, L_q, L_k)
        The attention weights of every head.

    Raises
    ------
    ValueError
        When shapes disagree (the message names them), ``d_model`` is not divisible by
        ``num_heads``, or the mask is not boolean or does not broadcast.
    """
    x_q, x_kv = as_float_array(x_q, "x_q"), as_float_array(x_kv, "x_kv")
    for name, x in (("x_q", x_q), ("x_kv", x_kv)):
        if x.ndim < 2:
            raise ValueError(f"{name} must have shape (..., L, d_model), got shape {x.shape}")
    d_model = x_q.shape[-1]
    if x_kv.shape[-1] != d_model:
        raise ValueError(f"x_kv has d_model={x_kv.shape[-1]} but x_q d_model={d_model} "
                         f"(x_kv {x_kv.shape}, x_q {x_q.shape})")
    Ws = []
    for name, W in (("W_q", W_q), ("W_k", W_k), ("W_v", W_v), ("W_o", W_o)):
        W = as_float_array(W, name)
        if W.shape != (d_model, d_model):
            raise ValueError(f"{name} must have shape (d_model, d_model) = {(d_model, d_model)}, "
                             f"got shape {W.shape}")
        Ws.append(W)
    W_q, W_k, W_v, W_o = Ws
    H = check_num_heads(d_model, check_positive_count(num_heads, "num_heads"))
    try:
        batch = np.broadcast_shapes(x_q.shape[:-2], x_kv.shape[:-2])
    except ValueError:
        raise ValueError(f"batch dimensions do not broadcast: x_q {x_q.shape}, "
                         f"x_kv {x_kv.shape}") from None
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != bool:
            check_mask(mask, ())  # raises: the mask must be boolean
        target = (*batch, x_q.shape[-2], x_kv.shape[-2])
        try:
            ok = np.broadcast_shapes(mask.shape, target) == target
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"mask of shape {mask.shape} does not broadcast to (..., L_q, L_k) "
                             f"= {target}")
        mask = np.expand_dims(mask, -3)  # one mask for every head: (..., 1, L_q, L_k)
    q = split_heads(x_q @ W_q, H)   # (..., H, L_q, d_head)
    k = split_heads(x_kv @ W_k, H)  # (..., H, L_k, d_head)
    v = split_heads(x_kv @ W_v, H)  # (..., H, L_k, d_head)
    heads, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    return merge_heads(heads) @ W_o, weights


def attention_cost(lengths: Sequence[int], d_model: int = 64, num_heads: int = 4,
                   repeats: int = 3, seed: int = 0, dtype=np.float32, progress: bool = True) -> dict:
    """Measure the time of :func:`multi_head_attention` and the size of its weights as L grows.

    Self-attention on one sequence of each length, with random float32 inputs; each time is the
    best of ``repeats`` runs (the least disturbed by other work on the machine).

    Parameters
    ----------
    lengths : sequence of int
        Sequence lengths L to measure.
    d_model : int
    num_heads : int
    repeats : int
    seed : int
    dtype : numpy dtype
        Of the inputs (float32 keeps the sweep fast).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        ``"L"`` (array of int), ``"seconds"`` (array of float, best time per length) and
        ``"weights_bytes"`` (array of int, ``weights.nbytes`` = H * L**2 * itemsize).
    """
    from tqdm.auto import tqdm

    if isinstance(lengths, (str, bytes)) or np.ndim(lengths) != 1:
        raise ValueError(f"lengths must be a sequence of positive integers, got {lengths!r}")
    lengths = [check_positive_count(L, "each of lengths") for L in lengths]
    d_model = check_positive_count(d_model, "d_model")
    check_num_heads(d_model, check_positive_count(num_heads, "num_heads"))
    repeats = check_positive_count(repeats, "repeats")
    seed = check_count(seed, "seed")
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise ValueError(f"dtype must be a floating-point dtype (float32 or float64), got {dtype!r}")
    rng = np.random.default_rng(seed)
    Ws = [(rng.normal(size=(d_model, d_model)) / math.sqrt(d_model)).astype(dtype) for _ in range(4)]
    seconds, sizes = [], []
    warm = rng.normal(size=(1, 8, d_model)).astype(dtype)
    multi_head_attention(warm, warm, *Ws, num_heads)  # warm-up: the first call pays for imports
    for L in tqdm(list(lengths), desc="sequence lengths", disable=not progress):
        x = rng.normal(size=(1, int(L), d_model)).astype(dtype)
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            _, w = multi_head_attention(x, x, *Ws, num_heads)
            best = min(best, time.perf_counter() - start)
        seconds.append(best)
        sizes.append(w.nbytes)
        del w
    return {"L": np.asarray(lengths, dtype=int), "seconds": np.asarray(seconds),
            "weights_bytes": np.asarray(sizes, dtype=np.int64)}


def loglog_slope(x, y) -> float:
    """Slope of the least-squares line through (log x, log y): the exponent p in y ~ x**p.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Positive values, n >= 2.

    Returns
    -------
    float
    """
    x = as_float_array(x, "x").astype(float, copy=False)
    y = as_float_array(y, "y").astype(float, copy=False)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"x and y must be 1-D of the same length >= 2, got {x.shape} and {y.shape}")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("x and y must be positive for a log-log fit")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def two_head_example(tokens: Sequence[str], sharpness: float = 20.0):
    """Hand-built weights of a 2-head attention: head 0 finds the previous token, head 1 equal tokens.

    Each token's embedding is ``[one-hot position | one-hot word]``, 16 features each, so
    ``d_model = 32`` and, with 2 heads, ``d_head = 16``: head 0 sees exactly the position
    features and head 1 the word features. Head 0's query at position ``i`` matches the key of
    position ``i - 1``; head 1's query matches the keys of the same word. ``W_v`` and ``W_o`` are
    identities, so head 0's output is the one-hot position it found and head 1's the word.

    Parameters
    ----------
    tokens : sequence of str
        At most 15 tokens and 16 distinct words.
    sharpness : float
        Size of a matching query-key score before the 1/sqrt(d_head) scaling; larger is sharper.

    Returns
    -------
    x : numpy.ndarray, shape (L, 32)
        The embeddings.
    weights : tuple of 4 numpy.ndarray, each shape (32, 32)
        ``(W_q, W_k, W_v, W_o)``, to pass to :func:`multi_head_attention` with ``num_heads=2``.
    """
    tokens = check_words(tokens, "tokens")
    sharpness = check_real(sharpness, "sharpness")
    vocab = list(dict.fromkeys(tokens))
    if not 1 <= len(tokens) <= 15 or len(vocab) > 16:
        raise ValueError(f"need 1 to 15 tokens and at most 16 distinct words, got {len(tokens)} "
                         f"tokens and {len(vocab)} words")
    d = 16
    x = np.zeros((len(tokens), 2 * d))
    x[np.arange(len(tokens)), np.arange(len(tokens))] = 1.0
    x[np.arange(len(tokens)), d + np.array([vocab.index(t) for t in tokens])] = 1.0
    W_q, W_k = np.zeros((2 * d, 2 * d)), np.zeros((2 * d, 2 * d))
    for p in range(d):  # head 0: query at position p looks for the key at p - 1
        W_q[p, p] = sharpness
        if p + 1 < d:
            W_k[p, p + 1] = 1.0
    for w in range(d):  # head 1: a word looks for the same word
        W_q[d + w, d + w] = sharpness
        W_k[d + w, d + w] = 1.0
    return x, (W_q, W_k, np.eye(2 * d), np.eye(2 * d))
