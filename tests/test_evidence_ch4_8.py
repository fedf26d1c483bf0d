"""Issue 11, chapters 4-8: the new catalogued mistakes, written as a learner would, each get their
own diagnosis; loop-written correct answers pass; the batched-input hint fits the exercise; and
the claims the chapters make about PyTorch and about scaling hold (independent references:
torch's own modules, hand loops, formulas)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attnlib.exercises import alignment_scores as ch5
from attnlib.exercises import masking as ch6
from attnlib.exercises import multi_head as ch7
from attnlib.exercises import numpy_to_torch as ch8
from attnlib.exercises import queries_keys_values as ch4
from attnlib.exercises.core import BATCHED_HINT, TRANSPOSE_BATCHED_HINT, Exercise, batched_hint


def _softmax_rows(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- ch4


def laplacian_weights(x_query, x_key, h):
    diff = x_query[..., :, None] - x_key[..., None, :]
    return _softmax_rows(-np.abs(diff) / h)


def laplacian_nw(x_query, x_key, y_key, h):
    w = laplacian_weights(x_query, x_key, h)
    return np.sum(w * y_key[..., None, :], axis=-1)


def loop_kernel_weights(x_query, x_key, h):
    """Written with Python loops over every batch index, query and key."""
    xq, xk = np.asarray(x_query), np.asarray(x_key)
    batch = np.broadcast_shapes(xq.shape[:-1], xk.shape[:-1])
    xq, xk = np.broadcast_to(xq, batch + xq.shape[-1:]), np.broadcast_to(xk, batch + xk.shape[-1:])
    out = np.zeros(batch + (xq.shape[-1], xk.shape[-1]))
    for b in np.ndindex(*batch):
        for i in range(xq.shape[-1]):
            s = [-(xq[b][i] - xk[b][j]) ** 2 / (2 * h * h) for j in range(xk.shape[-1])]
            m = max(s)
            e = [math.exp(x - m) for x in s]
            out[b][i] = [x / sum(e) for x in e]
    return out


def loop_nw(x_query, x_key, y_key, h):
    w = loop_kernel_weights(x_query, x_key, h)
    out = np.zeros(w.shape[:-1])
    for idx in np.ndindex(*out.shape):
        b = idx[:-1]
        yk = np.broadcast_to(y_key, w.shape[:-2] + y_key.shape[-1:])[b]
        out[idx] = sum(w[idx][j] * yk[j] for j in range(w.shape[-1]))
    return out


def test_ch4_laplacian_kernel_is_named():
    ch4.reset()
    r = ch4.check_kernel_weights(laplacian_weights)
    assert not r.passed and r.mistake == "laplacian", r.message
    assert "Laplacian" in r.message
    r = ch4.check_nadaraya_watson(laplacian_nw)
    assert not r.passed and r.mistake == "laplacian", r.message


def test_ch4_loop_answers_pass():
    ch4.reset()
    assert ch4.check_kernel_weights(loop_kernel_weights).passed
    assert ch4.check_nadaraya_watson(loop_nw).passed


# ----------------------------------------------------------------------------- ch5


def v_inside_tanh(q, k, W_q, W_k, v):
    a = (q @ W_q)[..., :, None, :]
    b = (k @ W_k)[..., None, :, :]
    return np.tanh((a + b) @ v)


def extra_sqrt_d(q, k, W_q, W_k, v):
    a = (q @ W_q)[..., :, None, :]
    b = (k @ W_k)[..., None, :, :]
    return np.tanh(a + b) @ v / np.sqrt(q.shape[-1])


def loop_additive(q, k, W_q, W_k, v):
    batch = q.shape[:-2]
    out = np.zeros(batch + (q.shape[-2], k.shape[-2]))
    for b in np.ndindex(*batch):
        for i in range(q.shape[-2]):
            for j in range(k.shape[-2]):
                hidden = [math.tanh(sum(q[b][i][a] * W_q[a, u] for a in range(q.shape[-1]))
                                    + sum(k[b][j][a] * W_k[a, u] for a in range(k.shape[-1])))
                          for u in range(v.shape[0])]
                out[b][i][j] = sum(v[u] * hidden[u] for u in range(v.shape[0]))
    return out


def test_ch5_v_inside_tanh_and_extra_scaling_are_named():
    ch5.reset()
    r = ch5.check_additive_scores(v_inside_tanh)
    assert not r.passed and r.mistake == "v_inside_tanh", r.message
    r = ch5.check_additive_scores(extra_sqrt_d)
    assert not r.passed and r.mistake == "scaled_by_sqrt_d_q", r.message
    assert "scaled DOT product" in r.message


def test_ch5_extra_scaling_is_exactly_half_on_the_d_4_case():
    case = ch5._additive_cases()[0]  # d_q = d_k = 4: 1/sqrt(4) = 1/2
    np.testing.assert_allclose(extra_sqrt_d(*case.args), 0.5 * loop_additive(*case.args), rtol=1e-12)


def test_ch5_loop_answer_passes():
    ch5.reset()
    assert ch5.check_additive_scores(loop_additive).passed


# ----------------------------------------------------------------------------- ch6


def mask_queries_too(lengths, max_len):
    real = np.arange(max_len)[None, :] < lengths[:, None]          # (B, L)
    causal = np.tril(np.ones((max_len, max_len), dtype=bool))
    return real[:, None, :] & real[:, :, None] & causal             # keys AND queries


def loop_combined_mask(lengths, max_len):
    out = np.zeros((len(lengths), max_len, max_len), dtype=bool)
    for b, n in enumerate(lengths):
        for i in range(max_len):
            for j in range(max_len):
                out[b, i, j] = j < n and j <= i
    return out


def bottom_right_attention(Q, K, V, lengths, causal):
    L_q, L_k = Q.shape[-2], K.shape[-2]
    mask = np.arange(L_k)[None, None, :] < lengths[:, None, None]
    if causal:  # the KV-cache convention: the queries are the last L_q positions
        mask = mask & np.tril(np.ones((L_q, L_k), dtype=bool), k=L_k - L_q)
    s = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
    s = np.where(mask, s, -np.inf)
    m = np.where(np.isfinite(s.max(-1, keepdims=True)), s.max(-1, keepdims=True), 0.0)
    e = np.exp(s - m)
    return e / np.maximum(e.sum(-1, keepdims=True), 1e-300) @ V


def queries_too_attention(Q, K, V, lengths, causal):
    L_q, L_k = Q.shape[-2], K.shape[-2]
    keys = np.arange(L_k)[None, None, :] < lengths[:, None, None]
    queries = np.arange(L_q)[None, :, None] < lengths[:, None, None]
    mask = keys & queries
    if causal:
        mask = mask & (np.arange(L_k)[None, :] <= np.arange(L_q)[:, None])
    s = np.where(mask, Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1]), -np.inf)
    m = np.where(np.isfinite(s.max(-1, keepdims=True)), s.max(-1, keepdims=True), 0.0)
    e = np.exp(s - m)
    return e / np.where(e.sum(-1, keepdims=True) == 0, 1.0, e.sum(-1, keepdims=True)) @ V


def loop_masked_attention(Q, K, V, lengths, causal):
    B, L_q, L_k = Q.shape[0], Q.shape[1], K.shape[1]
    out = np.zeros((B, L_q, V.shape[-1]))
    for b in range(B):
        for i in range(L_q):
            allowed = [j for j in range(L_k) if j < lengths[b] and (not causal or j <= i)]
            if not allowed:
                continue
            s = [float(Q[b, i] @ K[b, j]) / math.sqrt(Q.shape[-1]) for j in allowed]
            m = max(s)
            e = [math.exp(x - m) for x in s]
            for w, j in zip(e, allowed):
                out[b, i] += w / sum(e) * V[b, j]
    return out


def test_ch6_masking_padded_queries_too_is_named_as_that():
    ch6.reset()
    r = ch6.check_combined_mask(mask_queries_too)
    assert not r.passed and r.mistake == "query_rows_masked", r.message
    assert "as well as the padded keys" in r.message
    r = ch6.check_masked_attention(queries_too_attention)
    assert not r.passed and r.mistake == "query_rows_masked", r.message


def test_ch6_bottom_right_causal_mask_gets_its_own_diagnosis():
    ch6.reset()
    r = ch6.check_masked_attention(bottom_right_attention)
    assert not r.passed and r.mistake == "causal_bottom_right", r.message
    assert "top-left" in r.message


def test_ch6_the_checker_has_a_causal_case_with_lq_ne_lk():
    assert any(c.args[4] and c.args[0].shape[-2] != c.args[1].shape[-2]
               for c in ch6._attention_cases())


def test_ch6_loop_answers_pass():
    ch6.reset()
    assert ch6.check_combined_mask(loop_combined_mask).passed
    assert ch6.check_masked_attention(loop_masked_attention).passed


# ----------------------------------------------------------------------------- ch7


def _split(x, H):
    return np.swapaxes(x.reshape(*x.shape[:-1], H, x.shape[-1] // H), -2, -3)


def mha_mask_without_head_axis(x_q, x_kv, W_q, W_k, W_v, W_o, num_heads, mask):
    q, k, v = _split(x_q @ W_q, num_heads), _split(x_kv @ W_k, num_heads), _split(x_kv @ W_v, num_heads)
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        s = np.where(mask, s, -np.inf)           # the mask as given: no head axis
    w = _softmax_rows(s)
    heads = w @ v
    merged = np.swapaxes(heads, -2, -3).reshape(*heads.shape[:-3], heads.shape[-2], -1)
    return merged @ W_o


def loop_mha(x_q, x_kv, W_q, W_k, W_v, W_o, num_heads, mask):
    """One head and one example at a time, with explicit column slices."""
    batch = x_q.shape[:-2]
    d = x_q.shape[-1]
    dh = d // num_heads
    out = np.zeros(batch + (x_q.shape[-2], d))
    full_mask = None if mask is None else np.broadcast_to(mask, batch + (x_q.shape[-2], x_kv.shape[-2]))
    for b in np.ndindex(*batch):
        concat = []
        for h in range(num_heads):
            cols = slice(h * dh, (h + 1) * dh)
            q, k, v = x_q[b] @ W_q[:, cols], x_kv[b] @ W_k[:, cols], x_kv[b] @ W_v[:, cols]
            s = q @ k.T / math.sqrt(dh)
            if full_mask is not None:
                s = np.where(full_mask[b], s, -np.inf)
            concat.append(_softmax_rows(s) @ v)
        out[b] = np.concatenate(concat, axis=-1) @ W_o
    return out


def test_ch7_mask_without_head_axis_is_named():
    ch7.reset()
    r = ch7.check_multi_head_attention(mha_mask_without_head_axis)
    assert not r.passed and r.mistake == "mask_without_head_axis", r.message
    assert "np.expand_dims(mask, -3)" in r.message


def test_ch7_loop_answer_passes():
    ch7.reset()
    assert ch7.check_multi_head_attention(loop_mha).passed


# ----------------------------------------------------------------------------- the batched hint


def test_batched_hint_fits_the_exercise():
    # Keys that are transposed (Q K^T): the transpose hint; elsewhere no word about K.T.
    assert batched_hint(ch6.MASKED_ATTENTION) == TRANSPOSE_BATCHED_HINT
    assert "K.T" not in batched_hint(ch5.ADDITIVE)
    assert "K.T" not in batched_hint(ch4.KERNEL_WEIGHTS)
    assert "k.T" in batched_hint(ch8.ATTENTION)
    generic = Exercise(name="rope", call="fn(x)", arg_names=("x",), out_axes=("L", "d"),
                       dims=lambda x: {}, reference=lambda x: x, cases=list)
    assert batched_hint(generic) == BATCHED_HINT and "K.T" not in BATCHED_HINT


def test_additive_learner_with_an_unbatched_only_broadcast_gets_the_additive_hint():
    ch5.reset()

    def unbatched_only(q, k, W_q, W_k, v):  # works for 2-D inputs only
        return np.tanh((q @ W_q)[:, None, :] + (k @ W_k)[None, :, :]) @ v

    r = ch5.check_additive_scores(unbatched_only)
    assert not r.passed
    assert "K.T" not in r.message and "[..., :, None, :]" in r.message, r.message


# ----------------------------------------------------------------------------- what ch6/ch8 say about torch


def _fully_masked_inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, generator=g)
    keep = torch.tensor([[True, True, True], [False, False, False]])  # example 1: no key at all
    return x, keep


def test_torch_sdpa_gives_zeros_on_a_fully_masked_row():
    x, keep = _fully_masked_inputs()
    out = torch.nn.functional.scaled_dot_product_attention(x, x, x, attn_mask=keep[:, None, :])
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    assert torch.isfinite(out[0]).all()


def test_torch_multihead_attention_gives_nan_with_weights_and_depends_on_the_path_without():
    x, keep = _fully_masked_inputs()
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(4, 2, batch_first=True)
    out, w = mha(x, x, x, key_padding_mask=~keep)  # need_weights=True, the default
    assert torch.isnan(out[1]).all() and torch.isnan(w[1]).all()
    assert torch.isfinite(out[0]).all()
    out_f, _ = mha(x, x, x, key_padding_mask=~keep, need_weights=False)
    assert torch.equal(out_f[1], torch.zeros_like(out_f[1]))
    mha.eval()
    with torch.no_grad():  # evaluation without gradients: its own fast path, NaN again
        out_e, _ = mha(x, x, x, key_padding_mask=~keep, need_weights=False)
    assert torch.isnan(out_e[1]).all()


def test_attnlib_gives_zeros_on_a_fully_masked_row_on_both_paths():
    from attnlib.torch import scaled_dot_product_attention

    x, keep = _fully_masked_inputs()
    for need in (True, False):
        out, _ = scaled_dot_product_attention(x, x, x, mask=keep[:, None, :], need_weights=need)
        assert torch.equal(out[1], torch.zeros_like(out[1]))


@pytest.mark.parametrize("d_k", [64, 512])
def test_unscaled_softmax_saturates_more_than_scaled(d_k):
    """Independent of attnlib: random unit-variance q, k, 16 keys, the largest softmax weight."""
    rng = np.random.default_rng(1)
    q = rng.normal(size=(500, 1, d_k))
    k = rng.normal(size=(500, 16, d_k))
    s = (q @ np.swapaxes(k, -1, -2))[:, 0]
    top_dot = _softmax_rows(s).max(-1).mean()
    top_scaled = _softmax_rows(s / np.sqrt(d_k)).max(-1).mean()
    assert top_dot > 0.8 > 0.3 > top_scaled


# ----------------------------------------------------------------------------- timing as ratios


def test_interleaved_ratios_recovers_a_known_ratio():
    import time

    from attnlib.experiments.multi_head import interleaved_ratios

    # Sleeps of 20 and 10 ms: a busy machine adds a few ms to both, which keeps the ratio in range.
    r = interleaved_ratios({"long": lambda: time.sleep(0.02), "short": lambda: time.sleep(0.01)},
                           reference="short", rounds=9)
    assert set(r) == {"median", "q25", "q75", "rounds"} and r["rounds"] == 9
    assert 1.4 < r["median"]["long"] < 2.6
    assert r["q25"]["long"] <= r["median"]["long"] <= r["q75"]["long"]


def test_doubling_ratios_and_path_ratios_return_ratios_and_exact_sizes():
    from matplotlib.figure import Figure

    from attnlib.experiments.multi_head import doubling_ratios
    from attnlib.experiments.numpy_to_torch import attention_path_ratios, path_ratios_table
    from attnlib.viz.multi_head import cost_ratio_figure
    from attnlib.viz.numpy_to_torch import path_ratios_frame

    d = doubling_ratios([16, 32, 64], d_model=8, num_heads=2, rounds=3, progress=False)
    assert list(d["weights_bytes"]) == [2 * L * L * 4 for L in (16, 32, 64)]
    assert d["ratio"].shape == (2,) and (d["ratio"] > 0).all()
    np.testing.assert_allclose(d["exponent"], np.log(d["ratio"]) / np.log(2))
    assert "seconds" not in d
    p = attention_path_ratios([16, 32], num_heads=2, head_dim=8, rounds=3, progress=False)
    assert list(p["weights_bytes"]) == [2 * 16 * 16 * 4, 2 * 32 * 32 * 4]
    assert (p["weights"] > 0).all() and (p["fused"] > 0).all()
    assert "ms" not in path_ratios_table(p)
    assert isinstance(path_ratios_frame(p, 1), Figure)
    import matplotlib.pyplot as plt
    plt.close(cost_ratio_figure(d))


@pytest.mark.parametrize("call, error, match", [
    (lambda: __import__("attnlib.experiments.multi_head", fromlist=["x"]).interleaved_ratios(
        {"a": lambda: None}, reference="b"), ValueError, "reference"),
    (lambda: __import__("attnlib.experiments.multi_head", fromlist=["x"]).interleaved_ratios(
        {"a": 3}, reference="a"), TypeError, r"fns\['a'\]"),
    (lambda: __import__("attnlib.experiments.multi_head", fromlist=["x"]).doubling_ratios(
        [32, 16], progress=False), ValueError, "increase"),
    (lambda: __import__("attnlib.experiments.multi_head", fromlist=["x"]).doubling_ratios(
        [32], progress=False), ValueError, "at least two"),
    (lambda: __import__("attnlib.experiments.numpy_to_torch", fromlist=["x"]).attention_path_ratios(
        [16, -8], progress=False), ValueError, "lengths"),
    (lambda: __import__("attnlib.experiments.numpy_to_torch", fromlist=["x"]).loop_batch_ratio(
        3, torch.zeros(2, 3, 4)), TypeError, "module"),
    (lambda: __import__("attnlib.viz.scores", fromlist=["x"]).scaling_frame(0, True), ValueError, "d_k"),
    (lambda: __import__("attnlib.viz.scores", fromlist=["x"]).scaling_explorer(d_k=5), ValueError, "d_k"),
    (lambda: __import__("attnlib.viz.numpy_to_torch", fromlist=["x"]).path_ratios_figure({"L": [1]}),
     ValueError, "attention_path_ratios"),
    (lambda: __import__("attnlib.viz.multi_head", fromlist=["x"]).cost_ratio_figure({"L": [1]}),
     ValueError, "doubling_ratios"),
])
def test_new_functions_name_a_bad_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_scaling_snapshots_show_the_saturation_they_claim():
    """Unscaled, the mean largest weight grows with d_k; scaled, it stays put (the ch5 explorer)."""
    from attnlib.viz.scores import _scaling_draw

    top = {d: {k: w.max(-1).mean() for k, w in _scaling_draw(d, 16, 300, 0).items()} for d in (4, 1024)}
    assert top[1024]["unscaled"] > 0.9 > 0.5 > top[4]["unscaled"]
    assert abs(top[1024]["scaled"] - top[4]["scaled"]) < 0.05
