r"""Luong's local attention: look only at a window of :math:`2D + 1` source positions around :math:`p_t`.

Global attention weighs every source position at every step. Local attention first picks a
centre :math:`p_t` and attends only to the window :math:`[p_t - D, p_t + D]` (positions counted
from 0):

- **local-m** (monotonic) assumes the source and target advance together: :math:`p_t = t`, and
  the weights are a softmax of the scores over the window's real positions;
- **local-p** (predictive) lets the decoder state choose the centre,
  :math:`p_t = S \cdot \mathrm{sigmoid}(v_p^\top \tanh(W_p s_t)) \in [0, S]` with :math:`S` the
  source length, and, as in Luong et al. (2015, eq. 10), multiplies the softmax over the
  window by a Gaussian centred there,

  .. math:: a_t(j) = \mathrm{align}(s_t, h_j)\, \exp\!\Big(-\frac{(j - p_t)^2}{2\sigma^2}\Big),
            \qquad \sigma = D / 2,

  **without renormalising** (the weights sum to less than 1), which is what lets the gradient
  move :math:`p_t`.

The scores inside the window are Luong's *general* (or *dot*) scores,
:class:`~attnlib.torch.MultiplicativeAttention`. Positions outside the window and padding get
weight exactly 0. :class:`LocalAttentionDecoder` is the input-feeding decoder that tells the
attention which step it is at.
"""
from __future__ import annotations

import torch
from torch import nn

from attnlib.checks import check_count, check_real, check_torch_bool_mask, check_torch_inputs, check_torch_tensor
from attnlib.shapes import check_single_query
from attnlib.torch.attention.masks import masked_softmax
from attnlib.torch.attention.scores import MultiplicativeAttention, attention_context
from attnlib.torch.seq2seq.luong import InputFeedingDecoder

__all__ = ["local_window_mask", "gaussian_window", "LocalMonotonicAttention",
           "LocalPredictiveAttention", "LocalAttentionDecoder"]


def local_window_mask(centre: torch.Tensor, length: int, D: int) -> torch.Tensor:
    """True at the positions ``j`` in ``[0, length)`` with ``|j - centre| <= D``.

    Parameters
    ----------
    centre : torch.Tensor, shape (B,)
        :math:`p_t` per example (integer or real).
    length : int
        Number of source positions ``L``.
    D : int
        Half-width of the window.

    Returns
    -------
    torch.BoolTensor, shape (B, L)
    """
    check_torch_tensor(centre, "centre")
    length, D = check_count(length, "length"), check_real(D, "D", non_negative=True)
    j = torch.arange(length, device=centre.device, dtype=torch.float64)
    return (j[None, :] - centre.to(torch.float64)[:, None]).abs() <= D


def gaussian_window(centre: torch.Tensor, length: int, D: float) -> torch.Tensor:
    r"""The factor :math:`\exp(-(j - p_t)^2 / (2 (D/2)^2))` for ``j`` in ``[0, length)``.

    Parameters
    ----------
    centre : torch.Tensor, shape (B,)
        :math:`p_t` (differentiable).
    length : int
    D : float
        Half-width of the window; the Gaussian's standard deviation is ``D / 2``.

    Returns
    -------
    torch.Tensor, shape (B, L)
        In (0, 1]; 1 at ``j = p_t``; the dtype of ``centre``.
    """
    check_torch_tensor(centre, "centre", floating=True)
    length, D = check_count(length, "length"), check_real(D, "D", positive=True)
    j = torch.arange(length, device=centre.device, dtype=centre.dtype)
    sigma = D / 2.0
    return torch.exp(-(j[None, :] - centre[:, None]) ** 2 / (2.0 * sigma ** 2))


class LocalMonotonicAttention(nn.Module):
    """Local-m: a softmax of *general* (or *dot*) scores over the window ``[t - D, t + D]``.

    Parameters
    ----------
    query_size : int
    key_size : int
    window : int
        ``D``: the window covers ``2 D + 1`` positions.
    score : str
        ``"general"`` or ``"dot"``.

    Attributes
    ----------
    scorer : MultiplicativeAttention
        Gives the scores.
    """

    def __init__(self, query_size: int, key_size: int, window: int, score: str = "general"):
        super().__init__()
        self.query_size, self.key_size, self.window = query_size, key_size, check_count(window, "window")
        self.scorer = MultiplicativeAttention(query_size, key_size, score)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None,
                step: int | torch.Tensor = 0):
        """Attend within the window around ``p_t = step``.

        Parameters
        ----------
        query : torch.Tensor, shape (B, H_dec)
        keys : torch.Tensor, shape (B, L, H_enc)
        mask : torch.BoolTensor, shape (B, L), optional
            True on real source tokens.
        step : int or torch.Tensor of shape (B,)
            The output position ``t`` (from 0).

        Returns
        -------
        context : torch.Tensor, shape (B, H_enc)
        weights : torch.Tensor, shape (B, L)
            0 outside the window and on padding; a row whose window holds no real token is all 0.
        """
        check_torch_inputs({"query": query, "keys": keys}, module=self)
        if mask is not None:
            check_torch_bool_mask(mask, "mask", keys.device)
        check_single_query(query, keys, mask, self.query_size, self.key_size)
        B, L = keys.shape[:2]
        centre = torch.as_tensor(step, device=keys.device).expand(B)
        allowed = local_window_mask(centre, L, self.window)
        if mask is not None:
            allowed = allowed & mask
        weights = masked_softmax(self.scorer.scores(query, keys), allowed)
        return attention_context(weights, keys), weights


