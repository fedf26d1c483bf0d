"""The encoder-decoder Transformer: masks, greedy = beam width 1, beam search = brute force, Noam, checkpoints."""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlib.experiments.encoder_decoder import attention_maps
from attnlib.torch import (
    Transformer,
    beam_search,
    beam_step,
    decoder_self_mask,
    label_smoothing_targets,
    length_penalty,
    load_checkpoint,
    noam_rate,
    noam_schedule,
    save_checkpoint,
    seq2seq_loss,
    train,
)


def make_model(seed=0, src_v=9, tgt_v=7, d=16, layers=2, dtype=torch.float64, scale=1.0):
    torch.manual_seed(seed)
    m = Transformer(src_v, tgt_v, d_model=d, num_heads=4, d_ff=32, num_encoder_layers=layers,
                    num_decoder_layers=layers, dropout=0.0, max_len=32).to(dtype).eval()
    if scale != 1.0:  # sharper output distributions, so that greedy and beams can differ
        with torch.no_grad():
            m.out.weight.mul_(scale)
    return m


def batch(seed=0, B=3, S=6, T=5, src_v=9, tgt_v=7):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, S + 1, (B,), generator=g)
    lengths[0] = S
    src = torch.randint(3, src_v, (B, S), generator=g)
    src[torch.arange(S)[None, :] >= lengths[:, None]] = 0
    tgt = torch.randint(3, tgt_v, (B, T), generator=g)
    tgt[:, 0] = 1
    return src, lengths, tgt


def test_shapes():
    m = make_model()
    src, lengths, tgt = batch()
    assert m(src, lengths, tgt).shape == (3, 5, 7)
    logits, w = m(src, lengths, tgt, need_weights=True)
    assert w.shape == (3, 5, 6)
    tokens, weights = m.greedy(src, lengths, max_len=4)
    assert tokens.shape[0] == 3 and tokens.shape[1] <= 4 and weights is None


def test_value_errors():
    with pytest.raises(ValueError, match="divide"):
        Transformer(5, 5, d_model=10, num_heads=4)
    m = make_model()
    src, lengths, tgt = batch()
    with pytest.raises(ValueError, match="src_lengths"):
        m(src, lengths[:2], tgt)
    with pytest.raises(ValueError, match="tgt_in"):
        m(src, lengths, tgt[:2])
    with pytest.raises(ValueError, match="max_len"):
        m(torch.ones(1, 40, dtype=torch.long), torch.tensor([40]), tgt[:1])
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(m, src, lengths, beam_size=0)
    with pytest.raises(ValueError):
        noam_rate(0, 16, 10)
    with pytest.raises(ValueError):
        beam_step(torch.zeros(2, 3), torch.zeros(2, 2, 5), 2)


def test_no_position_sees_the_future():
    m = make_model()
    src, lengths, tgt = batch()
    base = m(src, lengths, tgt)
    for t in range(1, tgt.shape[1]):
        changed = tgt.clone()
        changed[:, t] = (changed[:, t] - 3 + 1) % 4 + 3   # another real token
        out = m(src, lengths, changed)
        assert torch.allclose(out[:, :t], base[:, :t], atol=1e-12, rtol=0)
        assert not torch.allclose(out[:, t:], base[:, t:], atol=1e-6)   # the test can fail


def test_padded_source_positions_change_nothing():
    m = make_model()
    src, lengths, tgt = batch(S=7)
    assert (lengths < 7).any()
    base = m(src, lengths, tgt)
    noisy = src.clone()
    pad = torch.arange(7)[None, :] >= lengths[:, None]
    noisy[pad] = 5
    assert torch.allclose(m(src, lengths, tgt), m(noisy, lengths, tgt), atol=1e-12, rtol=0)
    # and a real source token does matter
    real = src.clone()
    real[0, 0] = 3 if real[0, 0] != 3 else 4
    assert not torch.allclose(m(real, lengths, tgt)[0], base[0], atol=1e-6)


