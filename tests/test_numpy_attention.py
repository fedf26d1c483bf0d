"""attnlib.numpy against independent references.

References are PyTorch ops (``torch.softmax``, ``torch.nn.functional.scaled_dot_product_attention``,
``torch.tril``), NumPy's ``np.tril``, closed-form values, or plain Python loops written here.
Nothing expected is computed by attnlib itself.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnlib.numpy import causal_mask, padding_mask, scaled_dot_product_attention, softmax

# Small, fast and leaving no files behind (no example database).
FAST = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

RTOL, ATOL = 1e-10, 1e-12  # float64 against float64


# --------------------------------------------------------------------------------------------
# Strategies and references
# --------------------------------------------------------------------------------------------

@st.composite
def attention_cases(draw, mask: bool | None = None):
    """Random q, k, v (float64) with batch dims 0-2 that broadcast, plus an optional boolean mask.

    The mask's shape is drawn among shapes that broadcast to the scores' (..., L_q, L_k) without
    enlarging them: (L_q, L_k), (1, L_k), (L_q, 1), (L_k,), (B, 1, L_k), (B, L_q, L_k), ...
    Masks are often sparse or empty, so fully masked query rows are common.
    """
    nb = draw(st.integers(0, 2))
    batch = tuple(draw(st.integers(1, 3)) for _ in range(nb))
    L_q, L_k = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    d_k, d_v = draw(st.integers(1, 8)), draw(st.integers(1, 8))

    def sub(shape):
        # A shape that broadcasts to ``shape``: drop some leading dims, set some dims to 1.
        drop = draw(st.integers(0, len(shape)))
        return tuple(1 if draw(st.booleans()) else n for n in shape[drop:])

    qb, kb, vb = sub(batch), sub(batch), sub(batch)
    full = tuple(np.broadcast_shapes(qb, kb, vb))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 3.0]))
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((*qb, L_q, d_k)) * scale
    k = rng.standard_normal((*kb, L_k, d_k)) * scale
    v = rng.standard_normal((*vb, L_k, d_v))

    use_mask = draw(st.booleans()) if mask is None else mask
    m = None
    if use_mask:
        tail = draw(st.sampled_from([(L_q, L_k), (1, L_k), (L_q, 1), (L_k,)]))
        mshape = tail if len(tail) == 1 else (*sub(full), *tail)
        p_allow = draw(st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0]))
        m = rng.random(mshape) < p_allow
    return q, k, v, m, full


def full_mask(m, q, k, full):
    """The mask broadcast to the scores' shape (all True without a mask)."""
    shape = (*full, q.shape[-2], k.shape[-2])
    return np.ones(shape, bool) if m is None else np.broadcast_to(m, shape)


