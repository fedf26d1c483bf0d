"""Part III's exercise checkers, proved both ways.

Correct answers written here with plain loops (independent of the checkers' references) must pass;
every catalogued mistake must get its own diagnosis, and learner-style wrong answers written here
must be told apart from right ones.
"""
from __future__ import annotations

import math

import pytest
import torch

from attnlib.exercises import encoder_decoder, gpt, pretrained_encoder, transformer_block
from attnlib.exercises.core import catalogue_problem

MODULES = {"transformer_block": transformer_block, "encoder_decoder": encoder_decoder, "gpt": gpt,
           "pretrained_encoder": pretrained_encoder}


# ----------------------------------------------------------------------------- independent answers

def loop_layer_norm(row, gamma, beta, eps):
    """LayerNorm of one vector, element by element."""
    d = len(row)
    mean = sum(float(v) for v in row) / d
    var = sum((float(v) - mean) ** 2 for v in row) / d
    return [(float(row[i]) - mean) / math.sqrt(var + eps) * float(gamma[i]) + float(beta[i])
            for i in range(d)]


def loop_pre_ln(x, gamma, beta, W):
    """x + LN(x) @ W, one position at a time."""
    out = torch.empty_like(x)
    d_in, d_out = W.shape
    for idx in torch.cartesian_prod(*[torch.arange(n) for n in x.shape[:-1]]).reshape(-1, x.dim() - 1):
        idx = tuple(int(i) for i in idx)
        normed = loop_layer_norm(x[idx], gamma, beta, transformer_block.EPS)
        for j in range(d_out):
            out[idx + (j,)] = x[idx + (j,)] + sum(normed[i] * float(W[i, j]) for i in range(d_in))
    return out


def loop_ffn(x, W1, b1, W2, b2):
    """max(0, x W1 + b1) W2 + b2, one position at a time."""
    out = torch.empty(x.shape[:-1] + (W2.shape[1],), dtype=x.dtype)
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            hidden = [max(0.0, sum(float(x[b, t, i]) * float(W1[i, h]) for i in range(W1.shape[0]))
                          + float(b1[h])) for h in range(W1.shape[1])]
            for j in range(W2.shape[1]):
                out[b, t, j] = sum(hidden[h] * float(W2[h, j]) for h in range(len(hidden))) + float(b2[j])
    return out


def loop_decoder_mask(tgt_lengths, T):
    mask = torch.zeros(len(tgt_lengths), T, T, dtype=torch.bool)
    for b, n in enumerate(tgt_lengths.tolist()):
        for i in range(T):
            for j in range(T):
                mask[b, i, j] = j <= i and j < n
    return mask


def loop_noam(step, d_model, warmup):
    import numpy as np
    return np.array([min(s ** -0.5, s / warmup ** 1.5) / math.sqrt(d_model) for s in np.asarray(step, float)])


def loop_top_k_probs(logits, temperature, k):
    out = torch.zeros_like(logits)
    for b in range(logits.shape[0]):
        row = [float(v) / temperature for v in logits[b]]
        keep = sorted(range(len(row)), key=lambda i: -row[i])[:k]
        top = max(row[i] for i in keep)
        total = sum(math.exp(row[i] - top) for i in keep)
        for i in keep:
            out[b, i] = math.exp(row[i] - top) / total
    return out


def loop_cached_attention(q, K_past, V_past, k, v):
    K, V = torch.cat([K_past, k], -2), torch.cat([V_past, v], -2)
    out = torch.empty_like(q)
    d = q.shape[-1]
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            scores = [float(q[b, h, 0] @ K[b, h, j]) / math.sqrt(d) for j in range(K.shape[2])]
            top = max(scores)
            w = [math.exp(s - top) for s in scores]
            w = [x / sum(w) for x in w]
            out[b, h, 0] = sum(w[j] * V[b, h, j] for j in range(len(w)))
    return out


def loop_mean_pooling(hidden, mask):
    out = torch.zeros(hidden.shape[0], hidden.shape[-1], dtype=hidden.dtype)
    for b in range(hidden.shape[0]):
        rows = [hidden[b, t] for t in range(hidden.shape[1]) if int(mask[b, t]) == 1]
        out[b] = sum(rows) / len(rows)
    return out


def loop_wordpiece(word, vocab):
    """Greedy longest match first, written as a search over every split point."""
    pieces, rest, first = [], word, True
    while rest:
        for cut in range(len(rest), 0, -1):
            piece = rest[:cut] if first else "##" + rest[:cut]
            if piece in vocab:
                pieces.append(piece)
                rest, first = rest[cut:], False
                break
        else:
            return ["[UNK]"]
    return pieces


