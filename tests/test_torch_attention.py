"""attnlib.torch against independent references.

The reference is ``torch.nn.functional.scaled_dot_product_attention`` (and softmax weights written
out here in torch); attnlib.numpy's twin must give the same numbers; gradients are checked by
finite differences (``torch.autograd.gradcheck``).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import attnlib.numpy as anp
from attnlib.torch import default_device, scaled_dot_product_attention

FAST = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

CUDA = torch.cuda.is_available()


# --------------------------------------------------------------------------------------------
# Strategies and references
# --------------------------------------------------------------------------------------------

@st.composite
def attention_cases(draw, mask: bool | None = None):
    """Random float64 q, k, v with batch dims 0-2 that broadcast, and an optional boolean mask.

    Mask shapes broadcast to the scores' (..., L_q, L_k) without enlarging them:
    (L_q, L_k), (1, L_k), (L_q, 1), (L_k,), (B, 1, L_k), (B, L_q, L_k), ...
    Masks are often sparse or empty, so fully masked query rows are common.
    """
    nb = draw(st.integers(0, 2))
    batch = tuple(draw(st.integers(1, 3)) for _ in range(nb))
    L_q, L_k = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    d_k, d_v = draw(st.integers(1, 8)), draw(st.integers(1, 8))

    def sub(shape):
        drop = draw(st.integers(0, len(shape)))
        return tuple(1 if draw(st.booleans()) else n for n in shape[drop:])

    qb, kb, vb = sub(batch), sub(batch), sub(batch)
    full = tuple(np.broadcast_shapes(qb, kb, vb))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.1, 1.0, 3.0]))
    q = torch.from_numpy(rng.standard_normal((*qb, L_q, d_k)) * scale)
    k = torch.from_numpy(rng.standard_normal((*kb, L_k, d_k)) * scale)
    v = torch.from_numpy(rng.standard_normal((*vb, L_k, d_v)))
    use_mask = draw(st.booleans()) if mask is None else mask
    m = None
    if use_mask:
        tail = draw(st.sampled_from([(L_q, L_k), (1, L_k), (L_q, 1), (L_k,)]))
        mshape = tail if len(tail) == 1 else (*sub(full), *tail)
        p_allow = draw(st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0]))
        m = torch.from_numpy(rng.random(mshape) < p_allow)
    return q, k, v, m, full


def reference(q, k, v, m, full):
    """torch SDPA output and softmax weights written out in torch, in q's dtype and device.

    Everything is expanded to the full batch and flattened to (N, L, d) first, so the reference
    does not lean on SDPA's own broadcasting. Rows with no allowed key are NaN (or garbage) here.
    """
    L_q, L_k, d_k, d_v = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    n = math.prod(full)
    tq = q.expand(*full, L_q, d_k).reshape(n, L_q, d_k)
    tk = k.expand(*full, L_k, d_k).reshape(n, L_k, d_k)
    tv = v.expand(*full, L_k, d_v).reshape(n, L_k, d_v)
    tm = None if m is None else m.expand(*full, L_q, L_k).reshape(n, L_q, L_k)
    out = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm)
    scores = tq @ tk.transpose(-1, -2) / math.sqrt(d_k)
    if tm is not None:
        scores = scores.masked_fill(~tm, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return out.reshape(*full, L_q, d_v), weights.reshape(*full, L_q, L_k)


def allowed_rows(m, q, k, full):
    """(full mask, bool of rows with at least one allowed key), both over the scores' shape."""
    shape = (*full, q.shape[-2], k.shape[-2])
    fm = torch.ones(shape, dtype=torch.bool, device=q.device) if m is None else m.expand(shape)
    return fm, fm.any(dim=-1)


