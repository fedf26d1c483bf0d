"""Word analogies with the chapter's word2vec: "a is to b as c is to ?", measured against baselines.

The corpus is Python's standard-library documentation, so the relations are ones it contains:

- *opposites*: a fixed list of pairs such as get/set, open/close, read/write (:data:`OPPOSITES`),
  kept where both words are in the vocabulary;
- *-s form*: a word and the word with an ``s`` added (file/files, return/returns), the most
  frequent such pairs of the vocabulary;
- *-ed form*: a word and the word with ``ed`` added (open/opened), likewise.

Each relation's pairs are split in two, alternately in vocabulary order: a *selection* half, on
which anything about the analogies may be chosen and looked at, and a *held-out* half that is only
measured. A question pairs two different pairs of the same half, ``a : b :: c : d``, and is right
when :func:`attnlib.numpy.analogy` (3CosAdd) returns ``d`` first. Beside it stand the baseline that
answers with ``c``'s nearest neighbour (``use_offset=False``) and chance, 1 in ``V - 3``.

:func:`analogy_sweep` (the maintainer sweep ``ch02_analogies``) trains word2vec with several seeds
and records every accuracy, so the chapter can print mean ± standard deviation over seeds.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from attnlib.checks import check_positive_count
from attnlib.experiments.results import sweep
from attnlib.numpy.embeddings import analogy

__all__ = ["OPPOSITES", "relation_pairs", "split_pairs", "analogy_questions", "analogy_accuracy",
           "analogy_report", "analogy_sweep", "random_pair_cosine"]

OPPOSITES = (
    ("get", "set"), ("open", "close"), ("read", "write"), ("start", "stop"), ("begin", "end"),
    ("true", "false"), ("add", "remove"), ("encode", "decode"), ("load", "dump"),
    ("send", "receive"), ("input", "output"), ("first", "last"), ("min", "max"),
    ("upper", "lower"), ("enable", "disable"), ("acquire", "release"), ("minimum", "maximum"),
    ("left", "right"), ("before", "after"), ("client", "server"), ("compress", "decompress"),
    ("lock", "unlock"), ("head", "tail"), ("success", "failure"), ("enter", "exit"),
    ("positive", "negative"), ("local", "global"), ("prefix", "suffix"), ("src", "dst"),
    ("source", "destination"), ("key", "value"), ("row", "column"), ("include", "exclude"),
    ("inner", "outer"), ("major", "minor"), ("request", "response"), ("parent", "child"),
    ("short", "long"), ("old", "new"), ("small", "large"), ("lowercase", "uppercase"),
    ("encoder", "decoder"), ("forward", "backward"),
)


def random_pair_cosine(M, rows, rng: np.random.Generator, pairs: int = 5000) -> float:
    """The mean cosine of ``pairs`` random pairs of the given rows of ``M``: a table's baseline.

    A neighbour's cosine means something only against this number for its own table.

    Parameters
    ----------
    M : array_like, shape (V, d)
    rows : array_like of int, shape (n,)
        The rows to draw from (e.g. whole words only).
    rng : numpy.random.Generator
    pairs : int

    Returns
    -------
    float
    """
    check_positive_count(pairs, "pairs")
    rows = np.asarray(rows)
    if rows.ndim != 1 or len(rows) < 2:
        raise ValueError(f"rows must be a 1-D array of at least 2 row indices, got shape {rows.shape}")
    a, b = rows[rng.integers(len(rows), size=(2, pairs))]
    A, B = np.asarray(M, dtype=float)[a], np.asarray(M, dtype=float)[b]
    return float(np.mean(np.sum(A * B, axis=1) / (np.linalg.norm(A, axis=1) * np.linalg.norm(B, axis=1))))


def _suffix_pairs(words: Sequence[str], suffix: str, limit: int) -> list[tuple[str, str]]:
    known = set(words)
    pairs = [(w, w + suffix) for w in words
             if len(w) > 3 and not w.endswith(suffix[-1]) and w + suffix in known]
    return pairs[:limit]


def relation_pairs(words: Sequence[str], limit: int = 24) -> dict[str, list[tuple[str, str]]]:
    """The word pairs of each relation that the vocabulary ``words`` contains.

    Parameters
    ----------
    words : sequence of str
        The vocabulary, most frequent first (as :func:`attnlib.numpy.build_vocab` returns it).
    limit : int
        At most this many pairs per relation (the first ones, in vocabulary order for the suffix
        relations, in :data:`OPPOSITES` order for the opposites).

    Returns
    -------
    dict
        ``{"opposites": [...], "-s form": [...], "-ed form": [...]}``, lists of ``(a, b)``.
    """
    words = list(words)
    if not all(isinstance(w, str) for w in words):
        raise ValueError("words must be a sequence of strings")
    limit = check_positive_count(limit, "limit")
    known = set(words)
    opposites = [p for p in OPPOSITES if p[0] in known and p[1] in known][:limit]
    return {"opposites": opposites, "-s form": _suffix_pairs(words, "s", limit),
            "-ed form": _suffix_pairs(words, "ed", limit)}


def split_pairs(pairs: Sequence) -> tuple[list, list]:
    """Split pairs alternately: positions 0, 2, 4, ... for selection, 1, 3, 5, ... held out."""
    pairs = list(pairs)
    return pairs[0::2], pairs[1::2]


def analogy_questions(pairs: Sequence, words: Sequence[str]) -> np.ndarray:
    """Every question ``a : b :: c : d`` from two different pairs, as word indices.

    Parameters
    ----------
    pairs : sequence of (str, str)
        Each word must be in ``words``.
    words : sequence of str

    Returns
    -------
    numpy.ndarray of int64, shape (n, 4)
        Columns a, b, c, d; ``n = len(pairs) * (len(pairs) - 1)``.
    """
    index = {w: i for i, w in enumerate(words)}
    missing = [w for p in pairs for w in p if w not in index]
    if missing:
        raise ValueError(f"words not in the vocabulary: {missing[:5]}")
    ids = [(index[a], index[b]) for a, b in pairs]
    rows = [(a, b, c, d) for i, (a, b) in enumerate(ids) for j, (c, d) in enumerate(ids) if i != j]
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def analogy_accuracy(embeddings, questions) -> dict:
    """Top-1 accuracy of 3CosAdd and of the nearest-neighbour-of-c baseline on ``questions``.

    Parameters
    ----------
    embeddings : array_like, shape (V, d)
    questions : array_like of int, shape (n, 4)
        From :func:`analogy_questions`.

    Returns
    -------
    dict
        ``{"offset": float, "c_alone": float, "chance": 1 / (V - 3), "questions": n}``.
    """
    q = np.asarray(questions)
    if q.ndim != 2 or q.shape[1] != 4 or len(q) == 0:
        raise ValueError(f"questions must have shape (n, 4) with n > 0, got {q.shape}")
    a, b, c, d = q.T
    V = len(np.asarray(embeddings))
    hit = lambda use: float(np.mean(analogy(embeddings, a, b, c, 1, use)[:, 0] == d))  # noqa: E731
    return {"offset": hit(True), "c_alone": hit(False), "chance": 1.0 / (V - 3), "questions": len(q)}


def analogy_report(words: Sequence[str], embeddings, limit: int = 24) -> dict:
    """:func:`analogy_accuracy` for every relation and both halves of its pairs.

    Returns
    -------
    dict
        ``{relation: {"selection": accuracy dict, "held_out": accuracy dict}}``.
    """
    out = {}
    for name, pairs in relation_pairs(words, limit).items():
        halves = dict(zip(("selection", "held_out"), split_pairs(pairs)))
        out[name] = {half: analogy_accuracy(embeddings, analogy_questions(p, words))
                     for half, p in halves.items()}
    return out


@sweep("ch02_analogies")
def analogy_sweep(reduced: bool) -> dict:
    """Analogy accuracies of word2vec trained with several seeds on the standard-library corpus.

    Full: seeds 0-4, the chapter's settings (d = 50, window 3, K = 5, 4 epochs). Reduced: seed 0,
    the first 30,000 tokens, one epoch (seconds).

    Returns
    -------
    dict
        ``{"seeds": [...], "settings": {...}, "pairs": {relation: [[a, b], ...]},
        "runs": [analogy_report per seed]}``.
    """
    import attnlib
    from attnlib.data import stdlib_corpus
    from attnlib.numpy import train_word2vec

    tokens = stdlib_corpus()
    seeds = [0] if reduced else [0, 1, 2, 3, 4]
    settings = dict(dim=50, window=3, negatives=5, epochs=1 if reduced else 4, batch_size=1024,
                    lr=0.05, max_vocab=3000)
    if reduced:
        tokens = tokens[:30_000]
    runs, pairs = [], None
    for s in seeds:
        model = train_word2vec(tokens, attnlib.seed(s), progress=False, **settings)
        runs.append(analogy_report(model.words, model.W_in))
        pairs = pairs or relation_pairs(model.words)
    return {"seeds": seeds, "settings": settings, "tokens": len(tokens),
            "pairs": {k: [list(p) for p in v] for k, v in pairs.items()}, "runs": runs}

