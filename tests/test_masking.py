"""Masks and masked attention (chapter "Scaled dot-product attention and masking").

References: brute-force Python loops written here, ``torch.nn.functional.scaled_dot_product_attention``
with the same boolean mask, and running each sequence alone without padding.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnlib.exercises import masking as ex
from attnlib.numpy import causal_mask, combine_masks, key_padding_mask, padding_mask, scaled_dot_product_attention

FAST = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def loop_key_padding(lengths, L_q, max_len):
    out = np.zeros((len(lengths), L_q, max_len), dtype=bool)
    for b, n in enumerate(lengths):
        for i in range(L_q):
            for j in range(max_len):
                out[b, i, j] = j < n
    return out


@FAST
@given(st.lists(st.integers(0, 6), min_size=1, max_size=4), st.integers(0, 5), st.integers(0, 3))
def test_key_padding_mask_matches_a_loop(lengths, L_q, extra):
    max_len = max(lengths) + extra
    got = key_padding_mask(lengths, L_q, max_len)
    assert got.dtype == bool and got.shape == (len(lengths), L_q, max_len)
    np.testing.assert_array_equal(got, loop_key_padding(lengths, L_q, max_len))


@FAST
@given(st.lists(st.integers(1, 6), min_size=1, max_size=3), st.integers(0, 2**31))
def test_combine_masks_is_an_elementwise_and_with_broadcasting(lengths, seed):
    rng = np.random.default_rng(seed)
    L = max(lengths)
    a = rng.random((len(lengths), 1, L)) < 0.6
    b = rng.random((L, L)) < 0.6
    c = rng.random((L, 1)) < 0.8
    got = combine_masks(a, None, b, c)
    assert got.shape == (len(lengths), L, L)
    for i in range(len(lengths)):
        for q in range(L):
            for k in range(L):
                assert got[i, q, k] == (a[i, 0, k] and b[q, k] and c[q, 0])


def test_combine_masks_edge_cases_and_errors():
    assert combine_masks() is None and combine_masks(None, None) is None
    m = causal_mask(3)
    out = combine_masks(m)
    assert out is not m and np.array_equal(out, m)  # a copy, not the caller's array
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        combine_masks(np.ones((2, 3), bool), np.ones(4, bool))
    with pytest.raises(ValueError, match="boolean"):
        combine_masks(np.ones((2, 3)))
    with pytest.raises(ValueError, match="L_q"):
        key_padding_mask([1, 2], -1, 3)
    with pytest.raises(ValueError, match="max_len"):
        key_padding_mask([1, 5], 2, 3)


def test_padding_and_causal_by_broadcasting_equal_key_padding_mask():
    lengths = np.array([3, 1, 4])
    want = key_padding_mask(lengths, 4, 4) & np.tril(np.ones((4, 4), bool))
    got = combine_masks(padding_mask(lengths, 4)[:, None, :], causal_mask(4))
    np.testing.assert_array_equal(got, want)


@FAST
@given(st.lists(st.integers(0, 6), min_size=1, max_size=4), st.integers(1, 3), st.booleans(),
       st.booleans(), st.integers(0, 2**31))
def test_masked_attention_matches_torch_sdpa_on_rows_with_an_allowed_key(
        lengths, d, causal, mask_queries, seed):
    rng = np.random.default_rng(seed)
    B, L = len(lengths), max(max(lengths), 1)
    q, k, v = (rng.normal(size=(B, L, d + 1)) for _ in range(3))
    mask = combine_masks(key_padding_mask(lengths, L, L), causal_mask(L) if causal else None,
                         padding_mask(lengths, L)[:, :, None] if mask_queries else None)
    out, w = scaled_dot_product_attention(q, k, v, mask=mask)
    t = [torch.from_numpy(a) for a in (q, k, v)]
    ref = F.scaled_dot_product_attention(*t, attn_mask=torch.from_numpy(mask)).numpy()
    rows = mask.any(-1)
    np.testing.assert_allclose(out[rows], ref[rows], rtol=1e-10, atol=1e-12)
    # Blocked keys get exactly zero weight; fully masked rows give zero weights and output.
    assert np.all(w[~mask] == 0.0)
    assert np.all(w[~rows] == 0.0) and np.all(out[~rows] == 0.0)
    assert np.all(np.isfinite(out))


@FAST
@given(st.lists(st.integers(1, 6), min_size=1, max_size=3), st.integers(0, 4), st.booleans(),
       st.integers(0, 2**31))
def test_padding_never_changes_the_outputs_of_real_tokens(lengths, extra, causal, seed):
    """Each sequence attended alone, unpadded, equals its rows in the padded, masked batch."""
    rng = np.random.default_rng(seed)
    L = max(lengths) + extra
    q, k, v = (rng.normal(size=(len(lengths), L, 3)) * 100 for _ in range(3))  # padding is junk
    mask = combine_masks(padding_mask(lengths, L)[:, None, :], causal_mask(L) if causal else None)
    out, w = scaled_dot_product_attention(q, k, v, mask=mask)
    for b, n in enumerate(lengths):
        alone, _ = scaled_dot_product_attention(q[b, :n], k[b, :n], v[b, :n],
                                                mask=causal_mask(n) if causal else None)
        np.testing.assert_allclose(out[b, :n], alone, rtol=1e-9, atol=1e-9)
        assert np.all(w[b, :, n:] == 0.0)


def test_naive_masked_softmax_gives_nan_where_attnlib_gives_zeros():
    s = np.array([[1.0, 2.0], [3.0, 4.0]])
    m = np.array([[True, False], [False, False]])
    x = np.where(m, s, -np.inf)
    with np.errstate(invalid="ignore"):
        naive = np.exp(x - x.max(-1, keepdims=True))
        naive = naive / naive.sum(-1, keepdims=True)
    assert np.isnan(naive[1]).all()
    _, w = scaled_dot_product_attention(s[:, :1], s[:, :1], s, mask=m)
    np.testing.assert_array_equal(w, [[1.0, 0.0], [0.0, 0.0]])


# ----------------------------------------------------------------------------- the checkers

def test_checkers_pass_the_references_and_name_each_mistake():
    ex.reset()
    assert ex.check_combined_mask(ex._combined).passed
    assert ex.check_masked_attention(ex._masked_attention).passed
    for m in ex._MASK_MISTAKES:
        r = ex.check_combined_mask(m.fn)
        assert not r.passed and r.mistake == m.name, (m.name, r.message)
    for m in ex._ATTENTION_MISTAKES:
        r = ex.check_masked_attention(m.fn)
        assert not r.passed
        if m.name != "query_axis":  # raises on the cross-attention case, with a note
            assert r.mistake == m.name, (m.name, r.message)
        else:
            assert "differ in length" in r.message


def test_checkers_report_stubs_and_float_masks():
    ex.reset()

    def stub(*args):
        raise NotImplementedError

    assert ex.check_combined_mask(stub).status == "unsolved"
    r = ex.check_combined_mask(lambda n, L: ex._combined(n, L).astype(float))
    assert r.status == "failed" and "dtype" in r.message
