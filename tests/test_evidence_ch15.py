"""Chapter 15's evidence: n-gram baselines, top-p sampling, same-target context-length losses, whole-text loss.

Every reference here is computed independently of the code under test: n-gram probabilities by
hand and with ``collections.Counter``, the nucleus by a plain Python loop over sorted floats, the
losses with ``torch.nn.functional.cross_entropy`` window by window.
"""
import math
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnlib.experiments.gpt import (
    context_length_losses,
    ngram_loss,
    ngram_losses,
    same_target_windows,
    text_loss,
)
from attnlib.torch import GPT, next_token_probs, sample_next

# ----------------------------------------------------------------------------- n-gram baselines


def test_ngram_loss_against_hand_counts():
    a, b = 0, 1
    train = np.array([a, b, a, b])          # "abab"
    # unigram: N(a) = N(b) = 2 of 4, add 0.1: p = 2.1 / 4.2 = 1/2 for both
    assert math.isclose(ngram_loss(train, np.array([a, b, b]), 1, 2), math.log(2), rel_tol=1e-12)
    # bigram: N(ab) = 2, N(ba) = 1, histories (followed by a token) N(a) = 2, N(b) = 1
    # eval "abb": p(b|a) = 2.1 / 2.2, p(b|b) = 0.1 / 1.2
    want = -(math.log(2.1 / 2.2) + math.log(0.1 / 1.2)) / 2
    assert math.isclose(ngram_loss(train, np.array([a, b, b]), 2, 2), want, rel_tol=1e-12)
    # trigram: N(aba) = N(bab) = 1, N(ab) = N(ba) = 1 as histories; eval "abab": p = 1.1 / 1.2 twice
    assert math.isclose(ngram_loss(train, np.array([a, b, a, b]), 3, 2), -math.log(1.1 / 1.2), rel_tol=1e-12)
    # alpha = 1 (Laplace), an unseen history: p = 1 / V
    assert math.isclose(ngram_loss(np.array([0, 0, 0]), np.array([1, 2]), 2, 3, alpha=1.0), math.log(3),
                        rel_tol=1e-12)


def _counter_ngram(train, ev, n, V, alpha, start):
    joint = Counter(tuple(train[i:i + n]) for i in range(len(train) - n + 1))
    hist = Counter(tuple(train[i:i + n - 1]) for i in range(len(train) - n + 1))
    total = 0.0
    for t in range(start, len(ev)):
        h = tuple(ev[t - n + 1:t])
        total -= math.log((joint[h + (ev[t],)] + alpha) / (hist[h] + alpha * V))
    return total / (len(ev) - start)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_ngram_loss_matches_a_counter_implementation(n):
    rng = np.random.default_rng(n)
    train = rng.integers(0, 4, 300)
    ev = rng.integers(0, 4, 80)
    for alpha in (0.1, 0.5):
        got = ngram_loss(train, ev, n, 4, alpha=alpha, start=3)
        assert math.isclose(got, _counter_ngram(list(train), list(ev), n, 4, alpha, 3), rel_tol=1e-10)


def test_ngram_probabilities_sum_to_one():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 3, 200)
    for n in (1, 2, 3):
        for hist in ([0, 1], [2, 2], [1, 0]):
            probs = [math.exp(-ngram_loss(train, np.array(hist + [c]), n, 3, start=2)) for c in range(3)]
            assert math.isclose(sum(probs), 1.0, rel_tol=1e-12)


def test_ngram_losses_score_the_same_tokens_and_fall_with_order_on_structured_text():
    text = np.array([0, 1, 2, 3] * 200)           # fully predictable from one token back
    got = ngram_losses(text[:600], text[600:], 4, orders=(1, 2, 3))
    assert got[1] > 1.3 and got[2] < 0.01 and got[3] < 0.01
    assert math.isclose(got[2], ngram_loss(text[:600], text[600:], 2, 4, start=2))


def test_ngram_loss_rejects_bad_input():
    ids = np.arange(5) % 3
    with pytest.raises(ValueError, match="n must be a positive"):
        ngram_loss(ids, ids, 0, 3)
    with pytest.raises(ValueError, match="alpha"):
        ngram_loss(ids, ids, 2, 3, alpha=0)
    with pytest.raises(ValueError, match=r"token ids in \[0, 2\)"):
        ngram_loss(ids, ids, 2, 2)
    with pytest.raises(ValueError, match="start=0"):
        ngram_loss(ids, ids, 3, 3, start=0)
    with pytest.raises(ValueError, match="1-D"):
        ngram_loss(ids.reshape(1, 5), ids, 2, 3)
    with pytest.raises(ValueError, match="orders"):
        ngram_losses(ids, ids, 3, orders=())


