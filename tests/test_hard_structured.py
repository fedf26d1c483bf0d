"""Hard attention with REINFORCE and CRF (structured) attention, against brute force and exact gradients."""
import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlib.data.lookup import lookup_data, segment_data, segment_tokens_to_text
from attnlib.exercises import hard_structured as ex
from attnlib.experiments.hard_structured import (
    LookupModel,
    SegmentModel,
    attention_gradients,
    gradient_variance,
    lookup_loss,
)
from attnlib.torch import (
    CRFAttention,
    HardAttention,
    MovingAverageBaseline,
    MultiplicativeAttention,
    crf_log_partition,
    crf_marginals,
    reinforce_loss,
)


def brute_force(scores, A, mask):
    """log Z and marginals p(z_j = 1) by enumerating all assignments of the real positions."""
    idx = [j for j in range(len(scores)) if mask[j]]
    log_w, marg = [], []
    for z in itertools.product([0, 1], repeat=len(idx)):
        s = sum(scores[j] * zj for j, zj in zip(idx, z)) + sum(A[z[i - 1], z[i]] for i in range(1, len(z)))
        log_w.append(float(s))
        m = np.zeros(len(scores))
        m[[j for j, zj in zip(idx, z) if zj]] = 1
        marg.append(m)
    log_w = np.array(log_w)
    log_z = np.log(np.exp(log_w - log_w.max()).sum()) + log_w.max()
    return log_z, (np.exp(log_w - log_z)[:, None] * np.array(marg)).sum(0)


@settings(max_examples=25, deadline=None)
@given(L=st.integers(1, 8), seed=st.integers(0, 10_000), padded=st.booleans())
def test_crf_matches_brute_force(L, seed, padded):
    g = np.random.default_rng(seed)
    B = 3
    scores = g.normal(scale=2, size=(B, L))
    A = g.normal(scale=1.5, size=(2, 2))
    mask = np.ones((B, L), dtype=bool)
    if padded:
        mask[1, g.integers(0, L + 1):] = False                # right padding (maybe all of it)
        mask[2] = g.random(L) < 0.6                           # holes anywhere
    log_z = crf_log_partition(torch.from_numpy(scores), torch.from_numpy(A), torch.from_numpy(mask))
    marg = crf_marginals(torch.from_numpy(scores), torch.from_numpy(A), torch.from_numpy(mask))
    for b in range(B):
        ref_z, ref_m = brute_force(scores[b], A, mask[b])
        assert abs(float(log_z[b]) - ref_z) < 1e-10
        np.testing.assert_allclose(marg[b].numpy(), ref_m, atol=1e-10)
        assert np.all(marg[b].numpy()[~mask[b]] == 0)


def test_zero_transitions_give_sigmoids_and_float32_works():
    s = torch.randn(4, 7)
    p = crf_marginals(s, torch.zeros(2, 2))
    assert p.dtype == torch.float32
    torch.testing.assert_close(p, torch.sigmoid(s), atol=1e-6, rtol=1e-5)
    big = crf_marginals(s * 1e3, torch.randn(2, 2) * 1e3)
    assert torch.isfinite(big).all()


def test_gradient_of_log_partition_is_the_marginals():
    s = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    A = torch.randn(2, 2, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    grad, = torch.autograd.grad(crf_log_partition(s, A, mask).sum(), s)
    torch.testing.assert_close(grad, crf_marginals(s.detach(), A, mask), atol=1e-12, rtol=0)


def test_crf_gradcheck_float64():
    torch.manual_seed(0)
    s = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    A = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 1, 0, 1, 1]], dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda a, b: crf_marginals(a, b, mask), (s, A))
    assert torch.autograd.gradcheck(lambda a, b: crf_log_partition(a, b, mask), (s, A))
    att = CRFAttention(4, 3).double()
    q = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: att(a, b, mask[:2])[0], (q, k))


