"""Issue 11, chapters 0-3: the new catalogued mistakes, RoPE's two layouts, analogies.

Each new catalogued mistake is written here the way a learner would write it and must get its
own diagnosis; a correct answer written with plain Python loops must pass. RoPE's rotate-half
layout is compared with the implementation in `transformers` (LLaMA's), analogies with a brute
force over Python lists.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from attnlib.exercises import why_attention as ch1
from attnlib.exercises import word_embeddings as ch2


@pytest.fixture(autouse=True)
def _fresh():
    ch1.reset()
    ch2.reset()
    yield
    ch1.reset()
    ch2.reset()


# ----------------------------------------------------------------------------- ch1: global max

def softmax_global_max(scores, mask):
    """A learner's softmax that subtracts the max of the whole array, guarding empty rows."""
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    biggest = np.max(scores)
    e = np.exp(scores - (biggest if np.isfinite(biggest) else 0))
    total = np.sum(e, axis=-1, keepdims=True)
    total[total == 0] = 1
    return e / total


def softmax_global_max_unguarded(scores, mask):
    """The same without the guard: a row whose exps all underflow is 0/0."""
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    e = np.exp(scores - scores.max())
    return e / e.sum(axis=-1, keepdims=True)


def loop_softmax(scores, mask):
    """Row by row with Python floats; a row with no allowed key stays all zeros."""
    mask = np.ones(scores.shape, bool) if mask is None else np.broadcast_to(mask, scores.shape)
    out = np.zeros(scores.shape)
    for row in np.ndindex(*scores.shape[:-1]):
        allowed = [j for j in range(scores.shape[-1]) if mask[row + (j,)]]
        if allowed:
            top = max(scores[row + (j,)] for j in allowed)
            e = {j: math.exp(scores[row + (j,)] - top) for j in allowed}
            for j in allowed:
                out[row + (j,)] = e[j] / sum(e.values())
    return out


def loop_attention(Q, K, V, mask):
    """Scores, softmax and weighted sum with loops over every index."""
    batch = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    Q, K, V = (np.broadcast_to(a, batch + a.shape[-2:]) for a in (Q, K, V))
    d = Q.shape[-1]
    s = np.zeros(batch + (Q.shape[-2], K.shape[-2]))
    for b in np.ndindex(*batch):
        for i in range(Q.shape[-2]):
            for j in range(K.shape[-2]):
                s[b + (i, j)] = sum(Q[b + (i, t)] * K[b + (j, t)] for t in range(d)) / math.sqrt(d)
    w = loop_softmax(s, mask)
    out = np.zeros(batch + (Q.shape[-2], V.shape[-1]))
    for b in np.ndindex(*batch):
        for i in range(Q.shape[-2]):
            for j in range(K.shape[-2]):
                out[b + (i,)] += w[b + (i, j)] * V[b + (j,)]
    return out


def _attention_from(softmax_fn):
    return lambda Q, K, V, mask: softmax_fn(Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1]), mask) @ V


@pytest.mark.parametrize("fn, name", [(softmax_global_max, "global_max"),
                                      (softmax_global_max_unguarded, "global_max_unguarded")])
def test_global_max_is_named_in_weights_and_attention(fn, name):
    for result in (ch1.check_weights(fn), ch1.check_attention(_attention_from(fn))):
        assert result.status == "failed"
        assert result.mistake == name, result.message
        assert "each row's own max" in result.message and "axis=-1" in result.message
        assert "Values differ" not in result.message


def test_loop_softmax_and_attention_pass():
    assert ch1.check_weights(loop_softmax).passed
    assert ch1.check_attention(loop_attention).passed


# ----------------------------------------------------------------------------- ch2: norms, mean over K

def cosine_frobenius(A, B):
    """A learner's cosine that divides each matrix by its Frobenius norm (no axis)."""
    return (A / np.linalg.norm(A)) @ (B / np.linalg.norm(B)).T


