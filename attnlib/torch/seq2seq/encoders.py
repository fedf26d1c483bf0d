"""A GRU encoder for sequence-to-sequence models, padding-safe through packed sequences.

The encoder reads the source once and returns two things: every state (the *keys* and
*values* an attention decoder looks at) and one final state (all a decoder without attention
ever gets: the fixed-length bottleneck of Sutskever et al. and Cho et al.).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnlib.checks import check_positive_count, check_probability, check_torch_lengths, check_torch_token_ids

__all__ = ["GRUEncoder"]


class GRUEncoder(nn.Module):
    """Embedding + (bidirectional) GRU over padded, batch-first token ids.

    Padding cannot leak: the GRU runs on a :func:`~torch.nn.utils.rnn.pack_padded_sequence`,
    so each sequence stops at its own length, the backward direction starts at the last *real*
    token, and the states at padded positions are zeros.

    Parameters
    ----------
    vocab_size : int
    embed_dim : int
    hidden_size : int
        Per direction; the outputs have ``hidden_size * num_directions`` features.
    bidirectional : bool
    num_layers : int
    dropout : float
        Dropout on the embeddings (and between GRU layers when ``num_layers > 1``).
    pad_id : int
        Id of ``<pad>``; its embedding is kept at zero.

    Attributes
    ----------
    output_size : int
        ``hidden_size * (2 if bidirectional else 1)``.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, bidirectional: bool = False,
                 num_layers: int = 1, dropout: float = 0.0, pad_id: int = 0):
        super().__init__()
        for name, n in (("vocab_size", vocab_size), ("embed_dim", embed_dim), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            check_positive_count(n, name)
        check_probability(dropout, "dropout")
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                          bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        self.hidden_size, self.num_layers, self.bidirectional = hidden_size, num_layers, bidirectional
        self.output_size = hidden_size * (2 if bidirectional else 1)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor):
        """Encode a padded batch.

        Parameters
        ----------
        src : torch.LongTensor, shape (B, L)
            Token ids, right-padded.
        lengths : torch.LongTensor, shape (B,)
            Real lengths, each in ``[1, L]`` (any device; packing reads them on the CPU).

        Returns
        -------
        states : torch.Tensor, shape (B, L, H * dirs)
            The top layer's state at every position (forward and backward concatenated for a
            bidirectional encoder); zeros at padded positions.
        final : torch.Tensor, shape (B, H * dirs)
            The top layer's last state: the forward direction after the last real token,
            concatenated with the backward direction after the first token.
        """
        check_torch_token_ids(src, self.embed.num_embeddings, "src", module=self, ndim=2, dims="(B, L)")
        check_torch_lengths(lengths, "lengths")
        if lengths.shape != src.shape[:1]:
            raise ValueError(f"src must be (B, L) and lengths (B,), got {tuple(src.shape)} and "
                             f"{tuple(lengths.shape)}")
        lengths_cpu = lengths.detach().to("cpu", torch.long)
        if len(lengths_cpu) and (int(lengths_cpu.min()) < 1 or int(lengths_cpu.max()) > src.shape[1]):
            raise ValueError(f"lengths must lie in [1, L={src.shape[1]}], got {lengths_cpu.tolist()}")
        x = self.dropout(self.embed(src))
        packed = pack_padded_sequence(x, lengths_cpu, batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        dirs = 2 if self.bidirectional else 1
        last = h_n.view(self.num_layers, dirs, src.shape[0], self.hidden_size)[-1]  # (dirs, B, H)
        final = torch.cat(list(last), dim=-1)
        return states, final
