r"""Positional information for attention: sinusoidal, learned, relative, rotary (RoPE) and ALiBi.

Attention by itself is *permutation equivariant*: shuffle the tokens and the outputs come back
shuffled the same way, so word order is invisible to it. Each scheme here tells it where a token
is, at a different place in the computation:

=====================  ==========================================================================
scheme                 where it enters
=====================  ==========================================================================
sinusoidal, learned    added to the token embeddings, before the first layer
relative (Shaw)        learned vectors for each clipped offset :math:`j - i`, added to the keys
                       (and values) inside every attention layer
rotary (RoPE)          queries and keys rotated by an angle proportional to their position
ALiBi                  a fixed bias :math:`-m_h\,\lvert i - j\rvert` added to the scores of head
                       :math:`h`
=====================  ==========================================================================
"""
from __future__ import annotations

import math

import numpy as np

from attnlib.checks import check_count, check_generator, check_positive_count, check_real
from attnlib.numpy._validate import as_float_array, check_mask, check_qkv
from attnlib.numpy.softmax import softmax


def _positive_int(value, name: str) -> int:
    return check_positive_count(value, name)


def _check_attention_inputs(q, k, v, mask):
    """q, k, v as float arrays with checked shapes, the scores' shape and the checked mask."""
    q, k, v = (as_float_array(a, n) for a, n in ((q, "queries"), (k, "keys"), (v, "values")))
    for name, a, dims in (("queries", q, "(..., L_q, d_k)"), ("keys", k, "(..., L_k, d_k)"),
                          ("values", v, "(..., L_k, d_v)")):
        if a.ndim < 2:
            raise ValueError(f"{name} must have shape {dims}, got shape {a.shape}")
    if k.shape[-1] != q.shape[-1] or v.shape[-2] != k.shape[-2]:
        raise ValueError(f"expected q (..., L_q, d_k), k (..., L_k, d_k), v (..., L_k, d_v); "
                         f"got q {q.shape}, k {k.shape}, v {v.shape}")
    if q.shape[-1] == 0:
        raise ValueError(f"queries and keys have d_k=0: the scores are scaled by 1/sqrt(d_k), so d_k "
                         f"must be at least 1 (q {q.shape}, k {k.shape})")
    check_qkv(q, k, v)  # the batch axes of all three broadcast
    scores_shape = (*np.broadcast_shapes(q.shape[:-2], k.shape[:-2]), q.shape[-2], k.shape[-2])
    if mask is not None:
        mask = check_mask(mask, scores_shape)
    return q, k, v, scores_shape, mask


# ----------------------------------------------------------------------------- sinusoidal

def sinusoidal_frequencies(d_model: int, base: float = 10000.0) -> np.ndarray:
    r"""The angular frequencies :math:`\omega_i = 1 / \mathrm{base}^{2i/d}` of the sinusoidal encoding.

    Parameters
    ----------
    d_model : int
    base : float

    Returns
    -------
    numpy.ndarray, shape (ceil(d_model / 2),)
        From 1 (column pair 0, one radian per position) down towards :math:`1/\mathrm{base}`.
    """
    d_model = _positive_int(d_model, "d_model")
    base = check_real(base, "base", positive=True)
    return base ** (-np.arange(0, d_model, 2) / d_model)


