"""The fixed-length bottleneck, measured: two encoder-decoders of the same size, with and without attention.

:func:`bottleneck_models` builds the pair (same embedding size, same bidirectional GRU encoder
design, hidden sizes chosen so the parameter counts are within a few per cent), and
:func:`accuracy_by_length` measures exact-match accuracy in bins of source length, the curve on
which a decoder that sees only the encoder's final state falls off.
"""
from __future__ import annotations

from collections.abc import Sequence

from attnlib.checks import check_count, check_positive_count
from attnlib.torch import (
    AdditiveAttention,
    AttentionDecoder,
    GRUDecoder,
    GRUEncoder,
    Seq2Seq,
    predict,
)

__all__ = ["bottleneck_models", "length_bins", "accuracy_by_length"]


def bottleneck_models(source_vocab_size: int, target_vocab_size: int, embed_dim: int = 32,
                      hidden_plain: int = 64, hidden_attention: int = 54):
    """An encoder-decoder without attention and one with additive attention.

    Both use a bidirectional :class:`~attnlib.torch.GRUEncoder`. The plain model's
    :class:`~attnlib.torch.GRUDecoder` starts from the encoder's final state and never sees the
    source again; the other's :class:`~attnlib.torch.AttentionDecoder` attends to every encoder
    state through :class:`~attnlib.torch.AdditiveAttention`. The defaults give 66,510 and 67,924
    parameters for vocabularies of 14 tokens (both sides), within 3 %.

    Parameters
    ----------
    source_vocab_size, target_vocab_size : int
    embed_dim : int
    hidden_plain : int
        Hidden size (per encoder direction, and of the decoder) without attention.
    hidden_attention : int
        The same with attention (smaller: attention adds parameters).

    Returns
    -------
    plain : Seq2Seq
    attentive : Seq2Seq
    """
    enc = GRUEncoder(source_vocab_size, embed_dim, hidden_plain, bidirectional=True)
    plain = Seq2Seq(enc, GRUDecoder(target_vocab_size, embed_dim, hidden_plain, enc.output_size))
    h = hidden_attention
    enc2 = GRUEncoder(source_vocab_size, embed_dim, h, bidirectional=True)
    dec2 = AttentionDecoder(target_vocab_size, embed_dim, h, enc2.output_size,
                            AdditiveAttention(h, enc2.output_size, h))
    return plain, Seq2Seq(enc2, dec2)


def length_bins(lo: int, hi: int, width: int) -> list:
    """Consecutive inclusive ranges ``[(lo, lo+width-1), ...]`` covering ``lo..hi``.

    Parameters
    ----------
    lo, hi, width : int

    Returns
    -------
    list of (int, int)
        The last range ends at ``hi``.
    """
    lo, hi, width = check_count(lo, "lo"), check_count(hi, "hi"), check_positive_count(width, "width")
    if hi < lo:
        raise ValueError(f"need width >= 1 and hi >= lo, got lo={lo}, hi={hi}, width={width}")
    return [(a, min(a + width - 1, hi)) for a in range(lo, hi + 1, width)]


def accuracy_by_length(model: Seq2Seq, task, pairs: Sequence, bins: Sequence, device=None) -> list:
    """Exact-match accuracy of greedy decoding, per bin of source length.

    Parameters
    ----------
    model : Seq2Seq
    task : attnlib.data.TranslationTask
    pairs : sequence of attnlib.data.Pair
    bins : sequence of (int, int)
        Inclusive source-length ranges, e.g. from :func:`length_bins`.
    device : torch.device, optional

    Returns
    -------
    list of dict
        One per bin: ``{"lo", "hi", "n", "accuracy"}`` (accuracy is NaN for an empty bin).
    """
    bins = list(bins)
    for b in bins:
        if not (isinstance(b, (tuple, list)) and len(b) == 2):
            raise ValueError(f"bins must be (lo, hi) pairs, e.g. from length_bins(...), got {b!r}")
    pairs = list(pairs)
    texts = predict(model, task, pairs, device=device)
    out = []
    for lo, hi in bins:
        hits = [t == p.target for t, p in zip(texts, pairs) if lo <= len(p.source) <= hi]
        out.append({"lo": lo, "hi": hi, "n": len(hits),
                    "accuracy": sum(hits) / len(hits) if hits else float("nan")})
    return out