def check_against_reference(q, k, v, m, full, need_weights, tol):
    out, w = scaled_dot_product_attention(q, k, v, mask=m, need_weights=need_weights)
    ref_out, ref_w = reference(q, k, v, m, full)
    fm, ok = allowed_rows(m, q, k, full)
    assert out.shape == (*full, q.shape[-2], v.shape[-1])
    assert out.dtype == q.dtype and out.device == q.device
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[ok], ref_out[ok], rtol=tol, atol=tol)
    assert (out[~ok] == 0).all(), "fully masked query rows must give a zero output"
    if not need_weights:
        assert w is None
        return out, w
    assert w.shape == fm.shape and w.dtype == q.dtype
    assert torch.isfinite(w).all()
    torch.testing.assert_close(w[ok], ref_w[ok], rtol=tol, atol=tol)
    assert (w[~fm] == 0).all(), "masked keys must get exactly zero weight"
    assert (w[~ok] == 0).all(), "fully masked rows must get all-zero weights"
    return out, w


# --------------------------------------------------------------------------------------------
# Against torch's SDPA and against the NumPy twin
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("need_weights", [True, False])
@FAST
@given(case=attention_cases())
def test_matches_torch_sdpa_and_numpy_twin(case, need_weights):
    q, k, v, m, full = case
    out, w = check_against_reference(q, k, v, m, full, need_weights, tol=1e-10)
    np_out, np_w = anp.scaled_dot_product_attention(
        q.numpy(), k.numpy(), v.numpy(), mask=None if m is None else m.numpy())
    np.testing.assert_allclose(out.numpy(), np_out, rtol=1e-10, atol=1e-10)
    if need_weights:
        np.testing.assert_allclose(w.numpy(), np_w, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("need_weights", [True, False])
def test_need_weights_false_returns_none_and_same_output(need_weights):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g, dtype=torch.float64),
               torch.randn(2, 3, 7, 4, generator=g, dtype=torch.float64),
               torch.randn(2, 3, 7, 6, generator=g, dtype=torch.float64))
    m = torch.rand(2, 1, 5, 7, generator=g) < 0.5
    out, w = scaled_dot_product_attention(q, k, v, mask=m, need_weights=need_weights)
    assert (w is None) == (not need_weights)
    ref_out, _ = reference(q, k, v, m, (2, 3))
    ok = m.expand(2, 3, 5, 7).any(-1)
    torch.testing.assert_close(out[ok], ref_out[ok], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("need_weights", [True, False])
def test_fully_masked_rows_zero_output_and_finite_gradients(need_weights):
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 5, 2, generator=g, dtype=torch.float64, requires_grad=True)
    m = torch.ones(2, 4, 5, dtype=torch.bool)
    m[0, 1] = False          # one query row with no allowed key
    m[1, :, 3] = False       # one key hidden from every query
    out, w = scaled_dot_product_attention(q, k, v, mask=m, need_weights=need_weights)
    assert torch.isfinite(out).all()
    assert (out[0, 1] == 0).all()
    if need_weights:
        assert (w[0, 1] == 0).all() and (w[1, :, 3] == 0).all()
    c = torch.randn(2, 4, 5, generator=g, dtype=torch.float64)  # weighs the weights in the loss
    (out.sum() + ((w * c).sum() if need_weights else 0)).backward()
    for t in (q, k, v):
        assert t.grad is not None and torch.isfinite(t.grad).all()
    # The fully masked query does not influence anything; the hidden key/value neither.
    assert (q.grad[0, 1] == 0).all()
    assert (k.grad[1, 3] == 0).all() and (v.grad[1, 3] == 0).all()
    # The same loss over the other rows, through torch's SDPA and weights written out in torch.
    # The fully masked row is given all keys here only so torch produces no NaN; it is left out.
    ok = m.any(-1)
    m_ref = m | ~ok[..., None]
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    loss = F.scaled_dot_product_attention(q2, k2, v2, attn_mask=m_ref)[ok].sum()
    if need_weights:
        s = (q2 @ k2.transpose(-1, -2) / math.sqrt(3)).masked_fill(~m_ref, float("-inf"))
        loss = loss + (torch.softmax(s, -1) * c)[ok].sum()
    loss.backward()
    for a, b in ((q, q2), (k, k2), (v, v2)):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------------------------