def sinusoidal_positional_encoding(num_positions: int, d_model: int, base: float = 10000.0) -> np.ndarray:
    r"""The sinusoidal position encoding of Vaswani et al. (2017).

    .. math::
        PE[p, 2i] = \sin\!\left(\frac{p}{10000^{2i/d}}\right), \qquad
        PE[p, 2i + 1] = \cos\!\left(\frac{p}{10000^{2i/d}}\right)

    Parameters
    ----------
    num_positions : int
        Positions :math:`p = 0, \dots, \text{num\_positions} - 1`.
    d_model : int
        Number of columns :math:`d`; an odd :math:`d` ends with a sine column.
    base : float
        The 10000 of the formula.

    Returns
    -------
    numpy.ndarray, shape (num_positions, d_model), float64
        Row ``p`` is added to the embedding of the token at position ``p``.
    """
    num_positions = _positive_int(num_positions, "num_positions")
    d_model = _positive_int(d_model, "d_model")
    angles = np.arange(num_positions)[:, None] * sinusoidal_frequencies(d_model, base)[None, :]
    pe = np.empty((num_positions, d_model))
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles[:, : d_model // 2])
    return pe


# ----------------------------------------------------------------------------- learned absolute

def learned_position_table(num_positions: int, d_model: int, rng: np.random.Generator,
                           scale: float = 0.02) -> np.ndarray:
    """A learnable table of absolute positions, initialised as BERT and GPT-2 do (normal, std 0.02).

    Training would update it like any other weight; its length caps the sequence length.

    Parameters
    ----------
    num_positions, d_model : int
    rng : numpy.random.Generator
    scale : float
        Standard deviation of the initial values.

    Returns
    -------
    numpy.ndarray, shape (num_positions, d_model)
    """
    num_positions = _positive_int(num_positions, "num_positions")
    d_model = _positive_int(d_model, "d_model")
    rng = check_generator(rng)
    scale = check_real(scale, "scale", non_negative=True)
    return rng.normal(scale=scale, size=(num_positions, d_model))


def add_positions(x, table) -> np.ndarray:
    """Add absolute position vectors to token embeddings: ``x + table[:L]``.

    Parameters
    ----------
    x : array_like, shape (..., L, d_model)
        Token embeddings.
    table : array_like, shape (num_positions, d_model)
        Sinusoidal or learned; needs ``num_positions >= L``.

    Returns
    -------
    numpy.ndarray, shape (..., L, d_model)
    """
    x = as_float_array(x, "x")
    table = as_float_array(table, "table")
    if x.ndim < 2 or table.ndim != 2 or x.shape[-1] != table.shape[1]:
        raise ValueError(f"need x (..., L, d_model) and table (num_positions, d_model); "
                         f"got x {x.shape}, table {table.shape}")
    if x.shape[-2] > table.shape[0]:
        raise ValueError(f"sequence of length {x.shape[-2]} but the table has only "
                         f"{table.shape[0]} positions (table {table.shape})")
    return x + table[: x.shape[-2]].astype(x.dtype, copy=False)


# ----------------------------------------------------------------------------- relative (Shaw et al.)

def relative_position_matrix(L_q: int, L_k: int, max_distance: int) -> np.ndarray:
    r"""Clipped offsets :math:`\mathrm{clip}(j - i, -k, k)` of every key ``j`` from every query ``i``.

    Parameters
    ----------
    L_q, L_k : int
    max_distance : int
        :math:`k`; farther offsets share the edge value.

    Returns
    -------
    numpy.ndarray of int64, shape (L_q, L_k)
        Values in ``[-max_distance, max_distance]``; add ``max_distance`` to index a table of
        ``2 * max_distance + 1`` rows.
    """
    L_q, L_k = _positive_int(L_q, "L_q"), _positive_int(L_k, "L_k")
    max_distance = check_count(max_distance, "max_distance")
    offsets = np.arange(L_k)[None, :] - np.arange(L_q)[:, None]
    return np.clip(offsets, -max_distance, max_distance).astype(np.int64)


def relative_attention(q, k, v, rel_k, rel_v=None, mask=None) -> tuple[np.ndarray, np.ndarray]:
    r"""Self-attention with relative position representations (Shaw et al., 2018).

    With :math:`a_{ij} = w_{\mathrm{clip}(j - i, -k, k)}` looked up in learned tables,

    .. math::
        e_{ij} = \frac{q_i \cdot (k_j + a^K_{ij})}{\sqrt{d_k}}, \qquad
        z_i = \sum_j \mathrm{softmax}_j(e_{ij})\, (v_j + a^V_{ij}).

    Parameters
    ----------
    q : array_like, shape (..., L_q, d_k)
    k : array_like, shape (..., L_k, d_k)
    v : array_like, shape (..., L_k, d_v)
    rel_k : array_like, shape (2 * max_distance + 1, d_k)
        Row ``max_distance + r`` is the vector of offset ``r``.
    rel_v : array_like, shape (2 * max_distance + 1, d_v), optional
        The same for the values; omitted, values get no position term.
    mask : array_like of bool, optional
        Broadcastable to (..., L_q, L_k); True = may attend.

    Returns
    -------
    output : numpy.ndarray, shape (..., L_q, d_v)
    weights : numpy.ndarray, shape (..., L_q, L_k)
    """
    q, k, v = (as_float_array(a, n) for a, n in ((q, "queries"), (k, "keys"), (v, "values")))
    rel_k = as_float_array(rel_k, "rel_k")
    if rel_k.ndim != 2 or rel_k.shape[0] % 2 == 0 or rel_k.shape[1] != q.shape[-1]:
        raise ValueError(f"rel_k must have shape (2 * max_distance + 1, d_k) with d_k={q.shape[-1]}, "
                         f"got {rel_k.shape}")
    q, k, v, scores_shape, mask = _check_attention_inputs(q, k, v, mask)
    if rel_v is not None:
        rel_v = as_float_array(rel_v, "rel_v")
        if rel_v.shape != (rel_k.shape[0], v.shape[-1]):
            raise ValueError(f"rel_v must have shape {(rel_k.shape[0], v.shape[-1])}, got {rel_v.shape}")
    max_distance = rel_k.shape[0] // 2
    idx = relative_position_matrix(q.shape[-2], k.shape[-2], max_distance) + max_distance
    a_k = rel_k[idx]                                             # (L_q, L_k, d_k)
    scores = (q @ np.swapaxes(k, -1, -2) + np.einsum("...id,ijd->...ij", q, a_k)) \
        * (1.0 / math.sqrt(q.shape[-1]))
    weights = softmax(scores, axis=-1, mask=mask)
    out = weights @ v
    if rel_v is not None:
        out = out + np.einsum("...ij,ijd->...id", weights, rel_v[idx])
    return out, weights


# ----------------------------------------------------------------------------- rotary (RoPE)

def _rope_angles(positions, d: int, base: float) -> np.ndarray:
    if d % 2:
        raise ValueError(f"RoPE rotates pairs of features, so the last axis must have even length; "
                         f"got d={d}")
    theta = base ** (-np.arange(0, d, 2) / d)                    # (d/2,)
    return np.asarray(positions, dtype=np.float64)[..., None] * theta


def _rope_inputs(x, positions, base):
    """Check RoPE's arguments; return x as a float array and cos, sin of the angles, (L, d/2) each."""
    x = as_float_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (..., L, d), got {x.shape}")
    L, d = x.shape[-2], x.shape[-1]
    base = check_real(base, "base", positive=True)
    positions = np.arange(L) if positions is None else as_float_array(positions, "positions")
    if positions.shape != (L,):
        raise ValueError(f"positions must have shape ({L},) for x of shape {x.shape}, "
                         f"got {positions.shape}")
    angles = _rope_angles(positions, d, base)                    # (L, d/2)
    return x, np.cos(angles).astype(x.dtype), np.sin(angles).astype(x.dtype)


def rope(x, positions=None, base: float = 10000.0) -> np.ndarray:
    r"""Rotary position embedding (Su et al., 2021): rotate feature pairs by position-dependent angles.

    Pair :math:`(x_{2i}, x_{2i+1})` of the vector at position :math:`p` is rotated by the angle
    :math:`p\,\theta_i` with :math:`\theta_i = \mathrm{base}^{-2i/d}`:

    .. math::
        \begin{pmatrix} x'_{2i} \\ x'_{2i+1} \end{pmatrix} =
        \begin{pmatrix} \cos p\theta_i & -\sin p\theta_i \\ \sin p\theta_i & \cos p\theta_i \end{pmatrix}
        \begin{pmatrix} x_{2i} \\ x_{2i+1} \end{pmatrix}

    Applied to queries and keys, :math:`\mathrm{rope}(q)_m \cdot \mathrm{rope}(k)_n` depends on
    the positions only through :math:`m - n`.

    Parameters
    ----------
    x : array_like, shape (..., L, d)
        Queries or keys; ``d`` must be even.
    positions : array_like of int, shape (L,), optional
        Position of each row; defaults to ``0, ..., L - 1``.
    base : float

    Returns
    -------
    numpy.ndarray, shape (..., L, d)
        Same dtype as ``x`` (float32 stays float32).
    """
    x, cos, sin = _rope_inputs(x, positions, base)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out


def rope_rotate_half(x, positions=None, base: float = 10000.0) -> np.ndarray:
    r"""RoPE in the "rotate half" layout: feature :math:`j` is paired with feature :math:`j + d/2`.

    :func:`rope` pairs neighbours :math:`(x_{2i}, x_{2i+1})`, as the RoFormer paper writes it
    (its equation 34). GPT-NeoX and the LLaMA code of Hugging Face ``transformers`` pair
    :math:`(x_i, x_{i + d/2})` instead, rotated by the same angle :math:`p\,\theta_i`:

    .. math::
        x'_i = x_i \cos p\theta_i - x_{i+d/2} \sin p\theta_i, \qquad
        x'_{i+d/2} = x_i \sin p\theta_i + x_{i+d/2} \cos p\theta_i .

    The two are the same rotation up to a fixed permutation of the features
    (:func:`rope_half_permutation`): ``rope_rotate_half(x[..., perm]) == rope(x)[..., perm]``, and
    since queries and keys get the same permutation, every score is unchanged.

    Parameters
    ----------
    x : array_like, shape (..., L, d)
        Queries or keys; ``d`` must be even.
    positions : array_like of int, shape (L,), optional
        Position of each row; defaults to ``0, ..., L - 1``.
    base : float

    Returns
    -------
    numpy.ndarray, shape (..., L, d)
        Same dtype as ``x``.
    """
    x, cos, sin = _rope_inputs(x, positions, base)
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half:]
    return np.concatenate([first * cos - second * sin, first * sin + second * cos], axis=-1)


