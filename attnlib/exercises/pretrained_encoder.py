"""Checkers for the chapter "A real pretrained Transformer": masked mean pooling, WordPiece and search.

In a notebook::

    from attnlib.exercises import pretrained_encoder as ex
    ex.check_mean_pooling(my_mean_pooling)   # (hidden (B, L, E), mask (B, L) of 0/1) -> (B, E)
    ex.check_wordpiece(my_wordpiece)         # (word, vocab) -> list of pieces
    ex.check_cosine_top_k(my_cosine_top_k)   # (queries (Q, E), library (N, E), k) -> indices (Q, k)
    ex.report()

``check_mean_pooling`` passes float64 torch tensors (the mask as 0/1 integers, as a tokenizer's
``attention_mask``) and expects a tensor. ``check_wordpiece`` passes a word (str) and a small
vocabulary (a set of str) and expects a list of str; it recognises the classic slips: shortest
match first, continuation pieces without ``##``, falling back to the un-prefixed entry when a
``##`` piece is missing inside a word, and marking only the unmatched rest as ``[UNK]``.
``check_cosine_top_k`` passes float64 tensors of embeddings that are *not* unit length and expects
a LongTensor of library indices, most similar first; its catalogue: the raw dot product, the k
least similar, the Euclidean distance of the raw vectors, vectors normalised over the wrong axis
(each feature over the sentences), and the similarities returned instead of the indices.
"""
from __future__ import annotations

import numpy as np
import torch

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake
from attnlib.exercises.numpy_to_torch import _tensor_fn
from attnlib.pretrained.wordpiece import wordpiece as _wordpiece  # the reference answer

__all__ = ["check_mean_pooling", "check_wordpiece", "check_cosine_top_k", "report", "reset"]


# ----------------------------------------------------------------------------- exercise 1

def _pool(hidden, mask):
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(-2) / m.sum(-2)


def _pool_cases():
    rng = np.random.default_rng(1616)

    def mask(lengths, L):
        return (np.arange(L)[None, :] < np.asarray(lengths)[:, None]).astype(np.int64)

    return [Case((rng.normal(size=(2, 5, 4)), mask([5, 3], 5)), "B=2, L=5, E=4, lengths 5 and 3"),
            Case((rng.normal(size=(3, 6, 3)) + 2, mask([2, 6, 4], 6)), "B=3, L=6, E=3, lengths 2, 6, 4"),
            Case((rng.normal(size=(1, 4, 4)), mask([4], 4)), "B=1, L=4, E=4, no padding (L = E)")]


_POOL_MISTAKES = (
    Mistake("no_mask", "You averaged over every position, padding included. Padding vectors are not part "
            "of the sentence: multiply by the mask and divide by the number of *real* tokens.",
            lambda h, m: h.mean(-2)),
    Mistake("divide_by_L", "You zeroed the padding but divided by the padded length L. Divide by the number "
            "of real tokens, mask.sum(-1) (one count per sentence).",
            lambda h, m: (h * m.to(h.dtype).unsqueeze(-1)).sum(-2) / h.shape[-2]),
    Mistake("sum", "You returned the masked *sum*; divide it by the number of real tokens to get the mean.",
            lambda h, m: (h * m.to(h.dtype).unsqueeze(-1)).sum(-2)),
    Mistake("over_features", "You averaged over the features (dim=-1) instead of over the tokens (dim=-2).",
            lambda h, m: (h * m.to(h.dtype).unsqueeze(-1)).mean(-1)),
)

POOL = Exercise(
    name="mean_pooling", call="fn(hidden, mask)", arg_names=("hidden", "mask"), out_axes=("E",),
    dims=lambda h, m: {"E": h.shape[-1], "L": h.shape[-2]}, reference=_tensor_fn(_pool), cases=_pool_cases,
    mistakes=tuple(Mistake(m.name, m.message, _tensor_fn(m.fn), m.hint) for m in _POOL_MISTAKES),
    hint="m = mask.to(hidden.dtype).unsqueeze(-1)   # (B, L, 1); return (hidden * m).sum(-2) / m.sum(-2)",
    checked="padding ignored, divided by each sentence's own length, batch of several lengths")


# ----------------------------------------------------------------------------- exercise 2

class _Vocab(frozenset):
    """A set of pieces with a short repr, for the checker's messages."""

    def __repr__(self) -> str:
        return f"<vocabulary of {len(self)} pieces: {', '.join(sorted(self)[:6])}, ...>"


VOCAB = _Vocab({"[UNK]", "un", "##aff", "##able", "##a", "##ff", "##ble", "play", "##ing", "##in", "##g",
                "##s", "p", "##l", "##ay", "token", "##izer", "##ize", "##r", "to", "##ken", "a", "##b",
                "run", "##ner", "##n", "##er", "##to"})
_ORDER = {p: i for i, p in enumerate(sorted(VOCAB))}