# Gradients by finite differences
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("with_mask", [False, True])
def test_gradcheck(need_weights, with_mask):
    g = torch.Generator().manual_seed(2)
    q = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    m = None
    if with_mask:
        m = torch.rand(2, 3, 5, generator=g) < 0.6
        m[0, 0] = False  # a fully masked row
        m[1, 2] = True

    def f(q, k, v):
        out, w = scaled_dot_product_attention(q, k, v, mask=m, need_weights=need_weights)
        return (out, w) if need_weights else out

    assert torch.autograd.gradcheck(f, (q, k, v), eps=1e-6, atol=1e-7)


# --------------------------------------------------------------------------------------------
# Dtypes
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("dtype, tol", [(torch.float16, 1e-2), (torch.bfloat16, 5e-2)])
def test_half_precision_on_cpu(dtype, tol, need_weights):
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 2, 6, 8, generator=g), torch.randn(2, 2, 7, 8, generator=g),
               torch.randn(2, 2, 7, 4, generator=g))
    m = torch.rand(2, 1, 6, 7, generator=g) < 0.7
    m[0, 0, 2] = False
    out32, w32 = scaled_dot_product_attention(q, k, v, mask=m, need_weights=True)
    out, w = scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype), mask=m,
                                          need_weights=need_weights)
    assert out.dtype == dtype and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), out32, rtol=tol, atol=tol)
    assert (out[0, :, 2] == 0).all()
    if need_weights:
        assert w.dtype == dtype
        torch.testing.assert_close(w.float(), w32, rtol=tol, atol=tol)
    # And the float32 result itself is the reference's.
    ref_out, _ = reference(q.double(), k.double(), v.double(), m, (2, 2))
    ok = m.expand(2, 2, 6, 7).any(-1)
    torch.testing.assert_close(out32.double()[ok], ref_out[ok], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float_dtype_is_kept(dtype, need_weights):
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(3, 4, generator=g, dtype=dtype), torch.randn(5, 4, generator=g, dtype=dtype),
               torch.randn(5, 2, generator=g, dtype=dtype))
    out, w = scaled_dot_product_attention(q, k, v, need_weights=need_weights)
    assert out.dtype == dtype
    if need_weights:
        assert w.dtype == dtype
    ref = F.scaled_dot_product_attention(q[None].double(), k[None].double(), v[None].double())[0]
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out.double(), ref, rtol=tol, atol=tol)


def test_large_scores_are_finite_and_correct():
    # Scores [1e4, 1e4 - 1] and [-1e4, -1e4 + 1]: exact weights are sigmoid(+-1).
    q = torch.tensor([[100.0, 0.0], [-100.0, 0.0]], dtype=torch.float64)
    k = torch.tensor([[100.0 * math.sqrt(2), 0.0], [100.0 * math.sqrt(2) - math.sqrt(2) / 100, 0.0]],
                     dtype=torch.float64)
    v = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    p = 1.0 / (1.0 + math.exp(-1.0))
    for need_weights in (True, False):
        out, w = scaled_dot_product_attention(q, k, v, need_weights=need_weights)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out[:, 0], torch.tensor([p, 1 - p], dtype=torch.float64),
                                   rtol=1e-9, atol=0)
        if need_weights:
            torch.testing.assert_close(w, torch.tensor([[p, 1 - p], [1 - p, p]], dtype=torch.float64),
                                       rtol=1e-9, atol=0)


# --------------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------------