def loop_cosine(A, B):
    """Cosine of every pair of rows, with loops; a zero row has similarity 0."""
    out = np.zeros((len(A), len(B)))
    for i, a in enumerate(A):
        for j, b in enumerate(B):
            na = math.sqrt(sum(x * x for x in a))
            nb = math.sqrt(sum(x * x for x in b))
            if na and nb:
                out[i, j] = sum(x * y for x, y in zip(a, b)) / (na * nb)
    return out


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def grad_mean_over_negatives(v_c, u_o, u_neg):
    """A learner's SGNS gradient that averages the negatives' terms instead of summing them."""
    s_o = (u_o * v_c).sum(axis=1)
    s_k = (u_neg * v_c[:, None, :]).sum(axis=2)
    return (sigmoid(s_o) - 1)[:, None] * u_o + np.mean(sigmoid(s_k)[:, :, None] * u_neg, axis=1)


def loop_grad(v_c, u_o, u_neg):
    """d loss / d v_c pair by pair, with Python floats."""
    sig = lambda x: 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))  # noqa: E731
    out = np.zeros(v_c.shape)
    for b in range(len(v_c)):
        s_o = sum(x * y for x, y in zip(u_o[b], v_c[b]))
        out[b] += (sig(s_o) - 1) * u_o[b]
        for u in u_neg[b]:
            out[b] += sig(sum(x * y for x, y in zip(u, v_c[b]))) * u
    return out


def test_frobenius_norm_is_named():
    result = ch2.check_cosine_matrix(cosine_frobenius)
    assert result.mistake == "frobenius", result.message
    assert "Frobenius" in result.message and "axis=1" in result.message


def test_mean_over_negatives_in_the_gradient_is_named():
    result = ch2.check_sgns_grad(grad_mean_over_negatives)
    assert result.mistake == "mean_over_k", result.message
    assert "SUMS" in result.message and "np.mean" in result.message


def test_loop_cosine_and_gradient_pass():
    assert ch2.check_cosine_matrix(loop_cosine).passed
    assert ch2.check_sgns_grad(loop_grad).passed


def test_loop_gradient_agrees_with_finite_differences():
    """The loop answer is itself right: central differences of the SGNS loss, written here."""
    rng = np.random.default_rng(3)
    v, u, un = rng.normal(size=(2, 4)), rng.normal(size=(2, 4)), rng.normal(size=(2, 3, 4))

    def loss(v):
        logsig = lambda x: -np.logaddexp(0, -x)  # noqa: E731
        return float(np.sum(-logsig((u * v).sum(1)) - logsig(-np.einsum("bkd,bd->bk", un, v)).sum(1)))
    num = np.zeros_like(v)
    for idx in np.ndindex(v.shape):
        h = np.zeros_like(v)
        h[idx] = 1e-6
        num[idx] = (loss(v + h) - loss(v - h)) / 2e-6
    np.testing.assert_allclose(loop_grad(v, u, un), num, atol=1e-6)


# ----------------------------------------------------------------------------- ch3: RoPE's two layouts

def test_rope_rotate_half_matches_transformers_llama():
    """attnlib's rotate-half RoPE is the layout of transformers' LLaMA (an independent implementation)."""
    torch = pytest.importorskip("torch")
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    from transformers import LlamaConfig

    from attnlib.numpy import rope_rotate_half
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2, 3, 7, 8))
    config = LlamaConfig(hidden_size=16, num_attention_heads=2, head_dim=8, rope_theta=10000.0,
                         max_position_embeddings=64)
    cos, sin = llama.LlamaRotaryEmbedding(config)(torch.tensor(x), torch.arange(7)[None])
    q, _ = llama.apply_rotary_pos_emb(torch.tensor(x), torch.tensor(x), cos.double(), sin.double())
    np.testing.assert_allclose(rope_rotate_half(x), q.numpy(), atol=1e-6)  # LLaMA's angles: float32
    # With float64 angles from the paper's formula, transformers' rotate_half agrees to rounding.
    theta = 10000.0 ** (-np.arange(0, 8, 2) / 8)
    ang = np.arange(7)[:, None] * np.concatenate([theta, theta])
    ref = x * np.cos(ang) + llama.rotate_half(torch.tensor(x)).numpy() * np.sin(ang)
    np.testing.assert_allclose(rope_rotate_half(x), ref, atol=1e-12)


