"""GPT, the KV cache, torch RoPE/ALiBi and the SDPA bias, against independent references."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import attnlib
from attnlib import numpy as anp
from attnlib.data import char_corpus, random_blocks
from attnlib.experiments.gpt import train_language_model
from attnlib.torch import (
    GPT,
    KVCache,
    LayerKVCache,
    alibi_bias,
    alibi_slopes,
    evaluate_lm_loss,
    kv_cache_bytes,
    lm_loss,
    next_token_probs,
    rope,
    sample_next,
    scaled_dot_product_attention,
)

KINDS = ("learned", "rope", "alibi")


def small_gpt(kind, block_size=12, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    m = GPT(11, block_size, 16, 4, 2, positions=kind).to(dtype).eval()
    with torch.no_grad():  # larger weights than the init: less uniform logits, a sharper test
        for p in m.parameters():
            p.mul_(8.0 if p.dim() > 1 else 1.0)
    return m


# ----------------------------------------------------------------------------- SDPA bias

@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 3), H=st.integers(1, 3), Lq=st.integers(1, 6), Lk=st.integers(1, 7),
       masked=st.booleans(), need_weights=st.booleans(), bias_heads=st.booleans())
def test_sdpa_bias_matches_torch_float_mask(B, H, Lq, Lk, masked, need_weights, bias_heads):
    g = torch.Generator().manual_seed(B * 100 + H * 10 + Lq + Lk)
    q, k, v = (torch.randn(B, H, L, 4, generator=g, dtype=torch.float64) for L in (Lq, Lk, Lk))
    bias = torch.randn(H if bias_heads else 1, Lq, Lk, generator=g, dtype=torch.float64)
    mask = torch.rand(Lq, Lk, generator=g) > 0.3 if masked else None
    if mask is not None:
        mask[:, 0] = True  # every row keeps a key (torch's SDPA gives NaN otherwise)
    ref_mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=ref_mask)
    out, w = scaled_dot_product_attention(q, k, v, mask=mask, bias=bias, need_weights=need_weights)
    assert (out - ref).abs().max() < 1e-10
    if need_weights:
        scores = q @ k.transpose(-2, -1) / 2.0 + ref_mask
        assert (w - torch.softmax(scores, -1)).abs().max() < 1e-10


def test_sdpa_bias_fully_masked_row_is_zero_and_bias_changes_output():
    q, k, v = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1] = False
    bias = torch.randn(2, 3, 5)
    for nw in (True, False):
        out, _ = scaled_dot_product_attention(q, k, v, mask=mask, bias=bias, need_weights=nw)
        assert torch.isfinite(out).all() and (out[:, :, 1] == 0).all()
        plain, _ = scaled_dot_product_attention(q, k, v, mask=mask, need_weights=nw)
        assert (out - plain).abs().max() > 1e-3


def test_sdpa_bias_bad_input():
    q = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="bias"):
        scaled_dot_product_attention(q, q, q, bias=torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="does not broadcast"):
        scaled_dot_product_attention(q, q, q, bias=torch.zeros(5, 3))


# ----------------------------------------------------------------------------- RoPE and ALiBi twins

@settings(max_examples=20, deadline=None)
@given(L=st.integers(1, 9), half=st.integers(1, 5), offset=st.integers(0, 20))
def test_rope_matches_numpy_twin(L, half, offset):
    x = np.random.default_rng(L * 7 + half).normal(size=(2, 3, L, 2 * half))
    positions = np.arange(L) + offset
    ref = anp.rope(x, positions)
    ours = rope(torch.from_numpy(x), offset)
    assert np.abs(ours.numpy() - ref).max() < 1e-12
    assert np.abs(rope(torch.from_numpy(x), torch.from_numpy(positions)).numpy() - ref).max() < 1e-12


def test_rope_relative_property_and_errors():
    q, k = torch.randn(1, 8, dtype=torch.float64), torch.randn(1, 8, dtype=torch.float64)
    dots = [(rope(q, m) * rope(k, m - 3)).sum().item() for m in (3, 10, 50)]
    assert max(dots) - min(dots) < 1e-10
    with pytest.raises(ValueError, match="even"):
        rope(torch.randn(2, 5))
    with pytest.raises(ValueError, match="positions"):
        rope(torch.randn(3, 4), torch.arange(2))


@pytest.mark.parametrize("H", [1, 2, 3, 4, 6, 8, 12])
def test_alibi_matches_numpy_twin(H):
    assert np.abs(alibi_slopes(H, dtype=torch.float64).numpy() - anp.alibi_slopes(H)).max() < 1e-15
    for L_q, L_k in ((5, 5), (3, 7), (6, 2)):
        ref = anp.alibi_bias(H, L_q, L_k)
        assert np.abs(alibi_bias(H, L_q, L_k, dtype=torch.float64).numpy() - ref).max() < 1e-12


def test_alibi_offset_is_the_last_rows_of_the_square_bias():
    full = alibi_bias(4, 9)
    assert torch.equal(alibi_bias(4, 2, 9, q_offset=7), full[:, 7:])
    # the paper's formula, written here: -m_h (i - j) on the causal part
    m = 2.0 ** (-8.0 * torch.arange(1, 5) / 4)
    i, j = torch.arange(9)[:, None], torch.arange(9)[None, :]
    causal = j <= i
    assert torch.allclose(full[:, causal], (-(m[:, None, None]) * (i - j))[:, causal])


# ----------------------------------------------------------------------------- the KV cache

def test_kv_cache_appends_in_place_and_checks():
    c = LayerKVCache(2, 3, 6, 4)
    k1, v1 = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    keys, values = c.append(k1, v1)
    ptr = c.keys.data_ptr()
    k2, v2 = torch.randn(2, 3, 1, 4), torch.randn(2, 3, 1, 4)
    keys, values = c.append(k2, v2)
    assert c.length == 5 and c.keys.data_ptr() == ptr and keys.data_ptr() == ptr
    assert torch.equal(keys, torch.cat([k1, k2], 2)) and torch.equal(values, torch.cat([v1, v2], 2))
    with pytest.raises(ValueError, match="do not fit"):
        c.append(torch.randn(2, 3, 2, 4), torch.randn(2, 3, 2, 4))
    with pytest.raises(ValueError, match="shape"):
        c.append(torch.randn(2, 4, 1, 4), torch.randn(2, 4, 1, 4))
    c.reset()
    assert c.length == 0
    cache = KVCache(3, 1, 4, 10, 8)
    assert cache.nbytes() == kv_cache_bytes(3, 32, 10) == 2 * 3 * 10 * 32 * 4


# ----------------------------------------------------------------------------- GPT: masks and cache

@pytest.mark.parametrize("kind", KINDS)
def test_future_tokens_do_not_change_earlier_logits(kind):
    m = small_gpt(kind)
    x = torch.randint(0, 11, (3, 12), generator=torch.Generator().manual_seed(1))
    for t in (0, 5, 11):
        y = x.clone()
        y[:, t:] = (y[:, t:] + 1 + torch.arange(12 - t)) % 11
        a, b = m(x), m(y)
        assert torch.equal(a[:, :t], b[:, :t])
        assert (a[:, t] - b[:, t]).abs().max() > 1e-4  # the changed token itself matters


@pytest.mark.parametrize("kind", KINDS)
def test_cache_forward_equals_full_forward(kind):
    m = small_gpt(kind, dtype=torch.float64)
    x = torch.randint(0, 11, (2, 10), generator=torch.Generator().manual_seed(2))
    full, wfull = m(x, need_weights=True)
    cache = m.new_cache(2)
    parts = [m(x[:, :4], cache=cache)] + [m(x[:, t:t + 1], cache=cache) for t in range(4, 7)]
    parts.append(m(x[:, 7:], cache=cache))
    assert cache.length == 10
    assert (torch.cat(parts, 1) - full).abs().max() < 1e-10
    assert all((w.triu(1) == 0).all() for w in wfull)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["greedy", "sample", "sample_top_k"])
def test_cached_and_uncached_generation_agree(kind, mode):
    m = small_gpt(kind, block_size=12)
    prompt = torch.randint(0, 11, (2, 5), generator=torch.Generator().manual_seed(3))
    kw = {"greedy": dict(temperature=0.0), "sample": dict(temperature=1.0),
          "sample_top_k": dict(temperature=0.8, top_k=3)}[mode]
    runs = [m.generate(prompt, 20, use_cache=c, generator=torch.Generator().manual_seed(7),
                       return_logits=True, **kw) for c in (True, False)]
    (t1, l1), (t2, l2) = runs
    assert t1.shape == (2, 25) and torch.equal(t1[:, :5], prompt)
    assert torch.equal(t1, t2)  # 20 new tokens: well past block_size=12
    assert (l1 - l2).abs().max() < 1e-5
    # the uncached logits are the model's forward on the cropped window, recomputed here
    seq = t1
    for s in (0, 6, 19):
        window = seq[:, max(0, 5 + s - 12): 5 + s]
        assert (m(window)[:, -1] - l2[:, s]).abs().max() < 1e-5


def test_greedy_top1_temperature0_and_prompt_longer_than_block():
    m = small_gpt("rope", block_size=8)
    prompt = torch.randint(0, 11, (1, 15), generator=torch.Generator().manual_seed(4))
    greedy = m.generate(prompt, 10, temperature=0)
    top1 = m.generate(prompt, 10, temperature=1.3, top_k=1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(greedy, top1)
    # greedy by hand: argmax of the forward pass on the last block_size tokens
    seq = prompt
    for _ in range(10):
        seq = torch.cat([seq, m(seq[:, -8:])[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(seq, greedy)


def test_next_token_probs_reference():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, 3.0]], dtype=torch.float64)
    p = next_token_probs(logits, temperature=0.5, top_k=2)
    z = torch.tensor([2.0, 3.0]) / 0.5
    expected = torch.zeros(5, dtype=torch.float64)
    expected[[0, 4]] = torch.softmax(z.double(), 0)
    assert (p[0] - expected).abs().max() < 1e-12
    assert torch.equal(next_token_probs(logits, 0.0)[0], torch.tensor([0, 0, 0, 0, 1.0], dtype=torch.float64))
    assert (next_token_probs(logits, 1.0) - torch.softmax(logits, -1)).abs().max() < 1e-12
    # sampling frequencies follow the distribution
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_next(logits, 1.0, 3, g) for _ in range(3000)])
    freq = torch.bincount(draws[:, 0], minlength=5).double() / 3000
    assert (freq - next_token_probs(logits, 1.0, 3)[0]).abs().max() < 0.04
    assert freq[2] == 0 and freq[3] == 0  # outside the top 3 (3.0, 2.0, 1.0)


def test_bad_inputs_raise_value_errors():
    m = small_gpt("learned", block_size=6)
    with pytest.raises(ValueError, match="block_size=6"):
        m(torch.zeros(1, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="dtype"):
        m(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="shape"):
        m(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 11\)"):
        m(torch.tensor([[1, 11]]))
    with pytest.raises(ValueError, match="temperature"):
        m.generate(torch.zeros(1, 2, dtype=torch.long), 3, temperature=-1)
    with pytest.raises(ValueError, match="top_k"):
        m.generate(torch.zeros(1, 2, dtype=torch.long), 3, top_k=0)
    with pytest.raises(ValueError, match="positions"):
        GPT(11, 8, 16, 4, 1, positions="sinusoidal")
    with pytest.raises(ValueError, match="even head size"):
        GPT(11, 8, 12, 4, 1, positions="rope")
    # RoPE and ALiBi accept longer inputs (extrapolation); generation of learned crops
    assert small_gpt("alibi", block_size=6)(torch.zeros(1, 20, dtype=torch.long)).shape == (1, 20, 11)
    assert m.generate(torch.zeros(1, 9, dtype=torch.long), 4).shape == (1, 13)


# ----------------------------------------------------------------------------- data and training

def test_char_corpus_and_blocks():
    c = char_corpus(max_chars=5000)
    assert c.chars == "".join(sorted(set(c.chars))) and " " in c.chars
    text = c.decode(c.train_ids[:50])
    assert np.array_equal(c.encode(text), c.train_ids[:50])
    x, y = random_blocks(c.train_ids, 4, 16, np.random.default_rng(0))
    assert x.shape == y.shape == (4, 16) and x.dtype == np.int64
    assert np.array_equal(x[:, 1:], y[:, :-1])
    with pytest.raises(ValueError):
        c.encode("A!")


def test_training_lowers_the_loss_and_lm_loss_is_cross_entropy():
    attnlib.seed(0)
    c = char_corpus(max_chars=20000)
    m = GPT(c.vocab_size, 16, 32, 4, 1)
    x, y = random_blocks(c.train_ids, 4, 16, np.random.default_rng(1))
    logits = m(torch.from_numpy(x))
    by_hand = -torch.log_softmax(logits, -1).gather(-1, torch.from_numpy(y)[..., None]).mean()
    assert abs(lm_loss(m, (x, y)).item() - by_hand.item()) < 1e-5
    before = evaluate_lm_loss(m, c.val_ids, 16, num_blocks=16)
    assert abs(before - math.log(c.vocab_size)) < 0.3  # near uniform at initialisation
    hist = train_language_model(m, c, steps=60, batch_size=32, progress=False)
    assert len(hist.losses) == 60
    assert evaluate_lm_loss(m, c.val_ids, 16, num_blocks=16) < before - 0.4