class LocalPredictiveAttention(nn.Module):
    r"""Local-p: predicted centre :math:`p_t = S\,\sigma(v_p^\top \tanh(W_p s_t))`, truncated Gaussian window.

    Parameters
    ----------
    query_size : int
    key_size : int
    window : int
        ``D``: the window is ``|j - p_t| <= D`` and the Gaussian's standard deviation ``D / 2``.
    score : str
        ``"general"`` or ``"dot"``.
    hidden_size : int, optional
        Width of the position network (default ``query_size``).

    Attributes
    ----------
    scorer : MultiplicativeAttention
    W_p : nn.Linear
        ``H_dec -> hidden``, no bias.
    v_p : nn.Linear
        ``hidden -> 1``, no bias.
    """

    def __init__(self, query_size: int, key_size: int, window: int, score: str = "general",
                 hidden_size: int | None = None):
        super().__init__()
        self.query_size, self.key_size, self.window = query_size, key_size, check_count(window, "window")
        self.scorer = MultiplicativeAttention(query_size, key_size, score)
        self.W_p = nn.Linear(query_size, hidden_size or query_size, bias=False)
        self.v_p = nn.Linear(hidden_size or query_size, 1, bias=False)

    def position(self, query: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The predicted centre :math:`p_t = S\\,\\sigma(v_p^\\top \\tanh(W_p s_t))`.

        Parameters
        ----------
        query : torch.Tensor, shape (B, H_dec)
        lengths : torch.Tensor, shape (B,)
            Source lengths ``S``.

        Returns
        -------
        torch.Tensor, shape (B,)
            In ``[0, S]``.
        """
        return lengths.to(query.dtype) * torch.sigmoid(self.v_p(torch.tanh(self.W_p(query)))).squeeze(-1)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None,
                step: int | torch.Tensor = 0):
        """Attend within the predicted window (``step`` is accepted and ignored).

        Parameters
        ----------
        query : torch.Tensor, shape (B, H_dec)
        keys : torch.Tensor, shape (B, L, H_enc)
        mask : torch.BoolTensor, shape (B, L), optional
            True on real source tokens; ``S`` is its row sum (``L`` without a mask).
        step : int, ignored

        Returns
        -------
        context : torch.Tensor, shape (B, H_enc)
        weights : torch.Tensor, shape (B, L)
            Softmax over the window's real positions times the Gaussian factor (not renormalised:
            rows sum to at most 1); 0 outside the window and on padding.
        """
        check_torch_inputs({"query": query, "keys": keys}, module=self)
        if mask is not None:
            check_torch_bool_mask(mask, "mask", keys.device)
        check_single_query(query, keys, mask, self.query_size, self.key_size)
        B, L = keys.shape[:2]
        lengths = mask.sum(-1) if mask is not None else torch.full((B,), L, device=keys.device)
        p = self.position(query, lengths)
        allowed = local_window_mask(p.detach(), L, self.window)
        if mask is not None:
            allowed = allowed & mask
        align = masked_softmax(self.scorer.scores(query, keys), allowed)
        weights = align * gaussian_window(p, L, self.window)
        return attention_context(weights, keys), weights


class LocalAttentionDecoder(InputFeedingDecoder):
    """The input-feeding decoder for local attention: its state also counts the steps.

    The state is ``(s, s_tilde, t)``; the attention is called as
    ``attention(s_t, enc_states, mask, step=t)`` (local-m centres its window at ``t``).

    Parameters
    ----------
    vocab_size, embed_dim, hidden_size, enc_size : int
    attention : LocalMonotonicAttention or LocalPredictiveAttention
    dropout : float
    pad_id : int
    """

    def init_state(self, enc_states, enc_final, src_mask):
        """``(s_0, zeros, 0)``."""
        s, s_tilde = super().init_state(enc_states, enc_final, src_mask)
        return s, s_tilde, 0

    def attend(self, s, enc_states, src_mask, state):
        """``attention(s, enc_states, src_mask, step=t)``."""
        return self.attention(s, enc_states, src_mask, step=state[2])

    def next_state(self, s, s_tilde, state):
        """``(s, s_tilde, t + 1)``."""
        return s, s_tilde, state[2] + 1