def test_crf_attention_context_and_normalisation():
    torch.manual_seed(1)
    q, k = torch.randn(2, 4), torch.randn(2, 5, 3)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    att = CRFAttention(4, 3)
    ctx, p = att(q, k, mask)
    torch.testing.assert_close(ctx, (p[..., None] * k).sum(1))
    att.normalize = True
    ctx_n, _ = att(q, k, mask)
    torch.testing.assert_close(ctx_n, ctx / p.sum(-1, keepdim=True))
    with pytest.raises(ValueError, match="mask"):
        att(q, k, mask[:, :3])


def test_hard_attention_context_is_exactly_one_encoder_state():
    torch.manual_seed(2)
    hard = HardAttention(MultiplicativeAttention(4, 6))
    q, k = torch.randn(50, 4), torch.randn(50, 7, 6)
    mask = torch.arange(7)[None, :] < torch.randint(1, 8, (50, 1))
    ctx, w, index, log_prob = hard(q, k, mask, sample=True)
    assert torch.equal(ctx, k[torch.arange(50), index])
    assert bool(mask[torch.arange(50), index].all())                # never a padded position
    torch.testing.assert_close(log_prob, torch.log(w[torch.arange(50), index]))
    _, _, greedy, _ = hard(q, k, mask, sample=False)
    assert torch.equal(greedy, w.argmax(-1))


