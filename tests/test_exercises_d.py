"""The third exercises of chapters 14-16, proved both ways.

Ch14 (label-smoothed loss), ch15 (KV-cache memory, a prediction), ch16 (cosine top-k search).
A correct answer written here with plain Python loops (for the prediction: a formula, beside the
value the checker measures) passes; every catalogued mistake, re-written here the way a learner
would write it, gets its own diagnosis; a stub is unsolved; report() counts the new exercise.
"""
from __future__ import annotations

import itertools
import math
import time

import pytest
import torch

from attnlib.exercises import encoder_decoder, gpt
from attnlib.exercises.core import catalogue_problem

MODULES = (encoder_decoder, gpt)


@pytest.fixture(autouse=True)
def _fresh():
    for m in MODULES:
        m.reset()
    yield
    for m in MODULES:
        m.reset()


def _stub(*args):
    raise NotImplementedError


# ----------------------------------------------------------------------------- ch14: label-smoothed loss

def loop_smoothed_loss(logits, targets, pad_id, epsilon):
    """Mean over real tokens of -sum_v q_v log p_v, one position and one vocabulary entry at a time."""
    B, T, V = logits.shape
    total, count = 0.0, 0
    for b in range(B):
        for t in range(T):
            y = int(targets[b, t])
            if y == pad_id:
                continue
            row = [float(v) for v in logits[b, t]]
            top = max(row)
            log_z = top + math.log(sum(math.exp(v - top) for v in row))
            for v in range(V):
                q = (1 - epsilon) * (v == y) + epsilon / V
                total -= q * (row[v] - log_z)
            count += 1
    return total / count


def _per_token(logits, targets, epsilon, right, other, log_p=None):
    """What a learner writes for the per-position loss, with their own target weights."""
    V = logits.shape[-1]
    log_p = logits.log_softmax(-1) if log_p is None else log_p
    onehot = torch.nn.functional.one_hot(targets, V).double()
    q = onehot * right + (1 - onehot) * other
    return -(q * log_p).sum(-1)


def learner_padding_counted(logits, targets, pad_id, epsilon):
    V = logits.shape[-1]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), label_smoothing=epsilon)


def learner_divide_by_all(logits, targets, pad_id, epsilon):
    V = logits.shape[-1]
    loss = _per_token(logits, targets, epsilon, 1 - epsilon + epsilon / V, epsilon / V)
    loss = loss.masked_fill(targets == pad_id, 0.0)
    return loss.mean()


def learner_per_sentence_mean(logits, targets, pad_id, epsilon):
    V = logits.shape[-1]
    means = []
    for b in range(logits.shape[0]):
        real = targets[b] != pad_id
        loss = _per_token(logits[b], targets[b], epsilon, 1 - epsilon + epsilon / V, epsilon / V)
        means.append(loss[real].mean())
    return torch.stack(means).mean()


def learner_no_one_minus_eps(logits, targets, pad_id, epsilon):
    V = logits.shape[-1]
    q = torch.nn.functional.one_hot(targets, V).double() + epsilon / V
    loss = -(q * logits.log_softmax(-1)).sum(-1)
    return loss[targets != pad_id].mean()


def learner_eps_over_others(logits, targets, pad_id, epsilon):
    V = logits.shape[-1]
    loss = _per_token(logits, targets, epsilon, 1 - epsilon, epsilon / (V - 1))
    return loss[targets != pad_id].mean()


def learner_logits_as_log_probs(logits, targets, pad_id, epsilon):
    V = logits.shape[-1]
    q = (1 - epsilon) * torch.nn.functional.one_hot(targets, V).double() + epsilon / V
    loss = -(q * logits).sum(-1)
    return loss[targets != pad_id].mean()


LOSS_MISTAKES = {"padding_counted": learner_padding_counted, "divide_by_all": learner_divide_by_all,
                 "per_sentence_mean": learner_per_sentence_mean, "no_one_minus_eps": learner_no_one_minus_eps,
                 "eps_over_others": learner_eps_over_others, "logits_as_log_probs": learner_logits_as_log_probs}


def test_smoothed_loss_loop_answer_passes():
    result = encoder_decoder.check_smoothed_loss(loop_smoothed_loss)
    assert result.passed, result.message


def test_smoothed_loss_with_torch_ops_and_as_a_float_passes():
    def with_ce(logits, targets, pad_id, epsilon):
        V = logits.shape[-1]
        return torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
                                                 ignore_index=pad_id, label_smoothing=epsilon).item()
    assert encoder_decoder.check_smoothed_loss(with_ce).passed


def test_smoothed_loss_catalogue_is_the_one_tested_here():
    assert {m.name for m in encoder_decoder.SMOOTHED_LOSS.mistakes} == set(LOSS_MISTAKES)


@pytest.mark.parametrize("name", list(LOSS_MISTAKES))
def test_smoothed_loss_each_learner_mistake_is_named(name):
    result = encoder_decoder.check_smoothed_loss(LOSS_MISTAKES[name])
    assert result.status == "failed" and result.mistake == name, result.message
    mistake = next(m for m in encoder_decoder.SMOOTHED_LOSS.mistakes if m.name == name)
    assert catalogue_problem(encoder_decoder.SMOOTHED_LOSS, mistake) == ""


