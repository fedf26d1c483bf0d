r"""Multiplicative (Luong) attention: *dot* and *general* scores, as a module.

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

from attnlib.torch.additive import ScoredAttention

__all__ = ["MultiplicativeAttention"]


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