def torch_reference(q, k, v, m, full):
    """Output of torch's SDPA and softmax weights computed directly in torch, both float64.

    Inputs are broadcast to the full batch and flattened to (N, L, d) so the reference never
    relies on SDPA's own broadcasting. Rows with no allowed key are NaN here.
    """
    L_q, L_k, d_k, d_v = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    n = int(np.prod(full)) if full else 1
    tq = torch.from_numpy(np.broadcast_to(q, (*full, L_q, d_k)).reshape(n, L_q, d_k).copy())
    tk = torch.from_numpy(np.broadcast_to(k, (*full, L_k, d_k)).reshape(n, L_k, d_k).copy())
    tv = torch.from_numpy(np.broadcast_to(v, (*full, L_k, d_v)).reshape(n, L_k, d_v).copy())
    tm = None if m is None else torch.from_numpy(
        np.broadcast_to(m, (*full, L_q, L_k)).reshape(n, L_q, L_k).copy())
    out = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm)
    scores = tq @ tk.transpose(-1, -2) / math.sqrt(d_k)
    if tm is not None:
        scores = scores.masked_fill(~tm, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return (out.numpy().reshape(*full, L_q, d_v), weights.numpy().reshape(*full, L_q, L_k))


# --------------------------------------------------------------------------------------------
# scaled_dot_product_attention against torch
# --------------------------------------------------------------------------------------------

@FAST
@given(attention_cases())
def test_sdpa_matches_torch_reference(case):
    q, k, v, m, full = case
    out, w = scaled_dot_product_attention(q, k, v, mask=m)
    ref_out, ref_w = torch_reference(q, k, v, m, full)
    L_q, L_k, d_v = q.shape[-2], k.shape[-2], v.shape[-1]
    assert out.shape == (*full, L_q, d_v) and w.shape == (*full, L_q, L_k)
    assert out.dtype == np.float64 and w.dtype == np.float64
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(w))

    allowed = full_mask(m, q, k, full)
    ok = allowed.any(axis=-1)  # query rows with at least one allowed key
    np.testing.assert_allclose(out[ok], ref_out[ok], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(w[ok], ref_w[ok], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(w[ok].sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    # Masked keys get exactly zero weight; fully masked rows are exactly zero, never NaN.
    assert np.all(w[~allowed] == 0.0)
    assert np.all(w[~ok] == 0.0)
    assert np.all(out[~ok] == 0.0)


@FAST
@given(attention_cases(mask=True), st.data())
def test_sdpa_permuting_keys_and_values_changes_nothing(case, data):
    q, k, v, m, full = case
    L_k = k.shape[-2]
    perm = np.array(data.draw(st.permutations(range(L_k))), dtype=int)
    out, w = scaled_dot_product_attention(q, k, v, mask=m)
    m_perm = m if m.shape[-1] == 1 else m[..., perm]
    out_p, w_p = scaled_dot_product_attention(q, k[..., perm, :], v[..., perm, :], mask=m_perm)
    np.testing.assert_allclose(out_p, out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w_p, w[..., perm], rtol=1e-10, atol=1e-12)


def test_sdpa_fully_masked_row_is_zero_not_nan():
    rng = np.random.default_rng(0)
    q, k, v = rng.standard_normal((4, 3)), rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    m = np.ones((4, 5), bool)
    m[2] = False
    out, w = scaled_dot_product_attention(q, k, v, mask=m)
    assert np.all(w[2] == 0.0) and np.all(out[2] == 0.0)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(w))
    # The other rows are the unmasked result (formula written here).
    s = q @ k.T / math.sqrt(3)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    ref_w = e / e.sum(axis=-1, keepdims=True)
    rows = [0, 1, 3]
    np.testing.assert_allclose(w[rows], ref_w[rows], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out[rows], (ref_w @ v)[rows], rtol=1e-12, atol=1e-14)


def test_sdpa_hand_computed_example():
    # One query, two keys: scores q.k/sqrt(2) = [2/sqrt2, 0] -> weights by formula.
    q = np.array([[1.0, 1.0]])
    k = np.array([[1.0, 1.0], [1.0, -1.0]])
    v = np.array([[10.0], [20.0]])
    out, w = scaled_dot_product_attention(q, k, v)
    a = math.exp(math.sqrt(2.0))
    expected_w = np.array([[a / (a + 1), 1 / (a + 1)]])
    np.testing.assert_allclose(w, expected_w, rtol=1e-14)
    np.testing.assert_allclose(out, expected_w @ v, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sdpa_keeps_float_dtype(dtype):
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2, 4, 8))
    k = rng.standard_normal((2, 6, 8))
    v = rng.standard_normal((2, 6, 5))
    m = rng.random((2, 1, 6)) < 0.7
    out, w = scaled_dot_product_attention(q.astype(dtype), k.astype(dtype), v.astype(dtype), mask=m)
    assert out.dtype == dtype and w.dtype == dtype
    ref_out, ref_w = torch_reference(q, k, v, m, (2,))
    ok = np.broadcast_to(m, (2, 4, 6)).any(axis=-1)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out[ok], ref_out[ok], rtol=tol, atol=tol)
    np.testing.assert_allclose(w[ok], ref_w[ok], rtol=tol, atol=tol)


def test_sdpa_int_inputs_give_float64():
    q = np.array([[1, 0], [0, 1]])
    k = np.array([[1, 0], [0, 1], [1, 1]])
    v = np.array([[1, 2], [3, 4], [5, 6]])
    out, w = scaled_dot_product_attention(q, k, v)
    assert out.dtype == np.float64 and w.dtype == np.float64
    ref_out, ref_w = torch_reference(q.astype(float), k.astype(float), v.astype(float), None, ())
    np.testing.assert_allclose(out, ref_out, rtol=1e-12)
    np.testing.assert_allclose(w, ref_w, rtol=1e-12)


def test_sdpa_large_scores_are_finite_and_correct():
    # Scores of magnitude ~1e4: a naive exp would overflow.
    q = np.array([[100.0, 0.0], [-100.0, 0.0]])
    k = np.array([[100.0 * math.sqrt(2), 0.0], [100.0 * math.sqrt(2) - math.sqrt(2) / 100, 0.0]])
    v = np.array([[1.0], [0.0]])
    out, w = scaled_dot_product_attention(q, k, v)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(w))
    # Row 0: scores [1e4, 1e4 - 1]; row 1: scores [-1e4, -1e4 + 1].
    p = 1.0 / (1.0 + math.exp(-1.0))
    np.testing.assert_allclose(w, [[p, 1 - p], [1 - p, p]], rtol=1e-9)
    np.testing.assert_allclose(out[:, 0], [p, 1 - p], rtol=1e-9)


# --------------------------------------------------------------------------------------------
# softmax
# --------------------------------------------------------------------------------------------