def test_smoothed_loss_stub_is_unsolved_and_report_counts_three(capsys):
    assert encoder_decoder.check_smoothed_loss(_stub).status == "unsolved"
    encoder_decoder.report()
    assert "0 of 3" in capsys.readouterr().out
    encoder_decoder.check_smoothed_loss(loop_smoothed_loss)
    encoder_decoder.report()
    assert "1 of 3 (smoothed_loss)" in capsys.readouterr().out


def test_smoothed_loss_per_token_losses_are_a_shape_problem():
    def not_averaged(logits, targets, pad_id, epsilon):
        return _per_token(logits, targets, epsilon, 1 - epsilon + epsilon / logits.shape[-1],
                          epsilon / logits.shape[-1])
    result = encoder_decoder.check_smoothed_loss(not_averaged)
    assert result.status == "failed" and result.mistake is None and "shape" in result.message


# ----------------------------------------------------------------------------- ch15: KV-cache memory (a prediction)

def kv_bytes_by_formula():
    """Derived from the checkpoint's recipe: K and V, per layer, (batch, heads, length, d_model / heads) float32."""
    from attnlib.experiments.gpt import CHECKPOINT_RECIPE as r
    assert gpt.KV_LENGTH <= r["block_size"]  # the prompt fits the learned positions
    d_head = r["d_model"] // r["num_heads"]
    return 2 * r["num_layers"] * gpt.KV_BATCH * r["num_heads"] * gpt.KV_LENGTH * d_head * 4


def test_kv_cache_measure_equals_the_formula_and_the_question_numbers():
    assert gpt.KV_CACHE.measure() == kv_bytes_by_formula() == 2 * 3 * 1 * 4 * 64 * 24 * 4 == 147_456


def test_kv_cache_measure_is_cheap_and_leaves_the_learners_random_state_alone():
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    start = time.perf_counter()
    gpt.KV_CACHE.measure()
    assert time.perf_counter() - start < 1.0
    assert torch.equal(torch.rand(3), want)


@pytest.mark.parametrize("answer", [147_456, 147_456.0, 2 * 3 * 64 * 96 * 4, lambda: 2 * 3 * 4 * 64 * 24 * 4,
                                    lambda: 144 * 1024],
                         ids=["int", "float", "via d_model", "function", "function, 144 KiB"])
def test_kv_cache_right_answer_passes(answer):
    result = gpt.check_kv_cache_bytes(answer)
    assert result.passed, result.message


KV_MISTAKES = {  # what a learner writes for each wrong reasoning
    "keys_only": 3 * 1 * 4 * 64 * 24 * 4,
    "one_layer": 2 * 1 * 4 * 64 * 24 * 4,
    "bits": 2 * 3 * 1 * 4 * 64 * 24 * 32,
    "d_model_per_head": 2 * 3 * 1 * 4 * 64 * 96 * 4,
    "forgot_heads": 2 * 3 * 1 * 64 * 24 * 4,
    "mebibytes": 0.14,
}


def test_kv_cache_catalogue_is_the_one_tested_here():
    assert {m.name for m in gpt.KV_CACHE.mistakes} == set(KV_MISTAKES)


@pytest.mark.parametrize("name", list(KV_MISTAKES))
def test_kv_cache_each_wrong_prediction_is_named(name):
    for value in (KV_MISTAKES[name], lambda: KV_MISTAKES[name]):
        result = gpt.check_kv_cache_bytes(value)
        assert result.status == "failed" and result.mistake == name, result.message
    mistake = next(m for m in gpt.KV_CACHE.mistakes if m.name == name)
    assert catalogue_problem(gpt.KV_CACHE, mistake) == ""


def test_kv_cache_catalogued_values_differ_from_the_answer_and_from_each_other():
    values = [kv_bytes_by_formula()] + [m.fn() for m in gpt.KV_CACHE.mistakes]
    for a, b in itertools.combinations(values, 2):
        assert abs(a - b) > 2 * gpt.KV_CACHE.rtol * max(abs(a), abs(b)), (a, b)


def test_kv_cache_stub_and_no_number_are_unsolved_a_crash_is_explained(capsys):
    assert gpt.check_kv_cache_bytes(_stub).status == "unsolved"
    assert gpt.check_kv_cache_bytes(...).status == "unsolved"
    assert gpt.check_kv_cache_bytes(lambda: None).status == "unsolved"
    crashed = gpt.check_kv_cache_bytes(lambda: 1 / 0)
    assert crashed.status == "failed" and "ZeroDivisionError" in crashed.message
    gpt.report()
    assert "0 of 3" in capsys.readouterr().out
    gpt.check_kv_cache_bytes(147_456)
    gpt.report()
    assert "1 of 3 (kv_cache_bytes)" in capsys.readouterr().out


def test_kv_cache_an_uncatalogued_miss_says_which_way_without_the_answer():
    result = gpt.check_kv_cache_bytes(3 * 147_456)
    assert result.mistake is None and "too high" in result.message and "147,456" not in result.message
