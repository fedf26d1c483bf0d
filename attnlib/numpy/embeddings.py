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
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
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
    ids = np.asarray(ids)
    if ids.ndim != 1 or (ids.size and (ids.min() < 0 or ids.max() >= vocab_size)):
        raise ValueError(f"ids must be a 1-D array of integers in [0, {vocab_size}), got shape {ids.shape}")
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
    ids = np.asarray(ids)
    freq = np.asarray(counts, dtype=np.float64) / np.sum(counts)
    keep = np.minimum(1.0, np.sqrt(threshold / freq))
    return ids[rng.random(len(ids)) < keep[ids]]


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
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D, got shape {ids.shape}")
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
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
    weights = np.asarray(counts, dtype=np.float64) ** power
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
    v_c, u_o, u_neg = (np.asarray(a) for a in (v_c, u_o, u_neg))
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
    """
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

    start = time.perf_counter()
    words, counts = build_vocab(tokens, min_count, max_vocab)
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
            running.append(sgns_step(W_in, W_out, c, o, neg, rate))
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
    A = np.asarray(A, dtype=np.float64)
    B = A if B is None else np.asarray(B, dtype=np.float64)
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
    """
    E = np.asarray(embeddings)
    if E.ndim != 2 or not 0 <= index < len(E):
        raise ValueError(f"need embeddings (V, d) and 0 <= index < V; got shape {E.shape}, index {index}")
    sims = cosine_similarity(E[index:index + 1], E)[0]
    sims[index] = -np.inf
    if allowed is not None:
        sims[~np.asarray(allowed, dtype=bool)] = -np.inf
    order = np.argsort(-sims, kind="stable")[:k]
    return order.astype(np.int64), sims[order]


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
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 2:
        raise ValueError(f"need at least 2 rows and 2 columns, got shape {X.shape}")
    Xc = X - X.mean(axis=0)
    _, _, Vt = np.linalg.svd(Xc, full_matrices=False)
    comps = Vt[:2]
    signs = np.sign(comps[np.arange(2), np.argmax(np.abs(comps), axis=1)])
    return Xc @ (comps * signs[:, None]).T