def test_dropout_weights_are_zero_or_rescaled_and_unbiased():
    p, n = 0.5, 4000
    g = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(4, 3, generator=g, dtype=torch.float64),
               torch.randn(6, 3, generator=g, dtype=torch.float64),
               torch.randn(6, 2, generator=g, dtype=torch.float64))
    m = torch.ones(4, 6, dtype=torch.bool)
    m[3] = False
    _, w0 = reference(q, k, v, m, ())
    w0 = torch.nan_to_num(w0, nan=0.0)  # the fully masked row is zero in attnlib
    torch.manual_seed(0)
    qb, kb, vb = q.expand(n, 4, 3), k.expand(n, 6, 3), v.expand(n, 6, 2)
    out, w = scaled_dot_product_attention(qb, kb, vb, mask=m, dropout_p=p, need_weights=True)
    assert w.shape == (n, 4, 6)
    dropped = w == 0
    assert dropped.any() and (~dropped).any()
    # Every kept weight is the no-dropout weight scaled by 1/(1-p).
    scaled = (w0 / (1 - p)).expand_as(w)
    torch.testing.assert_close(w[~dropped], scaled[~dropped], rtol=1e-12, atol=1e-15)
    # About a fraction p of the (allowed, non-zero) weights are dropped.
    frac = dropped[:, :3].double().mean().item()
    assert abs(frac - p) < 0.02
    # Unbiased: the mean over many draws is the no-dropout weight (std ~ w/sqrt(n)).
    torch.testing.assert_close(w.mean(0), w0, rtol=0, atol=6 * w0.max().item() / math.sqrt(n))
    # The output uses the dropped weights, and fully masked rows stay zero.
    torch.testing.assert_close(out, w @ v, rtol=1e-12, atol=1e-12)
    assert (out[:, 3] == 0).all()


def test_dropout_without_weights_is_random_but_unbiased():
    p, n = 0.5, 4000
    g = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(3, 4, generator=g, dtype=torch.float64),
               torch.randn(5, 4, generator=g, dtype=torch.float64),
               torch.randn(5, 2, generator=g, dtype=torch.float64))
    ref = F.scaled_dot_product_attention(q[None], k[None], v[None])[0]
    torch.manual_seed(0)
    out, w = scaled_dot_product_attention(q.expand(n, 3, 4), k.expand(n, 5, 4), v.expand(n, 5, 2),
                                          dropout_p=p, need_weights=False)
    assert w is None
    assert not torch.allclose(out[0], ref)  # dropout did something
    spread = 6 * v.abs().max().item() / math.sqrt(n)
    torch.testing.assert_close(out.mean(0), ref, rtol=0, atol=spread)


def test_no_dropout_is_deterministic():
    g = torch.Generator().manual_seed(7)
    q, k, v = torch.randn(3, 4, generator=g), torch.randn(5, 4, generator=g), torch.randn(5, 2, generator=g)
    a, wa = scaled_dot_product_attention(q, k, v)
    b, wb = scaled_dot_product_attention(q, k, v)
    assert torch.equal(a, b) and torch.equal(wa, wb)


# --------------------------------------------------------------------------------------------
# Bad inputs: ValueError naming the offending shapes
# --------------------------------------------------------------------------------------------