def rope_half_permutation(d: int) -> np.ndarray:
    """The permutation of features that turns :func:`rope`'s layout into :func:`rope_rotate_half`'s.

    ``perm = [0, 2, 4, ..., d - 2, 1, 3, ..., d - 1]``: the first feature of every pair, then the
    second, so that pair ``(2i, 2i + 1)`` lands at ``(i, i + d/2)``.

    Parameters
    ----------
    d : int
        Even.

    Returns
    -------
    numpy.ndarray of int, shape (d,)
        ``rope_rotate_half(x[..., perm]) == rope(x)[..., perm]`` for every ``x`` of last axis ``d``.
    """
    d = _positive_int(d, "d")
    if d % 2:
        raise ValueError(f"RoPE rotates pairs of features, so d must be even; got d={d}")
    return np.concatenate([np.arange(0, d, 2), np.arange(1, d, 2)])


def rope_matrix(position: float, d: int, base: float = 10000.0) -> np.ndarray:
    """The rotation RoPE applies at one position, as a block-diagonal ``(d, d)`` matrix.

    ``rope(x)[..., p, :]`` equals ``rope_matrix(p, d) @ x[..., p, :]``.

    Parameters
    ----------
    position : float
    d : int
        Even.
    base : float

    Returns
    -------
    numpy.ndarray, shape (d, d)
        Orthogonal: its transpose is its inverse.
    """
    d = _positive_int(d, "d")
    position = check_real(position, "position")
    base = check_real(base, "base", positive=True)
    angles = _rope_angles(np.asarray(position), d, base)
    R = np.zeros((d, d))
    for i, a in enumerate(angles):
        c, s = math.cos(a), math.sin(a)
        R[2 * i: 2 * i + 2, 2 * i: 2 * i + 2] = [[c, -s], [s, c]]
    return R