def test_the_two_layouts_differ_by_a_permutation_and_give_the_same_scores():
    from attnlib.numpy import rope, rope_half_permutation, rope_rotate_half
    rng = np.random.default_rng(12)
    q, k = rng.normal(size=(2, 9, 6))
    perm = rope_half_permutation(6)
    assert perm.tolist() == [0, 2, 4, 1, 3, 5]
    np.testing.assert_allclose(rope_rotate_half(q[:, perm]), rope(q)[:, perm], atol=1e-12)
    np.testing.assert_allclose(rope_rotate_half(q[:, perm]) @ rope_rotate_half(k[:, perm]).T,
                               rope(q) @ rope(k).T, atol=1e-12)
    assert not np.allclose(rope_rotate_half(q), rope(q))  # without the permutation they differ


def test_rope_rotate_half_scores_depend_only_on_the_offset():
    from attnlib.numpy import rope_rotate_half
    rng = np.random.default_rng(13)
    q, k = rng.normal(size=(2, 1, 8))
    s = [float(rope_rotate_half(q, [m])[0] @ rope_rotate_half(k, [m - 3])[0]) for m in (3, 10, 400)]
    np.testing.assert_allclose(s, s[0], atol=1e-10)


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda N: N.rope_rotate_half(np.ones((3, 5))), ValueError, r"even"),
    (lambda N: N.rope_rotate_half(np.ones(4)), ValueError, r"x must have shape"),
    (lambda N: N.rope_rotate_half(np.ones((3, 4)), positions=[0, 1]), ValueError, r"positions .*\(3,\)"),
    (lambda N: N.rope_rotate_half(np.ones((3, 4)), base=-1), ValueError, r"base"),
    (lambda N: N.rope_half_permutation(5), ValueError, r"even"),
    (lambda N: N.rope_half_permutation(0), ValueError, r"\bd\b"),
    (lambda N: N.rope_half_permutation(2.5), ValueError, r"\bd\b"),
])
def test_rope_rotate_half_misuse(call, exc, pattern):
    import attnlib.numpy as N
    with pytest.raises(exc, match=pattern):
        call(N)


# ----------------------------------------------------------------------------- ch2: analogies

def _loop_analogy(E, a, b, c, use_offset=True):
    """3CosAdd with Python floats: unit rows, b - a + c, best cosine among rows other than a, b, c."""
    unit = []
    for row in E:
        n = math.sqrt(sum(x * x for x in row))
        unit.append([x / n for x in row])
    q = [ub - ua + uc for ua, ub, uc in zip(unit[a], unit[b], unit[c])] if use_offset else unit[c]
    nq = math.sqrt(sum(x * x for x in q))
    best, best_cos = None, -math.inf
    for i, u in enumerate(unit):
        if i in (a, b, c):
            continue
        cos = sum(x * y for x, y in zip(q, u)) / nq
        if cos > best_cos:
            best, best_cos = i, cos
    return best


def test_analogy_agrees_with_a_loop_and_solves_a_built_case():
    from attnlib.numpy import analogy
    rng = np.random.default_rng(21)
    E = rng.normal(size=(30, 6))
    a, b, c = rng.integers(30, size=(3, 40))
    keep = (a != b) & (b != c) & (a != c)
    a, b, c = a[keep], b[keep], c[keep]
    for use in (True, False):
        got = analogy(E, a, b, c, use_offset=use)[:, 0]
        want = [_loop_analogy(E, *q, use_offset=use) for q in zip(a, b, c)]
        assert got.tolist() == want
    # king - man + woman = queen, built exactly: royal and gender directions, unit rows
    e = np.eye(4)
    words = {"man": e[0], "woman": e[1], "king": (e[0] + e[2]) / np.sqrt(2),
             "queen": (e[1] + e[2]) / np.sqrt(2), "apple": e[3]}
    W = np.stack(list(words.values()))
    names = list(words)
    top = analogy(W, names.index("man"), names.index("king"), names.index("woman"), k=2)
    assert names[top[0, 0]] == "queen"