def _raises_naming(fn, *fragments):
    with pytest.raises(ValueError) as e:
        fn()
    msg = str(e.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in error message {msg!r}"


def test_error_keys_d_k_differs_from_queries():
    q, k, v = torch.zeros(2, 5, 64), torch.zeros(2, 7, 32), torch.zeros(2, 7, 16)
    _raises_naming(lambda: scaled_dot_product_attention(q, k, v),
                   "d_k=32", "d_k=64", "(2, 7, 32)", "(2, 5, 64)")


def test_error_values_L_k_differs_from_keys():
    q, k, v = torch.zeros(5, 8), torch.zeros(7, 8), torch.zeros(6, 3)
    _raises_naming(lambda: scaled_dot_product_attention(q, k, v), "L_k=6", "L_k=7", "(6, 3)", "(7, 8)")


@pytest.mark.parametrize("which", [0, 1, 2])
def test_error_one_dimensional_input(which):
    args = [torch.zeros(3, 4), torch.zeros(5, 4), torch.zeros(5, 2)]
    args[which] = torch.zeros(4)
    _raises_naming(lambda: scaled_dot_product_attention(*args), "(4,)")


def test_error_batch_dims_do_not_broadcast():
    q, k, v = torch.zeros(2, 5, 4), torch.zeros(3, 6, 4), torch.zeros(3, 6, 2)
    _raises_naming(lambda: scaled_dot_product_attention(q, k, v), "(2, 5, 4)", "(3, 6, 4)")


@pytest.mark.parametrize("mask", [torch.ones(5, 6), torch.ones(5, 6, dtype=torch.int64),
                                  torch.zeros(5, 6, dtype=torch.uint8), np.ones((5, 6), bool)])
@pytest.mark.parametrize("need_weights", [True, False])
def test_error_mask_not_boolean_tensor(mask, need_weights):
    q, k, v = torch.zeros(5, 4), torch.zeros(6, 4), torch.zeros(6, 2)
    with pytest.raises(ValueError, match="bool"):
        scaled_dot_product_attention(q, k, v, mask=mask, need_weights=need_weights)


@pytest.mark.parametrize("mshape", [(5, 7), (7,), (4, 6), (3, 5, 6)])
def test_error_mask_shape_does_not_broadcast(mshape):
    q, k, v = torch.zeros(2, 5, 4), torch.zeros(2, 6, 4), torch.zeros(2, 6, 2)
    _raises_naming(lambda: scaled_dot_product_attention(q, k, v, mask=torch.ones(mshape, dtype=torch.bool)),
                   str(mshape), "(2, 5, 6)")


@pytest.mark.parametrize("mshape", [(2, 5, 6), (1, 1, 5, 6), (3, 1, 6)])
def test_error_mask_would_enlarge_scores(mshape):
    q, k, v = torch.zeros(5, 4), torch.zeros(6, 4), torch.zeros(6, 2)
    _raises_naming(lambda: scaled_dot_product_attention(q, k, v, mask=torch.ones(mshape, dtype=torch.bool)),
                   str(mshape), "(5, 6)")


def test_error_integer_inputs():
    q, k, v = torch.zeros(5, 4, dtype=torch.int64), torch.zeros(6, 4), torch.zeros(6, 2)
    _raises_naming(lambda: scaled_dot_product_attention(q, k, v), "queries", "int64")


# --------------------------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------------------------

def test_default_device_is_cuda_iff_available():
    d = default_device()
    assert isinstance(d, torch.device)
    assert (d.type == "cuda") == torch.cuda.is_available()
    torch.zeros(1, device=d)  # usable


@pytest.mark.parametrize("available", [True, False])
def test_default_device_follows_cuda_availability(monkeypatch, available):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    d = default_device()
    assert isinstance(d, torch.device)
    assert (d.type == "cuda") == available


@pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine")
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_cuda_matches_cpu_reference(dtype, tol, need_weights):
    dev = default_device()
    assert dev.type == "cuda"
    g = torch.Generator().manual_seed(8)
    q, k, v = (torch.randn(2, 3, 9, 8, generator=g, dtype=torch.float64),
               torch.randn(2, 3, 11, 8, generator=g, dtype=torch.float64),
               torch.randn(1, 3, 11, 5, generator=g, dtype=torch.float64))
    m = torch.rand(2, 1, 9, 11, generator=g) < 0.5
    m[1, 0, 4] = False
    out, w = scaled_dot_product_attention(q.to(dev, dtype), k.to(dev, dtype), v.to(dev, dtype),
                                          mask=m.to(dev), need_weights=need_weights)
    assert out.device.type == "cuda" and out.dtype == dtype
    ref_out, ref_w = reference(q, k, v, m, (2, 3))
    ok = m.expand(2, 3, 9, 11).any(-1)
    out = out.cpu().double()
    assert torch.isfinite(out).all() and (out[~ok] == 0).all()
    torch.testing.assert_close(out[ok], ref_out[ok], rtol=tol, atol=tol)
    if need_weights:
        w = w.cpu().double()
        torch.testing.assert_close(w[ok], ref_w[ok], rtol=tol, atol=tol)
        assert (w[~ok] == 0).all()
