"""Bahdanau and Luong attention (attnlib.torch.bahdanau, .luong, .local) against formulas written here."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import attnlib
from attnlib.torch import BahdanauDecoder, GRUEncoder, Seq2Seq, alignments, seq2seq_loss, train

torch.set_default_dtype(torch.float32)


def _mask(lengths, L):
    return torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]


def _softmax_masked(e, mask):
    e = e.masked_fill(~mask, float("-inf"))
    return torch.exp(e - e.max(-1, keepdim=True).values) / torch.exp(
        e - e.max(-1, keepdim=True).values).sum(-1, keepdim=True)


def _gru_cell(x, h, cell):
    """torch.nn.GRUCell written out (gates r, z, n in PyTorch's order)."""
    W_ir, W_iz, W_in = cell.weight_ih.chunk(3)
    W_hr, W_hz, W_hn = cell.weight_hh.chunk(3)
    b_ir, b_iz, b_in = cell.bias_ih.chunk(3)
    b_hr, b_hz, b_hn = cell.bias_hh.chunk(3)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
    return (1 - z) * n + z * h


# ----------------------------------------------------------------------------- Bahdanau

def test_bahdanau_step_equals_the_formulas():
    torch.manual_seed(0)
    V, E, H, H_enc, B, L = 7, 3, 4, 6, 3, 5
    dec = BahdanauDecoder(V, E, H, H_enc, attention_size=5).double()
    assert dec.cell.input_size == E + H_enc
    y = torch.tensor([1, 4, 6])
    s_prev = torch.randn(B, H, dtype=torch.float64)
    h = torch.randn(B, L, H_enc, dtype=torch.float64)
    mask = _mask([5, 2, 3], L)
    logits, s, w = dec.step(y, s_prev, h, mask)
    a = dec.attention
    # e_tj = v . tanh(W_q s_{t-1} + W_k h_j), with s_{t-1} (the previous state)
    e = torch.tanh((s_prev @ a.W_q.weight.T).unsqueeze(1) + h @ a.W_k.weight.T) @ a.v.weight[0]
    alpha = _softmax_masked(e, mask)
    c = (alpha[:, :, None] * h).sum(1)
    s_ref = _gru_cell(torch.cat([dec.embed.weight[y], c], -1), s_prev, dec.cell)
    logits_ref = torch.tanh(torch.cat([s_ref, c], -1) @ dec.combine.weight.T + dec.combine.bias) \
        @ dec.out.weight.T + dec.out.bias
    assert torch.allclose(w, alpha, atol=1e-12)
    assert torch.allclose(s, s_ref, atol=1e-12)
    assert torch.allclose(logits, logits_ref, atol=1e-12)
    assert (w[1, 2:] == 0).all() and (w[2, 3:] == 0).all()


def test_bahdanau_attends_with_the_previous_state_not_the_new_one():
    torch.manual_seed(1)
    dec = BahdanauDecoder(6, 3, 4, 4).double()
    h = torch.randn(2, 5, 4, dtype=torch.float64)
    mask = torch.ones(2, 5, dtype=torch.bool)
    s_prev = torch.randn(2, 4, dtype=torch.float64)
    _, s_new, w = dec.step(torch.tensor([1, 2]), s_prev, h, mask)
    assert torch.allclose(w, dec.attention(s_prev, h, mask)[1])
    assert not torch.allclose(w, dec.attention(s_new, h, mask)[1])


def test_bidirectional_annotations_are_forward_and_backward_states():
    torch.manual_seed(2)
    enc = GRUEncoder(9, 3, 4, bidirectional=True).double()
    src = torch.tensor([[4, 5, 6, 7], [8, 4, 0, 0]])
    states, _ = enc(src, torch.tensor([4, 2]))
    # forward: a GRU left to right; backward: the same computation on the reversed real tokens
    fwd = torch.nn.GRU(3, 4, batch_first=True).double()
    bwd = torch.nn.GRU(3, 4, batch_first=True).double()
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(fwd, f"{name}_l0").data = getattr(enc.rnn, f"{name}_l0").data
        getattr(bwd, f"{name}_l0").data = getattr(enc.rnn, f"{name}_l0_reverse").data
    for b, n in enumerate([4, 2]):
        x = enc.embed(src[b:b + 1, :n])
        f, _ = fwd(x)
        r, _ = bwd(x.flip(1))
        assert torch.allclose(states[b, :n], torch.cat([f[0], r[0].flip(0)], -1), atol=1e-12)


def test_bahdanau_alignments_records_shapes():
    attnlib.seed(0)
    from attnlib.data import date_task
    task = date_task(n_train=64, n_val=8, n_test=8, seed=0)
    enc = GRUEncoder(len(task.source_vocab), 8, 8, bidirectional=True)
    model = Seq2Seq(enc, BahdanauDecoder(len(task.target_vocab), 8, 16, enc.output_size))
    recs = alignments(model, task, task.val[:3])
    for r, p in zip(recs, task.val[:3]):
        assert r["weights"].shape[1] == len(p.source)
        assert r["weights"].shape[0] <= len(r["prediction"]) + 1
        assert np.allclose(r["weights"].sum(1), 1.0)


def _tiny_training_decreases_loss(make_decoder):
    attnlib.seed(0)
    from attnlib.data import reverse_task
    task = reverse_task(n_train=256, n_val=8, n_test=8, min_len=3, max_len=6, alphabet="abcd")
    enc = GRUEncoder(len(task.source_vocab), 8, 8, bidirectional=True)
    model = Seq2Seq(enc, make_decoder(len(task.target_vocab), enc.output_size))
    hist = train(model, task.batch_stream("train", 32), seq2seq_loss,
                 torch.optim.Adam(model.parameters(), 1e-2), steps=25, progress=False)
    assert np.mean(hist.losses[-5:]) < 0.8 * np.mean(hist.losses[:5])


def test_bahdanau_tiny_training_decreases_the_loss():
    _tiny_training_decreases_loss(lambda V, H_enc: BahdanauDecoder(V, 8, 16, H_enc))


def test_bahdanau_gradcheck_float64():
    torch.manual_seed(3)
    dec = BahdanauDecoder(5, 2, 3, 4).double()
    h = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    mask = _mask([4, 2], 4)
    assert torch.autograd.gradcheck(lambda s_, h_: dec.step(torch.tensor([1, 3]), s_, h_, mask)[0], (s, h))


# ----------------------------------------------------------------------------- Luong: concat, input feeding

from attnlib.torch import (  # noqa: E402
    ConcatAttention,
    InputFeedingDecoder,
    LocalAttentionDecoder,
    LocalMonotonicAttention,
    LocalPredictiveAttention,
    MultiplicativeAttention,  # noqa: E402
    gaussian_window,
    local_window_mask,
)


@settings(max_examples=20, deadline=None)
@given(B=st.integers(1, 3), L=st.integers(1, 6), Hq=st.integers(1, 4), Hk=st.integers(1, 4),
       A=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_concat_attention_equals_the_formula(B, L, Hq, Hk, A, seed):
    g = torch.Generator().manual_seed(seed)
    att = ConcatAttention(Hq, Hk, A).double()
    s = torch.randn(B, Hq, generator=g, dtype=torch.float64)
    h = torch.randn(B, L, Hk, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, L + 1, (B,), generator=g).tolist()
    mask = _mask(lengths, L)
    c, w = att(s, h, mask)
    W, v = att.W.weight, att.v.weight[0]
    e = torch.empty(B, L, dtype=torch.float64)
    for b in range(B):
        for j in range(L):
            e[b, j] = v @ torch.tanh(W @ torch.cat([s[b], h[b, j]]))
    ref = _softmax_masked(e, mask)
    assert torch.allclose(w, ref, atol=1e-12)
    assert torch.allclose(c, torch.einsum("bl,blh->bh", ref, h), atol=1e-12)


def test_input_feeding_shapes_and_the_previous_attentional_state_enters_the_cell():
    torch.manual_seed(4)
    V, E, H, H_enc, B, L = 7, 3, 4, 6, 2, 5
    dec = InputFeedingDecoder(V, E, H, H_enc, MultiplicativeAttention(H, H_enc)).double()
    assert dec.cell.input_size == E + H
    h = torch.randn(B, L, H_enc, dtype=torch.float64)
    mask = _mask([5, 3], L)
    enc_final = torch.randn(B, H_enc, dtype=torch.float64)
    s0, st0 = dec.init_state(h, enc_final, mask)
    assert s0.shape == (B, H) and torch.equal(st0, torch.zeros(B, H, dtype=torch.float64))
    y = torch.tensor([1, 5])
    s_tilde_prev = torch.randn(B, H, dtype=torch.float64)
    logits, (s, s_tilde), w = dec.step(y, (s0, s_tilde_prev), h, mask)
    assert logits.shape == (B, V) and s.shape == (B, H) and s_tilde.shape == (B, H) and w.shape == (B, L)
    s_ref = _gru_cell(torch.cat([dec.embed.weight[y], s_tilde_prev], -1), s0, dec.cell)
    assert torch.allclose(s, s_ref, atol=1e-12)
    c, _ = dec.attention(s_ref, h, mask)
    assert torch.allclose(s_tilde, torch.tanh(torch.cat([s_ref, c], -1) @ dec.combine.weight.T
                                              + dec.combine.bias), atol=1e-12)
    # a different s~_{t-1} changes s_t
    _, (s2, _), _ = dec.step(y, (s0, s_tilde_prev + 1), h, mask)
    assert not torch.allclose(s, s2)
    logits_all, weights_all = dec(torch.tensor([[1, 4, 5], [1, 6, 2]]), h, enc_final, mask)
    assert logits_all.shape == (B, 3, V) and weights_all.shape == (B, 3, L)


# ----------------------------------------------------------------------------- local attention

@pytest.mark.parametrize("D", [0, 1, 2])
def test_local_m_masks_exactly_outside_the_window(D):
    torch.manual_seed(5)
    B, L, H = 2, 9, 4
    att = LocalMonotonicAttention(H, H, D).double()
    h = torch.randn(B, L, H, dtype=torch.float64)
    mask = _mask([9, 6], L)
    s = torch.randn(B, H, dtype=torch.float64)
    for t in range(L + D + 2):
        _, w = att(s, h, mask, step=t)
        for b in range(B):
            for j in range(L):
                inside = (t - D <= j <= t + D) and bool(mask[b, j])
                assert (w[b, j] > 0) == inside, (t, b, j)
            allowed = [j for j in range(L) if t - D <= j <= t + D and mask[b, j]]
            if allowed:
                e = att.scorer.scores(s, h)[b, allowed]
                assert torch.allclose(w[b, allowed], torch.softmax(e, -1), atol=1e-12)
            else:
                assert (w[b] == 0).all()


def test_local_p_position_gaussian_truncation_and_no_renormalisation():
    torch.manual_seed(6)
    B, L, H, D = 3, 12, 4, 3
    att = LocalPredictiveAttention(H, H, D, hidden_size=5).double()
    h = torch.randn(B, L, H, dtype=torch.float64)
    lengths = [12, 7, 4]
    mask = _mask(lengths, L)
    s = torch.randn(B, H, dtype=torch.float64) * 3
    _, w = att(s, h, mask)
    S = torch.tensor(lengths, dtype=torch.float64)
    p = S * torch.sigmoid(torch.tanh(s @ att.W_p.weight.T) @ att.v_p.weight[0])
    assert torch.allclose(att.position(s, S), p, atol=1e-12)
    assert ((p >= 0) & (p <= S)).all()
    j = torch.arange(L, dtype=torch.float64)
    gauss = torch.exp(-(j[None] - p[:, None]) ** 2 / (2 * (D / 2) ** 2))
    assert torch.allclose(gaussian_window(p, L, D), gauss, atol=1e-12)
    inside = ((j[None] - p[:, None]).abs() <= D) & mask
    assert torch.equal(local_window_mask(p, L, D) & mask, inside)
    align = _softmax_masked(att.scorer.scores(s, h).masked_fill(~inside, float("-inf")), inside)
    ref = torch.nan_to_num(align, nan=0.0) * gauss
    assert torch.allclose(w, ref, atol=1e-12)
    assert (w[~inside] == 0).all()
    # not renormalised (Luong et al., eq. 10): rows sum to less than 1
    assert (w.sum(-1) < 1 - 1e-6).all()
    # extreme queries: p_t stays in [0, S]
    big = torch.randn(B, H, dtype=torch.float64) * 1e3
    pb = att.position(big, S)
    assert ((pb >= 0) & (pb <= S)).all()


def test_local_decoder_counts_the_steps():
    torch.manual_seed(7)
    dec = LocalAttentionDecoder(6, 3, 4, 4, LocalMonotonicAttention(4, 4, 1))
    h = torch.randn(2, 8, 4)
    mask = torch.ones(2, 8, dtype=torch.bool)
    _, weights = dec(torch.tensor([[1, 3, 4, 5, 2]] * 2), h, torch.randn(2, 4), mask)
    for t in range(5):
        nonzero = set(torch.nonzero(weights[0, t] > 0).flatten().tolist())
        assert nonzero == set(range(max(0, t - 1), t + 2))


@pytest.mark.parametrize("make", [
    lambda: ConcatAttention(3, 4, 5),
    lambda: LocalMonotonicAttention(3, 4, 2),
    lambda: LocalPredictiveAttention(3, 4, 2),
], ids=["concat", "local-m", "local-p"])
def test_attention_modules_gradcheck_float64(make):
    torch.manual_seed(8)
    att = make().double()
    s = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 6, 4, dtype=torch.float64, requires_grad=True)
    mask = _mask([6, 4], 6)
    fn = (lambda a, b: att(a, b, mask, step=2)) if isinstance(att, LocalMonotonicAttention) else \
        (lambda a, b: att(a, b, mask))
    assert torch.autograd.gradcheck(fn, (s, h))


def test_input_feeding_tiny_training_decreases_the_loss():
    _tiny_training_decreases_loss(
        lambda V, H_enc: InputFeedingDecoder(V, 8, 16, H_enc, ConcatAttention(16, H_enc, 8)))


def test_local_p_tiny_training_decreases_the_loss():
    _tiny_training_decreases_loss(
        lambda V, H_enc: LocalAttentionDecoder(V, 8, 16, H_enc, LocalPredictiveAttention(16, H_enc, 3)))