def _toy(K=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(K, generator=g, dtype=torch.float64), torch.randn(K, generator=g, dtype=torch.float64) + 2


def _reinforce_samples(logits, r, n, baseline):
    """n one-sample REINFORCE gradients of E[r] w.r.t. the logits, shape (n, K).

    The one-sample estimate depends only on the sampled choice z, so it is computed once per
    choice with reinforce_loss (on a batch of one) and looked up for each of the n samples.
    """
    logits = logits.clone().requires_grad_()
    log_p = torch.log_softmax(logits, -1)
    per_choice = torch.stack([torch.autograd.grad(-reinforce_loss(log_p[k:k + 1], r[k:k + 1], baseline),
                                                  logits, retain_graph=True)[0]
                              for k in range(len(r))])
    z = torch.multinomial(torch.softmax(logits, -1).detach(), n, replacement=True)
    return per_choice[z]


def test_reinforce_is_unbiased_and_the_baseline_reduces_variance():
    torch.manual_seed(3)
    logits, r = _toy()
    p = torch.softmax(logits, -1)
    exact = p * (r - (p * r).sum())                          # d E[r] / d logits, by hand
    lg = logits.clone().requires_grad_()
    auto, = torch.autograd.grad((torch.softmax(lg, -1) * r).sum(), lg)
    torch.testing.assert_close(auto, exact)
    n = 20000
    for b in (0.0, float((p * r).sum())):
        g = _reinforce_samples(logits, r, n, b)
        se = g.std(0) / math.sqrt(n)
        assert bool(((g.mean(0) - exact).abs() < 5 * se + 1e-12).all()), (b, g.mean(0), exact, se)
    var_none = _reinforce_samples(logits, r, n, 0.0).var(0).sum()
    var_base = _reinforce_samples(logits, r, n, float((p * r).sum())).var(0).sum()
    assert var_base < 0.5 * var_none


def test_reinforce_loss_detaches_the_advantage_and_checks_shapes():
    lp = torch.log(torch.tensor([0.3, 0.6])).requires_grad_()
    r = torch.tensor([1.0, 2.0], requires_grad=True)
    loss = reinforce_loss(lp, r, 0.5)
    assert abs(loss.item() - (-((r - 0.5) * lp).mean()).item()) < 1e-7
    gr = torch.autograd.grad(loss, (lp, r), allow_unused=True)
    assert gr[1] is None
    with pytest.raises(ValueError, match="rewards"):
        reinforce_loss(lp, r[:1])


def test_moving_average_baseline():
    b = MovingAverageBaseline(0.5)
    assert float(b(torch.tensor([2.0, 4.0]))) == 3.0             # first call: the batch mean
    assert float(b(torch.tensor([5.0]))) == 3.0                  # value before the update
    assert float(b.value) == 4.0


def test_lookup_training_step_and_gradient_estimates():
    torch.manual_seed(4)
    data = lookup_data(200, seed=1)
    model = LookupModel(data.vocab_size, data.n_classes, 16, mode="hard")
    batch = data.batch(slice(0, 32))
    loss, (nll, rewards, log_prob) = lookup_loss(model, batch, MovingAverageBaseline(), return_parts=True)
    loss.backward()
    assert model.attention.W.weight.grad is not None and log_prob.shape == (32,)
    g = attention_gradients(model, data, n_draws=5, batch_size=8)
    assert g.shape == (5, 16 * 16)
    assert torch.equal(g, attention_gradients(model, data, n_draws=5, batch_size=8))   # seeded
    v = gradient_variance(g)
    assert v["variance"] > 0 and abs(v["variance"] - float(g.double().var(0).sum())) < 1e-12
    model.mode = "soft"
    assert lookup_loss(model, batch).requires_grad
    with pytest.raises(ValueError):
        model.mode = "medium"


def test_data_generators_are_deterministic_and_correct():
    a, b, c = lookup_data(100, seed=5), lookup_data(100, seed=5), lookup_data(100, seed=6)
    for k in a.tensors:
        assert torch.equal(a.tensors[k], b.tensors[k])
    assert not torch.equal(a.keys, c.keys)
    i = torch.arange(100)
    assert torch.equal(a.keys[i, a.position], a.query) and torch.equal(a.values[i, a.position], a.target)
    assert bool(a.mask[i, a.position].all())
    s1, s2 = segment_data(100, seed=5), segment_data(100, seed=5)
    for k in s1.tensors:
        assert torch.equal(s1.tensors[k], s2.tensors[k])
    for j in range(100):
        sym = segment_tokens_to_text(s1.tokens[j])
        inside = sym[sym.index("(") + 1:sym.index(")")]
        assert sum(int(d) for d in inside) == int(s1.target[j])
        assert s1.span[j].sum() == len(inside) + 2
    tr, te = s1.split(80)
    assert len(tr) == 80 and len(te) == 20
    assert len(s1.batches(32)) == 4


def test_segment_model_shapes():
    data = segment_data(10, seed=0)
    for kind in ("softmax", "sigmoid", "crf"):
        logits, w = SegmentModel(data.vocab_size, data.n_classes, 8, kind)(data.tokens, data.mask)
        assert logits.shape == (10, data.n_classes) and w.shape == data.tokens.shape
        assert bool((w[~data.mask] == 0).all())


def test_checkers_accept_solutions_and_name_mistakes():
    ex.reset()
    assert ex.check_reinforce_loss(lambda lp, r, b: -((r - b).detach() * lp).mean()).passed
    res = ex.check_reinforce_loss(lambda lp, r, b: -((r - b) * lp).mean())
    assert not res.passed and "detach" in res.message
    assert ex.check_reinforce_loss(lambda lp, r, b: ((r - b) * lp).mean()).mistake == "plus_sign"

    def good(s, A):
        alpha = torch.stack([torch.zeros_like(s[0]), s[0]])
        for x in s[1:]:
            alpha = torch.logsumexp(alpha[:, None] + A, dim=0) + torch.stack([torch.zeros_like(x), x])
        return torch.logsumexp(alpha, 0)

    def viterbi(s, A):
        alpha = torch.stack([torch.zeros_like(s[0]), s[0]])
        for x in s[1:]:
            alpha = (alpha[:, None] + A).max(0).values + torch.stack([torch.zeros_like(x), x])
        return alpha.max()

    assert ex.check_log_partition(good).passed
    assert ex.check_log_partition(viterbi).mistake == "max_not_logsumexp"
    assert ex.check_log_partition(lambda s, A: good(s, A.T)).mistake == "transposed"
    # the reference agrees with the CRF module
    s, A = torch.randn(6, dtype=torch.float64), torch.randn(2, 2, dtype=torch.float64)
    assert abs(float(good(s, A)) - float(crf_log_partition(s[None], A)[0])) < 1e-12
    ex.reset()
