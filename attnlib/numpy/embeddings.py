r"""Word embeddings: one-hot vectors, and dense ones learned by skip-gram with negative sampling.

Skip-gram (Mikolov et al., 2013) learns two vectors per word: an *input* vector :math:`v_w` (a
row of ``W_in``, the embedding we keep) and an *output* vector :math:`u_w` (a row of ``W_out``).
For a centre word :math:`c` and a word :math:`o` seen within a window around it, negative
sampling (SGNS) draws :math:`K` "negative" words :math:`n_1, \dots, n_K` from the unigram
distribution raised to the power 3/4 and minimises

.. math:: \ell = -\log\sigma(u_o \cdot v_c) - \sum_{k=1}^{K} \log\sigma(-u_{n_k} \cdot v_c),

which pulls :math:`v_c` towards the words it appears with and pushes it away from random ones.
Training here is vectorised minibatch SGD in NumPy: a batch of (centre, context) pairs, their
negatives, the gradients in closed form, and the updates scattered into the tables.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from attnlib.checks import (
    check_count,
    check_generator,
    check_positive_count,
    check_real,
    check_token_ids,
)
from attnlib.numpy._validate import as_float_array, as_index_array
from attnlib.numpy._validate import check_words as _check_tokens

# ----------------------------------------------------------------------------- vocabulary

def build_vocab(tokens, min_count: int = 5, max_size: int | None = None) -> tuple[list[str], np.ndarray]:
    """The words seen at least ``min_count`` times, most frequent first (ties alphabetical).

    Parameters
    ----------
    tokens : sequence of str
        The corpus.
    min_count : int
        Rarer words are left out.
    max_size : int, optional
        Keep at most this many words (the most frequent).

    Returns
    -------
    words : list of str, length V
    counts : numpy.ndarray of int64, shape (V,)
        How often each word occurs in ``tokens``.
    """
    tokens = _check_tokens(tokens)
    min_count = check_positive_count(min_count, "min_count")
    if max_size is not None:
        max_size = check_count(max_size, "max_size")
    items = sorted(((w, n) for w, n in Counter(tokens).items() if n >= min_count),
                   key=lambda wn: (-wn[1], wn[0]))
    if max_size is not None:
        items = items[:max_size]
    return [w for w, _ in items], np.array([n for _, n in items], dtype=np.int64)


def encode(tokens, words) -> np.ndarray:
    """Word ids of ``tokens``, dropping tokens that are not in ``words``.

    Parameters
    ----------
    tokens : sequence of str
    words : sequence of str, length V
        The vocabulary; the id of ``words[i]`` is ``i``.

    Returns
    -------
    numpy.ndarray of int64, shape (N,)
        ``N`` is the number of tokens in the vocabulary.
    """
    tokens, words = _check_tokens(tokens), _check_tokens(words, "words")
    index = {w: i for i, w in enumerate(words)}
    return np.array([index[t] for t in tokens if t in index], dtype=np.int64)


def one_hot(ids, vocab_size: int) -> np.ndarray:
    """One-hot rows: row ``n`` is all zeros except a 1 at column ``ids[n]``.

    Parameters
    ----------
    ids : array_like of int, shape (N,)
    vocab_size : int
        V, the number of columns.

    Returns
    -------
    numpy.ndarray, shape (N, V), float64
    """
    vocab_size = check_count(vocab_size, "vocab_size")
    ids = as_index_array(ids, "ids", ndim=1)
    check_token_ids(ids, vocab_size, "ids")
    out = np.zeros((len(ids), vocab_size))
    out[np.arange(len(ids)), ids] = 1.0
    return out


def subsample_frequent(ids, counts, rng: np.random.Generator, threshold: float = 1e-3) -> np.ndarray:
    r"""Drop occurrences of very frequent words at random (Mikolov et al., 2013, section 2.3).

    A word of relative frequency :math:`f` is kept with probability
    :math:`\min(1, \sqrt{t / f})`, so "the" and "of" thin out while rare words all stay.

    Parameters
    ----------
    ids : array_like of int, shape (N,)
        The encoded corpus.
    counts : array_like of int, shape (V,)
        Word counts (as returned by :func:`build_vocab`).
    rng : numpy.random.Generator
    threshold : float
        :math:`t`; smaller drops more.

    Returns
    -------
    numpy.ndarray of int64, shape (N',)
        The kept ids, in order.
    """
    counts = _check_counts(counts)
    ids = check_token_ids(as_index_array(ids, "ids", ndim=1), len(counts), "ids")
    rng = check_generator(rng)
    threshold = check_real(threshold, "threshold", positive=True)
    freq = counts / np.sum(counts)
    keep = np.minimum(1.0, np.sqrt(threshold / freq))
    return ids[rng.random(len(ids)) < keep[ids]]


def _check_counts(counts) -> np.ndarray:
    """Word counts as float64: a 1-D array of non-negative numbers, not all zero."""
    c = as_float_array(counts, "counts").astype(np.float64, copy=False)
    if c.ndim != 1 or not np.all(c >= 0) or c.sum() == 0:
        raise ValueError(f"counts must be a 1-D array of non-negative numbers, not all zero; "
                         f"got shape {c.shape}")
    return c


# ----------------------------------------------------------------------------- pairs and negatives

def skipgram_pairs(ids, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (centre, context) pair whose positions are at most ``window`` apart.

    Position ``i`` pairs with positions ``i - window, ..., i - 1, i + 1, ..., i + window`` that
    exist. Pairs come grouped by offset (all offset -window pairs first), not position by
    position.

    Parameters
    ----------
    ids : array_like of int, shape (N,)
    window : int
        At least 1.

    Returns
    -------
    centers : numpy.ndarray of int64, shape (P,)
    contexts : numpy.ndarray of int64, shape (P,)
        ``P = 2 * sum(N - d for d in 1..window)`` (fewer pairs at the ends of the corpus).
    """
    ids = as_index_array(ids, "ids")
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D, got shape {ids.shape}")
    ids = ids.astype(np.int64, copy=False)
    window = check_positive_count(window, "window")
    centers, contexts = [], []
    for d in range(window, 0, -1):       # context before the centre
        centers.append(ids[d:])
        contexts.append(ids[:-d])
    for d in range(1, window + 1):       # context after the centre
        centers.append(ids[:-d])
        contexts.append(ids[d:])
    return np.concatenate(centers), np.concatenate(contexts)


def negative_sampling_distribution(counts, power: float = 0.75) -> np.ndarray:
    r"""The noise distribution of negative sampling: :math:`P(w) \propto \mathrm{count}(w)^{3/4}`.

    The power 3/4 flattens the unigram distribution: rare words are drawn more often than their
    frequency alone would give, frequent ones less.

    Parameters
    ----------
    counts : array_like, shape (V,)
    power : float

    Returns
    -------
    numpy.ndarray, shape (V,), float64
        Sums to one.
    """
    power = check_real(power, "power", non_negative=True)
    weights = as_float_array(counts, "counts").astype(np.float64, copy=False) ** power
    if weights.ndim != 1 or not np.all(weights >= 0) or weights.sum() == 0:
        raise ValueError(f"counts must be a 1-D array of non-negative numbers, not all zero; "
                         f"got shape {weights.shape}")
    return weights / weights.sum()


def negative_sampling_table(counts, power: float = 0.75, size: int = 1_000_000) -> np.ndarray:
    """A table in which word ``w`` fills a share of the entries equal to its noise probability.

    Drawing uniform positions of the table draws words from
    :func:`negative_sampling_distribution`, at the cost of one random integer each (word2vec's
    trick). Each word fills ``floor`` or ``ceil`` of ``size * P(w)`` entries.

    Parameters
    ----------
    counts : array_like, shape (V,)
    power : float
    size : int
        Length of the table.

    Returns
    -------
    numpy.ndarray of int64, shape (size,)
        Word ids, sorted.
    """
    size = check_positive_count(size, "size")
    p = negative_sampling_distribution(counts, power)
    # Entry j of the table holds the word whose cumulative share covers position (j + 0.5) / size.
    edges = np.cumsum(p)
    edges[-1] = 1.0
    return np.searchsorted(edges, (np.arange(size) + 0.5) / size, side="right").astype(np.int64)


def sample_negatives(table, shape, rng: np.random.Generator) -> np.ndarray:
    """Draw word ids from a negative-sampling table.

    Parameters
    ----------
    table : numpy.ndarray of int, shape (T,)
        From :func:`negative_sampling_table`.
    shape : tuple of int
        E.g. ``(B, K)``: ``K`` negatives for each of ``B`` pairs.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray of int64, shape ``shape``
    """
    table = as_index_array(table, "table", ndim=1)
    if len(table) == 0:
        raise ValueError("table is empty: build it with negative_sampling_table(counts)")
    rng = check_generator(rng)
    dims = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    for d in dims:
        check_count(d, f"shape {shape!r}: each size")
    return table[rng.integers(0, len(table), size=shape)]


# ----------------------------------------------------------------------------- loss and gradients

def _log_sigmoid(x):
    """log(sigmoid(x)) without overflow: -log(1 + exp(-x))."""
    return -np.logaddexp(0.0, -x)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def sgns_loss(v_c, u_o, u_neg) -> np.ndarray:
    r"""The skip-gram negative-sampling loss of each pair.

    .. math:: \ell = -\log\sigma(u_o \cdot v_c) - \sum_k \log\sigma(-u_{n_k} \cdot v_c)

    Parameters
    ----------
    v_c : array_like, shape (B, d)
        Input vectors of the centre words.
    u_o : array_like, shape (B, d)
        Output vectors of the context words.
    u_neg : array_like, shape (B, K, d)
        Output vectors of the ``K`` negative words of each pair.

    Returns
    -------
    numpy.ndarray, shape (B,)
    """
    v_c, u_o, u_neg = _check_sgns(v_c, u_o, u_neg)
    pos = np.sum(u_o * v_c, axis=-1)
    neg = np.einsum("bkd,bd->bk", u_neg, v_c)
    return -_log_sigmoid(pos) - np.sum(_log_sigmoid(-neg), axis=-1)


def sgns_gradients(v_c, u_o, u_neg) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""The loss of each pair and its gradients with respect to the three vectors.

    With :math:`s_o = u_o \cdot v_c` and :math:`s_k = u_{n_k} \cdot v_c`:

    .. math::
        \frac{\partial \ell}{\partial v_c} = (\sigma(s_o) - 1)\, u_o + \sum_k \sigma(s_k)\, u_{n_k},
        \quad \frac{\partial \ell}{\partial u_o} = (\sigma(s_o) - 1)\, v_c,
        \quad \frac{\partial \ell}{\partial u_{n_k}} = \sigma(s_k)\, v_c .

    Parameters
    ----------
    v_c : array_like, shape (B, d)
    u_o : array_like, shape (B, d)
    u_neg : array_like, shape (B, K, d)

    Returns
    -------
    loss : numpy.ndarray, shape (B,)
    grad_c : numpy.ndarray, shape (B, d)
    grad_o : numpy.ndarray, shape (B, d)
    grad_neg : numpy.ndarray, shape (B, K, d)
    """
    v_c, u_o, u_neg = _check_sgns(v_c, u_o, u_neg)
    pos = np.sum(u_o * v_c, axis=-1)
    neg = np.einsum("bkd,bd->bk", u_neg, v_c)
    loss = -_log_sigmoid(pos) - np.sum(_log_sigmoid(-neg), axis=-1)
    g_pos = _sigmoid(pos) - 1.0                       # (B,)
    g_neg = _sigmoid(neg)                              # (B, K)
    grad_c = g_pos[:, None] * u_o + np.einsum("bk,bkd->bd", g_neg, u_neg)
    grad_o = g_pos[:, None] * v_c
    grad_neg = g_neg[:, :, None] * v_c[:, None, :]
    return loss, grad_c, grad_o, grad_neg


def _check_sgns(v_c, u_o, u_neg):
    v_c, u_o, u_neg = (as_float_array(a, n) for a, n in ((v_c, "v_c"), (u_o, "u_o"), (u_neg, "u_neg")))
    if v_c.ndim != 2 or u_o.shape != v_c.shape or u_neg.ndim != 3 or \
            u_neg.shape[0] != v_c.shape[0] or u_neg.shape[2] != v_c.shape[1]:
        raise ValueError(f"expected v_c (B, d), u_o (B, d), u_neg (B, K, d); got v_c {v_c.shape}, "
                         f"u_o {u_o.shape}, u_neg {u_neg.shape}")
    return v_c, u_o, u_neg


def sgns_step(W_in, W_out, centers, contexts, negatives, lr: float) -> float:
    """One SGD step of skip-gram with negative sampling, in place; return the batch's mean loss.

    Each pair's gradients are scattered into the rows of the tables they came from (a word that
    occurs several times in the batch gets the sum), and the tables move by ``-lr`` times that.

    Parameters
    ----------
    W_in : numpy.ndarray, shape (V, d)
        Input (centre) vectors; updated in place.
    W_out : numpy.ndarray, shape (V, d)
        Output (context) vectors; updated in place.
    centers : numpy.ndarray of int, shape (B,)
    contexts : numpy.ndarray of int, shape (B,)
    negatives : numpy.ndarray of int, shape (B, K)
    lr : float
        Learning rate, per pair.

    Returns
    -------
    float
        The mean loss of the batch before the step.

    Raises
    ------
    ValueError
        When the tables are not float arrays of one shape (V, d), an id is not an integer in
        ``[0, V)``, the id arrays do not fit together, or ``lr`` is not a finite number >= 0.
    """
    for name, W in (("W_in", W_in), ("W_out", W_out)):
        if not isinstance(W, np.ndarray) or W.ndim != 2 or not np.issubdtype(W.dtype, np.floating):
            raise ValueError(f"{name} must be a 2-D float numpy array (V, d), updated in place; got "
                             f"{type(W).__name__} {getattr(W, 'shape', '')} {getattr(W, 'dtype', '')}")
    if W_out.shape != W_in.shape:
        raise ValueError(f"W_in and W_out must have the same shape (V, d), got {W_in.shape} and {W_out.shape}")
    V = W_in.shape[0]
    centers = check_token_ids(as_index_array(centers, "centers", ndim=1), V, "centers")
    contexts = check_token_ids(as_index_array(contexts, "contexts", ndim=1), V, "contexts")
    negatives = check_token_ids(as_index_array(negatives, "negatives", ndim=2), V, "negatives")
    if not len(centers) == len(contexts) == len(negatives):
        raise ValueError(f"centers (B,), contexts (B,) and negatives (B, K) need the same B, got "
                         f"{centers.shape}, {contexts.shape} and {negatives.shape}")
    lr = check_real(lr, "lr", non_negative=True)
    return _sgns_step(W_in, W_out, centers, contexts, negatives, lr)


def _sgns_step(W_in, W_out, centers, contexts, negatives, lr: float) -> float:
    """:func:`sgns_step` without the checks (the training loop's arguments are built, not given)."""
    loss, g_c, g_o, g_neg = sgns_gradients(W_in[centers], W_out[contexts], W_out[negatives])
    _scatter_add(W_in, centers, -lr * g_c)
    _scatter_add(W_out, np.concatenate([contexts, negatives.ravel()]),
                 -lr * np.concatenate([g_o, g_neg.reshape(-1, g_neg.shape[-1])]))
    return float(loss.mean())


def _scatter_add(W, rows, values):
    """``W[rows] += values`` with repeated rows summed, as ``np.add.at`` does.

    ``np.add.at`` on the flattened table takes its fast 1-D path, several times quicker than
    on rows.
    """
    d = W.shape[1]
    flat = (rows[:, None] * d + np.arange(d)).ravel()
    np.add.at(W.reshape(-1), flat, values.ravel())


@dataclass
class Word2Vec:
    """A trained skip-gram model: the vocabulary, both tables and the training record.

    Attributes
    ----------
    words : list of str, length V
    W_in : numpy.ndarray, shape (V, d)
        The word embeddings (input vectors).
    W_out : numpy.ndarray, shape (V, d)
        The output (context) vectors.
    losses : list of float
        Mean loss of every logged stretch of batches.
    seconds : float
        Training time.
    """
    words: list
    W_in: np.ndarray
    W_out: np.ndarray
    losses: list = field(default_factory=list)
    seconds: float = 0.0


def train_word2vec(tokens, rng: np.random.Generator, dim: int = 50, window: int = 3,
                   negatives: int = 5, epochs: int = 4, batch_size: int = 1024, lr: float = 0.05,
                   min_count: int = 5, max_vocab: int = 3000, subsample: float = 1e-3,
                   progress: bool = True) -> Word2Vec:
    """Train skip-gram with negative sampling on a list of tokens.

    Each epoch subsamples frequent words afresh, makes every (centre, context) pair within
    ``window``, shuffles them and runs :func:`sgns_step` on batches of ``batch_size``; the
    learning rate decays linearly to 1% of ``lr``. A ``tqdm`` bar shows the progress.

    Parameters
    ----------
    tokens : sequence of str
    rng : numpy.random.Generator
        The only source of randomness (initialisation, subsampling, shuffling, negatives).
    dim : int
        Embedding size d.
    window : int
        Context window on each side.
    negatives : int
        K, negative words per pair.
    epochs, batch_size : int
    lr : float
        Initial learning rate.
    min_count, max_vocab : int
        Vocabulary: words seen at least ``min_count`` times, at most ``max_vocab`` of them.
    subsample : float
        Threshold of :func:`subsample_frequent` (0 keeps every token).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Word2Vec
    """
    from tqdm.auto import tqdm

    tokens = _check_tokens(tokens)
    rng = check_generator(rng)
    dim, window = check_positive_count(dim, "dim"), check_positive_count(window, "window")
    negatives, epochs = check_count(negatives, "negatives"), check_count(epochs, "epochs")
    batch_size = check_positive_count(batch_size, "batch_size")
    lr = check_real(lr, "lr", non_negative=True)
    subsample = check_real(subsample, "subsample", non_negative=True)
    if max_vocab is not None:
        max_vocab = check_count(max_vocab, "max_vocab")
    start = time.perf_counter()
    words, counts = build_vocab(tokens, min_count, max_vocab)
    if not words:
        raise ValueError(f"no word occurs at least min_count={min_count} times in the {len(tokens)} "
                         f"tokens: lower min_count or pass a longer corpus")
    ids = encode(tokens, words)
    V = len(words)
    W_in = ((rng.random((V, dim)) - 0.5) / dim).astype(np.float64)
    W_out = np.zeros((V, dim))
    table = negative_sampling_table(counts)
    # Pairs per epoch are known only after subsampling; estimate the total for the schedule.
    keep = np.minimum(1.0, np.sqrt(subsample / (counts / counts.sum()))) if subsample else np.ones(V)
    per_epoch = int(2 * window * np.sum(keep[ids]))
    total = max(1, epochs * per_epoch // batch_size)
    losses, step, running = [], 0, []
    bar = tqdm(total=total, desc="word2vec", unit="batch", disable=not progress, mininterval=0.5)
    for _ in range(epochs):
        kept = subsample_frequent(ids, counts, rng, subsample) if subsample else ids
        centers, contexts = skipgram_pairs(kept, window)
        order = rng.permutation(len(centers))
        centers, contexts = centers[order], contexts[order]
        for b in range(0, len(centers), batch_size):
            c, o = centers[b:b + batch_size], contexts[b:b + batch_size]
            neg = sample_negatives(table, (len(c), negatives), rng)
            rate = lr * max(0.01, 1.0 - step / total)
            running.append(_sgns_step(W_in, W_out, c, o, neg, rate))
            step += 1
            if len(running) == 100:
                losses.append(float(np.mean(running)))
                running = []
                bar.update(100)
    bar.update(bar.total - bar.n if bar.total > bar.n else 0)
    bar.close()
    if running:
        losses.append(float(np.mean(running)))
    return Word2Vec(words, W_in, W_out, losses, time.perf_counter() - start)


# ----------------------------------------------------------------------------- using embeddings

def cosine_similarity(A, B=None) -> np.ndarray:
    r"""Cosine similarity of every row of ``A`` with every row of ``B``.

    .. math:: \cos(a, b) = \frac{a \cdot b}{\lVert a \rVert\, \lVert b \rVert}

    A zero row has similarity 0 with everything.

    Parameters
    ----------
    A : array_like, shape (N, d)
    B : array_like, shape (M, d), optional
        Defaults to ``A``.

    Returns
    -------
    numpy.ndarray, shape (N, M)
    """
    A = as_float_array(A, "A").astype(np.float64, copy=False)
    B = A if B is None else as_float_array(B, "B").astype(np.float64, copy=False)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[1]:
        raise ValueError(f"expected A (N, d) and B (M, d) with the same d; got A {A.shape}, B {B.shape}")

    def unit(X):
        n = np.linalg.norm(X, axis=1, keepdims=True)
        return X / np.where(n == 0, 1.0, n)

    return unit(A) @ unit(B).T


def nearest_neighbours(embeddings, index: int, k: int = 5, allowed=None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows most similar (by cosine) to row ``index``, itself excluded.

    Parameters
    ----------
    embeddings : array_like, shape (V, d)
    index : int
        The query row.
    k : int
    allowed : array_like of bool, shape (V,), optional
        Only rows where this is True are candidates (e.g. whole words, not word pieces).

    Returns
    -------
    indices : numpy.ndarray of int64, shape (k,)
        Most similar first; ties go to the smaller index.
    similarities : numpy.ndarray, shape (k,)

    Raises
    ------
    ValueError
        When ``embeddings`` is not (V, d), ``index`` is not an integer in ``[0, V)``, ``allowed``
        is not a boolean array of shape (V,), or ``k`` is more than the rows that can be
        neighbours (V - 1, fewer with ``allowed``).
    """
    E = as_float_array(embeddings, "embeddings")
    if E.ndim != 2:
        raise ValueError(f"embeddings must have shape (V, d), got shape {E.shape}")
    V = len(E)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < V:
        hint = " (to look a word up, use neighbour_table(words, embeddings, [word]))" \
            if isinstance(index, str) else ""
        raise ValueError(f"index must be an integer in [0, V) with V={V} (embeddings {E.shape}), "
                         f"got {index!r}{hint}")
    index = int(index)
    k = check_count(k, "k")
    candidates = np.ones(V, dtype=bool)
    if allowed is not None:
        allowed_arr = np.asarray(allowed)
        if allowed_arr.shape != (V,) or not (allowed_arr.dtype == bool or (
                np.issubdtype(allowed_arr.dtype, np.integer) and np.isin(allowed_arr, (0, 1)).all())):
            raise ValueError(f"allowed must be a boolean array of shape (V,) = ({V},), got shape "
                             f"{allowed_arr.shape} and dtype {allowed_arr.dtype}")
        candidates &= allowed_arr.astype(bool)
    candidates[index] = False
    n_candidates = int(candidates.sum())
    if k > n_candidates:
        where = f" of which {n_candidates} are allowed" if allowed is not None else ""
        raise ValueError(f"k={k} neighbours asked, but the vocabulary has V={V} rows{where}, so at most "
                         f"{n_candidates} can be neighbours of row {index} (itself excluded)")
    sims = cosine_similarity(E[index:index + 1], E)[0]
    sims[index] = -np.inf
    if allowed is not None:
        sims[~allowed_arr.astype(bool)] = -np.inf
    order = np.argsort(-sims, kind="stable")[:k]
    return order.astype(np.int64), sims[order]


def analogy(embeddings, a, b, c, k: int = 1, use_offset: bool = True) -> np.ndarray:
    r"""Answer "a is to b as c is to ?" by vector arithmetic (3CosAdd, Mikolov et al., 2013).

    With unit rows :math:`\hat w`, the answer is the row most cosine-similar to
    :math:`\hat b - \hat a + \hat c`, the three question words themselves excluded. With
    ``use_offset=False`` the query is :math:`\hat c` alone: the baseline that ignores the relation
    and answers with ``c``'s nearest neighbour (still excluding ``a``, ``b`` and ``c``).

    Parameters
    ----------
    embeddings : array_like, shape (V, d)
    a, b, c : int or array_like of int, shape (n,)
        Row indices of the question words, one question per position.
    k : int
        How many answers to return per question, best first.
    use_offset : bool
        False: the nearest-neighbour-of-``c`` baseline.

    Returns
    -------
    numpy.ndarray of int64, shape (n, k)
        Ties go to the smaller index.
    """
    E = as_float_array(embeddings, "embeddings")
    if E.ndim != 2:
        raise ValueError(f"embeddings must have shape (V, d), got shape {E.shape}")
    V = len(E)
    ids = []
    for name, x in (("a", a), ("b", b), ("c", c)):
        arr = np.atleast_1d(as_index_array(x, name))
        if arr.ndim != 1:
            raise ValueError(f"{name} must be an int or a 1-D array of ints, got shape {arr.shape}")
        check_token_ids(arr, V, name)
        ids.append(arr)
    if not len(ids[0]) == len(ids[1]) == len(ids[2]):
        raise ValueError(f"a, b and c must have the same length, got {len(ids[0])}, {len(ids[1])} "
                         f"and {len(ids[2])}")
    k = check_positive_count(k, "k")
    if k > V - 3:
        raise ValueError(f"k={k} answers asked, but only V - 3 = {V - 3} rows are not question words")
    norms = np.linalg.norm(E, axis=1, keepdims=True)
    U = E / np.where(norms == 0, 1.0, norms)
    a, b, c = ids
    query = U[b] - U[a] + U[c] if use_offset else U[c]
    sims = cosine_similarity(query, U)                           # (n, V)
    rows = np.arange(len(c))
    for excluded in (a, b, c):
        sims[rows, excluded] = -np.inf
    return np.argsort(-sims, axis=1, kind="stable")[:, :k].astype(np.int64)


def neighbour_table(words, embeddings, queries, k: int = 5, allowed=None) -> dict:
    """Nearest neighbours of several words, as words.

    Parameters
    ----------
    words : sequence of str, length V
    embeddings : array_like, shape (V, d)
    queries : sequence of str
        Words of ``words`` to look up.
    k : int
    allowed : array_like of bool, shape (V,), optional
        As in :func:`nearest_neighbours`.

    Returns
    -------
    dict
        ``{query: [(neighbour, cosine), ...]}``, ``k`` pairs each, most similar first.
    """
    words = _check_tokens(words, "words")
    queries = _check_tokens(queries, "queries")
    E = np.shape(embeddings)
    if len(E) != 2 or E[0] != len(words):
        raise ValueError(f"embeddings must have one row per word: {len(words)} words, embeddings of "
                         f"shape {E}")
    index = {w: i for i, w in enumerate(words)}
    missing = [q for q in queries if q not in index]
    if missing:
        raise ValueError(f"not in the vocabulary: {missing}")
    table = {}
    for q in queries:
        idx, sims = nearest_neighbours(embeddings, index[q], k, allowed)
        table[q] = [(words[i], float(s)) for i, s in zip(idx, sims)]
    return table


def pca_2d(X) -> np.ndarray:
    """Project rows onto their first two principal components.

    The rows are centred, and each component's sign is fixed so that its largest-magnitude
    loading is positive (the same picture on every machine).

    Parameters
    ----------
    X : array_like, shape (N, d)

    Returns
    -------
    numpy.ndarray, shape (N, 2)
    """
    X = as_float_array(X, "X").astype(np.float64, copy=False)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 2:
        raise ValueError(f"need at least 2 rows and 2 columns, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite: it holds NaN or infinite values")
    Xc = X - X.mean(axis=0)
    _, _, Vt = np.linalg.svd(Xc, full_matrices=False)
    comps = Vt[:2]
    signs = np.sign(comps[np.arange(2), np.argmax(np.abs(comps), axis=1)])
    return Xc @ (comps * signs[:, None]).T