def _shortest(word, vocab):
    pieces, start = [], 0
    while start < len(word):
        for end in range(start + 1, len(word) + 1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
        else:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def _no_hashes(word, vocab):
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start and word[start:end] not in vocab:
            end -= 1
        if end == start:
            return ["[UNK]"]
        pieces.append(word[start:end])
        start = end
    return pieces


def _fallback_each_length(word, vocab):
    """Inside a word, accept the bare piece when its '##' form is missing (checked at every length)."""
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            if start == 0:
                piece = word[:end] if word[:end] in vocab else None
            else:
                piece = next((p for p in ("##" + word[start:end], word[start:end]) if p in vocab), None)
            if piece is not None:
                break
        else:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def _fallback_after_all(word, vocab):
    """Inside a word, try every '##' piece first, and the bare pieces only when none of them fits."""
    pieces, start = [], 0
    while start < len(word):
        ends = range(len(word), start, -1)
        forms = [word[start:e] for e in ends] if start == 0 else \
            ["##" + word[start:e] for e in ends] + [word[start:e] for e in ends]
        piece = next((p for p in forms if p in vocab), None)
        if piece is None:
            return ["[UNK]"]
        pieces.append(piece)
        start += len(piece) - (2 if piece.startswith("##") else 0)
    return pieces


def _partial_unk(word, vocab):
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return pieces + ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def _as_ids(fn):
    """Wrap ``fn(word, vocab) -> list of str`` to return the pieces as an array of ids (-1: not in vocab)."""
    if not callable(fn):
        return fn

    def call(word, vocab):
        out = fn(word, vocab)
        if isinstance(out, (list, tuple)) and all(isinstance(p, str) for p in out):
            return np.array([_ORDER.get(p, -1) for p in out], dtype=np.int64)
        if out is None:
            return None
        raise TypeError(f"return a list of str (the pieces), got {type(out).__name__}")
    return call


def _wp_cases():
    return [Case(("playing", VOCAB), "word 'playing'"), Case(("unaffable", VOCAB), "word 'unaffable'"),
            Case(("tokenizer", VOCAB), "word 'tokenizer'"), Case(("runner", VOCAB), "word 'runner'"),
            Case(("plays", VOCAB), "word 'plays'"), Case(("playx", VOCAB), "word 'playx' (cannot be covered)"),
            Case(("xyz", VOCAB), "word 'xyz' (no piece fits)"),
            Case(("playtoken", VOCAB), "word 'playtoken' ('token' is in the vocabulary, '##token' is not)"),
            Case(("playrun", VOCAB), "word 'playrun' ('run' and 'un' are in the vocabulary, '##run' and '##un' are not)"),
            Case(("playingrun", VOCAB), "word 'playingrun' ('##ing' fits, then only the bare 'run')")]


_WP_MISTAKES = (
    Mistake("shortest_first", "You took the *shortest* matching piece first. WordPiece is greedy "
            "longest-match-first: start from the whole rest of the word and shrink it until it is in the vocabulary.",
            _as_ids(_shortest)),
    Mistake("no_hashes", "Pieces after the first must be looked up *with* the prefix '##' (a piece inside a "
            "word is a different vocabulary entry from the same letters starting a word).", _as_ids(_no_hashes)),
    Mistake("unprefixed_fallback", "Inside a word you fell back to the piece *without* '##' when the '##' "
            "piece was missing. A bare entry such as 'token' stands only for the start of a word: inside a "
            "word, only '##' pieces are valid, and when none fits, the whole word becomes ['[UNK]'].",
            _as_ids(_fallback_each_length)),
    Mistake("unprefixed_fallback_last", "When no '##' piece fitted inside the word, you tried the pieces "
            "*without* '##'. A bare entry such as 'un' stands only for the start of a word: inside a word, only "
            "'##' pieces are valid, and when none fits, the whole word becomes ['[UNK]'].",
            _as_ids(_fallback_after_all)),
    Mistake("partial_unk", "When some rest of the word matches no piece, the *whole word* becomes ['[UNK]'], "
            "not the pieces found so far plus '[UNK]'.", _as_ids(_partial_unk)),
)

WORDPIECE = Exercise(
    name="wordpiece", call="fn(word, vocab)", arg_names=("word", "vocab"), out_axes=("pieces",),
    dims=lambda w, v: {"pieces": len(_wordpiece(w, v))}, reference=_as_ids(_wordpiece), cases=_wp_cases,
    mistakes=_WP_MISTAKES,
    hint="start = 0; while start < len(word): try end = len(word), len(word) - 1, ... and take the first "
         "piece = word[start:end] (with '##' in front when start > 0) that is in vocab; if none, return "
         "['[UNK]']; else append it and set start = end.",
    checked="longest match first, '##' continuations (and no bare piece inside a word), whole-word [UNK]")


# ----------------------------------------------------------------------------- exercise 3

def _unit(x, dim=-1):
    return x / x.norm(dim=dim, keepdim=True)


def _cosine_top_k(queries, library, k):
    """Indices (Q, k) of the k library rows with the largest cosine similarity to each query, best first."""
    return torch.topk(_unit(queries) @ _unit(library).T, k, dim=-1).indices


def _search_cases():
    rng = np.random.default_rng(1617)

    def vectors(n, E, spread):
        """n random directions with lengths from 1/spread to spread: lengths must not decide the ranking."""
        x = rng.normal(size=(n, E))
        return x / np.linalg.norm(x, axis=1, keepdims=True) * np.exp(rng.uniform(-np.log(spread), np.log(spread), (n, 1)))

    return [Case((vectors(1, 4, 3), vectors(6, 4, 3), 2), "one query, a library of 6, E=4, k=2"),
            Case((vectors(3, 5, 2), vectors(8, 5, 5), 3), "3 queries, a library of 8 of very different lengths, E=5, k=3"),
            Case((vectors(2, 3, 2), vectors(5, 3, 3), 5), "2 queries, a library of 5, E=3, k=5 (the whole ranking)"),
            Case((vectors(4, 6, 3) + 1.0, vectors(7, 6, 3) + 1.0, 1), "4 queries, a library of 7, E=6, k=1, "
                                                                     "vectors off-centre (all roughly alike)")]


_SEARCH_MISTAKES = (
    Mistake("dot_product", "You ranked by the raw dot product, so a long library vector wins whatever its "
            "direction. Cosine similarity compares directions only: scale every vector to unit length first "
            "(x / x.norm(dim=-1, keepdim=True)). A query's own length does not change its ranking; each library "
            "vector's length does.",
            lambda q, lib, k: torch.topk(q @ lib.T, k, dim=-1).indices),
    Mistake("least_similar", "Your indices are the k *least* similar library sentences. Rank by similarity "
            "from the largest: torch.topk(scores, k, dim=-1) (largest=True, its default), or "
            "torch.argsort(scores, descending=True).",
            lambda q, lib, k: torch.topk(_unit(q) @ _unit(lib).T, k, dim=-1, largest=False).indices),
    Mistake("euclidean", "You ranked by the Euclidean distance of the raw vectors. That mixes length with "
            "direction; on unit vectors the nearest by distance is the most similar by cosine, but these are "
            "not unit length: normalise first, or compute the cosine.",
            lambda q, lib, k: torch.topk(torch.cdist(q, lib), k, dim=-1, largest=False).indices),
    Mistake("normalised_features", "You normalised along the wrong axis (dim=0: each feature over the "
            "sentences). Every sentence vector, one row, should get length 1: x.norm(dim=-1, keepdim=True).",
            lambda q, lib, k: torch.topk(_unit(q, 0) @ _unit(lib, 0).T, k, dim=-1).indices),
    Mistake("values_not_indices", "You returned the similarities themselves. The search asks *which* "
            "library sentences: return the indices (torch.topk(...).indices), most similar first.",
            lambda q, lib, k: torch.topk(_unit(q) @ _unit(lib).T, k, dim=-1).values),
)

SEARCH = Exercise(
    name="cosine_top_k", call="fn(queries, library, k)", arg_names=("queries", "library", "k"),
    out_axes=("Q", "k"), dims=lambda q, lib, k: {"Q": q.shape[0], "k": k, "N": lib.shape[0], "E": q.shape[1]},
    reference=_tensor_fn(_cosine_top_k), cases=_search_cases,
    mistakes=tuple(Mistake(m.name, m.message, _tensor_fn(m.fn), m.hint) for m in _SEARCH_MISTAKES),
    hint="q = queries / queries.norm(dim=-1, keepdim=True), the same for library; scores = q @ lib.T (Q, N) "
         "are the cosine similarities; return torch.topk(scores, k, dim=-1).indices.",
    checked="cosine, not the dot product or the distance, of vectors of different lengths, best first, k=1 to N")

_CHAPTER = Chapter("A real pretrained Transformer", [POOL, WORDPIECE, SEARCH])


def check_mean_pooling(fn) -> CheckResult:
    """Check ``fn(hidden, mask) -> (B, E)``: the mean of ``hidden`` (B, L, E) over the real tokens of
    ``mask`` (B, L) (1 = real, 0 = padding)."""
    return _CHAPTER.check(POOL, _tensor_fn(fn))


def check_wordpiece(fn) -> CheckResult:
    """Check ``fn(word, vocab) -> list of str``: WordPiece's greedy longest-match-first split of one word."""
    return _CHAPTER.check(WORDPIECE, _as_ids(fn))


def check_cosine_top_k(fn) -> CheckResult:
    """Check ``fn(queries, library, k) -> indices (Q, k)``: for each row of ``queries`` (Q, E), the k rows
    of ``library`` (N, E) with the largest cosine similarity, most similar first (vectors not unit length)."""
    return _CHAPTER.check(SEARCH, _tensor_fn(fn))


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
