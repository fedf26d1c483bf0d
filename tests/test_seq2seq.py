"""Part II's encoder, attention modules, decoders, training loop and checkpoints, against
torch.nn.GRU, the NumPy twin, gradcheck and brute force."""
import math

import numpy as np
import pytest
import torch

from attnlib.data import reverse_task
from attnlib.numpy import additive_scores
from attnlib.torch import (
    AdditiveAttention,
    AttentionDecoder,
    GRUDecoder,
    GRUEncoder,
    MultiplicativeAttention,
    Seq2Seq,
    count_parameters,
    evaluate_exact_match,
    exact_match,
    load_checkpoint,
    masked_softmax,
    save_checkpoint,
    seq2seq_loss,
    sequence_cross_entropy,
    train,
)


def padded_batch(gen, V, lengths, L=None):
    L = L or max(lengths)
    src = torch.zeros(len(lengths), L, dtype=torch.long)
    for i, n in enumerate(lengths):
        src[i, :n] = torch.randint(4, V, (n,), generator=gen)
    return src, torch.tensor(lengths)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_encoder_matches_torch_gru_run_on_each_unpadded_sequence(bidirectional):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    enc = GRUEncoder(12, 5, 7, bidirectional=bidirectional).eval()
    src, lengths = padded_batch(gen, 12, [6, 2, 4, 1])
    states, final = enc(src, lengths)
    dirs = 2 if bidirectional else 1
    assert states.shape == (4, 6, 7 * dirs) and final.shape == (4, 7 * dirs)
    ref = torch.nn.GRU(5, 7, batch_first=True, bidirectional=bidirectional)
    ref.load_state_dict(enc.rnn.state_dict())
    for i, n in enumerate(lengths.tolist()):
        out, h_n = ref(enc.embed(src[i:i + 1, :n]))
        torch.testing.assert_close(states[i, :n], out[0], atol=1e-6, rtol=1e-5)
        assert (states[i, n:] == 0).all()
        torch.testing.assert_close(final[i], torch.cat(list(h_n[:, 0])), atol=1e-6, rtol=1e-5)
        if bidirectional:  # backward final = backward state at position 0; forward at n-1
            torch.testing.assert_close(final[i, 7:], states[i, 0, 7:])
        torch.testing.assert_close(final[i, :7], states[i, n - 1, :7])


