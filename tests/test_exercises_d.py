"""The third exercises of chapters 14-16, proved both ways.

Ch14 (label-smoothed loss), ch15 (KV-cache memory, a prediction), ch16 (cosine top-k search).
A correct answer written here with plain Python loops (for the prediction: a formula, beside the
value the checker measures) passes; every catalogued mistake, re-written here the way a learner
would write it, gets its own diagnosis; a stub is unsolved; report() counts the new exercise.
"""
from __future__ import annotations

import math

import pytest
import torch

from attnlib.exercises import encoder_decoder
from attnlib.exercises.core import catalogue_problem

MODULES = (encoder_decoder,)


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
