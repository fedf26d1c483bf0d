"""Multi-head attention against ``torch.nn.MultiheadAttention`` with copied weights.

torch computes ``x @ W.T`` with ``in_proj_weight = [W_q; W_k; W_v]`` stacked by rows, so our
``x @ W`` matrices are copied transposed. Its boolean ``attn_mask`` means True = NOT allowed, the
opposite of attnlib's convention, so masks are inverted, and repeated per head (B * H, L_q, L_k).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnlib.exercises import multi_head as ex
from attnlib.numpy import causal_mask, loglog_slope, merge_heads, multi_head_attention, padding_mask, split_heads

FAST = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def torch_mha(x_q, x_kv, Ws, H, mask=None):
    d = x_q.shape[-1]
    m = torch.nn.MultiheadAttention(d, H, bias=False, batch_first=True).double()
    with torch.no_grad():
        m.in_proj_weight.copy_(torch.from_numpy(np.concatenate([W.T for W in Ws[:3]])))
        m.out_proj.weight.copy_(torch.from_numpy(np.ascontiguousarray(Ws[3].T)))
    attn_mask = None
    if mask is not None:
        full = np.broadcast_to(mask, (x_q.shape[0], x_q.shape[1], x_kv.shape[1]))
        attn_mask = torch.from_numpy(~full).repeat_interleave(H, dim=0)  # True = blocked
    out, w = m(torch.from_numpy(x_q), torch.from_numpy(x_kv), torch.from_numpy(x_kv),
               attn_mask=attn_mask, need_weights=True, average_attn_weights=False)
    return out.detach().numpy(), w.detach().numpy()


@st.composite
def mha_cases(draw):
    H = draw(st.sampled_from([1, 2, 3, 4]))
    d = H * draw(st.integers(1, 4))
    B, L_q = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    self_attn = draw(st.booleans())
    L_k = L_q if self_attn else draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x_q = rng.normal(size=(B, L_q, d))
    x_kv = x_q if self_attn else rng.normal(size=(B, L_k, d))
    Ws = [rng.normal(size=(d, d)) / np.sqrt(d) for _ in range(4)]
    kind = draw(st.sampled_from(["none", "causal", "padding", "random"]))
    mask = None
    if kind == "causal":
        mask = causal_mask(L_q, L_k)
    elif kind == "padding":
        mask = padding_mask(rng.integers(1, L_k + 1, size=B), L_k)[:, None, :]
    elif kind == "random":
        mask = rng.random((B, L_q, L_k)) < 0.6
        mask[..., 0] = True  # torch gives NaN for fully masked rows: keep one key per row
    return x_q, x_kv, Ws, H, mask


@FAST
@given(mha_cases())
def test_multi_head_attention_matches_torch(case):
    x_q, x_kv, Ws, H, mask = case
    out, w = multi_head_attention(x_q, x_kv, *Ws, H, mask=mask)
    ref_out, ref_w = torch_mha(x_q, x_kv, Ws, H, mask)
    assert out.shape == x_q.shape and w.shape == (x_q.shape[0], H, x_q.shape[1], x_kv.shape[1])
    np.testing.assert_allclose(out, ref_out, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(w, ref_w, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("H", [1, 2, 4, 8])
def test_self_and_cross_attention_match_torch_for_several_head_counts(H):
    rng = np.random.default_rng(H)
    x, y = rng.normal(size=(2, 5, 16)), rng.normal(size=(2, 7, 16))
    Ws = [rng.normal(size=(16, 16)) / 4 for _ in range(4)]
    for x_kv, mask in ((x, causal_mask(5)), (y, padding_mask(np.array([7, 3]), 7)[:, None, :])):
        out, w = multi_head_attention(x, x_kv, *Ws, H, mask=mask)
        ref_out, ref_w = torch_mha(x, x_kv, Ws, H, mask)
        np.testing.assert_allclose(out, ref_out, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(w, ref_w, rtol=1e-9, atol=1e-11)


def test_one_head_is_plain_attention_with_projections():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 6))
    Ws = [rng.normal(size=(6, 6)) for _ in range(4)]
    q, k, v = x @ Ws[0], x @ Ws[1], x @ Ws[2]
    s = q @ k.T / np.sqrt(6)
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    out, w = multi_head_attention(x, x, *Ws, 1)
    np.testing.assert_allclose(w[0], a, rtol=1e-12)
    np.testing.assert_allclose(out, a @ v @ Ws[3], rtol=1e-10)


@FAST
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 5), st.integers(0, 2))
def test_split_merge_roundtrip_and_layout(H, d_head, L, nb):
    rng = np.random.default_rng(H * 100 + d_head)
    shape = (2,) * nb + (L, H * d_head)
    x = rng.normal(size=shape)
    s = split_heads(x, H)
    assert s.shape == (2,) * nb + (H, L, d_head)
    for h in range(H):  # head h holds the contiguous block of columns h*d_head:(h+1)*d_head
        np.testing.assert_array_equal(s[..., h, :, :], x[..., h * d_head:(h + 1) * d_head])
    np.testing.assert_array_equal(merge_heads(s), x)


def test_float32_stays_float32_and_fully_masked_rows_are_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 8)).astype(np.float32)
    Ws = [rng.normal(size=(8, 8)).astype(np.float32) for _ in range(4)]
    mask = np.ones((2, 3, 3), bool)
    mask[1, 2] = False
    out, w = multi_head_attention(x, x, *Ws, 2, mask=mask)
    assert out.dtype == np.float32 and w.dtype == np.float32
    assert np.all(out[1, 2] == 0) and np.all(w[1, :, 2] == 0) and np.all(np.isfinite(out))


def test_errors_name_the_shapes():
    x, W = np.zeros((2, 3, 6)), np.zeros((6, 6))
    with pytest.raises(ValueError, match=r"d_model=6 is not divisible by num_heads=4"):
        multi_head_attention(x, x, W, W, W, W, 4)
    with pytest.raises(ValueError, match=r"W_k must have shape .*\(6, 6\).*\(6, 5\)"):
        multi_head_attention(x, x, W, np.zeros((6, 5)), W, W, 2)
    with pytest.raises(ValueError, match=r"x_kv has d_model=4 but x_q d_model=6"):
        multi_head_attention(x, np.zeros((2, 3, 4)), W, W, W, W, 2)
    with pytest.raises(ValueError, match=r"mask of shape \(4, 3\)"):
        multi_head_attention(x, x, W, W, W, W, 2, mask=np.ones((4, 3), bool))
    with pytest.raises(ValueError, match="positive integer"):
        split_heads(x, 0)
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        split_heads(np.zeros(6), 2)
    with pytest.raises(ValueError, match="boolean"):
        multi_head_attention(x, x, W, W, W, W, 2, mask=np.ones((3, 3)))


def test_loglog_slope_recovers_a_power_law():
    L = np.array([10, 20, 40, 80])
    assert loglog_slope(L, 3 * L**2.0) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        loglog_slope([1, 2], [0, 1])


# ----------------------------------------------------------------------------- the checkers

def test_checkers_pass_the_references_and_name_each_mistake():
    ex.reset()
    assert ex.check_split_heads(split_heads).passed
    assert ex.check_multi_head_attention(lambda *a: multi_head_attention(*a)[0]).passed
    for m in ex._SPLIT_MISTAKES:
        r = ex.check_split_heads(m.fn)
        assert not r.passed and r.mistake == m.name, (m.name, r.message)
    for m in ex._MHA_MISTAKES:
        r = ex.check_multi_head_attention(m.fn)
        assert not r.passed and r.mistake == m.name, (m.name, r.message)


def test_checkers_report_stubs():
    def stub(*args):
        raise NotImplementedError

    assert ex.check_split_heads(stub).status == "unsolved"
    assert ex.check_multi_head_attention(stub).status == "unsolved"