def test_padding_does_not_change_real_outputs():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2)
    enc = GRUEncoder(10, 4, 6, bidirectional=True, num_layers=2).eval()
    src, lengths = padded_batch(gen, 10, [5, 3])
    wide = torch.cat([src, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    noisy = wide.clone()
    noisy[1, 3:] = 7  # garbage beyond the length is never read
    a, fa = enc(src, lengths)
    for other in (wide, noisy):
        b, fb = enc(other, lengths)
        torch.testing.assert_close(a, b[:, :5])
        torch.testing.assert_close(fa, fb)
    with pytest.raises(ValueError, match="lengths"):
        enc(src, torch.tensor([6, 3]))


def attention_inputs(dtype=torch.float32, B=3, L=5, Hq=4, Hk=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, Hq, generator=g, dtype=dtype)
    k = torch.randn(B, L, Hk, generator=g, dtype=dtype)
    mask = torch.arange(L)[None, :] < torch.tensor([5, 2, 3])[:B, None]
    return q, k, mask


MODULES = {
    "additive": lambda Hq, Hk: AdditiveAttention(Hq, Hk, 8),
    "general": lambda Hq, Hk: MultiplicativeAttention(Hq, Hk, "general"),
    "dot": lambda Hq, Hk: MultiplicativeAttention(Hq, Hq, "dot"),
    "scaled_general": lambda Hq, Hk: MultiplicativeAttention(Hq, Hk, "general", scaled=True),
}


@pytest.mark.parametrize("name", MODULES)
def test_attention_weights_sum_to_one_and_ignore_padding(name):
    torch.manual_seed(0)
    Hk = 4 if name == "dot" else 6
    att = MODULES[name](4, Hk)
    q, k, mask = attention_inputs(Hk=Hk)
    context, w = att(q, k, mask)
    assert context.shape == (3, Hk) and w.shape == (3, 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(3))
    assert (w[~mask] == 0).all()
    torch.testing.assert_close(context, torch.einsum("bl,blh->bh", w, k))
    # keys at masked positions do not matter
    k2 = k.clone()
    k2[~mask] = 100.0
    torch.testing.assert_close(att(q, k2, mask)[0], context)
    # a fully masked row gives zeros, never NaN
    none = mask.clone()
    none[1] = False
    c3, w3 = att(q, k, none)
    assert torch.isfinite(c3).all() and (w3[1] == 0).all() and (c3[1] == 0).all()


def test_additive_scores_equal_the_numpy_twin():
    torch.manual_seed(0)
    att = AdditiveAttention(4, 6, 8).double()
    q, k, _ = attention_inputs(torch.float64)
    ours = att.scores(q, k).detach().numpy()
    ref = additive_scores(q.numpy()[:, None, :], k.numpy(), att.W_q.weight.detach().numpy().T,
                          att.W_k.weight.detach().numpy().T, att.v.weight.detach().numpy()[0])
    np.testing.assert_allclose(ours, ref[:, 0, :], rtol=1e-12, atol=1e-12)


def test_multiplicative_scores_by_brute_force():
    torch.manual_seed(0)
    att = MultiplicativeAttention(4, 6, "general").double()
    q, k, mask = attention_inputs(torch.float64)
    W = att.W.weight.detach()  # (H_q, H_k)
    for b in range(3):
        for j in range(5):
            assert math.isclose(float(att.scores(q, k).detach()[b, j]), float(q[b] @ W @ k[b, j]), rel_tol=1e-12)
    w = att(q, k, mask)[1]
    e = att.scores(q, k).masked_fill(~mask, -math.inf)
    torch.testing.assert_close(w, torch.softmax(e, -1))
    with pytest.raises(ValueError, match="dot"):
        MultiplicativeAttention(4, 6, "dot")
    with pytest.raises(ValueError, match="keys of size 6"):
        att(q, k[..., :5], mask)


@pytest.mark.parametrize("name", MODULES)
def test_attention_gradcheck_float64(name):
    torch.manual_seed(0)
    Hk = 4 if name == "dot" else 6
    att = MODULES[name](4, Hk).double()
    q, k, mask = attention_inputs(torch.float64, Hk=Hk)
    q.requires_grad_(True)
    k.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda q, k: att(q, k, mask), (q, k))


def test_masked_softmax_matches_brute_force():
    s = torch.randn(2, 3, 4, dtype=torch.float64)
    m = torch.rand(2, 3, 4) < 0.6
    m[..., 0] = True
    w = masked_softmax(s, m)
    e = torch.exp(s) * m
    torch.testing.assert_close(w, e / e.sum(-1, keepdim=True))
    with pytest.raises(ValueError, match="boolean"):
        masked_softmax(s, m.long())


def tiny_models(V=10, seed=0):
    torch.manual_seed(seed)
    enc = GRUEncoder(V, 6, 8, bidirectional=True)
    plain = Seq2Seq(enc, GRUDecoder(V, 6, 9, enc.output_size))
    torch.manual_seed(seed)
    enc2 = GRUEncoder(V, 6, 8, bidirectional=True)
    attn = Seq2Seq(enc2, AttentionDecoder(V, 6, 9, enc2.output_size, AdditiveAttention(9, 16, 7)))
    return plain, attn


def test_teacher_forcing_equals_stepping_and_greedy_agrees_with_it():
    gen = torch.Generator().manual_seed(3)
    src, lengths = padded_batch(gen, 10, [5, 2, 4])
    for model in tiny_models():
        model.eval()
        tokens, weights = model.greedy(src, lengths, max_len=6)
        assert tokens.shape[0] == 3 and tokens.shape[1] <= 6
        tgt_in = torch.cat([torch.full((3, 1), model.bos_id), tokens[:, :-1]], dim=1)
        logits, w_tf = model(src, lengths, tgt_in, need_weights=True)
        # where a sequence is still running, greedy's token is the argmax of the teacher-forced logits
        running = torch.ones(3, dtype=torch.bool)
        for t in range(tokens.shape[1]):
            assert (logits[running, t].argmax(-1) == tokens[running, t]).all()
            running &= tokens[:, t] != model.eos_id
        # the loop of Decoder.forward equals GRUDecoder's one-call forward
        states, final, mask = model.encode(src, lengths)
        looped = super(type(model.decoder), model.decoder).forward(tgt_in, states, final, mask)[0] \
            if isinstance(model.decoder, GRUDecoder) else logits
        torch.testing.assert_close(looped, logits, atol=1e-6, rtol=1e-5)
        if weights is None:
            assert isinstance(model.decoder, GRUDecoder) and w_tf is None
        else:
            assert weights.shape == (3, tokens.shape[1], 5)
            assert (weights[:, :, :][~mask[:, None, :].expand_as(weights)] == 0).all()
            torch.testing.assert_close(weights[0, 0], w_tf[0, 0])


def test_loss_and_exact_match():
    logits = torch.randn(2, 3, 5, dtype=torch.float64)
    tgt = torch.tensor([[4, 2, 0], [3, 3, 2]])
    real = tgt != 0
    manual = -torch.log_softmax(logits, -1).gather(-1, tgt[..., None])[..., 0][real].mean()
    torch.testing.assert_close(sequence_cross_entropy(logits, tgt, 0), manual)
    smooth = sequence_cross_entropy(logits, tgt, 0, label_smoothing=0.1)
    lp = torch.log_softmax(logits, -1)[real]
    manual_s = (0.9 * -lp.gather(-1, tgt[real][:, None])[:, 0] - 0.1 * lp.mean(-1)).mean()
    torch.testing.assert_close(smooth, manual_s)
    pred = torch.tensor([[4, 2], [3, 3], [5, 2]])
    target = torch.tensor([[4, 2, 0], [3, 3, 2], [5, 2, 0]])
    assert exact_match(pred, target) == pytest.approx(2 / 3)  # row 1 stopped early
    assert exact_match(torch.tensor([[4, 2, 7]]), torch.tensor([[4, 2]])) == 0.0  # ran on
    assert exact_match(["ab", "c"], ["ab", "d"]) == 0.5
    with pytest.raises(ValueError):
        sequence_cross_entropy(logits, tgt[:, :2], 0)


def test_training_loop_decreases_the_loss_and_evaluates():
    torch.manual_seed(0)
    task = reverse_task(n_train=256, n_val=32, n_test=32, min_len=3, max_len=6, alphabet="abcd", seed=0)
    model, _ = tiny_models(V=len(task.source_vocab))
    opt = torch.optim.Adam(model.parameters(), 2e-2)
    calls = []
    hist = train(model, task.batch_stream("train", 32), seq2seq_loss, opt, steps=40, progress=False,
                 eval_fn=lambda m: calls.append(m.training) or {"acc": evaluate_exact_match(m, task, task.val)},
                 eval_every=15)
    assert len(hist.losses) == 40 and hist.steps[-1] == 40
    assert np.mean(hist.losses[-5:]) < 0.8 * np.mean(hist.losses[:5])
    assert [e["step"] for e in hist.evals] == [15, 30, 40] and calls == [False] * 3
    assert model.training and hist.seconds >= hist.train_seconds > 0
    assert len(hist.metric("acc")) == 3
    # epochs: a list of batches is re-iterated
    batches = list(task.batches("train", 64))
    h2 = train(model, batches, seq2seq_loss, opt, epochs=2, progress=False)
    assert len(h2.losses) == 2 * len(batches)
    with pytest.raises(ValueError, match="exactly one"):
        train(model, batches, seq2seq_loss, opt, progress=False)
    with pytest.raises(ValueError, match="ran out"):
        train(model, iter(batches), seq2seq_loss, opt, steps=100, progress=False)


def test_checkpoint_round_trip_and_clear_errors(tmp_path):
    gen = torch.Generator().manual_seed(4)
    src, lengths = padded_batch(gen, 10, [4, 3])
    tgt_in = torch.tensor([[1, 5, 6], [1, 7, 0]])
    _, model = tiny_models(seed=1)
    path = tmp_path / "m.safetensors"
    save_checkpoint(model, path, {"task": "reverse", "hidden": "9"})
    _, other = tiny_models(seed=2)
    assert not torch.equal(other(src, lengths, tgt_in), model(src, lengths, tgt_in))
    meta = load_checkpoint(other, path)
    assert meta == {"task": "reverse", "hidden": "9"}
    assert torch.equal(other(src, lengths, tgt_in), model(src, lengths, tgt_in))
    assert count_parameters(other) == count_parameters(model)
    torch.manual_seed(0)
    enc = GRUEncoder(10, 6, 8, bidirectional=True)
    wrong = Seq2Seq(enc, AttentionDecoder(12, 6, 9, 16, AdditiveAttention(9, 16, 7)))  # V=12
    with pytest.raises(ValueError, match=r"decoder\.out\.weight: file \(10, 9\), model \(12, 9\)"):
        load_checkpoint(wrong, path)
    plain, _ = tiny_models()
    with pytest.raises(ValueError, match="missing in the file: .*decoder.rnn"):
        load_checkpoint(plain, path)
    with pytest.raises(ValueError, match="str to str"):
        save_checkpoint(model, tmp_path / "x.safetensors", {"hidden": 9})