# ----------------------------------------------------------------------------- ALiBi

def alibi_slopes(num_heads: int) -> np.ndarray:
    r"""The per-head slopes of ALiBi (Press et al., 2022).

    For :math:`n` heads, :math:`n` a power of two, the slopes are the geometric sequence
    :math:`2^{-8/n}, 2^{-16/n}, \dots, 2^{-8}`. Otherwise, with :math:`m` the largest power of
    two below :math:`n`, they are the :math:`m` slopes of :math:`m` heads followed by every
    other slope of :math:`2m` heads (the paper's code).

    Parameters
    ----------
    num_heads : int

    Returns
    -------
    numpy.ndarray, shape (num_heads,)
    """
    n = _positive_int(num_heads, "num_heads")

    def geometric(m):
        return 2.0 ** (-8.0 * np.arange(1, m + 1) / m)

    m = 2 ** int(math.floor(math.log2(n)))
    if m == n:
        return geometric(n)
    return np.concatenate([geometric(m), geometric(2 * m)[0::2][: n - m]])


def alibi_bias(num_heads: int, L_q: int, L_k: int | None = None) -> np.ndarray:
    r"""ALiBi's additive score biases: :math:`b_h[i, j] = -m_h\,\lvert i - j\rvert`.

    In a causal model only :math:`j \le i` is used, where this is the paper's
    :math:`-m_h (i - j)`; the absolute value extends it to bidirectional attention.

    Parameters
    ----------
    num_heads : int
    L_q : int
    L_k : int, optional
        Defaults to ``L_q``.

    Returns
    -------
    numpy.ndarray, shape (num_heads, L_q, L_k)
        Add it to the scaled scores of each head before the softmax.
    """
    L_q = _positive_int(L_q, "L_q")
    L_k = L_q if L_k is None else _positive_int(L_k, "L_k")
    distance = np.abs(np.arange(L_q)[:, None] - np.arange(L_k)[None, :])
    return 0.0 - alibi_slopes(num_heads)[:, None, None] * distance  # 0.0 - x: no -0.0 on the diagonal


