"""attnlib.numpy.attention_pooling against independent references, and its exercise checkers.

References: plain Python loops of the Nadaraya–Watson formula written here, torch autograd and
central finite differences for the bandwidth gradient, nearest neighbour and the mean as the
limits of the bandwidth, and torch's scaled dot-product attention for the projections.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnlib.exercises import queries_keys_values as ex
from attnlib.exercises.queries_keys_values import _PREDICT_MISTAKES, _WEIGHT_MISTAKES
from attnlib.numpy import (
    bandwidth_loss_and_grad,
    fit_bandwidth,
    gaussian_kernel_scores,
    gaussian_kernel_weights,
    nadaraya_watson,
    qkv_projections,
    scaled_dot_product_attention,
    toy_regression,
    toy_target,
)

FAST = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def loop_nadaraya_watson(xq, xk, yk, h):
    """f(x) = sum_j K(x, x_j) y_j / sum_j K(x, x_j) with K(u, v) = exp(-(u - v)^2 / (2 h^2)), in floats."""
    out = []
    for x in xq:
        kern = [math.exp(-(x - xj) ** 2 / (2 * h * h)) for xj in xk]
        out.append(sum(k * y for k, y in zip(kern, yk)) / sum(kern))
    return np.array(out)


positions = st.lists(st.floats(-3, 3), min_size=1, max_size=8).map(np.array)


@FAST
@given(xq=positions, xk=positions, h=st.floats(0.3, 5.0), seed=st.integers(0, 2**16))
def test_nadaraya_watson_matches_the_loop_formula(xq, xk, h, seed):
    yk = np.random.default_rng(seed).normal(size=xk.shape)
    pred, w = nadaraya_watson(xq, xk, yk, h)
    np.testing.assert_allclose(pred, loop_nadaraya_watson(xq, xk, yk, h), rtol=1e-10, atol=1e-12)
    assert w.shape == (len(xq), len(xk))
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-12)
    assert (w >= 0).all()


def test_batched_equals_one_at_a_time():
    rng = np.random.default_rng(0)
    xq, xk, yk = rng.normal(size=(3, 4)), rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    pred, w = nadaraya_watson(xq, xk, yk, 0.8)
    assert pred.shape == (3, 4) and w.shape == (3, 4, 6)
    for b in range(3):
        np.testing.assert_allclose(pred[b], loop_nadaraya_watson(xq[b], xk[b], yk[b], 0.8), rtol=1e-10)


def test_scores_are_minus_squared_distance_over_two_h_squared():
    s = gaussian_kernel_scores(np.array([1.0]), np.array([1.0, 3.0, -1.0]), 2.0)
    np.testing.assert_allclose(s, [[0.0, -0.5, -0.5]])


def test_small_bandwidth_is_nearest_neighbour_lookup():
    rng = np.random.default_rng(1)
    xk = np.sort(rng.uniform(0, 5, 20))
    yk = rng.normal(size=20)
    xq = rng.uniform(0, 5, 30)
    pred, w = nadaraya_watson(xq, xk, yk, 1e-4)
    nearest = np.array([yk[np.argmin(np.abs(x - xk))] for x in xq])
    assert np.isfinite(pred).all()
    np.testing.assert_allclose(pred, nearest, atol=1e-9)
    np.testing.assert_allclose(w.max(-1), 1.0, atol=1e-9)  # one-hot rows: a hard lookup


def test_large_bandwidth_is_the_mean():
    rng = np.random.default_rng(2)
    xk, yk, xq = rng.uniform(0, 5, 15), rng.normal(size=15), rng.uniform(0, 5, 7)
    pred, w = nadaraya_watson(xq, xk, yk, 1e5)
    np.testing.assert_allclose(pred, np.full(7, yk.mean()), atol=1e-8)
    np.testing.assert_allclose(w, 1 / 15, atol=1e-9)


def test_mask_leaves_points_out():
    x = np.array([0.0, 1.0, 2.0])
    y = np.array([1.0, 2.0, 3.0])
    pred, w = nadaraya_watson(x, x, y, 1e-3, mask=~np.eye(3, dtype=bool))
    assert np.all(np.diag(w) == 0)
    # Point 0's nearest other point is 1 (y = 2); point 1 is equidistant from 0 and 2.
    np.testing.assert_allclose(pred, [2.0, 2.0, 2.0], atol=1e-9)


def test_float32_stays_float32():
    x = np.linspace(0, 1, 5, dtype=np.float32)
    pred, w = nadaraya_watson(x, x, x, 0.5)
    assert pred.dtype == np.float32 and w.dtype == np.float32


@pytest.mark.parametrize("h", [0.15, 0.5, 2.0])
@pytest.mark.parametrize("loo", [False, True])
def test_bandwidth_gradient_matches_finite_differences_and_autograd(h, loo):
    rng = np.random.default_rng(3)
    x, y = toy_regression(25, rng)
    xq, tq = (x, y) if loo else toy_regression(10, rng)
    mask = ~np.eye(25, dtype=bool) if loo else None
    loss, grad = bandwidth_loss_and_grad(xq, tq, x, y, h, mask=mask)
    eps = 1e-6 * h
    lp, _ = bandwidth_loss_and_grad(xq, tq, x, y, h + eps, mask=mask)
    lm, _ = bandwidth_loss_and_grad(xq, tq, x, y, h - eps, mask=mask)
    assert grad == pytest.approx((lp - lm) / (2 * eps), rel=1e-5, abs=1e-9)
    # autograd through an independent torch implementation of the same loss
    ht = torch.tensor(h, dtype=torch.float64, requires_grad=True)
    s = -(torch.tensor(xq)[:, None] - torch.tensor(x)[None, :]) ** 2 / (2 * ht**2)
    if mask is not None:
        s = s.masked_fill(torch.tensor(~mask), float("-inf"))
    f = torch.softmax(s, -1) @ torch.tensor(y)
    tl = ((f - torch.tensor(tq)) ** 2).mean()
    tl.backward()
    assert loss == pytest.approx(tl.item(), rel=1e-12)
    assert grad == pytest.approx(ht.grad.item(), rel=1e-9, abs=1e-12)


def test_fit_bandwidth_lowers_the_leave_one_out_loss():
    rng = np.random.default_rng(4)
    x, y = toy_regression(60, rng)
    h, hist = fit_bandwidth(x, y, bandwidth=2.0, lr=0.5, steps=60)
    assert hist["loss"][-1] < 0.6 * hist["loss"][0]
    assert hist["bandwidth"].shape == (61,) and h == hist["bandwidth"][-1]
    # At the optimum the gradient (nearly) vanishes.
    _, g = bandwidth_loss_and_grad(x, y, x, y, h, mask=~np.eye(60, dtype=bool))
    assert abs(g * h) < 1e-2


def test_toy_regression_is_seeded_and_sorted():
    a = toy_regression(10, np.random.default_rng(7))
    b = toy_regression(10, np.random.default_rng(7))
    np.testing.assert_array_equal(a[0], b[0])
    assert np.all(np.diff(a[0]) >= 0)
    np.testing.assert_allclose(toy_target([0.0, 1.0]), [0.0, 2 * math.sin(1.0) + 1.0])


def test_qkv_projections_feed_self_attention_like_torch():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2, 4, 6))
    Wq, Wk, Wv = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)), rng.normal(size=(6, 5))
    Q, K, V = qkv_projections(X, Wq, Wk, Wv)
    out, _ = scaled_dot_product_attention(Q, K, V)
    Xt = torch.tensor(X)
    ref = F.scaled_dot_product_attention(Xt @ torch.tensor(Wq), Xt @ torch.tensor(Wk), Xt @ torch.tensor(Wv))
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("call, words", [
    (lambda: nadaraya_watson(np.zeros(3), np.zeros(4), np.zeros(5), 1.0), ["(5,)", "(4,)"]),
    (lambda: gaussian_kernel_weights(np.zeros((2, 3)), np.zeros((3, 4)), 1.0), ["(2, 3)", "(3, 4)"]),
    (lambda: gaussian_kernel_weights(np.float64(1.0), np.zeros(4), 1.0), ["(..., L_q)", "()"]),
    (lambda: gaussian_kernel_weights(np.zeros(3), np.zeros(4), 0.0), ["positive"]),
    (lambda: gaussian_kernel_weights(np.zeros(3), np.zeros(4), np.ones(2)), ["(2,)"]),
    (lambda: bandwidth_loss_and_grad(np.zeros(3), np.zeros(2), np.zeros(4), np.zeros(4), 1.0), ["(2,)", "(3,)"]),
    (lambda: qkv_projections(np.zeros((4, 6)), np.zeros((5, 3)), np.zeros((6, 3)), np.zeros((6, 3))),
     ["W_q", "(5, 3)", "d_model=6"]),
    (lambda: qkv_projections(np.zeros((4, 6)), np.zeros((6, 3)), np.zeros((6, 2)), np.zeros((6, 3))),
     ["(6, 3)", "(6, 2)"]),
])
def test_bad_input_raises_value_error_naming_shapes(call, words):
    with pytest.raises(ValueError) as err:
        call()
    for w in words:
        assert w in str(err.value)


# ----------------------------------------------------------------------------- checkers

@pytest.fixture(autouse=True)
def _fresh_chapter():
    ex.reset()
    yield
    ex.reset()


def learner_weights(xq, xk, h):
    """Written the way the notebook's solution is, independently of attnlib."""
    s = -(xq[..., :, None] - xk[..., None, :]) ** 2 / (2 * h**2)
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def learner_predict(xq, xk, yk, h):
    return np.sum(learner_weights(xq, xk, h) * yk[..., None, :], axis=-1)


