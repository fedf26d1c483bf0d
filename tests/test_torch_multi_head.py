"""attnlib.torch.MultiHeadAttention against independent references.

References: ``torch.nn.MultiheadAttention`` (batch_first, per-head weights, boolean masks inverted:
torch's True = blocked), a multi-head attention written out here with plain torch ops, the NumPy
twin ``attnlib.numpy.multi_head_attention``, and finite differences (``torch.autograd.gradcheck``).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.func import functional_call

import attnlib.numpy as anp
from attnlib.experiments.numpy_to_torch import attention_path_times, best_time, numerical_gradient
from attnlib.torch import MultiHeadAttention, merge_heads, split_heads

FAST = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
CUDA = torch.cuda.is_available()
F64 = torch.float64


def torch_mha(E, H, bias, seed=0):
    """A float64 nn.MultiheadAttention with random (non-zero) biases."""
    torch.manual_seed(seed)
    m = torch.nn.MultiheadAttention(E, H, bias=bias, batch_first=True).double().eval()
    if bias:
        with torch.no_grad():
            m.in_proj_bias.normal_()
            m.out_proj.bias.normal_()
    return m


def reference_mha(m, query, key, value, allowed):
    """Multi-head attention written out with torch ops from nn.MultiheadAttention's parameters.

    ``allowed`` is a bool tensor broadcastable to (B, H, L_q, L_k), True = may attend.
    """
    E, H = m.embed_dim, m.num_heads
    d = E // H
    Wq, Wk, Wv = m.in_proj_weight.chunk(3)
    bq, bk, bv = m.in_proj_bias.chunk(3) if m.in_proj_bias is not None else (0, 0, 0)
    heads = lambda x: x.reshape(x.shape[0], x.shape[1], H, d).permute(0, 2, 1, 3)  # noqa: E731
    q, k, v = heads(query @ Wq.T + bq), heads(key @ Wk.T + bk), heads(value @ Wv.T + bv)
    scores = q @ k.permute(0, 1, 3, 2) / math.sqrt(d)
    scores = scores.masked_fill(~allowed, float("-inf"))
    w = torch.softmax(scores, dim=-1)
    out = (w @ v).permute(0, 2, 1, 3).reshape(query.shape[0], query.shape[1], E)
    out = out @ m.out_proj.weight.T + (m.out_proj.bias if m.out_proj.bias is not None else 0)
    return out, w


@st.composite
def mha_cases(draw):
    """Random self- or cross-attention inputs with a mask of one of the accepted shapes.

    Masks never block a whole query row (torch gives NaN there, attnlib zeros; tested apart).
    """
    H = draw(st.sampled_from([1, 2, 3, 4]))
    E = H * draw(st.integers(1, 4))
    B, L_q = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    cross = draw(st.booleans())
    L_k = draw(st.integers(1, 6)) if cross else L_q
    bias = draw(st.booleans())
    kind = draw(st.sampled_from(["none", "2d", "key", "3d", "4d"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    query = torch.from_numpy(rng.normal(size=(B, L_q, E)))
    key = query if not cross else torch.from_numpy(rng.normal(size=(B, L_k, E)))
    shape = {"none": None, "2d": (L_q, L_k), "key": (B, 1, L_k), "3d": (B, L_q, L_k),
             "4d": (B, H, L_q, L_k)}[kind]
    mask = None
    if shape is not None:
        m = rng.random(shape) < 0.6
        m[..., 0] = True  # every query row keeps at least one key
        mask = torch.from_numpy(m)
    return E, H, bias, query, key, mask


def torch_masks(mask, B, H):
    """attnlib's mask (True = may attend) as torch's attn_mask / key_padding_mask (True = blocked)."""
    if mask is None:
        return {}
    if mask.dim() == 3 and mask.shape[1] == 1:
        return {"key_padding_mask": ~mask[:, 0, :]}
    if mask.dim() == 3:
        return {"attn_mask": (~mask).repeat_interleave(H, dim=0)}  # (B * H, L_q, L_k)
    if mask.dim() == 4:
        return {"attn_mask": (~mask).reshape(B * H, *mask.shape[-2:])}
    return {"attn_mask": ~mask}


@FAST
@given(mha_cases())
def test_from_torch_equals_torch_multihead_attention(case):
    E, H, bias, query, key, mask = case
    m = torch_mha(E, H, bias)
    ours = MultiHeadAttention.from_torch(m)
    with torch.no_grad():
        want, want_w = m(query, key, key, average_attn_weights=False,
                         **torch_masks(mask, query.shape[0], H))
        got, got_w = ours(query, key, key, mask=mask)
    assert got.shape == want.shape == query.shape
    assert got_w.shape == (query.shape[0], H, query.shape[1], key.shape[1])
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got_w, want_w, rtol=1e-10, atol=1e-12)


@FAST
@given(mha_cases())
def test_equals_the_written_out_reference_and_the_fused_path(case):
    E, H, bias, query, key, mask = case
    m = torch_mha(E, H, bias, seed=1)
    ours = MultiHeadAttention.from_torch(m)
    allowed = torch.ones(1, dtype=torch.bool) if mask is None else (
        mask.unsqueeze(1) if mask.dim() == 3 else mask)
    with torch.no_grad():
        want, want_w = reference_mha(m, query, key, key, allowed)
        got, got_w = ours(query, key, key, mask=mask)
        fused, none = ours(query, key, key, mask=mask, need_weights=False)
    assert none is None
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got_w, want_w, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fused, got, rtol=1e-10, atol=1e-12)


@FAST
@given(mha_cases())
def test_equals_the_numpy_twin_with_the_same_weights(case):
    E, H, _, query, key, mask = case
    ours = MultiHeadAttention.from_torch(torch_mha(E, H, bias=False, seed=2))
    Ws = ours.to_numpy_weights()
    assert all(W.shape == (E, E) for W in Ws)
    if mask is not None and mask.dim() == 4:  # the NumPy twin shares one mask across heads
        mask = mask[:, 0]
    with torch.no_grad():
        got, got_w = ours(query, key, key, mask=mask)
    np_mask = None if mask is None else mask.numpy()
    want, want_w = anp.multi_head_attention(query.numpy(), key.numpy(), *Ws, H, mask=np_mask)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_w.numpy(), want_w, rtol=1e-10, atol=1e-12)


def test_from_numpy_weights_round_trip_and_numpy_twin():
    rng = np.random.default_rng(0)
    E, H = 8, 2
    Ws = [rng.normal(size=(E, E)) for _ in range(4)]
    ours = MultiHeadAttention.from_numpy_weights(*Ws, num_heads=H)
    for a, b in zip(ours.to_numpy_weights(), Ws):
        np.testing.assert_array_equal(a, b)
    x = rng.normal(size=(2, 5, E))
    mask = anp.causal_mask(5)
    want, want_w = anp.multi_head_attention(x, x, *Ws, H, mask=mask)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        got, got_w = ours(xt, xt, xt, mask=torch.from_numpy(mask))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_w.numpy(), want_w, rtol=1e-12, atol=1e-12)


def test_to_numpy_weights_refuses_biases():
    with pytest.raises(ValueError, match="bias=False"):
        MultiHeadAttention(8, 2).to_numpy_weights()


@pytest.mark.parametrize("H", [1, 2, 4, 8])
def test_head_counts_match_torch(H):
    m = torch_mha(16, H, bias=True, seed=H)
    ours = MultiHeadAttention.from_torch(m)
    x = torch.randn(2, 7, 16, dtype=F64)
    causal = torch.ones(7, 7, dtype=torch.bool).tril()
    with torch.no_grad():
        want, want_w = m(x, x, x, attn_mask=~causal, average_attn_weights=False)
        got, got_w = ours(x, x, x, mask=causal)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got_w, want_w, rtol=1e-10, atol=1e-12)


def test_fully_masked_query_row_gives_zero_weights_not_nan():
    ours = MultiHeadAttention(8, 2).double()
    x = torch.randn(1, 3, 8, dtype=F64)
    mask = torch.tensor([[True, False, False], [False, False, False], [True, True, True]])
    out, w = ours(x, x, x, mask=mask)
    fused, _ = ours(x, x, x, mask=mask, need_weights=False)
    assert torch.isfinite(out).all() and torch.isfinite(fused).all()
    assert (w[0, :, 1] == 0).all()
    # The masked row's heads are zero, so its output is just the output bias.
    torch.testing.assert_close(out[0, 1], ours.out_proj.bias)
    torch.testing.assert_close(fused, out)


def test_default_init_matches_torch_statistics_and_zero_biases():
    torch.manual_seed(0)
    ours = MultiHeadAttention(64, 4)
    bound = math.sqrt(6 / (64 + 3 * 64))  # xavier_uniform on the stacked (3E, E) matrix
    for p in (ours.q_proj, ours.k_proj, ours.v_proj):
        assert p.weight.abs().max() <= bound
        assert (p.bias == 0).all()
    assert (ours.out_proj.bias == 0).all()


def test_gradcheck_float64():
    torch.manual_seed(0)
    ours = MultiHeadAttention(6, 2).double()
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_()
    q = torch.randn(2, 3, 6, dtype=F64, requires_grad=True)
    kv = torch.randn(2, 4, 6, dtype=F64, requires_grad=True)
    mask = torch.tensor([[True, True, False, True]]).expand(3, 4)
    assert torch.autograd.gradcheck(lambda a, b: ours(a, b, b, mask=mask)[0], (q, kv))
    assert torch.autograd.gradcheck(lambda a, b: ours(a, b, b, mask=mask, need_weights=False)[0],
                                    (q, kv))
    # Gradients of a parameter as well: the query projection's weight.
    params = dict(ours.named_parameters())
    W = params["q_proj.weight"].detach().clone().requires_grad_()
    f = lambda w: functional_call(ours, {**params, "q_proj.weight": w}, (q, kv, kv),  # noqa: E731
                                  {"mask": mask})[0]
    assert torch.autograd.gradcheck(f, (W,))


def test_numerical_gradient_matches_a_known_gradient():
    x = np.array([[0.5, -1.0], [2.0, 0.1]])
    g = numerical_gradient(lambda a: float(np.sum(np.sin(a) * a)), x)
    np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x), atol=1e-8)
    assert x[0, 0] == 0.5  # the input is left alone


def test_autograd_equals_finite_differences_of_the_numpy_twin():
    rng = np.random.default_rng(3)
    q, k, v = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 3))
    c = rng.normal(size=(2, 3, 3))
    loss_np = lambda qq: float(np.sum(anp.scaled_dot_product_attention(qq, k, v)[0] * c))  # noqa: E731
    qt = torch.tensor(q, requires_grad=True)
    from attnlib.torch import scaled_dot_product_attention
    (scaled_dot_product_attention(qt, torch.from_numpy(k), torch.from_numpy(v))[0]
     * torch.from_numpy(c)).sum().backward()
    np.testing.assert_allclose(qt.grad.numpy(), numerical_gradient(loss_np, q), atol=1e-7)


def test_split_and_merge_heads_match_numpy():
    x = torch.randn(2, 5, 12, dtype=F64)
    s = split_heads(x, 3)
    assert s.shape == (2, 3, 5, 4)
    np.testing.assert_array_equal(s.numpy(), anp.split_heads(x.numpy(), 3))
    torch.testing.assert_close(merge_heads(s), x, rtol=0, atol=0)
    with pytest.raises(ValueError, match="not divisible"):
        split_heads(x, 5)
    with pytest.raises(ValueError, match=r"\(\.\.\., H, L, d_head\)"):
        merge_heads(x[0, 0])


def test_dropout_only_in_training_and_from_torch_keeps_mode():
    m = torch.nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True)
    ours = MultiHeadAttention.from_torch(m)
    assert ours.training and ours.dropout == 0.5
    x = torch.randn(2, 6, 8)
    ours.eval()
    a, b = ours(x, x, x)[0], ours(x, x, x)[0]
    torch.testing.assert_close(a, b)
    ours.train()
    torch.manual_seed(0)
    assert not torch.allclose(ours(x, x, x)[0], a)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_low_precision_dtypes_run(dtype):
    ours = MultiHeadAttention(16, 4).to(dtype)
    x = torch.randn(2, 5, 16, dtype=dtype)
    out, w = ours(x, x, x)
    fused, _ = ours(x, x, x, need_weights=False)
    assert out.dtype == w.dtype == fused.dtype == dtype
    torch.testing.assert_close(fused.float(), out.float(), rtol=0.05, atol=0.05)


@pytest.mark.parametrize("args, match", [
    ((10, 3), "embed_dim=10 is not divisible by num_heads=3"),
    ((8, 0), "num_heads must be a positive integer"),
    ((8, 2.5), "num_heads must be a positive integer"),
])
def test_bad_construction(args, match):
    with pytest.raises(ValueError, match=match):
        MultiHeadAttention(*args)


def test_bad_inputs_name_the_shapes():
    ours = MultiHeadAttention(8, 2)
    x = torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match=r"query must have shape \(B, L, embed_dim=8\), got shape \(5, 8\)"):
        ours(x[0], x, x)
    with pytest.raises(ValueError, match=r"key must have shape .* got shape \(2, 5, 6\)"):
        ours(x, x[..., :6], x)
    with pytest.raises(ValueError, match=r"key and value must have the same shape"):
        ours(x, x, x[:, :4])
    with pytest.raises(ValueError, match=r"batch size 2 but key and value 1"):
        ours(x, x[:1], x[:1])
    with pytest.raises(ValueError, match=r"mask of shape \(2, 4, 5\)"):
        ours(x, x, x, mask=torch.ones(2, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="boolean"):
        ours(x, x, x, mask=torch.ones(5, 5))
    with pytest.raises(ValueError, match="torch.Tensor"):
        ours(x.numpy(), x, x)
    with pytest.raises(ValueError, match="MultiheadAttention"):
        MultiHeadAttention.from_torch(torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="kdim"):
        MultiHeadAttention.from_torch(torch.nn.MultiheadAttention(8, 2, kdim=4, vdim=4))
    with pytest.raises(ValueError, match=r"W_o must have shape \(E, E\) = \(4, 4\)"):
        MultiHeadAttention.from_numpy_weights(*[np.eye(4)] * 3, np.eye(3), num_heads=2)


def test_timing_helpers_return_sane_numbers():
    assert best_time(lambda: sum(range(100)), repeats=2) > 0
    t = attention_path_times([16, 32], batch=1, num_heads=2, head_dim=8, repeats=2, progress=False)
    assert list(t["L"]) == [16, 32]
    assert all((t[k] > 0).all() for k in ("weights", "fused", "torch"))
    assert list(t["weights_bytes"]) == [2 * 16 * 16 * 4, 2 * 32 * 32 * 4]


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_runs_on_cuda_and_matches_cpu():
    m = torch_mha(16, 4, bias=True)
    cpu = MultiHeadAttention.from_torch(m)
    gpu = MultiHeadAttention.from_torch(m.cuda())
    assert gpu.q_proj.weight.device.type == "cuda"
    x = torch.randn(2, 6, 16, dtype=F64)
    mask = torch.ones(6, 6, dtype=torch.bool).tril()
    with torch.no_grad():
        want, want_w = cpu(x, x, x, mask=mask)
        got, got_w = gpu(x.cuda(), x.cuda(), x.cuda(), mask=mask.cuda())
        fused, _ = gpu(x.cuda(), x.cuda(), x.cuda(), mask=mask.cuda(), need_weights=False)
    torch.testing.assert_close(got.cpu(), want)
    torch.testing.assert_close(got_w.cpu(), want_w)
    torch.testing.assert_close(fused.cpu(), want)


# --------------------------------------------------------------------------------------------
# The chapter's exercise checkers (attnlib.exercises.numpy_to_torch)
# --------------------------------------------------------------------------------------------

def _attn(transpose=lambda k: k.transpose(-2, -1), dim=-1, fill=True, invert=False, scale=True):
    def fn(q, k, v, mask):
        s = q @ transpose(k)
        if scale:
            s = s / math.sqrt(q.shape[-1])
        if mask is not None:
            s = s.masked_fill(mask if invert else ~mask, float("-inf") if fill else 0.0)
        return torch.softmax(s, dim=dim) @ v
    return fn


def test_exercise_checkers_pass_correct_answers_and_name_torch_mistakes():
    from attnlib.exercises import numpy_to_torch as ex
    ex.reset()
    assert ex.check_batched_attention(_attn()).passed
    assert ex.check_batched_attention(_attn(invert=True)).mistake == "inverted_mask"
    assert ex.check_batched_attention(_attn(fill=False)).mistake == "mask_zero"
    assert ex.check_batched_attention(_attn(dim=-2)).mistake == "softmax_dim_queries"
    assert ex.check_batched_attention(_attn(dim=1)).mistake == "softmax_dim_1"
    assert ex.check_batched_attention(_attn(scale=False)).mistake == "no_scaling"
    dot_T = ex.check_batched_attention(_attn(transpose=lambda k: k.T))
    assert not dot_T.passed and "k.transpose(-2, -1)" in dot_T.message
    four_d = ex.check_batched_attention(_attn(transpose=lambda k: k.transpose(1, 2) if k.dim() > 2 else k.T))
    assert not four_d.passed and "4-D" in four_d.message

    B = lambda x: x.shape  # noqa: E731
    good = lambda x: x.transpose(1, 2).reshape(B(x)[0], B(x)[2], -1)  # noqa: E731
    assert ex.check_merge_heads(good).passed
    assert ex.check_merge_heads(lambda x: x.reshape(B(x)[0], B(x)[2], -1)).mistake == "no_transpose"
    assert ex.check_merge_heads(
        lambda x: x.permute(0, 2, 3, 1).reshape(B(x)[0], B(x)[2], -1)).mistake == "interleaved"
    view = ex.check_merge_heads(lambda x: x.transpose(1, 2).view(B(x)[0], B(x)[2], -1))
    assert not view.passed and "contiguous" in view.message

    def stub(*args):
        raise NotImplementedError
    assert ex.check_merge_heads(stub).status == "unsolved"
    ex.report()
    ex.reset()
