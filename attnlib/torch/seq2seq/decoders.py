r"""GRU decoders with and without attention, and the :class:`Seq2Seq` wrapper around an encoder.

Every decoder here speaks one small protocol, which :class:`Seq2Seq` relies on:

- ``init_state(enc_states, enc_final, src_mask) -> state``: the decoder's state before the
  first token (any object; here a tensor of shape (B, H));
- ``step(y_prev, state, enc_states, src_mask) -> (logits, state, weights)``: one token, with
  ``y_prev`` (B,) the previous token, ``logits`` (B, V) and ``weights`` (B, L) the attention
  weights of this step, or ``None`` for a decoder without attention;
- ``forward(tgt_in, enc_states, enc_final, src_mask) -> (logits (B, T, V), weights (B, T, L) or
  None)``: teacher forcing over a whole target (by default, :meth:`Decoder.forward` loops ``step``).

:class:`GRUDecoder` is the encoder-decoder of Sutskever et al. and Cho et al.: the source
reaches it only through the encoder's final state, a fixed-length vector. :class:`AttentionDecoder`
looks at all encoder states at every step through a pluggable ``attention`` module (for example
:class:`~attnlib.torch.AdditiveAttention` or :class:`~attnlib.torch.MultiplicativeAttention`).
Its step, with :math:`s_t` the GRU state and :math:`h_j` the encoder states, is

.. math:: s_t = \mathrm{GRU}(E y_{t-1}, s_{t-1}), \quad (c_t, \alpha_t) = \mathrm{attn}(s_t, h, m),
          \quad \tilde s_t = \tanh(W_c [s_t; c_t]), \quad \mathrm{logits}_t = W_o \tilde s_t,

the "attentional hidden state" of Luong et al. without input feeding.

**Extension points** (for the Bahdanau and Luong chapters): subclass :class:`AttentionDecoder`
and override

- :meth:`AttentionDecoder.cell_input_size` to widen the GRU cell's input, and
- :meth:`AttentionDecoder.step` (and :meth:`AttentionDecoder.init_state` if the state grows).

Bahdanau's form attends *before* the update with the previous state and feeds the context into
the cell, :math:`c_t = \mathrm{attn}(s_{t-1}, h)`, :math:`s_t = f(s_{t-1}, [E y_{t-1}; c_t])`
(``cell_input_size = embed_dim + enc_size``). Luong's *input feeding* carries
:math:`\tilde s_{t-1}` in the state, ``state = (s, s_tilde)``, and feeds
:math:`[E y_{t-1}; \tilde s_{t-1}]` to the cell (``cell_input_size = embed_dim + hidden_size``).
:meth:`Decoder.forward` and :class:`Seq2Seq` work unchanged with any such state.
"""
from __future__ import annotations

import torch
from torch import nn

from attnlib.checks import (
    check_positive_count,
    check_probability,
    check_torch_lengths,
    check_torch_tensor,
    check_torch_token_ids,
)
from attnlib.torch.attention.masks import padding_mask
from attnlib.torch.decoding.greedy import greedy_decode

__all__ = ["Decoder", "GRUDecoder", "AttentionDecoder", "Seq2Seq"]


def _check_sizes(dropout, **sizes) -> None:
    for name, n in sizes.items():
        check_positive_count(n, name)
    check_probability(dropout, "dropout")


def _check_targets(decoder: nn.Module, tgt_in, batch: int | None = None) -> None:
    """``tgt_in`` (B, T), T >= 1, ids of the decoder's embedding (when it has one)."""
    embed = getattr(decoder, "embed", None)
    if isinstance(embed, nn.Embedding):
        check_torch_token_ids(tgt_in, embed.num_embeddings, "tgt_in", module=decoder, ndim=2, dims="(B, T)")
    else:
        check_torch_tensor(tgt_in, "tgt_in")
    if tgt_in.dim() != 2 or tgt_in.shape[1] == 0 or (batch is not None and tgt_in.shape[0] != batch):
        want = "(B, T) with T >= 1" + (f" and B={batch}" if batch is not None else "")
        raise ValueError(f"tgt_in must be {want} (<bos> then the target), got shape {tuple(tgt_in.shape)}")


class Decoder(nn.Module):
    """Base class of the decoders: teacher forcing by looping :meth:`step` over the target.

    Subclasses define ``init_state`` and ``step`` (see the module docstring).
    """

    def init_state(self, enc_states, enc_final, src_mask):  # pragma: no cover - abstract
        """The state before the first target token."""
        raise NotImplementedError

    def step(self, y_prev, state, enc_states, src_mask):  # pragma: no cover - abstract
        """One decoding step: ``(logits (B, V), new_state, weights (B, L) or None)``."""
        raise NotImplementedError

    def forward(self, tgt_in: torch.Tensor, enc_states: torch.Tensor, enc_final: torch.Tensor,
                src_mask: torch.Tensor):
        """Teacher-forced decoding of a whole target.

        Parameters
        ----------
        tgt_in : torch.LongTensor, shape (B, T)
            ``<bos>`` followed by the target tokens.
        enc_states : torch.Tensor, shape (B, L, H_enc)
        enc_final : torch.Tensor, shape (B, H_enc)
        src_mask : torch.BoolTensor, shape (B, L)
            True on real source tokens.

        Returns
        -------
        logits : torch.Tensor, shape (B, T, V)
        weights : torch.Tensor, shape (B, T, L), or None for a decoder without attention
        """
        _check_targets(self, tgt_in, getattr(enc_states, "shape", (None,))[0])
        state = self.init_state(enc_states, enc_final, src_mask)
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            out, state, w = self.step(tgt_in[:, t], state, enc_states, src_mask)
            logits.append(out)
            weights.append(w)
        stacked = None if weights[0] is None else torch.stack(weights, dim=1)
        return torch.stack(logits, dim=1), stacked