# ----------------------------------------------------------------------------- top-p (nucleus)


def _nucleus_by_hand(logits, temperature, top_k, top_p):
    """softmax(z / T), keep the top k, then the fewest most likely whose sum reaches top_p; renormalise."""
    z = [x / temperature for x in logits]
    order = sorted(range(len(z)), key=lambda i: -z[i])
    if top_k is not None:
        order = order[:top_k]
    m = max(z[i] for i in order)
    w = {i: math.exp(z[i] - m) for i in order}
    s = sum(w.values())
    kept, mass = [], 0.0
    for i in order:
        if mass >= top_p:
            break
        kept.append(i)
        mass += w[i] / s
    s2 = sum(w[i] for i in kept)
    return [w[i] / s2 if i in kept else 0.0 for i in range(len(z))]


def test_top_p_on_five_logits_by_hand():
    z = torch.tensor([2.0, 1.0, 0.5, -1.0, 3.0], dtype=torch.float64)
    # probabilities 0.2294, 0.0844, 0.0512, 0.0114, 0.6236; cumulative in order 4, 0, 1, 2, 3:
    # 0.6236, 0.8530, 0.9374, 0.9886, 1
    for p, kept in ((0.5, {4}), (0.62, {4}), (0.7, {4, 0}), (0.9, {4, 0, 1}), (0.95, {4, 0, 1, 2}),
                    (0.999, {0, 1, 2, 3, 4}), (1.0, {0, 1, 2, 3, 4})):
        probs = next_token_probs(z, 1.0, None, p)
        assert set(torch.nonzero(probs).flatten().tolist()) == kept, p
        e = torch.exp(z[sorted(kept)])
        assert torch.allclose(probs[sorted(kept)], e / e.sum(), atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_top_p_matches_a_loop_over_sorted_probabilities(seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, 9, generator=g, dtype=torch.float64) * 2
    for T, k, p in ((1.0, None, 0.8), (0.7, None, 0.5), (1.5, 5, 0.9), (1.0, 3, 0.3), (2.0, None, 0.99)):
        got = next_token_probs(logits, T, k, p)
        want = torch.tensor([_nucleus_by_hand(row.tolist(), T, k, p) for row in logits], dtype=torch.float64)
        assert (got - want).abs().max() < 1e-12
        kept = got > 0
        # the nucleus holds at least top_p of the (top-k) mass, and is minimal: without its least
        # likely token it would hold less
        full = next_token_probs(logits, T, k)
        mass = (full * kept).sum(-1)
        least = torch.where(kept, full, torch.full_like(full, 2.0)).amin(-1)
        assert bool((mass >= p - 1e-12).all()) and bool((mass - least < p).all())


def test_top_p_sampling_draws_only_from_the_nucleus():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, 3.0]], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_next(logits, 1.0, None, g, top_p=0.9) for _ in range(3000)])[:, 0]
    freq = torch.bincount(draws, minlength=5).double() / 3000
    assert freq[2] == 0 and freq[3] == 0
    assert (freq - next_token_probs(logits, 1.0, None, 0.9)[0]).abs().max() < 0.04


def test_generate_with_top_p():
    torch.manual_seed(0)
    m = GPT(7, 8, 16, 2, 1).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(6.0 if p.dim() > 1 else 1.0)
    prompt = torch.tensor([[1, 2, 3]])
    greedy = m.generate(prompt, 12, temperature=0)
    tiny = m.generate(prompt, 12, temperature=1.0, top_p=1e-9, generator=torch.Generator().manual_seed(0))
    assert torch.equal(greedy, tiny)   # the nucleus of a tiny top_p is the most likely token
    full = m.generate(prompt, 12, 1.0, top_p=1.0, generator=torch.Generator().manual_seed(1))
    plain = m.generate(prompt, 12, 1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(full, plain)
    # every sampled token lies in the nucleus of the logits it was sampled from, cached or not
    for use_cache in (True, False):
        toks, logits = m.generate(prompt, 20, 1.0, top_p=0.6, use_cache=use_cache, return_logits=True,
                                  generator=torch.Generator().manual_seed(2))
        allowed = next_token_probs(logits.double(), 1.0, None, 0.6) > 0
        assert bool(allowed.gather(-1, toks[:, 3:, None]).all())


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.5, float("nan"), float("inf"), "0.5", True])
def test_top_p_entrance_checks(bad):
    m = GPT(7, 8, 16, 2, 1).eval()
    with pytest.raises((ValueError, TypeError), match="top_p"):
        next_token_probs(torch.zeros(2, 7), 1.0, None, bad)
    with pytest.raises((ValueError, TypeError), match="top_p"):
        sample_next(torch.zeros(2, 7), 1.0, None, top_p=bad)
    with pytest.raises((ValueError, TypeError), match="top_p"):
        m.generate(torch.zeros(1, 2, dtype=torch.long), 3, top_p=bad)