def test_decoder_self_mask_brute_force():
    lengths = torch.tensor([3, 5, 1])
    mask = decoder_self_mask(lengths, 5)
    for b in range(3):
        for i in range(5):
            for j in range(5):
                assert bool(mask[b, i, j]) == (j <= i and j < int(lengths[b]))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.sampled_from([1.0, 20.0]))
def test_beam_width_one_equals_greedy(seed, scale):
    m = make_model(seed, dtype=torch.float32, scale=scale)
    src, lengths, _ = batch(seed, B=5)
    greedy, _ = m.greedy(src, lengths, max_len=8)
    beam = beam_search(m, src, lengths, beam_size=1, max_len=8)
    assert torch.equal(beam.tokens, greedy)


@torch.no_grad()
def sequence_log_prob(m, src, lengths, seq):
    tgt_in = torch.tensor([[1] + seq[:-1]])
    logp = m(src, lengths, tgt_in).log_softmax(-1)[0]
    return float(sum(logp[t, y] for t, y in enumerate(seq)))


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_wide_beam_equals_brute_force(alpha):
    V, max_len = 5, 3          # tokens 0..4; eos = 2
    m = make_model(3, tgt_v=V, scale=8.0)
    src, lengths, _ = batch(3, B=1)
    # every hypothesis: eos only at its end; shorter than max_len only when it ends in eos
    hyps = []
    for n in range(1, max_len + 1):
        for seq in itertools.product(range(V), repeat=n):
            if 2 in seq[:-1] or (n < max_len and seq[-1] != 2):
                continue
            hyps.append(list(seq))
    scored = [(sequence_log_prob(m, src, lengths, h) / length_penalty(len(h), alpha), h) for h in hyps]
    best_score, best = max(scored)
    result = beam_search(m, src, lengths, beam_size=V ** max_len, max_len=max_len, alpha=alpha)
    got = result.nbest[0][0]
    assert got[0] == best
    assert math.isclose(got[1], best_score, rel_tol=1e-9)
    assert len(result.nbest[0]) == len(hyps)   # nothing was pruned
    assert result.tokens[0, :len(best)].tolist() == best


def test_beam_step_against_brute_force():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(2, 3, generator=g)
    logp = torch.randn(2, 3, 4, generator=g).log_softmax(-1)
    new, parents, tokens = beam_step(scores, logp, 5)
    for b in range(2):
        cands = sorted(((float(scores[b, i] + logp[b, i, v]), i, v) for i in range(3) for v in range(4)),
                       reverse=True)[:5]
        assert [(i, v) for _, i, v in cands] == list(zip(parents[b].tolist(), tokens[b].tolist()))
        assert np.allclose([s for s, _, _ in cands], new[b].numpy())


def test_beams_never_worse_than_greedy_in_log_probability():
    m = make_model(5, scale=10.0)
    src, lengths, _ = batch(5, B=4)
    g = beam_search(m, src, lengths, beam_size=1, max_len=6)
    b = beam_search(m, src, lengths, beam_size=4, max_len=6)
    assert (b.log_probs >= g.log_probs - 1e-9).all()


def test_noam_rate_formula_and_schedule():
    d, w = 64, 100
    steps = np.arange(1, 400)
    expected = np.array([d ** -0.5 * min(s ** -0.5, s * w ** -1.5) for s in steps])
    assert np.allclose(noam_rate(steps, d, w), expected, rtol=1e-12)
    assert math.isclose(noam_rate(w, d, w), 1 / math.sqrt(d * w))
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=123.0)
    sched = noam_schedule(opt, d, w, factor=2.0)
    seen = []
    for _ in range(5):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert np.allclose(seen, 2.0 * expected[:5])


def test_label_smoothing_targets_match_torch_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (6,), generator=g)
    q = label_smoothing_targets(y, 5, 0.2).double()
    assert torch.allclose(q.sum(-1), torch.ones(6, dtype=torch.float64))
    ours = -(q * logits.log_softmax(-1)).sum(-1).mean()
    assert torch.allclose(ours, F.cross_entropy(logits, y, label_smoothing=0.2))


