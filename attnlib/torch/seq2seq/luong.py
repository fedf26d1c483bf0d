r"""Luong attention: the *concat* score and the input-feeding decoder.

Luong, Pham and Manning (2015) attend with the *current* decoder state :math:`s_t` (update first,
then attend: the order of :class:`~attnlib.torch.AttentionDecoder`) and score it against each
encoder state :math:`h_j` in one of three ways,

.. math:: \mathrm{dot}: s_t^\top h_j, \qquad \mathrm{general}: s_t^\top W_a h_j, \qquad
          \mathrm{concat}: v_a^\top \tanh(W_a [s_t; h_j]).

*dot* and *general* are :class:`~attnlib.torch.MultiplicativeAttention`; *concat* is
:class:`ConcatAttention` here. Their fourth, **location-based** function scores the positions from the
decoder state alone, :math:`a_t = \mathrm{softmax}(W_a s_t)` (their eq. 8), without looking at the
encoder states: :class:`LocationAttention`. The attentional state :math:`\tilde s_t = \tanh(W_c[s_t; c_t])`
feeds the output layer. With **input feeding** it is also fed to the next step,
:math:`s_{t+1} = \mathrm{GRU}([E y_t; \tilde s_t], s_t)`, so that the decoder knows where it has
already looked (:class:`InputFeedingDecoder`).
"""
from __future__ import annotations

import torch
from torch import nn

from attnlib.checks import check_positive_count
from attnlib.torch.attention.scores import ScoredAttention
from attnlib.torch.seq2seq.decoders import AttentionDecoder

__all__ = ["ConcatAttention", "LocationAttention", "InputFeedingDecoder"]


class ConcatAttention(ScoredAttention):
    r"""Luong's *concat* score :math:`e_j = v^\top \tanh(W [s; h_j])`, with the shared attention interface.

    One linear layer on the concatenation: :math:`W [s; h_j] = W_s s + W_h h_j` with
    :math:`W = [W_s, W_h]`, so this is Bahdanau's additive score written with one matrix.

    Parameters
    ----------
    query_size : int
        Decoder state size ``H_dec``.
    key_size : int
        Encoder state size ``H_enc``.
    hidden_size : int
        Width ``A`` of the scoring layer.

    Attributes
    ----------
    W : nn.Linear
        ``H_dec + H_enc -> A``, no bias; its input is ``[s; h_j]`` (query first).
    v : nn.Linear
        ``A -> 1``, no bias.
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int):
        super().__init__()
        self.query_size, self.key_size = query_size, key_size
        self.W = nn.Linear(query_size + key_size, hidden_size, bias=False)
        self.v = nn.Linear(hidden_size, 1, bias=False)

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores: query (B, H_dec), keys (B, L, H_enc) -> (B, L)."""
        q = query.unsqueeze(1).expand(-1, keys.shape[1], -1)          # (B, L, H_dec)
        return self.v(torch.tanh(self.W(torch.cat([q, keys], dim=-1)))).squeeze(-1)


class LocationAttention(ScoredAttention):
    r"""Luong's *location* score: :math:`a_t = \mathrm{softmax}(W_a s_t)`, scores from the state alone.

    :math:`W_a` maps the decoder state to one score per source *position* (up to ``max_length``);
    the encoder states are used only as values, never to score. For a source of length
    :math:`L \le` ``max_length`` the first :math:`L` scores are kept, padding is masked, and the
    context is :math:`c_t = \sum_j a_{tj} h_j` as for every other score (shared interface).

    Parameters
    ----------
    query_size : int
        Decoder state size ``H_dec``.
    key_size : int
        Encoder state size ``H_enc`` (the values' size; not used to score).
    max_length : int
        The longest source the layer can attend over (``W_a`` has this many rows).

    Attributes
    ----------
    W : nn.Linear
        ``H_dec -> max_length``, no bias (``W.weight`` is :math:`W_a`, shape (max_length, H_dec)).
    """

    def __init__(self, query_size: int, key_size: int, max_length: int):
        super().__init__()
        self.query_size = check_positive_count(query_size, "query_size")
        self.key_size = check_positive_count(key_size, "key_size")
        self.max_length = check_positive_count(max_length, "max_length")
        self.W = nn.Linear(self.query_size, self.max_length, bias=False)

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores ``(W_a s)[:L]``: query (B, H_dec), keys (B, L, H_enc) -> (B, L)."""
        L = keys.shape[1]
        if L > self.max_length:
            raise ValueError(f"keys have L={L} positions but this LocationAttention scores at most "
                             f"max_length={self.max_length}: build it with a larger max_length")
        return self.W(query)[:, :L]


class InputFeedingDecoder(AttentionDecoder):
    r"""Luong's decoder with input feeding: :math:`s_t = \mathrm{GRU}([E y_{t-1}; \tilde s_{t-1}], s_{t-1})`.

    The state is the pair ``(s, s_tilde)``, both (B, H_dec); :math:`\tilde s_0 = 0`. Then, as in
    :class:`~attnlib.torch.AttentionDecoder`: :math:`(c_t, \alpha_t) = \mathrm{attn}(s_t, h)`,
    :math:`\tilde s_t = \tanh(W_c [s_t; c_t])`, ``logits = W_o s~_t``.

    Parameters
    ----------
    vocab_size, embed_dim, hidden_size, enc_size : int
        As in :class:`~attnlib.torch.AttentionDecoder`.
    attention : nn.Module
        Any module with the shared interface (e.g. ``MultiplicativeAttention(H, H_enc, "general")``
        or :class:`ConcatAttention`).
    dropout : float
    pad_id : int
    """

    def cell_input_size(self) -> int:
        """``embed_dim + hidden_size``: the embedding and the previous attentional state."""
        return self.embed_dim + self.hidden_size

    def init_state(self, enc_states, enc_final, src_mask):
        """``(tanh(bridge(enc_final)), zeros)``, both (B, H_dec)."""
        s = torch.tanh(self.bridge(enc_final))
        return s, torch.zeros_like(s)

    def attend(self, s, enc_states, src_mask, state):
        """``attention(s, enc_states, src_mask)``; subclasses may use the rest of ``state``."""
        return self.attention(s, enc_states, src_mask)

    def step(self, y_prev, state, enc_states, src_mask):
        """One step with input feeding.

        Parameters
        ----------
        y_prev : torch.LongTensor, shape (B,)
        state : tuple of torch.Tensor
            ``(s_prev, s_tilde_prev)``, each (B, H_dec).
        enc_states : torch.Tensor, shape (B, L, H_enc)
        src_mask : torch.BoolTensor, shape (B, L)

        Returns
        -------
        logits : torch.Tensor, shape (B, V)
        state : tuple of torch.Tensor
            ``(s_t, s_tilde_t)``.
        weights : torch.Tensor, shape (B, L)
        """
        s_prev, s_tilde_prev = state[0], state[1]
        x = torch.cat([self.dropout(self.embed(y_prev)), s_tilde_prev], dim=-1)
        s = self.cell(x, s_prev)
        context, weights = self.attend(s, enc_states, src_mask, state)
        s_tilde = torch.tanh(self.combine(torch.cat([s, context], dim=-1)))
        return self.out(self.dropout(s_tilde)), self.next_state(s, s_tilde, state), weights

    def next_state(self, s, s_tilde, state):
        """The state passed to the next step: ``(s, s_tilde)`` here."""
        return s, s_tilde
