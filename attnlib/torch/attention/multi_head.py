r"""Multi-head attention as a PyTorch module: the twin of :func:`attnlib.numpy.multi_head_attention`.

.. math::

    \mathrm{MHA}(X_q, X_{kv}) = \big[\mathrm{head}_1, \dots, \mathrm{head}_H\big] W_O + b_O,
    \qquad \mathrm{head}_h = \mathrm{Attention}\big((X_q W_Q + b_Q)^{(h)},\,
    (X_{kv} W_K + b_K)^{(h)},\, (X_{kv} W_V + b_V)^{(h)}\big)

(Vaswani et al., 2017), where :math:`^{(h)}` takes the :math:`h`-th block of
:math:`d_\text{head} = E / H` features. The projections are ``torch.nn.Linear`` layers, which
store their matrix transposed: ``linear(x) = x @ linear.weight.T + linear.bias``, so the NumPy
twin's ``W_q`` is ``q_proj.weight.T``. The module is batch-first, its boolean masks mean
**True = may attend** (the opposite of ``torch.nn.MultiheadAttention``'s boolean masks), and it
is built on :func:`attnlib.torch.scaled_dot_product_attention`: ``need_weights=False`` takes
PyTorch's fused kernel and never materialises the (B, H, L_q, L_k) weights.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from attnlib.checks import (
    check_positive_count,
    check_probability,
    check_torch_bool_mask,
    check_torch_inputs,
    check_torch_tensor,
)
from attnlib.shapes import check_mask_shape, check_num_heads
from attnlib.torch.attention.sdpa import scaled_dot_product_attention

__all__ = ["MultiHeadAttention", "split_heads", "merge_heads"]


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Split the feature axis into heads: (..., L, E) -> (..., H, L, d_head), a view when possible.

    Head ``h`` gets the contiguous block of features ``h * d_head : (h + 1) * d_head`` with
    ``d_head = E // num_heads``: ``unflatten`` splits the last axis into (H, d_head), then
    ``transpose(-3, -2)`` moves the head axis in front of the sequence axis.

    Parameters
    ----------
    x : torch.Tensor, shape (..., L, E)
    num_heads : int
        Must divide ``E``.

    Returns
    -------
    torch.Tensor, shape (..., H, L, d_head)
        Not contiguous in memory (it is a transposed view of ``x``).

    Raises
    ------
    ValueError
        When ``x`` has fewer than 2 axes or ``E`` is not divisible by ``num_heads``.
    """
    check_torch_tensor(x, "x")
    if x.dim() < 2:
        raise ValueError(f"x must have shape (..., L, E), got shape {tuple(x.shape)}")
    H = check_num_heads(x.shape[-1], num_heads)
    return x.unflatten(-1, (H, x.shape[-1] // H)).transpose(-3, -2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """Concatenate the heads again: (..., H, L, d_head) -> (..., L, H * d_head).

    The inverse of :func:`split_heads`. The transpose makes the tensor non-contiguous, so the
    axes are merged with ``flatten`` (which copies when it must), not with ``view``.

    Parameters
    ----------
    x : torch.Tensor, shape (..., H, L, d_head)

    Returns
    -------
    torch.Tensor, shape (..., L, H * d_head)

    Raises
    ------
    ValueError
        When ``x`` has fewer than 3 axes.
    """
    check_torch_tensor(x, "x")
    if x.dim() < 3:
        raise ValueError(f"x must have shape (..., H, L, d_head), got shape {tuple(x.shape)}")
    return x.transpose(-3, -2).flatten(-2)


class MultiHeadAttention(nn.Module):
    """Batch-first multi-head attention with separate query, key, value and output projections.

    Parameters
    ----------
    embed_dim : int
        Model width E (features of queries, keys, values and output).
    num_heads : int
        Number of heads H; must divide ``embed_dim``. Each head has ``d_head = E // H`` features.
    bias : bool
        Add biases to the four projections (as ``torch.nn.MultiheadAttention``).
    dropout : float
        Dropout on the attention weights, applied in training mode only.
    device, dtype : optional
        Where and in what precision to create the parameters.

    Attributes
    ----------
    q_proj, k_proj, v_proj, out_proj : torch.nn.Linear
        ``E -> E`` projections; ``linear(x) = x @ linear.weight.T + linear.bias``.

    Raises
    ------
    ValueError
        When ``embed_dim`` is not divisible by ``num_heads`` (or either is not a positive integer).
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, dropout: float = 0.0,
                 device=None, dtype=None):
        super().__init__()
        embed_dim = check_positive_count(embed_dim, "embed_dim")
        num_heads = check_positive_count(num_heads, "num_heads")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}: "
                             f"each head needs embed_dim / num_heads features")
        check_probability(dropout, "dropout")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        self.dropout = float(dropout)
        kw = {"bias": bias, "device": device, "dtype": dtype}
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            nn.Linear(embed_dim, embed_dim, **kw) for _ in range(4))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as ``torch.nn.MultiheadAttention`` does: Xavier-uniform input projections
        (drawn for the stacked 3E x E matrix), zero biases; the output projection keeps
        ``nn.Linear``'s default weight."""
        w = torch.empty(3 * self.embed_dim, self.embed_dim, device=self.q_proj.weight.device,
                        dtype=self.q_proj.weight.dtype)
        nn.init.xavier_uniform_(w)
        with torch.no_grad():
            for proj, part in zip((self.q_proj, self.k_proj, self.v_proj), w.chunk(3)):
                proj.weight.copy_(part)
            for proj in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
                if proj.bias is not None:
                    proj.bias.zero_()

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"bias={self.q_proj.bias is not None}, dropout={self.dropout}")

    def _check_inputs(self, query, key, value) -> None:
        E = self.embed_dim
        check_torch_inputs({"query": query, "key": key, "value": value}, module=self)
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.dim() != 3 or t.shape[-1] != E:
                raise ValueError(f"{name} must have shape (B, L, embed_dim={E}), got shape "
                                 f"{tuple(t.shape)}")
        if key.shape != value.shape:
            raise ValueError(f"key and value must have the same shape (B, L_k, E), got key "
                             f"{tuple(key.shape)} and value {tuple(value.shape)}")
        if key.shape[0] != query.shape[0]:
            raise ValueError(f"query has batch size {query.shape[0]} but key and value "
                             f"{key.shape[0]} (query {tuple(query.shape)}, key {tuple(key.shape)})")

    @staticmethod
    def _head_mask(mask, target: tuple, device=None):
        """Check a mask against (B, H, L_q, L_k); give a 3-D (per-example) mask its head axis."""
        if mask is None:
            return None
        check_torch_bool_mask(mask, "mask", device)
        m = mask.unsqueeze(-3) if mask.dim() == 3 else mask  # (B, L_q or 1, L_k): every head
        try:
            check_mask_shape(m.shape, target)
        except ValueError:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not fit (B, H, L_q, L_k) = "
                             f"{target}: use (L_q, L_k), (B, 1, L_k), (B, L_q, L_k) or "
                             "(B, H, L_q, L_k)") from None
        return m

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask=None,
                need_weights: bool = True):
        """Attend from ``query`` to ``key``/``value`` in every head at once.

        Parameters
        ----------
        query : torch.Tensor, shape (B, L_q, E)
        key : torch.Tensor, shape (B, L_k, E)
        value : torch.Tensor, shape (B, L_k, E)
            Self-attention passes the same tensor three times.
        mask : torch.Tensor of bool, optional
            True = may attend. Shapes: (L_q, L_k) for every example and head (a causal mask),
            (B, 1, L_k) or (B, L_q, L_k) per example (a 3-D mask gets a head axis), or
            (B, H, L_q, L_k) per head; anything that then broadcasts to (B, H, L_q, L_k).
            A query with no allowed key gets a zero output from every head (not NaN).
        need_weights : bool
            With False, use PyTorch's fused kernel and return ``None`` for the weights.

        Returns
        -------
        output : torch.Tensor, shape (B, L_q, E)
        weights : torch.Tensor, shape (B, H, L_q, L_k), or None when ``need_weights`` is False

        Raises
        ------
        ValueError
            When an input is not (B, L, E), key and value differ, batch sizes differ, the
            mask is not boolean or does not broadcast (the message names the shapes), or an
            input's dtype or device is not the module's (the message says what to call).
        """
        self._check_inputs(query, key, value)
        H = self.num_heads
        mask = self._head_mask(mask, (query.shape[0], H, query.shape[1], key.shape[1]), query.device)
        q = split_heads(self.q_proj(query), H)  # (B, H, L_q, d_head)
        k = split_heads(self.k_proj(key), H)    # (B, H, L_k, d_head)
        v = split_heads(self.v_proj(value), H)  # (B, H, L_k, d_head)
        heads, weights = scaled_dot_product_attention(
            q, k, v, mask=mask, dropout_p=self.dropout if self.training else 0.0,
            need_weights=need_weights)
        return self.out_proj(merge_heads(heads)), weights

    @classmethod
    def from_torch(cls, m: nn.MultiheadAttention) -> "MultiHeadAttention":
        """A copy of ``torch.nn.MultiheadAttention`` ``m``: same parameters, same outputs and weights.

        ``m``'s stacked ``in_proj_weight`` (3E, E) is split into the query, key and value
        matrices (and ``in_proj_bias`` likewise); ``out_proj`` is copied. Call the copy
        batch-first and with True = may attend: ``ours(q, k, v, mask=~attn_mask)`` equals
        ``m(q, k, v, attn_mask=attn_mask, average_attn_weights=False)`` for ``m`` built with
        ``batch_first=True``. Rows with no allowed key aside: we give zero weights and an output of
        ``out_proj``'s bias; torch 2.13 on the CPU gives NaN there with ``need_weights=True``, and in
        eval mode without gradients (its fast path) also with ``need_weights=False`` (chapter 8 shows it).

        Parameters
        ----------
        m : torch.nn.MultiheadAttention
            Without ``kdim``/``vdim`` different from ``embed_dim`` and without ``add_bias_kv``.

        Returns
        -------
        MultiHeadAttention
            On ``m``'s device and dtype, in ``m``'s training mode.

        Raises
        ------
        ValueError
            For a module that is not ``nn.MultiheadAttention`` or uses features this class lacks.
        """
        if not isinstance(m, nn.MultiheadAttention):
            raise ValueError(f"expected torch.nn.MultiheadAttention, got {type(m).__name__}")
        if not m._qkv_same_embed_dim:
            raise ValueError(f"kdim={m.kdim} and vdim={m.vdim} must equal embed_dim={m.embed_dim}")
        if m.bias_k is not None or m.add_zero_attn:
            raise ValueError("add_bias_kv and add_zero_attn are not supported")
        w = m.in_proj_weight
        ours = cls(m.embed_dim, m.num_heads, bias=m.in_proj_bias is not None, dropout=m.dropout,
                   device=w.device, dtype=w.dtype)
        with torch.no_grad():
            projs = (ours.q_proj, ours.k_proj, ours.v_proj)
            for proj, part in zip(projs, w.chunk(3)):
                proj.weight.copy_(part)
            if m.in_proj_bias is not None:
                for proj, part in zip(projs, m.in_proj_bias.chunk(3)):
                    proj.bias.copy_(part)
            ours.out_proj.weight.copy_(m.out_proj.weight)
            if ours.out_proj.bias is not None:
                ours.out_proj.bias.copy_(m.out_proj.bias)
        return ours.train(m.training)

    @classmethod
    def from_numpy_weights(cls, W_q, W_k, W_v, W_o, num_heads: int, dtype=torch.float64,
                           device=None) -> "MultiHeadAttention":
        """A bias-free module computing :func:`attnlib.numpy.multi_head_attention` with these weights.

        Parameters
        ----------
        W_q, W_k, W_v, W_o : array_like, shape (E, E)
            Projections in the NumPy convention ``x @ W`` (stored here transposed).
        num_heads : int
        dtype : torch.dtype
        device : torch.device, optional

        Returns
        -------
        MultiHeadAttention
        """
        Ws = [np.asarray(W) for W in (W_q, W_k, W_v, W_o)]
        E = Ws[0].shape[-1] if Ws[0].ndim == 2 else -1
        for name, W in zip(("W_q", "W_k", "W_v", "W_o"), Ws):
            if W.shape != (E, E):
                raise ValueError(f"{name} must have shape (E, E) = {(E, E)}, got shape {W.shape}")
        ours = cls(E, num_heads, bias=False, device=device, dtype=dtype)
        with torch.no_grad():
            for proj, W in zip((ours.q_proj, ours.k_proj, ours.v_proj, ours.out_proj), Ws):
                proj.weight.copy_(torch.as_tensor(W.T, dtype=dtype))
        return ours

    def to_numpy_weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(W_q, W_k, W_v, W_o)`` as NumPy arrays for :func:`attnlib.numpy.multi_head_attention`.

        Each is the transposed ``weight`` of a projection, so ``x @ W_q`` equals ``q_proj(x)``.

        Returns
        -------
        tuple of 4 numpy.ndarray, each shape (E, E)

        Raises
        ------
        ValueError
            When the module has biases, which the NumPy function does not take.
        """
        if self.q_proj.bias is not None:
            raise ValueError("attnlib.numpy.multi_head_attention has no biases: build the module "
                             "with bias=False to compare it with the NumPy twin")
        return tuple(p.weight.detach().cpu().numpy().T.copy()
                     for p in (self.q_proj, self.k_proj, self.v_proj, self.out_proj))
