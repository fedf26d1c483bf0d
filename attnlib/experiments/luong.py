"""Chapter 11's experiment: the Luong variants (global dot/general/concat, local-m, local-p)
and Bahdanau's model, built alike for one comparison.
"""
from __future__ import annotations

from attnlib.torch import (
    BahdanauDecoder,
    ConcatAttention,
    GRUEncoder,
    InputFeedingDecoder,
    LocalAttentionDecoder,
    LocalMonotonicAttention,
    LocalPredictiveAttention,
    MultiplicativeAttention,
    Seq2Seq,
)

__all__ = ["attention_variants"]


def attention_variants(source_vocab_size: int, target_vocab_size: int, embed_dim: int = 16,
                       hidden_size: int = 32, window: int = 8) -> dict:
    """The attention models the Luong chapter compares, all on the same bidirectional encoder.

    Every model has a :class:`~attnlib.torch.GRUEncoder` (bidirectional, ``hidden_size`` per
    direction) and a decoder of state size ``H = 2 * hidden_size`` (so that *dot* applies):

    - ``"Bahdanau"``: :class:`~attnlib.torch.BahdanauDecoder` (additive, attends with ``s_{t-1}``);
    - ``"dot"``, ``"general"``, ``"concat"``: global attention with input feeding
      (:class:`InputFeedingDecoder`);
    - ``"local-m"``, ``"local-p"``: local attention with input feeding and general scores,
      half-width ``window`` (:class:`~attnlib.torch.LocalAttentionDecoder`).

    Parameters
    ----------
    source_vocab_size, target_vocab_size : int
    embed_dim : int
    hidden_size : int
        Per encoder direction.
    window : int
        ``D`` of the local variants.

    Returns
    -------
    dict of str to callable
        Name -> a function of no argument that builds a fresh :class:`~attnlib.torch.Seq2Seq`
        (call it after seeding, so that every variant starts from its own seeded weights).
    """

    V, E, H = target_vocab_size, embed_dim, 2 * hidden_size
    decoders = {
        "Bahdanau": lambda: BahdanauDecoder(V, E, H, H),
        "dot": lambda: InputFeedingDecoder(V, E, H, H, MultiplicativeAttention(H, H, "dot")),
        "general": lambda: InputFeedingDecoder(V, E, H, H, MultiplicativeAttention(H, H, "general")),
        "concat": lambda: InputFeedingDecoder(V, E, H, H, ConcatAttention(H, H, H)),
        "local-m": lambda: LocalAttentionDecoder(V, E, H, H, LocalMonotonicAttention(H, H, window)),
        "local-p": lambda: LocalAttentionDecoder(V, E, H, H, LocalPredictiveAttention(H, H, window)),
    }

    def build(make_decoder):
        return lambda: Seq2Seq(GRUEncoder(source_vocab_size, E, hidden_size, bidirectional=True),
                               make_decoder())

    return {name: build(make) for name, make in decoders.items()}
