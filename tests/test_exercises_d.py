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

from attnlib.exercises import encoder_decoder, gpt, pretrained_encoder
from attnlib.exercises.core import catalogue_problem

MODULES = (encoder_decoder, gpt, pretrained_encoder)


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


# ----------------------------------------------------------------------------- ch16: cosine top-k search

def loop_cosine_top_k(queries, library, k):
    """Cosine of every pair from Python sums, then the library sorted by it, largest first."""
    def norm(row):
        return math.sqrt(sum(float(x) ** 2 for x in row))
    out = []
    for q in queries:
        cos = [sum(float(a) * float(b) for a, b in zip(q, row)) / (norm(q) * norm(row)) for row in library]
        out.append(sorted(range(len(library)), key=lambda j: -cos[j])[:k])
    return torch.tensor(out, dtype=torch.long)


def learner_dot_product(queries, library, k):
    return torch.argsort(queries @ library.T, dim=1, descending=True)[:, :k]


def learner_least_similar(queries, library, k):
    sims = torch.nn.functional.cosine_similarity(queries[:, None, :], library[None, :, :], dim=-1)
    return torch.argsort(sims, dim=1)[:, :k]


def learner_euclidean(queries, library, k):
    dist = ((queries[:, None, :] - library[None, :, :]) ** 2).sum(-1).sqrt()
    return torch.argsort(dist, dim=1)[:, :k]


def learner_normalised_features(queries, library, k):
    q = torch.nn.functional.normalize(queries, dim=0)
    lib = torch.nn.functional.normalize(library, dim=0)
    return (q @ lib.T).topk(k).indices


def learner_values_not_indices(queries, library, k):
    q = torch.nn.functional.normalize(queries, dim=1)
    lib = torch.nn.functional.normalize(library, dim=1)
    return (q @ lib.T).topk(k).values


SEARCH_MISTAKES = {"dot_product": learner_dot_product, "least_similar": learner_least_similar,
                   "euclidean": learner_euclidean, "normalised_features": learner_normalised_features,
                   "values_not_indices": learner_values_not_indices}


def test_cosine_top_k_loop_answer_passes():
    result = pretrained_encoder.check_cosine_top_k(loop_cosine_top_k)
    assert result.passed, result.message


def test_cosine_top_k_other_right_answers_pass():
    def unit_library_only(queries, library, k):  # a query's length does not change its ranking
        return (queries @ torch.nn.functional.normalize(library, dim=-1).T).topk(k).indices

    def distance_of_unit_vectors(queries, library, k):  # |a - b|^2 = 2 - 2 cos for unit vectors
        q, lib = (torch.nn.functional.normalize(x, dim=-1) for x in (queries, library))
        return torch.cdist(q, lib).topk(k, largest=False).indices

    for fn in (unit_library_only, distance_of_unit_vectors):
        assert pretrained_encoder.check_cosine_top_k(fn).passed, fn.__name__


def test_cosine_top_k_catalogue_is_the_one_tested_here():
    assert {m.name for m in pretrained_encoder.SEARCH.mistakes} == set(SEARCH_MISTAKES)


@pytest.mark.parametrize("name", list(SEARCH_MISTAKES))
def test_cosine_top_k_each_learner_mistake_is_named(name):
    result = pretrained_encoder.check_cosine_top_k(SEARCH_MISTAKES[name])
    assert result.status == "failed" and result.mistake == name, result.message
    mistake = next(m for m in pretrained_encoder.SEARCH.mistakes if m.name == name)
    assert catalogue_problem(pretrained_encoder.SEARCH, mistake) == ""


def test_cosine_top_k_cases_need_the_normalisation():
    """On every case but the one-query one, the raw dot product and the raw distance both rank wrongly."""
    for case in pretrained_encoder.SEARCH.cases()[1:]:
        q, lib, k = (torch.from_numpy(a) if hasattr(a, "shape") else a for a in case.args)
        right = loop_cosine_top_k(q, lib, k)
        assert not torch.equal(learner_dot_product(q, lib, k), right), case.label
        assert not torch.equal(learner_euclidean(q, lib, k), right), case.label


def test_cosine_top_k_stub_is_unsolved_and_report_counts_three(capsys):
    assert pretrained_encoder.check_cosine_top_k(_stub).status == "unsolved"
    pretrained_encoder.report()
    assert "0 of 3" in capsys.readouterr().out
    pretrained_encoder.check_cosine_top_k(loop_cosine_top_k)
    pretrained_encoder.report()
    assert "1 of 3 (cosine_top_k)" in capsys.readouterr().out


def test_cosine_top_k_transposed_indices_are_a_shape_problem():
    result = pretrained_encoder.check_cosine_top_k(lambda q, lib, k: loop_cosine_top_k(q, lib, k).T)
    assert result.status == "failed" and result.mistake is None and "shape" in result.message
