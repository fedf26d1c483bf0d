r"""Bahdanau attention: attend with the *previous* decoder state, then feed the context into the cell.

Bahdanau, Cho and Bengio (2015) read the source with a bidirectional RNN and annotate each
position with both directions' states, :math:`h_j = [\overrightarrow{h}_j; \overleftarrow{h}_j]`
(:class:`~attnlib.torch.GRUEncoder` with ``bidirectional=True``). At output step :math:`t` the
decoder scores every annotation against its previous state :math:`s_{t-1}`, normalises, and
takes the weighted sum,

.. math:: e_{tj} = v^\top \tanh(W_q s_{t-1} + W_k h_j), \quad
          \alpha_{tj} = \frac{\exp e_{tj}}{\sum_k \exp e_{tk}}, \quad
          c_t = \sum_j \alpha_{tj} h_j,

and only then updates its state with the previous output token *and* the context,

.. math:: s_t = \mathrm{GRU}([E y_{t-1}; c_t],\ s_{t-1}), \qquad
          \mathrm{logits}_t = W_o \tanh(W_c [s_t; c_t]).

(The paper's read-out is a maxout layer over :math:`s_{t-1}, y_{t-1}, c_t`; we keep the
read-out of :class:`~attnlib.torch.AttentionDecoder` so that the chapters compare attention
mechanisms, not read-outs.)
"""
from __future__ import annotations

import torch

from attnlib.torch.attention.scores import AdditiveAttention
from attnlib.torch.seq2seq.decoders import AttentionDecoder

__all__ = ["BahdanauDecoder", "alignments"]


class BahdanauDecoder(AttentionDecoder):
    r"""A GRU decoder in Bahdanau's order: :math:`c_t` from :math:`s_{t-1}`, then :math:`s_t = f(s_{t-1}, y_{t-1}, c_t)`.

    Built on :class:`~attnlib.torch.AttentionDecoder` through its extension points: the cell's
    input is widened to ``embed_dim + enc_size`` (:meth:`cell_input_size`) and :meth:`step`
    attends before the update.

    Parameters
    ----------
    vocab_size : int
    embed_dim : int
    hidden_size : int
        Decoder state size ``H_dec``.
    enc_size : int
        Encoder state size ``H_enc`` (``2 * hidden`` for a bidirectional encoder).
    attention : nn.Module, optional
        Default: ``AdditiveAttention(hidden_size, enc_size, attention_size)``, Bahdanau's score.
    attention_size : int, optional
        Width of the default additive scoring network (default ``hidden_size``).
    dropout : float
    pad_id : int

    Example
    -------
    ::

        enc = GRUEncoder(len(task.source_vocab), 32, 32, bidirectional=True)   # h_j: 64
        dec = BahdanauDecoder(len(task.target_vocab), 32, 64, enc.output_size)
        model = Seq2Seq(enc, dec)
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, enc_size: int,
                 attention=None, attention_size: int | None = None, dropout: float = 0.0,
                 pad_id: int = 0):
        if attention is None:
            attention = AdditiveAttention(hidden_size, enc_size, attention_size or hidden_size)
        super().__init__(vocab_size, embed_dim, hidden_size, enc_size, attention, dropout, pad_id)

    def cell_input_size(self) -> int:
        """``embed_dim + enc_size``: the cell reads the previous token's embedding and the context."""
        return self.embed_dim + self.enc_size

    def step(self, y_prev, state, enc_states, src_mask):
        """One step in Bahdanau's order.

        Parameters
        ----------
        y_prev : torch.LongTensor, shape (B,)
            The previous output token :math:`y_{t-1}`.
        state : torch.Tensor, shape (B, H_dec)
            The previous state :math:`s_{t-1}`.
        enc_states : torch.Tensor, shape (B, L, H_enc)
        src_mask : torch.BoolTensor, shape (B, L)

        Returns
        -------
        logits : torch.Tensor, shape (B, V)
        state : torch.Tensor, shape (B, H_dec)
            The new state :math:`s_t`.
        weights : torch.Tensor, shape (B, L)
            :math:`\\alpha_t`, computed from :math:`s_{t-1}`.
        """
        context, weights = self.attention(state, enc_states, src_mask)      # c_t from s_{t-1}
        emb = self.dropout(self.embed(y_prev))
        s = self.cell(torch.cat([emb, context], dim=-1), state)             # s_t = f(s_{t-1}, y, c_t)
        s_tilde = torch.tanh(self.combine(torch.cat([s, context], dim=-1)))
        return self.out(self.dropout(s_tilde)), s, weights


def alignments(model, task, pairs) -> list:
    """Greedy predictions and their alignment matrices, ready to plot or browse.

    Parameters
    ----------
    model : attnlib.torch.Seq2Seq
        A model whose decoder returns attention weights.
    task : attnlib.data.TranslationTask
    pairs : sequence of attnlib.data.Pair

    Returns
    -------
    list of dict
        One per pair, with keys ``source``, ``target``, ``prediction`` (str), ``kind`` (the
        pair's format), ``correct`` (bool) and ``weights``, a NumPy array of shape
        (T_out, L_src): row ``t`` is the attention of output character ``t`` (the last row is
        ``<eos>``'s) over the source characters.
    """
    from attnlib.torch.decoding.greedy import predict

    pairs = list(pairs)
    texts, weights = predict(model, task, pairs, need_weights=True)
    if any(w is None for w in weights):
        raise ValueError("this model returns no attention weights (a decoder without attention?)")
    return [{"source": p.source, "target": p.target, "prediction": t, "kind": p.kind,
             "correct": t == p.target, "weights": w.double().numpy()}
            for p, t, w in zip(pairs, texts, weights)]
