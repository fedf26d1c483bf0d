r"""The one-query attention scores of Part II as modules: additive (Bahdanau) and multiplicative (Luong).

Bahdanau, Cho and Bengio score each encoder state :math:`h_j` against the decoder state
:math:`s` with a one-hidden-layer network,

.. math:: e_j = v^\top \tanh(W_q s + W_k h_j), \qquad
          \alpha = \mathrm{softmax}(e), \qquad c = \sum_j \alpha_j h_j,

the PyTorch twin of :func:`attnlib.numpy.additive_scores` (same formula, no bias, so the
numbers agree exactly). Padded positions get weight 0.

Luong, Pham and Manning score the decoder state :math:`s` against each encoder state
:math:`h_j` with a product,

.. math:: \mathrm{dot}: e_j = s^\top h_j, \qquad \mathrm{general}: e_j = s^\top W h_j,

then :math:`\alpha = \mathrm{softmax}(e)` over the real source tokens and
:math:`c = \sum_j \alpha_j h_j`. (Their third score, *concat*, is the additive network of
:class:`attnlib.torch.AdditiveAttention`.)
"""
from __future__ import annotations

import math

import torch
from torch import nn

from attnlib.checks import check_positive_count, check_torch_bool_mask, check_torch_inputs
from attnlib.shapes import check_single_query
from attnlib.torch.attention.masks import masked_softmax

__all__ = ["attention_context", "ScoredAttention", "AdditiveAttention", "MultiplicativeAttention"]


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
    check_torch_inputs({"weights": weights, "values": values})
    if weights.dim() != 2 or values.dim() != 3 or weights.shape != values.shape[:2]:
        raise ValueError(f"weights {tuple(weights.shape)} must be (B, L) for values {tuple(values.shape)}")
    return torch.bmm(weights.unsqueeze(1), values).squeeze(1)


def _sizes(query_size, key_size) -> tuple[int, int]:
    return check_positive_count(query_size, "query_size"), check_positive_count(key_size, "key_size")


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
        check_torch_inputs({"query": query, "keys": keys}, module=self)
        if mask is not None:
            check_torch_bool_mask(mask, "mask", keys.device)
        check_single_query(query, keys, mask, self.query_size, self.key_size)
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
        query_size, key_size = _sizes(query_size, key_size)
        hidden_size = check_positive_count(hidden_size, "hidden_size")
        self.query_size, self.key_size = query_size, key_size
        self.W_q = nn.Linear(query_size, hidden_size, bias=False)
        self.W_k = nn.Linear(key_size, hidden_size, bias=False)
        self.v = nn.Linear(hidden_size, 1, bias=False)

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores: query (B, H_dec), keys (B, L, H_enc) -> (B, L)."""
        return self.v(torch.tanh(self.W_q(query).unsqueeze(1) + self.W_k(keys))).squeeze(-1)


class MultiplicativeAttention(ScoredAttention):
    """Luong's *dot* or *general* attention, with the interface of :class:`~attnlib.torch.AdditiveAttention`.

    Parameters
    ----------
    query_size : int
        Decoder state size ``H_dec``.
    key_size : int
        Encoder state size ``H_enc``; must equal ``query_size`` for ``"dot"``.
    score : str
        ``"dot"`` or ``"general"``.
    scaled : bool
        Divide the scores by ``sqrt(H_dec)`` (as the Transformer later does; Luong did not).

    Attributes
    ----------
    W : nn.Linear or None
        For ``"general"``: ``H_enc -> H_dec``, no bias, so ``e_j = s . (W h_j)``.
    """

    def __init__(self, query_size: int, key_size: int, score: str = "general", scaled: bool = False):
        super().__init__()
        query_size, key_size = _sizes(query_size, key_size)
        if score not in ("dot", "general"):
            raise ValueError(f"score must be 'dot' or 'general', got {score!r}")
        if score == "dot" and query_size != key_size:
            raise ValueError(f"dot scores need query_size == key_size, got {query_size} and {key_size}; "
                             "use score='general'")
        self.query_size, self.key_size, self.score, self.scaled = query_size, key_size, score, scaled
        self.W = nn.Linear(key_size, query_size, bias=False) if score == "general" else None

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores: query (B, H_dec), keys (B, L, H_enc) -> (B, L)."""
        k = keys if self.W is None else self.W(keys)
        e = torch.bmm(k, query.unsqueeze(-1)).squeeze(-1)
        return e / math.sqrt(self.query_size) if self.scaled else e

