r"""Relative positions inside attention, in PyTorch: rotary embeddings (RoPE) and ALiBi.

These are the twins of :func:`attnlib.numpy.rope` and :func:`attnlib.numpy.alibi_bias` (the tests
prove they give the same numbers). Neither adds anything to the token embeddings: RoPE rotates
the queries and keys of every head by angles proportional to their positions, so that
:math:`\mathrm{rope}(q)_m \cdot \mathrm{rope}(k)_n` depends only on :math:`m - n`; ALiBi adds
:math:`-m_h (i - j)` to the scores of head :math:`h`, a penalty growing with the distance.
Both take explicit positions, which is what a KV cache needs: the one new query of a generation
step sits at position ``past_length``, not 0.
"""
from __future__ import annotations

import math

import torch

from attnlib.checks import TorchTypeError, check_count, check_positive_count, check_real, check_torch_tensor

__all__ = ["rope", "rope_angles", "alibi_slopes", "alibi_bias"]


def rope_angles(positions: torch.Tensor, d: int, base: float = 10000.0) -> torch.Tensor:
    r"""The rotation angles :math:`p\,\theta_i`, :math:`\theta_i = \mathrm{base}^{-2i/d}`.

    Parameters
    ----------
    positions : torch.Tensor, shape (L,)
        Position of each row (integers or floats).
    d : int
        Feature size; must be even (RoPE rotates pairs of features).
    base : float

    Returns
    -------
    torch.Tensor of float64, shape (L, d/2)
    """
    check_torch_tensor(positions, "positions")
    d = check_count(d, "d")
    if d % 2:
        raise ValueError(f"RoPE rotates pairs of features, so the last axis must have even length; got d={d}")
    check_real(base, "base", positive=True)
    if positions.dim() != 1:
        raise ValueError(f"positions must have shape (L,), got {tuple(positions.shape)}")
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64, device=positions.device) / d)
    return positions.to(torch.float64)[:, None] * theta


def rope(x: torch.Tensor, positions=None, base: float = 10000.0) -> torch.Tensor:
    r"""Rotary position embedding (Su et al., 2021): rotate feature pairs by position-dependent angles.

    Pair :math:`(x_{2i}, x_{2i+1})` of the vector at position :math:`p` is rotated by the angle
    :math:`p\,\theta_i`, as in :func:`attnlib.numpy.rope`.

    Parameters
    ----------
    x : torch.Tensor, shape (..., L, d)
        Queries or keys (e.g. ``(B, H, L, d_head)``); ``d`` must be even.
    positions : torch.Tensor or int, optional
        Positions of the ``L`` rows, shape (L,); an int ``p0`` means ``p0, ..., p0 + L - 1``
        (the offset of a KV cache). Defaults to ``0, ..., L - 1``.
    base : float

    Returns
    -------
    torch.Tensor, shape (..., L, d)
        Same dtype and device as ``x``.
    """
    check_torch_tensor(x, "x", floating=True)
    if x.dim() < 2:
        raise ValueError(f"x must be a floating-point tensor of shape (..., L, d), got shape {tuple(x.shape)}")
    L, d = x.shape[-2], x.shape[-1]
    if positions is None or (isinstance(positions, int) and not isinstance(positions, bool)):
        positions = torch.arange(L, device=x.device) + (positions or 0)
    try:
        positions = torch.as_tensor(positions, device=x.device)
    except (TypeError, ValueError, RuntimeError):
        raise TorchTypeError(f"positions must be an int (the first position) or a tensor of shape "
                             f"({L},), got {type(positions).__name__}") from None
    if positions.is_complex() or positions.dtype == torch.bool:
        raise ValueError(f"positions must hold integer or real positions, got dtype {positions.dtype}")
    if tuple(positions.shape) != (L,):
        raise ValueError(f"positions must have shape ({L},) for x of shape {tuple(x.shape)}, "
                         f"got {tuple(positions.shape)}")
    angles = rope_angles(positions, d, base)                 # (L, d/2), float64
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    # Interleave the rotated pairs back: (..., L, d/2, 2) -> (..., L, d).
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


def alibi_slopes(num_heads: int, device=None, dtype=torch.float32) -> torch.Tensor:
    r"""The per-head slopes of ALiBi (Press et al., 2022), as :func:`attnlib.numpy.alibi_slopes`.

    For :math:`n` heads, :math:`n` a power of two, the geometric sequence
    :math:`2^{-8/n}, 2^{-16/n}, \dots, 2^{-8}`; otherwise the paper's interleaving.

    Parameters
    ----------
    num_heads : int
    device, dtype : optional

    Returns
    -------
    torch.Tensor, shape (num_heads,)
    """
    n = check_positive_count(num_heads, "num_heads")

    def geometric(m):
        return 2.0 ** (-8.0 * torch.arange(1, m + 1, dtype=torch.float64) / m)

    m = 2 ** int(math.floor(math.log2(n)))
    slopes = geometric(n) if m == n else torch.cat([geometric(m), geometric(2 * m)[0::2][: n - m]])
    return slopes.to(device=device, dtype=dtype)


def alibi_bias(num_heads: int, L_q: int, L_k: int | None = None, q_offset: int = 0, device=None,
               dtype=torch.float32) -> torch.Tensor:
    r"""ALiBi's additive score biases :math:`b_h[i, j] = -m_h\,\lvert (q_0 + i) - j\rvert`.

    With ``q_offset=0`` this is :func:`attnlib.numpy.alibi_bias`. In a causal model only keys
    :math:`j \le q_0 + i` are used, where it is the paper's :math:`-m_h\,(q_0 + i - j)`. With a KV
    cache the new queries sit after the cached keys: pass ``q_offset = L_k - L_q``.

    Parameters
    ----------
    num_heads : int
    L_q : int
        Number of queries.
    L_k : int, optional
        Number of keys; defaults to ``L_q``.
    q_offset : int
        Position of the first query (keys are at ``0, ..., L_k - 1``).
    device, dtype : optional

    Returns
    -------
    torch.Tensor, shape (num_heads, L_q, L_k)
        Add it to the scaled scores of each head before the softmax (the ``bias`` argument of
        :func:`attnlib.torch.scaled_dot_product_attention`).
    """
    L_k = L_q if L_k is None else L_k
    L_q, L_k = check_positive_count(L_q, "L_q"), check_positive_count(L_k, "L_k")
    q_offset = check_count(q_offset, "q_offset")
    qpos = torch.arange(L_q, device=device) + q_offset
    distance = (qpos[:, None] - torch.arange(L_k, device=device)[None, :]).abs().to(dtype)
    return 0.0 - alibi_slopes(num_heads, device, dtype)[:, None, None] * distance