@st.composite
def arrays_and_axis(draw, magnitude=50.0):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 6)) for _ in range(ndim))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    offset = draw(st.sampled_from([0.0, 1e4, -1e4, 3e2]))
    x = offset + rng.uniform(-magnitude, magnitude, shape)
    axis = draw(st.integers(-ndim, ndim - 1))
    return x, axis


@FAST
@given(arrays_and_axis())
def test_softmax_matches_torch(case):
    x, axis = case
    y = softmax(x, axis=axis)
    ref = torch.softmax(torch.from_numpy(x), dim=axis).numpy()
    assert y.shape == x.shape and y.dtype == np.float64
    assert np.all(np.isfinite(y)) and np.all(y >= 0)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=0, atol=1e-12)


def test_softmax_default_axis_is_last():
    x = np.array([[0.0, 1.0, 2.0], [3.0, 3.0, 3.0]])
    e = np.exp([0.0, 1.0, 2.0])
    np.testing.assert_allclose(softmax(x), [e / e.sum(), [1 / 3] * 3], rtol=1e-14)
    np.testing.assert_allclose(softmax(x, axis=0)[:, 0],
                               [1 / (1 + math.exp(3)), 1 / (1 + math.exp(-3))], rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("base", [1e4, -1e4])
def test_softmax_logits_of_magnitude_1e4(dtype, base):
    x = np.array([base, base - 1.0], dtype=dtype)
    y = softmax(x)
    assert y.dtype == dtype and np.all(np.isfinite(y))
    p = 1.0 / (1.0 + math.exp(-1.0))  # exact value
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y, [p, 1 - p], rtol=tol)
    # Far apart: all weight on the maximum, nothing NaN.
    z = softmax(np.array([1e4, -1e4, 0.0], dtype=dtype))
    np.testing.assert_array_equal(z, np.array([1.0, 0.0, 0.0], dtype=dtype))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_softmax_keeps_float_dtype(dtype):
    x = np.array([[0.5, -1.0, 2.0], [0.0, 0.0, 1.0]])
    y = softmax(x.astype(dtype))
    assert y.dtype == dtype
    ref = torch.softmax(torch.from_numpy(x), dim=-1).numpy()
    tol = {np.float16: 2e-3, np.float32: 1e-6, np.float64: 1e-14}[dtype]
    np.testing.assert_allclose(y.astype(np.float64), ref, rtol=tol, atol=tol)


def test_softmax_int_input_gives_float64():
    y = softmax([1, 2, 3])
    assert y.dtype == np.float64
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(y, e / e.sum(), rtol=1e-14)


def test_softmax_mask_zeroes_masked_entries_and_empty_rows():
    x = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    m = np.array([[True, False, True], [False, False, False]])
    y = softmax(x, mask=m)
    e = np.exp([1.0, 3.0])
    np.testing.assert_allclose(y[0], [e[0] / e.sum(), 0.0, e[1] / e.sum()], rtol=1e-14)
    np.testing.assert_array_equal(y[1], [0.0, 0.0, 0.0])


@pytest.mark.parametrize("bad", [np.array([True, False]), np.array(["a", "b"]), np.array([1 + 2j])])
def test_softmax_rejects_non_real_input(bad):
    with pytest.raises(ValueError, match="dtype"):
        softmax(bad)


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------

@FAST
@given(st.integers(0, 12), st.one_of(st.none(), st.integers(0, 12)))
def test_causal_mask_matches_tril(L_q, L_k):
    m = causal_mask(L_q, L_k)
    n_k = L_q if L_k is None else L_k
    assert m.dtype == bool and m.shape == (L_q, n_k)
    np.testing.assert_array_equal(m, np.tril(np.ones((L_q, n_k), dtype=bool)))
    np.testing.assert_array_equal(m, torch.ones(L_q, n_k).tril().bool().numpy())
    # The definition itself: True where j <= i.
    for i in range(L_q):
        for j in range(n_k):
            assert m[i, j] == (j <= i)