def test_analogy_never_answers_a_question_word_and_checks_input():
    import attnlib.numpy as N
    E = np.random.default_rng(22).normal(size=(6, 3))
    top = N.analogy(E, [0, 1], [1, 2], [2, 3], k=3)
    assert top.shape == (2, 3)
    for row, q in zip(top, ([0, 1, 2], [1, 2, 3])):
        assert not set(row) & set(q)
    for call, pattern in [(lambda: N.analogy(E, 0, 1, 9), r"\bc\b.*\[0, 6\)"),
                          (lambda: N.analogy(E, [0, 1], [1], [2, 3]), r"same length"),
                          (lambda: N.analogy(E, 0.5, 1, 2), r"\ba\b.*integers"),
                          (lambda: N.analogy(E, 0, 1, 2, k=4), r"k=4"),
                          (lambda: N.analogy(E[0], 0, 1, 2), r"embeddings must have shape")]:
        with pytest.raises(ValueError, match=pattern):
            call()


def test_relation_pairs_and_questions():
    from attnlib.experiments.word_embeddings import analogy_questions, relation_pairs, split_pairs
    words = ["the", "file", "files", "open", "opened", "close", "get", "set", "read", "write", "is"]
    rel = relation_pairs(words)
    assert rel["-s form"] == [("file", "files")]
    assert rel["-ed form"] == [("open", "opened")]
    assert ("get", "set") in rel["opposites"] and ("open", "close") in rel["opposites"]
    sel, held = split_pairs(rel["opposites"])
    assert not set(sel) & set(held) and len(sel) + len(held) == len(rel["opposites"])
    q = analogy_questions([("get", "set"), ("open", "close"), ("read", "write")], words)
    assert q.shape == (6, 4)
    assert [words[i] for i in q[0]] == ["get", "set", "open", "close"]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        analogy_questions([("get", "put")], words)


def test_analogy_accuracy_counts_hits_against_a_hand_count():
    from attnlib.experiments.word_embeddings import analogy_accuracy
    e = np.eye(5)
    W = np.stack([e[0], e[1], (e[0] + e[2]) / np.sqrt(2), (e[1] + e[2]) / np.sqrt(2), e[4]])
    # man:woman :: king:queen (right), man:king :: woman:queen (right), man:apple :: woman:? (wrong)
    acc = analogy_accuracy(W, [[0, 1, 2, 3], [0, 2, 1, 3], [0, 4, 1, 2]])
    assert acc["offset"] == pytest.approx(2 / 3)
    assert acc["questions"] == 3 and acc["chance"] == pytest.approx(1 / 2)


def test_random_pair_cosine_is_the_mean_cosine_of_the_drawn_pairs():
    import numpy as np
    import pytest as _pytest

    from attnlib.experiments.word_embeddings import random_pair_cosine
    from attnlib.numpy.embeddings import cosine_similarity

    M = np.random.default_rng(3).normal(size=(20, 5))
    rows = np.arange(3, 17)
    got = random_pair_cosine(M, rows, np.random.default_rng(7), pairs=400)
    a, b = rows[np.random.default_rng(7).integers(len(rows), size=(2, 400))]
    full = cosine_similarity(M)
    assert got == _pytest.approx(full[a, b].mean(), rel=1e-12)
    # identical rows: cosine 1 whatever the pairs
    assert random_pair_cosine(np.ones((4, 3)), np.arange(4), np.random.default_rng(0)) == _pytest.approx(1.0)
    with _pytest.raises(ValueError, match="at least 2"):
        random_pair_cosine(M, [1], np.random.default_rng(0))
