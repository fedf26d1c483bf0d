"""attnlib on a CUDA GPU: the same numbers as on the CPU, and the GPU chosen by default.

Every test here is marked ``cuda``: it runs where ``torch.cuda.is_available()`` and is skipped
elsewhere (tests/conftest.py). ``make gpu-check`` runs them, then the benchmark rows on the GPU.
The references are computed on the CPU, in float64 where the test says so.
"""
from __future__ import annotations

import copy

import pytest
import torch

from attnlib.torch import GPT, MultiHeadAttention, default_device, scaled_dot_product_attention

pytestmark = pytest.mark.cuda

DEVICE = "cuda"  # one name, so the bodies can be tried on "cpu" where there is no GPU


def _qkv(shape_q, shape_k, d_v, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*shape_q, generator=g, dtype=torch.float64)
    k = torch.randn(*shape_k, generator=g, dtype=torch.float64)
    v = torch.randn(*shape_k[:-1], d_v, generator=g, dtype=torch.float64)
    return q, k, v


def _padding_mask(lengths, L_q, L_k):
    """(B, 1, L_q, L_k): key j allowed when j < length; a length of 0 masks a whole row."""
    keys = torch.arange(L_k)[None, :] < torch.tensor(lengths)[:, None]
    return keys[:, None, None, :].expand(-1, 1, L_q, L_k)


def test_default_device_is_cuda():
    assert default_device().type == "cuda"
    assert torch.zeros(2, device=default_device()).is_cuda


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7, 8), (2, 4, 128, 128, 64)], ids=["small", "128x64"])
def test_sdpa_on_cuda_matches_cpu_float64(shape, dtype, tol):
    B, H, L_q, L_k, d = shape
    q, k, v = _qkv((B, H, L_q, d), (B, H, L_k, d), d)
    mask = _padding_mask([L_k, 0], L_q, L_k)  # the second example has no key at all
    ref, ref_w = scaled_dot_product_attention(q, k, v, mask)
    on = lambda t: t.to(DEVICE, dtype)  # noqa: E731
    out, w = scaled_dot_product_attention(on(q), on(k), on(v), mask.to(DEVICE))
    fused, none = scaled_dot_product_attention(on(q), on(k), on(v), mask.to(DEVICE), need_weights=False)
    assert out.device.type == DEVICE and out.dtype == dtype and none is None
    torch.testing.assert_close(out.cpu().double(), ref, atol=tol, rtol=0)
    torch.testing.assert_close(w.cpu().double(), ref_w, atol=tol, rtol=0)
    torch.testing.assert_close(fused.cpu().double(), ref, atol=tol, rtol=0)
    assert (out[1] == 0).all() and (w[1] == 0).all()  # the fully masked rows: zeros, not NaN


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)], ids=["float64", "float32"])
def test_multi_head_attention_on_cuda_matches_cpu(dtype, tol):
    torch.manual_seed(0)
    cpu = MultiHeadAttention(32, 4).double()
    gpu = copy.deepcopy(cpu).to(DEVICE, dtype)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 9, 32, generator=g, dtype=torch.float64)
    mem = torch.randn(3, 6, 32, generator=g, dtype=torch.float64)
    mask = (torch.arange(6)[None, :] < torch.tensor([6, 3, 1])[:, None])[:, None, :]  # (B, 1, L_k)
    ref, ref_w = cpu(x, mem, mem, mask)
    on = lambda t: t.to(DEVICE, dtype)  # noqa: E731
    out, w = gpu(on(x), on(mem), on(mem), mask.to(DEVICE))
    fused, _ = gpu(on(x), on(mem), on(mem), mask.to(DEVICE), need_weights=False)
    torch.testing.assert_close(out.cpu().double(), ref, atol=tol, rtol=0)
    torch.testing.assert_close(w.cpu().double(), ref_w, atol=tol, rtol=0)
    torch.testing.assert_close(fused.cpu().double(), ref, atol=tol, rtol=0)
    # The gradients agree too: the backward pass runs on the GPU.
    ref.square().sum().backward()
    out.square().sum().backward()
    for (name, a), b in zip(cpu.named_parameters(), gpu.parameters()):
        torch.testing.assert_close(b.grad.cpu().double(), a.grad, atol=tol * 10, rtol=tol * 10, msg=name)


@pytest.mark.parametrize("positions", ["learned", "rope", "alibi"])
@pytest.mark.parametrize("mode", ["greedy", "sample"])
def test_gpt_generate_on_cuda_same_tokens_with_and_without_cache(positions, mode):
    torch.manual_seed(0)
    model = GPT(11, 12, 32, 4, 2, positions=positions).to(DEVICE).eval()
    with torch.no_grad():  # larger weights than the init: less uniform logits, a sharper test
        for p in model.parameters():
            p.mul_(3)
    prompt = torch.randint(0, 11, (2, 5), generator=torch.Generator().manual_seed(3)).to(DEVICE)
    kw = {"greedy": dict(temperature=0.0), "sample": dict(temperature=1.0, top_k=5)}[mode]
    runs = [model.generate(prompt, 20, use_cache=c, return_logits=True,
                           generator=torch.Generator(device=DEVICE).manual_seed(7), **kw)
            for c in (True, False)]  # 20 new tokens: past block_size = 12, so the cache refills
    (t1, l1), (t2, l2) = runs
    assert t1.device.type == DEVICE and t1.shape == (2, 25) and torch.equal(t1[:, :5], prompt)
    assert torch.equal(t1, t2)
    assert (l1 - l2).abs().max() < 1e-4