def biased_attention(q, k, v, bias, mask=None) -> tuple[np.ndarray, np.ndarray]:
    r"""Scaled dot-product attention with an additive bias on the scores.

    .. math:: \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + B\right) V

    Parameters
    ----------
    q : array_like, shape (..., L_q, d_k)
    k : array_like, shape (..., L_k, d_k)
    v : array_like, shape (..., L_k, d_v)
    bias : array_like, broadcastable to (..., L_q, L_k)
        E.g. :func:`alibi_bias` for heads ``(H, L_q, L_k)`` with q of shape ``(B, H, L_q, d_k)``.
    mask : array_like of bool, optional
        Broadcastable to (..., L_q, L_k); True = may attend.

    Returns
    -------
    output : numpy.ndarray, shape (..., L_q, d_v)
    weights : numpy.ndarray, shape (..., L_q, L_k)
    """
    q, k, v, qk_shape, _ = _check_attention_inputs(q, k, v, None)
    bias = as_float_array(bias, "bias")
    try:
        scores_shape = np.broadcast_shapes(qk_shape, bias.shape)
    except ValueError:
        raise ValueError(f"bias of shape {bias.shape} does not broadcast to the scores' shape "
                         f"{qk_shape}") from None
    if mask is not None:
        mask = check_mask(mask, scores_shape)
    scores = (q @ np.swapaxes(k, -1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    scores = scores + bias.astype(scores.dtype, copy=False)
    weights = softmax(scores, axis=-1, mask=mask)
    return weights @ v, weights