# ----------------------------------------------------------------------------- context-length losses


def test_same_target_windows_keep_the_targets_and_grow_the_context():
    ids = np.arange(1000)
    w = same_target_windows(ids, [8, 16, 32], num_blocks=5, score_last=4, seed=3)
    for L, (x, y) in w.items():
        assert x.shape == y.shape == (5, L)
        assert np.array_equal(y, x + 1)                     # y is x shifted by one
        assert np.array_equal(y[:, -4:], w[8][1][:, -4:])   # the same scored characters
        assert np.array_equal(x[:, -8:], w[8][0])           # the longer window extends to the left


def _loss_by_hand(model, x, y, S):
    with torch.no_grad():
        losses = [F.cross_entropy(model(torch.as_tensor(x[i:i + 1]))[0, -S:], torch.as_tensor(y[i, -S:]))
                  for i in range(len(x))]
    return float(torch.stack(losses).mean())


def test_context_length_losses_score_the_same_characters():
    torch.manual_seed(0)
    ids = np.random.default_rng(0).integers(0, 7, 500)
    models = {k: GPT(7, 8, 16, 2, 1, positions=k).eval() for k in ("learned", "rope", "alibi")}
    got = context_length_losses(models, ids, [8, 16], num_blocks=6, seed=1, last_only=4)
    w = same_target_windows(ids, [8, 16], 6, 4, seed=1)
    for kind, m in models.items():
        assert math.isclose(got[kind][8], _loss_by_hand(m, *w[8], 4), rel_tol=1e-5)
        if kind == "learned":
            assert math.isnan(got[kind][16])
        else:
            assert math.isclose(got[kind][16], _loss_by_hand(m, *w[16], 4), rel_tol=1e-5)
    with pytest.raises(ValueError, match="score_last"):
        same_target_windows(ids, [8, 16], 6, 9)


def test_text_loss_scores_consecutive_windows():
    torch.manual_seed(0)
    m = GPT(5, 6, 8, 2, 1).eval()
    ids = np.random.default_rng(1).integers(0, 5, 40)       # 6 windows of 6, targets ids[1:37]
    by_hand = []
    with torch.no_grad():
        for s in range(0, 36, 6):
            logits = m(torch.as_tensor(ids[None, s:s + 6]))[0]
            by_hand.append(F.cross_entropy(logits, torch.as_tensor(ids[s + 1:s + 7]), reduction="sum"))
    assert math.isclose(text_loss(m, ids, batch_size=4), float(sum(by_hand)) / 36, rel_tol=1e-6)


def test_new_functions_check_their_input():
    from attnlib.data import char_corpus
    from attnlib.experiments.gpt import sample_word_statistics

    corpus = char_corpus(max_chars=2000)
    m = GPT(27, 8, 16, 2, 1)
    small = GPT(corpus.vocab_size, 8, 16, 2, 1)
    with pytest.raises(TypeError, match="model must be an attnlib.torch.GPT"):
        text_loss("not a model", np.arange(20) % 27)
    with pytest.raises(ValueError, match="longer than block_size"):
        text_loss(m, np.arange(5) % 27)
    with pytest.raises(ValueError, match=r"token ids in \[0, 27\)"):
        text_loss(m, np.arange(40))
    with pytest.raises(ValueError, match="num_samples must be at least 2"):
        sample_word_statistics(small, corpus, "the ", [(1.0, None, None)], num_samples=1)
    with pytest.raises(ValueError, match="top_p"):
        sample_word_statistics(small, corpus, "the ", [(1.0, None, 1.5)], num_samples=2, new_tokens=3)
    with pytest.raises(TypeError, match=r"models\['x'\] must be an attnlib.torch.GPT"):
        context_length_losses({"x": 3}, np.arange(100) % 27, [8])
    stats = sample_word_statistics(small, corpus, "the ", [(1.0, None, 0.9), (0.0, None, None)], num_samples=3,
                                   new_tokens=20)
    assert set(stats) == {(1.0, None, 0.9), (0.0, None, None)}
    greedy = stats[(0.0, None, None)]
    assert greedy["std_known"] == 0 and greedy["std_rare"] == 0   # greedy: every sample the same