class GRUDecoder(Decoder):
    """A GRU decoder without attention: the source reaches it only through ``enc_final``.

    The initial state is ``tanh(W_b enc_final + b)`` (a learned bridge, so the encoder and the
    decoder may have different sizes); then each step reads the previous token only.

    Parameters
    ----------
    vocab_size : int
        Target vocabulary size ``V``.
    embed_dim : int
    hidden_size : int
    enc_size : int
        Size of the encoder's final state (``encoder.output_size``).
    dropout : float
        On the embeddings and before the output layer.
    pad_id : int
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, enc_size: int,
                 dropout: float = 0.0, pad_id: int = 0):
        super().__init__()
        _check_sizes(dropout, vocab_size=vocab_size, embed_dim=embed_dim, hidden_size=hidden_size,
                     enc_size=enc_size)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.bridge = nn.Linear(enc_size, hidden_size)
        self.rnn = nn.GRU(embed_dim, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, vocab_size)

    def init_state(self, enc_states, enc_final, src_mask):
        """``tanh(bridge(enc_final))``, shape (B, H)."""
        return torch.tanh(self.bridge(enc_final))

    def step(self, y_prev, state, enc_states, src_mask):
        """One step: ``y_prev`` (B,), ``state`` (B, H) -> ``(logits (B, V), state (B, H), None)``."""
        out, h = self.rnn(self.dropout(self.embed(y_prev)).unsqueeze(1), state.unsqueeze(0))
        return self.out(self.dropout(out[:, 0])), h[0], None

    def forward(self, tgt_in, enc_states, enc_final, src_mask):
        """Teacher forcing in one call of the GRU (same numbers as looping :meth:`step`).

        Returns ``(logits (B, T, V), None)``.
        """
        _check_targets(self, tgt_in, getattr(enc_final, "shape", (None,))[0])
        h0 = self.init_state(enc_states, enc_final, src_mask).unsqueeze(0)
        out, _ = self.rnn(self.dropout(self.embed(tgt_in)), h0)
        return self.out(self.dropout(out)), None


class AttentionDecoder(Decoder):
    """A GRU decoder that attends over all encoder states at every step.

    Parameters
    ----------
    vocab_size : int
    embed_dim : int
    hidden_size : int
        Decoder state size ``H_dec``; the attention module's query size.
    enc_size : int
        Encoder state size ``H_enc``; the attention module's key size.
    attention : nn.Module
        ``attention(query (B, H_dec), keys (B, L, H_enc), mask (B, L)) -> (context (B, H_enc),
        weights (B, L))``, e.g. ``AdditiveAttention(hidden_size, enc_size, hidden_size)``.
    dropout : float
    pad_id : int

    Attributes
    ----------
    cell : nn.GRUCell
        Input size :meth:`cell_input_size` (the embedding size here).
    combine : nn.Linear
        ``[s_t; c_t] -> s~_t``, ``H_dec + H_enc -> H_dec``.
    out : nn.Linear
        ``s~_t -> logits``.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, enc_size: int,
                 attention: nn.Module, dropout: float = 0.0, pad_id: int = 0):
        super().__init__()
        _check_sizes(dropout, vocab_size=vocab_size, embed_dim=embed_dim, hidden_size=hidden_size,
                     enc_size=enc_size)
        if not isinstance(attention, nn.Module):
            raise TypeError(f"attention must be an nn.Module, e.g. AdditiveAttention(hidden_size, enc_size, "
                            f"hidden_size), got {type(attention).__name__}")
        self.embed_dim, self.hidden_size, self.enc_size = embed_dim, hidden_size, enc_size
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.bridge = nn.Linear(enc_size, hidden_size)
        self.cell = nn.GRUCell(self.cell_input_size(), hidden_size)
        self.attention = attention
        self.combine = nn.Linear(hidden_size + enc_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, vocab_size)

    def cell_input_size(self) -> int:
        """Input size of the GRU cell: ``embed_dim`` here (extension point: override to widen it)."""
        return self.embed_dim

    def init_state(self, enc_states, enc_final, src_mask):
        """``tanh(bridge(enc_final))``, shape (B, H_dec)."""
        return torch.tanh(self.bridge(enc_final))

    def step(self, y_prev, state, enc_states, src_mask):
        """One step (Luong's order: update, then attend with the new state).

        Parameters
        ----------
        y_prev : torch.LongTensor, shape (B,)
        state : torch.Tensor, shape (B, H_dec)
        enc_states : torch.Tensor, shape (B, L, H_enc)
        src_mask : torch.BoolTensor, shape (B, L)

        Returns
        -------
        logits : torch.Tensor, shape (B, V)
        state : torch.Tensor, shape (B, H_dec)
        weights : torch.Tensor, shape (B, L)
        """
        s = self.cell(self.dropout(self.embed(y_prev)), state)
        context, weights = self.attention(s, enc_states, src_mask)
        s_tilde = torch.tanh(self.combine(torch.cat([s, context], dim=-1)))
        return self.out(self.dropout(s_tilde)), s, weights