def test_checkpoint_round_trip(tmp_path):
    m = make_model(0, dtype=torch.float32)
    src, lengths, tgt = batch()
    save_checkpoint(m, tmp_path / "t.safetensors", {"what": "transformer"})
    other = make_model(1, dtype=torch.float32)
    assert not torch.allclose(other(src, lengths, tgt), m(src, lengths, tgt))
    assert load_checkpoint(other, tmp_path / "t.safetensors") == {"what": "transformer"}
    assert torch.equal(other(src, lengths, tgt), m(src, lengths, tgt))
    assert other.out.weight is other.tgt_embed.weight   # still tied


def test_attention_maps_and_training_with_the_shared_loop():
    from attnlib.data import date_task
    task = date_task(n_train=200, n_val=20, n_test=20, test_formats=())
    torch.manual_seed(0)
    m = Transformer(len(task.source_vocab), len(task.target_vocab), 32, 4, 64, 1, 1, dropout=0.0)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    h = train(m, task.batch_stream("train", 32), seq2seq_loss, opt, steps=30, progress=False)
    assert np.mean(h.losses[-5:]) < np.mean(h.losses[:5])
    maps = attention_maps(m, task, task.test[0], target="2021-03-03")
    S, T = len(task.test[0].source), 11
    assert maps["encoder"].shape == (1, 4, S, S)
    assert maps["decoder"].shape == (1, 4, T, T) and maps["cross"].shape == (1, 4, T, S)
    for k in ("encoder", "decoder", "cross"):
        assert np.allclose(maps[k].sum(-1), 1.0, atol=1e-5)
    assert np.allclose(np.triu(maps["decoder"], 1), 0.0)


def test_shared_vocabulary(tmp_path):
    from attnlib.data import date_task
    from attnlib.torch import shared_vocabulary_map
    task = date_task(n_train=50, n_val=5, n_test=5, test_formats=())
    index = shared_vocabulary_map(task.source_vocab, task.target_vocab)
    assert [task.source_vocab.itos[i] for i in index] == task.target_vocab.itos
    torch.manual_seed(0)
    m = Transformer(len(task.source_vocab), len(task.target_vocab), 16, 4, 32, 1, 1, dropout=0.0,
                    tgt_to_src=index).eval()
    assert m.tgt_embed is None and "out.weight" not in m.state_dict()
    b = task.encode_batch(task.train[:4])
    logits = m(b.src, b.src_lengths, b.tgt_in)
    assert logits.shape == (4, b.tgt_in.shape[1], len(task.target_vocab))
    # the output layer scores with the source embedding rows of the target symbols
    h = torch.randn(2, 16)
    assert torch.allclose(m._logits(h), h @ m.src_embed.weight[index].T + m.out.bias)
    seq2seq_loss(m, b).backward()
    assert m.src_embed.weight.grad[index[5:]].abs().sum() > 0    # the digits' shared rows learn
    save_checkpoint(m, tmp_path / "s.safetensors")
    torch.manual_seed(1)
    other = Transformer(len(task.source_vocab), len(task.target_vocab), 16, 4, 32, 1, 1, dropout=0.0,
                        tgt_to_src=index).eval()
    load_checkpoint(other, tmp_path / "s.safetensors")
    assert torch.equal(other(b.src, b.src_lengths, b.tgt_in), logits.detach())
    with pytest.raises(ValueError, match="tgt_to_src"):
        Transformer(5, 4, 16, 4, 32, tgt_to_src=[0, 1, 2, 9])


def test_warmup_linear_decay_against_its_formula():
    from attnlib.torch import warmup_linear_decay
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.5)
    sched = warmup_linear_decay(opt, 4, 10)
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [0.5 * min((s + 1) / 4, (10 - s) / 6) for s in range(10)]
    assert np.allclose(seen, expected)
    assert max(seen) == 0.5 and seen[-1] < 0.1
    with pytest.raises(ValueError):
        warmup_linear_decay(opt, 10, 10)