def test_correct_answers_pass_and_report_counts(capsys):
    assert ex.check_kernel_weights(learner_weights).passed
    assert ex.check_nadaraya_watson(learner_predict).passed
    ex.report()
    assert "2 of 3" in capsys.readouterr().out


@pytest.mark.parametrize("m", _WEIGHT_MISTAKES, ids=lambda m: m.name)
def test_each_weight_mistake_gets_its_diagnosis(m):
    r = ex.check_kernel_weights(m.fn)
    assert r.status == "failed" and r.mistake == m.name, r.message


@pytest.mark.parametrize("m", _PREDICT_MISTAKES, ids=lambda m: m.name)
def test_each_prediction_mistake_gets_its_diagnosis(m):
    r = ex.check_nadaraya_watson(m.fn)
    assert r.status == "failed" and r.mistake == m.name, r.message


def test_learner_style_mistakes_are_named():
    # The textbook formula without max-subtraction, written as a learner would.
    def sum_all(xq, xk, h):
        e = np.exp(-(xq[..., :, None] - xk[..., None, :]) ** 2 / (2 * h**2))
        return e / e.sum(-1, keepdims=True)  # no max-subtraction: NaN at h = 0.01
    r = ex.check_kernel_weights(sum_all)
    assert r.mistake == "overflow" and "0 by 0" in r.message, r.message

    def stub(*args):
        raise NotImplementedError
    assert ex.check_nadaraya_watson(stub).status == "unsolved"