def test_causal_mask_rectangular_explicit():
    expected = np.array([[1, 0, 0, 0, 0],
                         [1, 1, 0, 0, 0],
                         [1, 1, 1, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(causal_mask(3, 5), expected)
    np.testing.assert_array_equal(causal_mask(5, 3), np.tril(np.ones((5, 3), bool)))


def test_causal_mask_used_in_attention_blocks_the_future():
    rng = np.random.default_rng(3)
    q, k = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    v = rng.standard_normal((6, 2))
    out, w = scaled_dot_product_attention(q, k, v, mask=causal_mask(6))
    assert np.all(np.triu(w, 1) == 0.0)
    # Changing a future value must not change earlier outputs.
    v2 = v.copy()
    v2[4:] += 100.0
    out2, _ = scaled_dot_product_attention(q, k, v2, mask=causal_mask(6))
    np.testing.assert_array_equal(out2[:4], out[:4])


@pytest.mark.parametrize("args", [(-1,), (3, -2), (2.5,), (3, 1.5)])
def test_causal_mask_rejects_bad_sizes(args):
    with pytest.raises(ValueError):
        causal_mask(*args)


@FAST
@given(st.integers(0, 10).flatmap(
    lambda n: st.tuples(st.lists(st.integers(0, n), min_size=1, max_size=6), st.just(n))))
def test_padding_mask_matches_loop(case):
    lengths, max_len = case
    m = padding_mask(np.array(lengths), max_len)
    assert m.dtype == bool and m.shape == (len(lengths), max_len)
    expected = [[t < n for t in range(max_len)] for n in lengths]
    np.testing.assert_array_equal(m, np.array(expected, dtype=bool).reshape(len(lengths), max_len))
    # Also from a plain Python list.
    np.testing.assert_array_equal(padding_mask(lengths, max_len), m)


def test_padding_mask_as_key_mask():
    # Padded keys receive no weight; real keys share it all.
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)),
               rng.standard_normal((2, 5, 3)))
    pm = padding_mask([2, 5], 5)
    _, w = scaled_dot_product_attention(q, k, v, mask=pm[:, None, :])
    assert np.all(w[0, :, 2:] == 0.0)
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, atol=1e-12)


@pytest.mark.parametrize("lengths, max_len, names", [
    ([2, -1], 4, ["-1", "max_len=4"]),
    ([2, 5], 4, ["5", "max_len=4"]),
])
def test_padding_mask_rejects_out_of_range_lengths(lengths, max_len, names):
    with pytest.raises(ValueError) as e:
        padding_mask(lengths, max_len)
    for s in names:
        assert s in str(e.value)


@pytest.mark.parametrize("lengths", [[1.0, 2.0], [1.5], np.array([[1, 2]]), [True, False]])
def test_padding_mask_rejects_non_integer_or_non_1d_lengths(lengths):
    with pytest.raises(ValueError) as e:
        padding_mask(lengths, 4)
    assert str(np.asarray(lengths).shape) in str(e.value)


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
    q, k, v = np.zeros((2, 5, 64)), np.zeros((2, 7, 32)), np.zeros((2, 7, 16))
    _raises_naming(lambda: scaled_dot_product_attention(q, k, v),
                   "d_k=32", "d_k=64", "(2, 7, 32)", "(2, 5, 64)")


def test_error_values_L_k_differs_from_keys():
    q, k, v = np.zeros((5, 8)), np.zeros((7, 8)), np.zeros((6, 3))
    _raises_naming(lambda: scaled_dot_product_attention(q, k, v), "L_k=6", "L_k=7", "(6, 3)", "(7, 8)")


@pytest.mark.parametrize("which", [0, 1, 2])
def test_error_one_dimensional_input(which):
    args = [np.zeros((3, 4)), np.zeros((5, 4)), np.zeros((5, 2))]
    args[which] = np.zeros(4)
    _raises_naming(lambda: scaled_dot_product_attention(*args), "(4,)")


def test_error_batch_dims_do_not_broadcast():
    q, k, v = np.zeros((2, 5, 4)), np.zeros((3, 6, 4)), np.zeros((3, 6, 2))
    _raises_naming(lambda: scaled_dot_product_attention(q, k, v), "(2, 5, 4)", "(3, 6, 4)")


@pytest.mark.parametrize("mask", [np.ones((5, 6)), np.ones((5, 6), dtype=np.int64),
                                  np.zeros((5, 6), dtype=np.float32)])
def test_error_mask_not_boolean(mask):
    q, k, v = np.zeros((5, 4)), np.zeros((6, 4)), np.zeros((6, 2))
    _raises_naming(lambda: scaled_dot_product_attention(q, k, v, mask=mask), str(mask.dtype))


@pytest.mark.parametrize("mshape", [(5, 7), (7,), (4, 6), (3, 5, 6)])
def test_error_mask_shape_does_not_broadcast(mshape):
    q, k, v = np.zeros((2, 5, 4)), np.zeros((2, 6, 4)), np.zeros((2, 6, 2))
    _raises_naming(lambda: scaled_dot_product_attention(q, k, v, mask=np.ones(mshape, bool)),
                   str(mshape), "(2, 5, 6)")


@pytest.mark.parametrize("mshape", [(2, 5, 6), (1, 1, 5, 6), (3, 1, 6)])
def test_error_mask_would_enlarge_scores(mshape):
    q, k, v = np.zeros((5, 4)), np.zeros((6, 4)), np.zeros((6, 2))
    _raises_naming(lambda: scaled_dot_product_attention(q, k, v, mask=np.ones(mshape, bool)),
                   str(mshape), "(5, 6)")
