r"""The full encoder-decoder Transformer (Vaswani et al., 2017), usable with Part II's tools.

Source tokens are embedded, scaled by :math:`\sqrt{d_\text{model}}` and added to sinusoidal
positions; a :class:`~attnlib.torch.TransformerEncoder` turns them into the *memory*. Target
tokens (``<bos>`` + target) go the same way into a :class:`~attnlib.torch.TransformerDecoder`
whose layers attend causally to the target so far and, through cross-attention, to the memory;
a linear layer (optionally tied to the target embedding) gives the logits:

.. math::

    M = \mathrm{Enc}\big(\sqrt{d}\, E_s[x] + P\big), \qquad
    \mathrm{logits} = \mathrm{Dec}\big(\sqrt{d}\, E_t[y_{<t}] + P,\; M\big)\, W_o^\top + b_o .

:class:`Transformer` has the call pattern of :class:`~attnlib.torch.Seq2Seq`
(``forward(src, src_lengths, tgt_in)``, ``greedy(src, src_lengths, max_len)``, ``pad_id``,
``bos_id``, ``eos_id``), so :func:`~attnlib.torch.seq2seq_loss`, :func:`~attnlib.torch.predict`,
:func:`~attnlib.torch.evaluate_exact_match` and :func:`~attnlib.torch.train` work unchanged.
Greedy decoding re-runs the decoder over the whole prefix at every step (the KV cache that
avoids this is the next chapter's topic), for a whole batch at once.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from attnlib.checks import (
    check_count,
    check_positive_count,
    check_probability,
    check_torch_bool_mask,
    check_torch_lengths,
    check_torch_tensor,
    check_torch_token_ids,
)
from attnlib.numpy.positional import sinusoidal_positional_encoding
from attnlib.torch.attention.masks import padding_mask
from attnlib.torch.decoding.greedy import greedy_decode
from attnlib.torch.transformer.layers import TransformerDecoder, TransformerEncoder

__all__ = ["TransformerConfig", "Transformer", "shared_vocabulary_map"]


def shared_vocabulary_map(source_vocab, target_vocab) -> list:
    """For each target token id, the id of the same symbol in the source vocabulary.

    Parameters
    ----------
    source_vocab, target_vocab : attnlib.data.Vocab

    Returns
    -------
    list of int
        ``len(target_vocab)`` source ids (the specials map to themselves).

    Raises
    ------
    ValueError
        When a target symbol is not in the source vocabulary.
    """
    missing = [s for s in target_vocab.itos if s not in source_vocab.stoi]
    if missing:
        raise ValueError(f"target symbols {missing} are not in the source vocabulary")
    return [source_vocab.stoi[s] for s in target_vocab.itos]


@dataclass(frozen=True)
class TransformerConfig:
    """Every setting of a :class:`Transformer`, frozen: ``Transformer.from_config(cfg)``, ``model.config``.

    The fields are :class:`Transformer`'s parameters, with ``tgt_to_src`` as a tuple (or None).
    """
    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 64
    num_heads: int = 4
    d_ff: int = 256
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    dropout: float = 0.1
    norm_first: bool = False
    max_len: int = 256
    tie_embeddings: bool = True
    tgt_to_src: tuple | None = None
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2


class Transformer(nn.Module):
    """The encoder-decoder Transformer for sequence-to-sequence tasks.

    Parameters
    ----------
    src_vocab_size, tgt_vocab_size : int
    d_model : int
        Width of the residual stream (embeddings, attention, outputs).
    num_heads : int
        Must divide ``d_model``.
    d_ff : int
        Hidden width of the feed-forward networks.
    num_encoder_layers, num_decoder_layers : int
    dropout : float
        On the embeddings-plus-positions and inside every layer.
    norm_first : bool
        Pre-LN layers (True) or the original post-LN (False).
    max_len : int
        Longest source or target sequence (rows of the position table).
    tie_embeddings : bool
        Share the target embedding matrix with the output projection.
    tgt_to_src : sequence of int, optional
        Share one embedding matrix between source and target (Vaswani et al.'s shared
        vocabulary): target token ``i`` uses the source embedding row ``tgt_to_src[i]`` (build it
        with :func:`shared_vocabulary_map`). Implies ``tie_embeddings``; ``tgt_embed`` is then None.
    pad_id, bos_id, eos_id : int
        Specials (0, 1, 2 in :mod:`attnlib.data.translation`).

    Attributes
    ----------
    src_embed, tgt_embed : torch.nn.Embedding
        (``tgt_embed`` is None when ``tgt_to_src`` is given.)
    positions : torch.Tensor, shape (max_len, d_model)
        Sinusoidal table from :func:`attnlib.numpy.sinusoidal_positional_encoding` (a buffer,
        not saved in checkpoints).
    encoder : TransformerEncoder
    decoder : TransformerDecoder
    out : torch.nn.Linear
        ``d_model -> tgt_vocab_size``.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 64,
                 num_heads: int = 4, d_ff: int = 256, num_encoder_layers: int = 2,
                 num_decoder_layers: int = 2, dropout: float = 0.1, norm_first: bool = False,
                 max_len: int = 256, tie_embeddings: bool = True, tgt_to_src=None, pad_id: int = 0,
                 bos_id: int = 1, eos_id: int = 2):
        super().__init__()
        for name, n in (("src_vocab_size", src_vocab_size), ("tgt_vocab_size", tgt_vocab_size),
                        ("d_model", d_model), ("num_heads", num_heads), ("d_ff", d_ff),
                        ("num_encoder_layers", num_encoder_layers), ("num_decoder_layers", num_decoder_layers),
                        ("max_len", max_len)):
            check_positive_count(n, name)
        if d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        check_probability(dropout, "dropout")
        for name, i, vocab in (("pad_id", pad_id, min(src_vocab_size, tgt_vocab_size)),
                               ("bos_id", bos_id, tgt_vocab_size), ("eos_id", eos_id, tgt_vocab_size)):
            if check_count(i, name) >= vocab:
                raise ValueError(f"{name}={i} must be a token id below {vocab} (pad_id in both vocabularies, "
                                 f"bos_id and eos_id in the target one)")
        self.config = TransformerConfig(
            src_vocab_size, tgt_vocab_size, d_model, num_heads, d_ff, num_encoder_layers,
            num_decoder_layers, dropout, norm_first, max_len, tie_embeddings,
            None if tgt_to_src is None else tuple(int(i) for i in tgt_to_src), pad_id, bos_id, eos_id)
        self.d_model, self.max_len = int(d_model), int(max_len)
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.src_embed = nn.Embedding(src_vocab_size, d_model, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model, padding_idx=pad_id)
        if tgt_to_src is not None:
            index = torch.as_tensor(list(tgt_to_src), dtype=torch.long)
            if index.shape != (tgt_vocab_size,) or int(index.min()) < 0 or int(index.max()) >= src_vocab_size:
                raise ValueError(f"tgt_to_src must hold {tgt_vocab_size} source ids in [0, "
                                 f"{src_vocab_size}), got shape {tuple(index.shape)}")
            self.register_buffer("tgt_to_src", index, persistent=False)
            self.tgt_embed = None
            tie_embeddings = True
        else:
            self.tgt_to_src = None
        for emb in (e for e in (self.src_embed, self.tgt_embed) if e is not None):
            # N(0, 1/d): after the sqrt(d) scaling, entries of size about 1, like the positions.
            nn.init.normal_(emb.weight, std=d_model ** -0.5)
            with torch.no_grad():
                emb.weight[pad_id].zero_()
        table = torch.from_numpy(np.asarray(sinusoidal_positional_encoding(max_len, d_model),
                                            dtype=np.float32))
        self.register_buffer("positions", table, persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.encoder = TransformerEncoder(num_encoder_layers, d_model, num_heads, d_ff, dropout,
                                          norm_first)
        self.decoder = TransformerDecoder(num_decoder_layers, d_model, num_heads, d_ff, dropout,
                                          norm_first)
        self.out = nn.Linear(d_model, tgt_vocab_size)
        if self.tgt_to_src is not None:
            del self.out.weight              # the output uses the shared embedding: only a bias
            self.out.weight = None
        elif tie_embeddings:
            self.out.weight = self.tgt_embed.weight
        self.tie_embeddings = bool(tie_embeddings)

    @classmethod
    def from_config(cls, config: TransformerConfig) -> "Transformer":
        """A new model with the settings of ``config`` (a :class:`TransformerConfig`)."""
        return cls(**asdict(config))

    def _target_matrix(self) -> torch.Tensor:
        """The (V_tgt, d_model) target embedding (rows of the source one when shared)."""
        if self.tgt_to_src is not None:
            return self.src_embed.weight[self.tgt_to_src]
        return self.tgt_embed.weight

    def _check_ids(self, ids, vocab_size: int, name: str) -> None:
        """Integer (B, L) ids in [0, vocab_size) on the model's device, no longer than max_len."""
        check_torch_token_ids(ids, vocab_size, name, module=self, ndim=2, dims="(B, L)")
        if ids.shape[1] > self.max_len:
            raise ValueError(f"sequence length {ids.shape[1]} exceeds max_len={self.max_len} ({name} of shape "
                             f"{tuple(ids.shape)})")

    def _embed(self, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        if ids.dim() != 2:
            raise ValueError(f"token ids must have shape (B, L), got shape {tuple(ids.shape)}")
        if ids.shape[1] > self.max_len:
            raise ValueError(f"sequence length {ids.shape[1]} exceeds max_len={self.max_len}")
        return self.dropout(F.embedding(ids, weight) * math.sqrt(self.d_model)
                            + self.positions[:ids.shape[1]])

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        weight = self._target_matrix() if self.tgt_to_src is not None else self.out.weight
        return F.linear(h, weight, self.out.bias)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor, need_weights: bool = False):
        """Run the encoder.

        Parameters
        ----------
        src : torch.LongTensor, shape (B, S)
        src_lengths : torch.LongTensor, shape (B,)
        need_weights : bool
            Also return the encoder's self-attention weights.

        Returns
        -------
        memory : torch.Tensor, shape (B, S, d_model)
        src_mask : torch.Tensor of bool, shape (B, S)
            True on real source tokens.
        (weights) : list of dict
            Only when ``need_weights``: per layer ``{"self": (B, H, S, S)}``.
        """
        self._check_ids(src, self.config.src_vocab_size, "src")
        check_torch_lengths(src_lengths, "src_lengths", batch=src.shape[0])
        src_mask = padding_mask(src_lengths.to(src.device), src.shape[1])
        out = self.encoder(self._embed(self.src_embed.weight, src), padding_mask=src_mask,
                           need_weights=need_weights)
        if need_weights:
            return out[0], src_mask, out[1]
        return out, src_mask

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor,
               need_weights: bool = False):
        """Logits for every target position, given the memory.

        Parameters
        ----------
        tgt_in : torch.LongTensor, shape (B, T)
            ``<bos>`` followed by the target so far.
        memory : torch.Tensor, shape (B, S, d_model)
        src_mask : torch.Tensor of bool, shape (B, S)
        need_weights : bool
            Also return the decoder's weights: per layer ``{"self": (B, H, T, T), "cross": (B, H, T, S)}``.

        Returns
        -------
        torch.Tensor, shape (B, T, V)
            (and the list of weights when ``need_weights``).

        Notes
        -----
        Target padding needs no mask of its own: padding sits after the real tokens, and the
        causal mask already stops every real position from seeing anything after it.
        """
        self._check_ids(tgt_in, self.config.tgt_vocab_size, "tgt_in")
        check_torch_tensor(memory, "memory")
        check_torch_bool_mask(src_mask, "src_mask", memory.device)
        if memory.dim() != 3 or tuple(src_mask.shape) != tuple(memory.shape[:2]) or memory.shape[0] != tgt_in.shape[0]:
            raise ValueError(f"memory must be (B, S, d_model), src_mask (B, S) and tgt_in (B, T) with the same B "
                             f"and S, got memory {tuple(memory.shape)}, src_mask {tuple(src_mask.shape)} and "
                             f"tgt_in {tuple(tgt_in.shape)}")
        out = self.decoder(self._embed(self._target_matrix(), tgt_in), memory, causal=True,
                           memory_padding_mask=src_mask, need_weights=need_weights)
        if need_weights:
            return self._logits(out[0]), out[1]
        return self._logits(out)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor,
                need_weights: bool = False):
        """Teacher-forced logits, as :meth:`attnlib.torch.Seq2Seq.forward`.

        Parameters
        ----------
        src : torch.LongTensor, shape (B, S)
        src_lengths : torch.LongTensor, shape (B,)
        tgt_in : torch.LongTensor, shape (B, T)
        need_weights : bool
            Also return the cross-attention weights of the last layer, averaged over heads,
            shape (B, T, S).

        Returns
        -------
        torch.Tensor, shape (B, T, V)
        """
        check_torch_tensor(src, "src")
        self._check_ids(tgt_in, self.config.tgt_vocab_size, "tgt_in")
        if src.dim() < 1 or tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"tgt_in must be (B, T) with B={src.shape[0]}, got {tuple(tgt_in.shape)}")
        memory, src_mask = self.encode(src, src_lengths)
        if not need_weights:
            return self.decode(tgt_in, memory, src_mask)
        logits, w = self.decode(tgt_in, memory, src_mask, need_weights=True)
        return logits, w[-1]["cross"].mean(dim=1)

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int | None = None):
        """Greedy decoding for a whole batch, re-running the decoder over the prefix each step.

        Parameters
        ----------
        src : torch.LongTensor, shape (B, S)
        src_lengths : torch.LongTensor, shape (B,)
        max_len : int, optional
            Most tokens to emit (``<eos>`` included); default ``S + 10``.

        Returns
        -------
        tokens : torch.LongTensor, shape (B, T)
            Emitted ids, ``<eos>`` included, ``<pad>`` after it; decoding stops when every
            row has emitted ``<eos>``.
        weights : None
            (the place of :meth:`attnlib.torch.Seq2Seq.greedy`'s weights; see
            :func:`attention_maps` for every attention map).
        """
        check_torch_tensor(src, "src")
        if src.dim() != 2:
            raise ValueError(f"src must have shape (B, S), got shape {tuple(src.shape)}")
        max_len = src.shape[1] + 10 if max_len is None else check_positive_count(max_len, "max_len")
        memory, src_mask = self.encode(src, src_lengths)
        prefix = src.new_zeros((src.shape[0], 0))

        def step(y_prev):
            nonlocal prefix
            prefix = torch.cat([prefix, y_prev[:, None]], dim=1)
            return self.decode(prefix, memory, src_mask)[:, -1], None

        tokens, _ = greedy_decode(step, src.shape[0], self.bos_id, self.eos_id, self.pad_id, max_len,
                                  src.device)
        return tokens, None
