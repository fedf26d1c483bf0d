r"""Additive (Bahdanau) attention as a module, and the masked softmax every Part II attention uses.

Bahdanau, Cho and Bengio score each encoder state :math:`h_j` against the decoder state
:math:`s` with a one-hidden-layer network,

.. math:: e_j = v^\top \tanh(W_q s + W_k h_j), \qquad
          \alpha = \mathrm{softmax}(e), \qquad c = \sum_j \alpha_j h_j,

the PyTorch twin of :func:`attnlib.numpy.additive_scores` (same formula, no bias, so the
numbers agree exactly). Padded positions get weight 0.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["masked_softmax", "attention_context", "AdditiveAttention"]


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the last axis where ``mask`` is True; masked entries get weight exactly 0.

    Parameters
    ----------
    scores : torch.Tensor, shape (..., L)
    mask : torch.BoolTensor, broadcastable to (..., L), optional
        True = may attend. A row with no True gets all-zero weights (never NaN).

    Returns
    -------
    torch.Tensor, shape (..., L)
    """
    if mask is None:
        return torch.softmax(scores, dim=-1)
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be boolean (True = may attend), got {mask.dtype}")
    filled = scores.masked_fill(~mask, float("-inf"))
    row_ok = mask.any(dim=-1, keepdim=True)
    # Fully masked rows: softmax of zeros (finite gradients), then zeroed.
    filled = torch.where(row_ok, filled, torch.zeros_like(filled))
    return torch.softmax(filled, dim=-1) * row_ok


def attention_context(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The context vector: the weighted sum of the values, ``c[b] = sum_j w[b, j] values[b, j]``.

    Parameters
    ----------
    weights : torch.Tensor, shape (B, L)
    values : torch.Tensor, shape (B, L, H)

    Returns
    -------
    torch.Tensor, shape (B, H)
    """
    if weights.shape != values.shape[:2]:
        raise ValueError(f"weights {tuple(weights.shape)} must be (B, L) for values {tuple(values.shape)}")
    return torch.bmm(weights.unsqueeze(1), values).squeeze(1)


def _check(query, keys, mask, query_size, key_size):
    if query.ndim != 2 or keys.ndim != 3 or query.shape[0] != keys.shape[0]:
        raise ValueError(f"query must be (B, H_dec) and keys (B, L, H_enc) with the same B, got "
                         f"{tuple(query.shape)} and {tuple(keys.shape)}")
    if query.shape[1] != query_size or keys.shape[2] != key_size:
        raise ValueError(f"this attention takes queries of size {query_size} and keys of size {key_size}, "
                         f"got query {tuple(query.shape)} and keys {tuple(keys.shape)}")
    if mask is not None and mask.shape != keys.shape[:2]:
        raise ValueError(f"mask {tuple(mask.shape)} must be (B, L) = {tuple(keys.shape[:2])}")


class ScoredAttention(nn.Module):
    """Base of the one-query attention modules of Part II: a subclass defines ``scores``.

    Subclasses set ``query_size`` and ``key_size`` and implement
    ``scores(query (B, H_dec), keys (B, L, H_enc)) -> (B, L)``; the masked softmax and the
    context vector are the same for every score, so they live here once.
    """

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None):
        """Attend from one decoder state to all encoder states.

        Parameters
        ----------
        query : torch.Tensor, shape (B, H_dec)
        keys : torch.Tensor, shape (B, L, H_enc)
            Encoder states, used as keys and values.
        mask : torch.BoolTensor, shape (B, L), optional
            True on real source tokens.

        Returns
        -------
        context : torch.Tensor, shape (B, H_enc)
        weights : torch.Tensor, shape (B, L)
            Rows sum to 1; 0 at masked positions.
        """
        _check(query, keys, mask, self.query_size, self.key_size)
        weights = masked_softmax(self.scores(query, keys), mask)
        return attention_context(weights, keys), weights


class AdditiveAttention(ScoredAttention):
    r"""Bahdanau's additive attention: :math:`e_j = v^\top \tanh(W_q q + W_k k_j)`.

    The interface every Part II attention module shares: ``forward(query, keys, mask) ->
    (context, weights)``; the keys are also the values.

    Parameters
    ----------
    query_size : int
        Size of the decoder state, ``H_dec``.
    key_size : int
        Size of the encoder states, ``H_enc``.
    hidden_size : int
        Width ``h`` of the scoring network.

    Attributes
    ----------
    W_q : nn.Linear
        ``H_dec -> h``, no bias (``W_q.weight.T`` is NumPy's ``W_q``).
    W_k : nn.Linear
        ``H_enc -> h``, no bias.
    v : nn.Linear
        ``h -> 1``, no bias (``v.weight[0]`` is NumPy's ``v``).
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int):
        super().__init__()
        self.query_size, self.key_size = query_size, key_size
        self.W_q = nn.Linear(query_size, hidden_size, bias=False)
        self.W_k = nn.Linear(key_size, hidden_size, bias=False)
        self.v = nn.Linear(hidden_size, 1, bias=False)

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores: query (B, H_dec), keys (B, L, H_enc) -> (B, L)."""
        return self.v(torch.tanh(self.W_q(query).unsqueeze(1) + self.W_k(keys))).squeeze(-1)

