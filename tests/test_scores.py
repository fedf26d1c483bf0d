"""attnlib.numpy.scores against independent references: loops written here, torch ops,
finite differences and torch.autograd.functional.jacobian; plus the variance claim and the
exercise checkers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnlib.exercises import alignment_scores as ex
from attnlib.exercises.alignment_scores import _ADDITIVE_MISTAKES, _JACOBIAN_MISTAKES
from attnlib.numpy import (
    additive_scores,
    concat_scores,
    dot_product_variance,
    dot_scores,
    entropy,
    general_scores,
    scaled_dot_scores,
    softmax_jacobian,
    softmax_saturation,
)

FAST = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
T = torch.tensor


@st.composite
def qk(draw, same_dim=True):
    batch = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2))))
    L_q, L_k, d_q = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 6))
    d_k = d_q if same_dim else draw(st.integers(1, 6))
    h = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return (rng.normal(size=batch + (L_q, d_q)), rng.normal(size=batch + (L_k, d_k)),
            rng.normal(size=(d_q, d_k)), rng.normal(size=(d_q, h)), rng.normal(size=(d_k, h)),
            rng.normal(size=h))


def loop(q, k, score):
    """Apply score(q_vec, k_vec) to every pair with Python loops."""
    out = np.zeros(q.shape[:-2] + (q.shape[-2], k.shape[-2]))
    for b in np.ndindex(*q.shape[:-2]):
        for i in range(q.shape[-2]):
            for j in range(k.shape[-2]):
                out[b + (i, j)] = score(q[b + (i,)], k[b + (j,)])
    return out


def dot(a, b):
    return sum(float(x) * float(y) for x, y in zip(a, b))


@FAST
@given(qk())
def test_dot_and_scaled_dot_against_loops_and_torch(case):
    q, k, *_ = case
    d = q.shape[-1]
    np.testing.assert_allclose(dot_scores(q, k), loop(q, k, dot), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(scaled_dot_scores(q, k), loop(q, k, lambda a, b: dot(a, b) / math.sqrt(d)),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dot_scores(q, k), (T(q) @ T(k).transpose(-1, -2)).numpy(), rtol=1e-10, atol=1e-12)


@FAST
@given(qk(same_dim=False))
def test_general_against_loop_and_torch_bilinear(case):
    q, k, W, *_ = case
    ref = loop(q, k, lambda a, b: sum(a[i] * W[i, j] * b[j] for i in range(len(a)) for j in range(len(b))))
    np.testing.assert_allclose(general_scores(q, k, W), ref, rtol=1e-10, atol=1e-12)
    if q.ndim == 2:  # torch.nn.functional.bilinear over all pairs
        tq = T(q)[:, None, :].expand(-1, k.shape[0], -1)
        tk = T(k)[None, :, :].expand(q.shape[0], -1, -1)
        ref_t = torch.nn.functional.bilinear(tq, tk, T(W)[None])[..., 0]
        np.testing.assert_allclose(general_scores(q, k, W), ref_t.numpy(), rtol=1e-10, atol=1e-12)


@FAST
@given(qk(same_dim=False))
def test_additive_against_direct_and_torch(case):
    q, k, _, W_q, W_k, v = case
    ref = loop(q, k, lambda a, b: float(v @ np.tanh(a @ W_q + b @ W_k)))
    np.testing.assert_allclose(additive_scores(q, k, W_q, W_k, v), ref, rtol=1e-10, atol=1e-12)
    # torch: a Linear layer on the concatenation [q; k], tanh, and v (Luong's concat form).
    lin = torch.nn.Linear(q.shape[-1] + k.shape[-1], len(v), bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(T(np.concatenate([W_q, W_k]).T))
    tq = T(q)[..., :, None, :].expand(*q.shape[:-1], k.shape[-2], q.shape[-1])
    tk = T(k)[..., None, :, :].expand(*k.shape[:-2], q.shape[-2], k.shape[-2], k.shape[-1])
    ref_t = torch.tanh(lin(torch.cat([tq, tk], -1))) @ T(v)
    np.testing.assert_allclose(additive_scores(q, k, W_q, W_k, v), ref_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(concat_scores(q, k, np.concatenate([W_q, W_k]), v), ref, rtol=1e-10, atol=1e-12)


def test_float32_stays_float32():
    q = np.ones((2, 3), np.float32)
    assert dot_scores(q, q).dtype == np.float32 and scaled_dot_scores(q, q).dtype == np.float32
    assert softmax_jacobian(q).dtype == np.float32


@FAST
@given(st.integers(1, 6), st.integers(0, 2**16), st.floats(0.1, 5))
def test_softmax_jacobian_against_finite_differences_and_autograd(n, seed, scale):
    x = np.random.default_rng(seed).normal(scale=scale, size=n)
    J = softmax_jacobian(x)
    eps = 1e-6
    sm = lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum()  # noqa: E731
    fd = np.stack([(sm(x + eps * e) - sm(x - eps * e)) / (2 * eps) for e in np.eye(n)], axis=1)
    np.testing.assert_allclose(J, fd, atol=1e-8)
    ref = torch.autograd.functional.jacobian(lambda z: torch.softmax(z, -1), T(x))
    np.testing.assert_allclose(J, ref.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(J.sum(-1), 0, atol=1e-12)


def test_softmax_jacobian_batched_and_large():
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    J = softmax_jacobian(x)
    assert J.shape == (2, 3, 4, 4)
    np.testing.assert_allclose(J[1, 2], softmax_jacobian(x[1, 2]))
    big = softmax_jacobian(np.array([1e4, 0.0, -1e4]))
    assert np.isfinite(big).all() and np.abs(big).max() == 0


def test_variance_of_dot_grows_like_d_k():
    """Var(q.k) = d_k for unit-variance entries, within 5 standard errors of a sample variance."""
    n = 20_000
    d_ks = [1, 4, 16, 64, 256]
    var_dot, var_scaled = dot_product_variance(d_ks, n, np.random.default_rng(0))
    for d, vd, vs in zip(d_ks, var_dot, var_scaled):
        se = math.sqrt((2 * d * d + 6 * d) / n)  # E[(q.k)^4] = 3d^2 + 6d for normal entries
        assert abs(vd - d) < 5 * se, (d, vd)
        assert abs(vs - 1) < 5 * se / d
    # ...and it is not the wrong law (Var = d_k^2 or Var = 1 unscaled).
    assert var_dot[-1] > 200 and var_dot[-1] < 300


def test_saturation_without_scaling_and_not_with_it():
    r = softmax_saturation([4, 256], n_keys=16, n_samples=300, rng=np.random.default_rng(1))
    assert r["max_weight"]["dot"][1] > 0.8 > r["max_weight"]["scaled"][1]
    assert r["jacobian_norm"]["dot"][1] < 0.5 * r["jacobian_norm"]["scaled"][1]


def test_entropy_limits():
    assert entropy(np.array([0.0, 1.0, 0.0])) == 0
    assert entropy(np.full(8, 1 / 8)) == pytest.approx(math.log(8))
    p = np.array([[0.2, 0.8], [0.5, 0.5]])
    np.testing.assert_allclose(entropy(p), [-(0.2 * math.log(0.2) + 0.8 * math.log(0.8)), math.log(2)])


Z = np.zeros


@pytest.mark.parametrize("call, words", [
    (lambda: dot_scores(Z((3, 4)), Z((5, 6))), ["d_k=6", "d_k=4", "(5, 6)", "(3, 4)"]),
    (lambda: scaled_dot_scores(Z(4), Z((5, 4))), ["(4,)", "(..., L_q, d_q)"]),
    (lambda: dot_scores(Z((2, 3, 4)), Z((3, 5, 4))), ["(2, 3, 4)", "(3, 5, 4)"]),
    (lambda: general_scores(Z((3, 4)), Z((5, 6)), Z((6, 4))), ["W", "(6, 4)", "d_q=4", "d_k=6"]),
    (lambda: additive_scores(Z((3, 4)), Z((5, 6)), Z((4, 8)), Z((6, 7)), Z(8)), ["W_k", "(6, 7)", "h=8"]),
    (lambda: additive_scores(Z((3, 4)), Z((5, 6)), Z((5, 8)), Z((6, 8)), Z(8)), ["W_q", "(5, 8)", "d_q=4"]),
    (lambda: additive_scores(Z((3, 4)), Z((5, 6)), Z((4, 8)), Z((6, 8)), Z(7)), ["v", "(7,)", "h=8"]),
    (lambda: concat_scores(Z((3, 4)), Z((5, 6)), Z((9, 8)), Z(8)), ["(9, 8)", "d_q + d_k=10"]),
    (lambda: softmax_jacobian(np.float64(1.0)), ["(..., n)", "()"]),
])
def test_bad_input_raises_value_error_naming_shapes(call, words):
    with pytest.raises(ValueError) as err:
        call()
    for w in words:
        assert w in str(err.value), str(err.value)


# ----------------------------------------------------------------------------- checkers

@pytest.fixture(autouse=True)
def _fresh_chapter():
    ex.reset()
    yield
    ex.reset()


def learner_additive(q, k, W_q, W_k, v):
    a, b = q @ W_q, k @ W_k
    return np.tanh(a[..., :, None, :] + b[..., None, :, :]) @ v


def learner_jacobian(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    return np.einsum("...i,ij->...ij", p, np.eye(x.shape[-1])) - np.einsum("...i,...j->...ij", p, p)


def test_correct_answers_pass_and_report_counts(capsys):
    assert ex.check_additive_scores(learner_additive).passed
    assert ex.check_softmax_jacobian(learner_jacobian).passed
    ex.report()
    assert "2 of 3" in capsys.readouterr().out


@pytest.mark.parametrize("m", _ADDITIVE_MISTAKES, ids=lambda m: m.name)
def test_each_additive_mistake_gets_its_diagnosis(m):
    r = ex.check_additive_scores(m.fn)
    assert r.status == "failed" and r.mistake == m.name, r.message


@pytest.mark.parametrize("m", _JACOBIAN_MISTAKES, ids=lambda m: m.name)
def test_each_jacobian_mistake_gets_its_diagnosis(m):
    r = ex.check_softmax_jacobian(m.fn)
    assert r.status == "failed" and r.mistake == m.name, r.message


def test_learner_written_mistakes_are_named():
    def no_tanh(q, k, W_q, W_k, v):
        return ((q @ W_q)[..., :, None, :] + (k @ W_k)[..., None, :, :]) @ v
    assert ex.check_additive_scores(no_tanh).mistake == "missing_tanh"

    def keys_first(q, k, W_q, W_k, v):
        return np.tanh((q @ W_q)[..., None, :, :] + (k @ W_k)[..., :, None, :]) @ v
    r = ex.check_additive_scores(keys_first)
    assert r.mistake == "transposed" and "(..., L_q, L_k)" in r.message

    def stub(x):
        raise NotImplementedError
    assert ex.check_softmax_jacobian(stub).status == "unsolved"