class Seq2Seq(nn.Module):
    """An encoder and a decoder: teacher-forced training and greedy decoding.

    Parameters
    ----------
    encoder : nn.Module
        ``encoder(src (B, L), lengths (B,)) -> (states (B, L, H_enc), final (B, H_enc))``,
        e.g. :class:`~attnlib.torch.GRUEncoder`.
    decoder : Decoder
        Any decoder following the protocol of this module.
    bos_id, eos_id, pad_id : int
        Target specials (1, 2, 0 in :mod:`attnlib.data.translation`).

    Example
    -------
    ::

        enc = GRUEncoder(len(task.source_vocab), 32, 64)
        dec = AttentionDecoder(len(task.target_vocab), 32, 64, enc.output_size,
                               AdditiveAttention(64, enc.output_size, 64))
        model = Seq2Seq(enc, dec)
        logits = model(batch.src, batch.src_lengths, batch.tgt_in)          # (B, T, V)
        tokens, weights = model.greedy(batch.src, batch.src_lengths, 12)   # (B, T), (B, T, L)
    """

    def __init__(self, encoder: nn.Module, decoder: Decoder, bos_id: int = 1, eos_id: int = 2,
                 pad_id: int = 0):
        super().__init__()
        for name, m in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(m, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(m).__name__}")
        self.encoder, self.decoder = encoder, decoder
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id

    def _check_source(self, src, src_lengths) -> None:
        """Integer (B, L) ids (in the encoder's vocabulary, when it has an embedding) and lengths (B,)."""
        embed = getattr(self.encoder, "embed", None)
        if isinstance(embed, nn.Embedding):
            check_torch_token_ids(src, embed.num_embeddings, "src", module=self.encoder, ndim=2, dims="(B, L)")
        else:
            check_torch_tensor(src, "src")
            if src.dim() != 2:
                raise ValueError(f"src must have shape (B, L), got shape {tuple(src.shape)}")
        check_torch_lengths(src_lengths, "src_lengths", batch=src.shape[0])

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor):
        """``(enc_states (B, L, H_enc), enc_final (B, H_enc), src_mask (B, L))``."""
        self._check_source(src, src_lengths)
        states, final = self.encoder(src, src_lengths)
        mask = padding_mask(src_lengths.to(src.device), src.shape[1])
        return states, final, mask

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor,
                need_weights: bool = False):
        """Teacher-forced logits.

        Parameters
        ----------
        src : torch.LongTensor, shape (B, L)
        src_lengths : torch.LongTensor, shape (B,)
        tgt_in : torch.LongTensor, shape (B, T)
            ``<bos>`` + target.
        need_weights : bool
            Also return the attention weights (B, T, L) (None without attention).

        Returns
        -------
        torch.Tensor, shape (B, T, V)
            (and the weights when ``need_weights``).
        """
        check_torch_tensor(src, "src")
        _check_targets(self.decoder, tgt_in, src.shape[0] if src.dim() else None)
        states, final, mask = self.encode(src, src_lengths)
        logits, weights = self.decoder(tgt_in, states, final, mask)
        return (logits, weights) if need_weights else logits

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int | None = None):
        """Greedy decoding: at each step feed back the most likely token.

        Parameters
        ----------
        src : torch.LongTensor, shape (B, L)
        src_lengths : torch.LongTensor, shape (B,)
        max_len : int, optional
            Most tokens to emit (``<eos>`` included); default ``L + 10``.

        Returns
        -------
        tokens : torch.LongTensor, shape (B, T)
            Emitted ids, ``<eos>`` included, ``<pad>`` after it; ``T <= max_len`` (decoding stops
            when every sequence has emitted ``<eos>``).
        weights : torch.Tensor, shape (B, T, L), or None
            The attention weights of each emitted token (zeros after ``<eos>``); None for a
            decoder without attention.
        """
        self._check_source(src, src_lengths)
        max_len = src.shape[1] + 10 if max_len is None else check_positive_count(max_len, "max_len")
        states, final, mask = self.encode(src, src_lengths)
        state = self.decoder.init_state(states, final, mask)

        def step(y_prev):
            nonlocal state
            logits, state, w = self.decoder.step(y_prev, state, states, mask)
            return logits, w

        return greedy_decode(step, src.shape[0], self.bos_id, self.eos_id, self.pad_id, max_len,
                             src.device)