CORRECT = [
    (transformer_block.check_pre_ln_sublayer, loop_pre_ln),
    (transformer_block.check_feed_forward, loop_ffn),
    (encoder_decoder.check_decoder_mask, loop_decoder_mask),
    (encoder_decoder.check_noam_rate, loop_noam),
    (gpt.check_top_k_probs, loop_top_k_probs),
    (gpt.check_cached_attention, loop_cached_attention),
    (pretrained_encoder.check_mean_pooling, loop_mean_pooling),
    (pretrained_encoder.check_wordpiece, loop_wordpiece),
]
IDS = [check.__name__ for check, _ in CORRECT]


@pytest.fixture(autouse=True)
def _fresh():
    for m in MODULES.values():
        m.reset()
    yield
    for m in MODULES.values():
        m.reset()


@pytest.mark.parametrize("check, answer", CORRECT, ids=IDS)
def test_independent_correct_answer_passes(check, answer):
    result = check(answer)
    assert result.passed, result.message


def _stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize("check", [c for c, _ in CORRECT], ids=IDS)
def test_stub_is_unsolved(check):
    result = check(_stub)
    assert not result.passed and result.status != "passed"


def _exercises():
    from attnlib.exercises.core import Exercise
    for name, module in MODULES.items():
        for attr in vars(module).values():
            if isinstance(attr, Exercise):
                for mistake in attr.mistakes:
                    yield pytest.param(module, attr, mistake, id=f"{name}-{attr.name}-{mistake.name}")


@pytest.mark.parametrize("module, exercise, mistake", list(_exercises()))
def test_every_catalogued_mistake_gets_its_own_diagnosis(module, exercise, mistake):
    # The catalogue holds each mistake already wrapped as the checker wraps a learner's function.
    result = module._CHAPTER.check(exercise, mistake.fn)
    assert not result.passed
    crashes = []
    for case in exercise.cases():
        try:
            mistake.fn(*case.args)
        except Exception as err:  # noqa: BLE001 - a shape error is what some mistakes give
            crashes.append(err)
    if crashes:  # the learner sees the crash, with the exercise's hint, rather than a diagnosis
        assert "raised" in result.message and "Hint" in result.message
    else:
        assert result.mistake == mistake.name, (result.mistake, result.message)
    # Either way the mistake must run on some case and be named there: one that crashes on every
    # case is never compared with anything, so no learner could ever get its diagnosis.
    assert catalogue_problem(exercise, mistake) == ""


# ----------------------------------------------------------------------------- learner-style mistakes

def test_post_ln_written_by_hand_is_named():
    def post_ln(x, gamma, beta, W):
        y = x + x @ W
        return torch.nn.functional.layer_norm(y, y.shape[-1:], gamma, beta, transformer_block.EPS)
    assert transformer_block.check_pre_ln_sublayer(post_ln).mistake == "post_ln"


def test_causal_mask_without_padding_is_named():
    def causal(tgt_lengths, T):
        return torch.tril(torch.ones(T, T, dtype=torch.bool)).expand(len(tgt_lengths), T, T)
    assert encoder_decoder.check_decoder_mask(causal).mistake == "causal_only"


def test_noam_with_max_is_named():
    import numpy as np

    def with_max(step, d_model, warmup):
        step = np.asarray(step, float)
        return d_model ** -0.5 * np.maximum(step ** -0.5, step * warmup ** -1.5)
    assert encoder_decoder.check_noam_rate(with_max).mistake == "max"


def test_temperature_multiplied_is_named():
    def times(logits, temperature, k):
        z = logits * temperature
        kth = torch.topk(z, k, dim=-1).values[..., -1:]
        return torch.softmax(z.masked_fill(z < kth, float("-inf")), -1)
    assert gpt.check_top_k_probs(times).mistake == "times_temperature"


def test_cache_not_appended_is_named():
    def past_only(q, K_past, V_past, k, v):
        w = torch.softmax(q @ K_past.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1)
        return w @ V_past
    assert gpt.check_cached_attention(past_only).mistake == "not_appended"


def test_pooling_over_padding_is_named():
    assert pretrained_encoder.check_mean_pooling(lambda h, m: h.mean(-2)).mistake == "no_mask"


def test_wordpiece_without_hashes_is_named():
    def no_hashes(word, vocab):
        pieces, rest = [], word
        while rest:
            for cut in range(len(rest), 0, -1):
                if rest[:cut] in vocab:
                    pieces.append(rest[:cut])
                    rest = rest[cut:]
                    break
            else:
                return ["[UNK]"]
        return pieces
    assert pretrained_encoder.check_wordpiece(no_hashes).mistake == "no_hashes"
