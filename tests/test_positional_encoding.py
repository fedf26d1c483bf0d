"""attnlib.numpy.positional against formulas written here, complex-number rotations, brute-force
loops and torch's scaled_dot_product_attention with an additive mask."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlib.numpy import positional as P
from attnlib.numpy import scaled_dot_product_attention

SETTINGS = settings(max_examples=25, deadline=None)


# ----------------------------------------------------------------------------- sinusoidal

@SETTINGS
@given(num_positions=st.integers(1, 40), d_model=st.integers(1, 33))
def test_sinusoidal_matches_the_formula(num_positions, d_model):
    pe = P.sinusoidal_positional_encoding(num_positions, d_model)
    want = np.zeros((num_positions, d_model))
    for p in range(num_positions):
        for j in range(d_model):
            two_i = j - j % 2
            angle = p / 10000 ** (two_i / d_model)
            want[p, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    assert pe.shape == (num_positions, d_model) and pe.dtype == np.float64
    np.testing.assert_allclose(pe, want, atol=1e-12)


def test_sinusoidal_dot_product_depends_only_on_the_offset():
    pe = P.sinusoidal_positional_encoding(200, 64)
    omega = 10000.0 ** (-np.arange(0, 64, 2) / 64)
    for k in (0, 1, 5, 37):
        dots = [pe[p] @ pe[p + k] for p in range(0, 150, 7)]
        np.testing.assert_allclose(dots, np.sum(np.cos(k * omega)), atol=1e-9)


@pytest.mark.parametrize("args", [(0, 8), (5, 0), (-1, 4), (3, 2.5), (True, 4)])
def test_sinusoidal_rejects_bad_sizes(args):
    with pytest.raises(ValueError):
        P.sinusoidal_positional_encoding(*args)


# ----------------------------------------------------------------------------- learned absolute

def test_learned_table_and_add_positions():
    rng = np.random.default_rng(0)
    table = P.learned_position_table(10, 4, rng)
    assert table.shape == (10, 4) and abs(table.std() - 0.02) < 0.01
    x = np.ones((2, 3, 4), dtype=np.float32)
    out = P.add_positions(x, table)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x + table[:3].astype(np.float32))
    with pytest.raises(ValueError, match="only 10 positions"):
        P.add_positions(np.zeros((11, 4)), table)
    with pytest.raises(ValueError, match="d_model"):
        P.add_positions(np.zeros((3, 5)), table)


# ----------------------------------------------------------------------------- relative

def test_relative_position_matrix_brute_force():
    got = P.relative_position_matrix(4, 6, 2)
    want = [[max(-2, min(2, j - i)) for j in range(6)] for i in range(4)]
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError):
        P.relative_position_matrix(3, 3, -1)


def test_relative_attention_matches_the_formula_of_shaw_et_al():
    rng = np.random.default_rng(1)
    L, d_k, d_v, kmax = 5, 4, 3, 2
    q, k, v = rng.normal(size=(L, d_k)), rng.normal(size=(L, d_k)), rng.normal(size=(L, d_v))
    rel_k, rel_v = rng.normal(size=(2 * kmax + 1, d_k)), rng.normal(size=(2 * kmax + 1, d_v))
    out, w = P.relative_attention(q, k, v, rel_k, rel_v)
    for i in range(L):
        e = np.array([q[i] @ (k[j] + rel_k[max(-kmax, min(kmax, j - i)) + kmax]) / math.sqrt(d_k)
                      for j in range(L)])
        a = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
        z = sum(a[j] * (v[j] + rel_v[max(-kmax, min(kmax, j - i)) + kmax]) for j in range(L))
        np.testing.assert_allclose(w[i], a, rtol=1e-12)
        np.testing.assert_allclose(out[i], z, rtol=1e-12)


def test_relative_attention_with_zero_tables_is_plain_attention_and_batches():
    rng = np.random.default_rng(2)
    q, k, v = rng.normal(size=(2, 3, 4, 8)), rng.normal(size=(2, 3, 6, 8)), rng.normal(size=(2, 3, 6, 5))
    mask = rng.random((4, 6)) < 0.7
    mask[:, 0] = True
    out, w = P.relative_attention(q, k, v, np.zeros((7, 8)), np.zeros((7, 5)), mask=mask)
    ref_out, ref_w = scaled_dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_allclose(out, ref_out, atol=1e-12)
    np.testing.assert_allclose(w, ref_w, atol=1e-12)


def test_relative_attention_rejects_an_even_table():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match="2 \\* max_distance \\+ 1"):
        P.relative_attention(x, x, x, np.zeros((4, 4)))


# ----------------------------------------------------------------------------- RoPE

def _rope_complex(x, positions, base=10000.0):
    """RoPE as complex multiplication: pair (x_2i, x_2i+1) is x_2i + i x_2i+1, times e^{i p theta}."""
    d = x.shape[-1]
    z = x[..., 0::2] + 1j * x[..., 1::2]
    theta = np.array([base ** (-2 * i / d) for i in range(d // 2)])
    z = z * np.exp(1j * np.asarray(positions)[:, None] * theta)
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = z.real, z.imag
    return out


@SETTINGS
@given(L=st.integers(1, 12), half=st.integers(1, 8), seed=st.integers(0, 10**6))
def test_rope_matches_complex_rotation_and_preserves_norms(L, half, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, L, 2 * half))
    positions = rng.integers(0, 1000, size=L)
    got = P.rope(x, positions)
    np.testing.assert_allclose(got, _rope_complex(x, positions), atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(got, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-10)
    np.testing.assert_allclose(P.rope(x), _rope_complex(x, np.arange(L)), atol=1e-10)


@SETTINGS
@given(m=st.integers(0, 500), n=st.integers(0, 500), shift=st.integers(-400, 400),
       half=st.integers(1, 8), seed=st.integers(0, 10**6))
def test_rope_scores_depend_only_on_the_offset(m, n, shift, half, seed):
    rng = np.random.default_rng(seed)
    q, k = rng.normal(size=(1, 2 * half)), rng.normal(size=(1, 2 * half))
    if min(m, n) + shift < 0:
        shift = -min(m, n)
    before = P.rope(q, [m])[0] @ P.rope(k, [n])[0]
    after = P.rope(q, [m + shift])[0] @ P.rope(k, [n + shift])[0]
    assert after == pytest.approx(before, abs=1e-9)


def test_rope_matrix_is_a_rotation_and_agrees_with_rope():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(9, 6))
    for p in (0, 3, 8):
        R = P.rope_matrix(p, 6)
        np.testing.assert_allclose(R.T @ R, np.eye(6), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        np.testing.assert_allclose(P.rope(x)[p], R @ x[p], atol=1e-12)
    np.testing.assert_array_equal(P.rope_matrix(0, 4), np.eye(4))


def test_rope_keeps_float32_and_rejects_bad_input():
    assert P.rope(np.ones((3, 4), dtype=np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="even"):
        P.rope(np.ones((3, 5)))
    with pytest.raises(ValueError, match="even"):
        P.rope_matrix(1, 3)
    with pytest.raises(ValueError, match="positions"):
        P.rope(np.ones((3, 4)), positions=[0, 1])
    with pytest.raises(ValueError):
        P.rope(np.ones(4))


# ----------------------------------------------------------------------------- ALiBi

def test_alibi_slopes_follow_the_papers_geometric_sequence():
    # Press et al. (2022), section 3: for 8 heads 1/2^1, ..., 1/2^8; for 16 heads 1/2^0.5, ..., 1/2^8.
    np.testing.assert_allclose(P.alibi_slopes(8), [1 / 2 ** k for k in range(1, 9)])
    np.testing.assert_allclose(P.alibi_slopes(16), [1 / 2 ** (k / 2) for k in range(1, 17)])
    np.testing.assert_allclose(P.alibi_slopes(1), [1 / 2 ** 8])
    # Not a power of two (the paper's code): 8 heads' slopes, then every other slope of 16 heads.
    np.testing.assert_allclose(P.alibi_slopes(12), [1 / 2 ** k for k in range(1, 9)]
                               + [1 / 2 ** (k / 2) for k in (1, 3, 5, 7)])
    for n in range(1, 40):
        s = P.alibi_slopes(n)
        assert s.shape == (n,) and np.all((s > 0) & (s < 1)) and len(set(s.tolist())) == n
    with pytest.raises(ValueError):
        P.alibi_slopes(0)


def test_alibi_bias_and_biased_attention_match_torch():
    torch = pytest.importorskip("torch")
    H, L = 4, 5
    bias = P.alibi_bias(H, L)
    slopes = P.alibi_slopes(H)
    for h in range(H):
        for i in range(L):
            for j in range(L):
                assert bias[h, i, j] == pytest.approx(-slopes[h] * abs(i - j))
    rng = np.random.default_rng(4)
    q, k, v = rng.normal(size=(2, H, L, 8)), rng.normal(size=(2, H, L, 8)), rng.normal(size=(2, H, L, 3))
    causal = np.tril(np.ones((L, L), dtype=bool))
    out, w = P.biased_attention(q, k, v, bias, mask=causal)
    float_mask = torch.tensor(np.where(causal, bias, -np.inf))
    ref = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q), torch.tensor(k), torch.tensor(v), attn_mask=float_mask)
    np.testing.assert_allclose(out, ref.numpy(), atol=1e-12)
    np.testing.assert_allclose(w.sum(-1), 1.0)
    with pytest.raises(ValueError, match="bias"):
        P.biased_attention(q, k, v, np.zeros((3, L, L)))
