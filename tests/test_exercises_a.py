"""The third exercises of chapters 3-6, proved both ways.

Ch3 (ALiBi's biases), ch4 (leave-one-out predictions), ch5 (the spread of unscaled dot-product
scores, a prediction), ch6 (the allowed pairs of a combined mask, a prediction). A correct answer
written here with plain Python loops (for a prediction: a formula or a count by loops, beside the
value the checker measures) passes; every catalogued mistake, re-written here the way a learner
would write it, gets its own diagnosis; a stub is unsolved; report() counts the new exercise.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from attnlib.course import notebooks as cn
from attnlib.exercises import alignment_scores, masking, positional_encoding, queries_keys_values
from attnlib.exercises.core import PASSED, UNSOLVED, catalogue_problem

MODULES = (positional_encoding, queries_keys_values, alignment_scores, masking)


@pytest.fixture(autouse=True)
def _fresh():
    for m in MODULES:
        m.reset()
    yield
    for m in MODULES:
        m.reset()


def _stub(*args):
    raise NotImplementedError


# ----------------------------------------------------------------------------- ch3: ALiBi's biases

def loop_alibi(num_heads, L):
    """b[h, i, j] = -m_h |i - j| with m_h = 2^(-8 (h + 1) / n), one entry at a time."""
    out = np.zeros((num_heads, L, L))
    for h in range(num_heads):
        slope = 2.0 ** (-8.0 * (h + 1) / num_heads)
        for i in range(L):
            for j in range(L):
                out[h, i, j] = -slope * abs(i - j)
    return out


def _learner_distance(L):
    return np.abs(np.arange(L)[:, None] - np.arange(L)[None, :])


def learner_alibi_positive(num_heads, L):
    slopes = 2.0 ** (-8 * np.arange(1, num_heads + 1) / num_heads)
    return slopes[:, None, None] * _learner_distance(L)  # forgot the minus


def learner_alibi_no_abs(num_heads, L):
    slopes = 2.0 ** (-8 * np.arange(1, num_heads + 1) / num_heads)
    offset = np.arange(L)[:, None] - np.arange(L)[None, :]  # i - j, as the paper writes it (causal)
    return -slopes[:, None, None] * offset


def learner_alibi_first_slope_one(num_heads, L):
    slopes = 2.0 ** (-8 * np.arange(num_heads) / num_heads)  # h = 0..n-1
    return -slopes[:, None, None] * _learner_distance(L)


def learner_alibi_halving(num_heads, L):
    slopes = 0.5 ** np.arange(1, num_heads + 1)  # read off the 8-head figure: 1/2, 1/4, ...
    return -slopes[:, None, None] * _learner_distance(L)


def learner_alibi_reversed(num_heads, L):
    slopes = 2.0 ** (-8 * np.arange(num_heads, 0, -1) / num_heads)
    return -slopes[:, None, None] * _learner_distance(L)


def learner_alibi_heads_last(num_heads, L):
    slopes = 2.0 ** (-8 * np.arange(1, num_heads + 1) / num_heads)
    return -_learner_distance(L)[:, :, None] * slopes  # (L, L, H)


ALIBI_LEARNERS = {"positive": learner_alibi_positive, "no_absolute_value": learner_alibi_no_abs,
                  "first_slope_one": learner_alibi_first_slope_one, "halving_slopes": learner_alibi_halving,
                  "reversed_slopes": learner_alibi_reversed, "heads_last": learner_alibi_heads_last}


def test_alibi_loop_answer_passes():
    r = positional_encoding.check_alibi_bias(loop_alibi)
    assert r.passed, r.message


@pytest.mark.parametrize("name", list(ALIBI_LEARNERS))
def test_alibi_learner_mistakes_are_named(name):
    r = positional_encoding.check_alibi_bias(ALIBI_LEARNERS[name])
    assert r.status == "failed" and r.mistake == name, r.message


def test_alibi_catalogue_is_tested_here_and_can_be_diagnosed():
    ex = positional_encoding.ALIBI
    assert {m.name for m in ex.mistakes} == set(ALIBI_LEARNERS)
    assert all(catalogue_problem(ex, m) == "" for m in ex.mistakes)


def test_alibi_cases_include_the_chapters_8_heads_and_others():
    heads = {c.args[0] for c in positional_encoding.ALIBI.cases()}
    assert 8 in heads and heads - {8}  # 1/2, 1/4, ... is right for 8 heads only


def test_alibi_stub_is_unsolved():
    assert positional_encoding.check_alibi_bias(_stub).status == UNSOLVED


# ----------------------------------------------------------------------------- ch4: leave-one-out

def loop_leave_one_out(x, y, h):
    """Each point's Gaussian-weighted average of the OTHER points' targets, with Python floats."""
    out = np.zeros(x.shape)
    for b in np.ndindex(*x.shape[:-1]):
        n = x.shape[-1]
        for i in range(n):
            others = [j for j in range(n) if j != i]
            scores = {j: -(float(x[b + (i,)]) - float(x[b + (j,)])) ** 2 / (2 * h * h) for j in others}
            top = max(scores.values())
            kernel = {j: math.exp(s - top) for j, s in scores.items()}
            out[b + (i,)] = sum(kernel[j] * float(y[b + (j,)]) for j in others) / sum(kernel.values())
    return out


def _learner_scores(x, h, two=2):
    return -(x[..., :, None] - x[..., None, :]) ** 2 / (two * h**2)


def _learner_softmax(s, axis=-1):
    e = np.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def learner_loo_self_included(x, y, h):
    w = _learner_softmax(_learner_scores(x, h))  # the chapter's kernel weights, no mask
    return np.sum(w * y[..., None, :], axis=-1)


def learner_loo_zeroed_after(x, y, h):
    w = _learner_softmax(_learner_scores(x, h))
    w = w * (1 - np.eye(x.shape[-1]))  # drop each point's own weight afterwards
    return np.sum(w * y[..., None, :], axis=-1)


def learner_loo_wrong_axis(x, y, h):
    s = np.where(np.eye(x.shape[-1], dtype=bool), -np.inf, _learner_scores(x, h))
    w = _learner_softmax(s, axis=-2)
    return np.sum(w * y[..., None, :], axis=-1)


def learner_loo_no_factor_two(x, y, h):
    s = np.where(np.eye(x.shape[-1], dtype=bool), -np.inf, _learner_scores(x, h, two=1))
    return np.sum(_learner_softmax(s) * y[..., None, :], axis=-1)


def learner_loo_overflow(x, y, h):
    kernel = np.exp(_learner_scores(x, h)) * ~np.eye(x.shape[-1], dtype=bool)  # the textbook formula
    return np.sum(kernel * y[..., None, :], axis=-1) / kernel.sum(-1)


LOO_LEARNERS = {"self_included": learner_loo_self_included, "zeroed_after_softmax": learner_loo_zeroed_after,
                "wrong_axis": learner_loo_wrong_axis, "no_factor_two": learner_loo_no_factor_two,
                "overflow": learner_loo_overflow}


def test_leave_one_out_loop_answer_passes():
    r = queries_keys_values.check_leave_one_out(loop_leave_one_out)
    assert r.passed, r.message


def test_leave_one_out_two_points_swap_their_targets():
    """With two points each is predicted by the other alone: the reference's value, derived by hand."""
    case = next(c for c in queries_keys_values.LEAVE_ONE_OUT.cases() if c.args[0].shape == (2,))
    x, y, h = case.args
    assert np.allclose(queries_keys_values.LEAVE_ONE_OUT.reference(x, y, h), y[::-1])


@pytest.mark.parametrize("name", list(LOO_LEARNERS))
def test_leave_one_out_learner_mistakes_are_named(name):
    r = queries_keys_values.check_leave_one_out(LOO_LEARNERS[name])
    assert r.status == "failed" and r.mistake == name, r.message


def test_leave_one_out_catalogue_is_tested_here_and_can_be_diagnosed():
    ex = queries_keys_values.LEAVE_ONE_OUT
    assert {m.name for m in ex.mistakes} == set(LOO_LEARNERS)
    assert all(catalogue_problem(ex, m) == "" for m in ex.mistakes)


def test_leave_one_out_stub_is_unsolved():
    assert queries_keys_values.check_leave_one_out(_stub).status == UNSOLVED


# ----------------------------------------------------------------------------- ch5: std of q . k

D_K = alignment_scores.STD_D_K


def _std_error_of_std(d, n):
    """Standard error of the sample std of q . k over n pairs, relative to the std.

    X = q . k is a sum of d products Y of two standard normals: E[Y^2] = 1, E[Y^4] = 9, so
    E[X^4] = 9 d + 3 d (d - 1) and Var(X^2) = 2 d^2 + 6 d. The sample variance then has relative
    standard error sqrt((2 + 6 / d) / n), and its square root half of that.
    """
    return 0.5 * math.sqrt((2 + 6 / d) / n)


def test_score_std_measured_is_sqrt_d_k_within_sampling_error():
    measured = alignment_scores.SCORE_STD.measure()
    se = _std_error_of_std(D_K, alignment_scores.STD_SAMPLES) * math.sqrt(D_K)
    assert abs(measured - math.sqrt(D_K)) < 3 * se, (measured, se)


def test_score_std_tolerance_covers_the_sampling_noise_and_excludes_every_mistake():
    rel_se = _std_error_of_std(D_K, alignment_scores.STD_SAMPLES)  # about 0.5 %
    assert alignment_scores.SCORE_STD.rtol >= 6 * rel_se
    truth = alignment_scores.SCORE_STD.measure()
    for m in alignment_scores.SCORE_STD.mistakes:
        assert abs(m.fn() - truth) > 2 * alignment_scores.SCORE_STD.rtol * truth, m.name


def test_score_std_is_measured_not_hard_coded(monkeypatch):
    monkeypatch.setattr(alignment_scores, "STD_D_K", 64)
    assert abs(alignment_scores.SCORE_STD.measure() - 8.0) < 0.2


def test_score_std_measure_is_cheap():
    start = time.perf_counter()
    alignment_scores.SCORE_STD.measure()
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("value", [math.sqrt(D_K), 16, 16.2, np.float64(15.9)])
def test_score_std_right_prediction_passes_as_number_or_function(value):
    assert alignment_scores.check_score_std(value).passed
    assert alignment_scores.check_score_std(lambda: value).passed


# What a learner's reasoning gives, written out: each should be named.
STD_LEARNERS = {
    "variance": D_K * 1.0,                               # Var(q.k) = d_k, forgot the square root
    "no_growth": 1.0,                                    # "scores have unit variance"
    "variances_added": math.sqrt(D_K * (1 + 1)),         # Var(q_i k_i) = Var q_i + Var k_i
    "mean_of_products": math.sqrt(1 / D_K),              # the std of an average
    "mean": 0.0,                                         # the mean of q.k
}


@pytest.mark.parametrize("name", list(STD_LEARNERS))
def test_score_std_learner_mistakes_are_named(name):
    r = alignment_scores.check_score_std(lambda: STD_LEARNERS[name])
    assert r.status == "failed" and r.mistake == name, r.message


def test_score_std_catalogue_is_tested_here_and_can_be_diagnosed():
    ex = alignment_scores.SCORE_STD
    assert {m.name for m in ex.mistakes} == set(STD_LEARNERS)
    assert all(catalogue_problem(ex, m) == "" for m in ex.mistakes)


def test_score_std_stub_and_broken_function():
    r = alignment_scores.check_score_std(_stub)
    assert r.status == UNSOLVED and "d_k = 256" in r.message
    r = alignment_scores.check_score_std(lambda: 1 / 0)
    assert r.status == "failed" and "ZeroDivisionError" in r.message
    r = alignment_scores.check_score_std(40.0)
    assert r.mistake is None and "too high" in r.message and "16" not in r.message


# ----------------------------------------------------------------------------- ch6: allowed pairs

LENGTHS, L = masking.PAIRS_LENGTHS, masking.PAIRS_MAX_LEN


def loop_count(allowed):
    """How many (b, i, j) satisfy ``allowed(n, i, j)`` for sequence lengths n, by loops."""
    return sum(allowed(n, i, j) for n in LENGTHS for i in range(L) for j in range(L))


def test_allowed_pairs_measured_equals_the_count_by_loops_and_the_formula():
    by_loops = loop_count(lambda n, i, j: j < n and j <= i)
    by_formula = sum(n * (n + 1) // 2 + (L - n) * n for n in LENGTHS)
    assert masking.ALLOWED_PAIRS.measure() == by_loops == by_formula == 71


def test_allowed_pairs_right_prediction_passes_as_number_or_function():
    assert masking.check_allowed_pairs(71).passed
    assert masking.check_allowed_pairs(lambda: 71.0).passed


PAIRS_LEARNERS = {
    "query_rows_blocked": lambda n, i, j: j < n and i < n and j <= i,
    "no_padding": lambda n, i, j: j <= i,
    "no_causal": lambda n, i, j: j < n,
    "diagonal_blocked": lambda n, i, j: j < n and j < i,
    "or_instead_of_and": lambda n, i, j: j < n or j <= i,
    "every_entry": lambda n, i, j: True,
}


@pytest.mark.parametrize("name", list(PAIRS_LEARNERS))
def test_allowed_pairs_learner_mistakes_are_named(name):
    r = masking.check_allowed_pairs(loop_count(PAIRS_LEARNERS[name]))
    assert r.status == "failed" and r.mistake == name, r.message


def test_allowed_pairs_catalogue_is_tested_here_and_can_be_diagnosed():
    ex = masking.ALLOWED_PAIRS
    assert {m.name for m in ex.mistakes} == set(PAIRS_LEARNERS)
    assert all(catalogue_problem(ex, m) == "" for m in ex.mistakes)


def test_allowed_pairs_near_misses_and_stubs():
    assert masking.check_allowed_pairs(_stub).status == UNSOLVED
    r = masking.check_allowed_pairs(70)
    assert r.status == "failed" and "close but too low" in r.message and "71" not in r.message
    r = masking.check_allowed_pairs(70.5)
    assert r.status == "failed" and "whole number" in r.message
    r = masking.check_allowed_pairs(30)
    assert "too low" in r.message and "71" not in r.message
    assert "not a number" in masking.check_allowed_pairs("71").message


# ----------------------------------------------------------------------------- the chapters

SOLVED = {
    positional_encoding: [("check_sinusoidal", positional_encoding.SINUSOIDAL.reference),
                          ("check_rope", positional_encoding.ROPE.reference),
                          ("check_alibi_bias", loop_alibi)],
    queries_keys_values: [("check_kernel_weights", queries_keys_values.KERNEL_WEIGHTS.reference),
                          ("check_nadaraya_watson", queries_keys_values.NADARAYA_WATSON.reference),
                          ("check_leave_one_out", loop_leave_one_out)],
    alignment_scores: [("check_additive_scores", alignment_scores.ADDITIVE.reference),
                       ("check_softmax_jacobian", alignment_scores.JACOBIAN.reference),
                       ("check_score_std", lambda: 16)],
    masking: [("check_combined_mask", masking.COMBINED_MASK.reference),
              ("check_masked_attention", masking.MASKED_ATTENTION.reference),
              ("check_allowed_pairs", lambda: 71)],
}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_report_counts_three_of_three(module, capsys):
    for checker, answer in SOLVED[module]:
        assert getattr(module, checker)(answer).status == PASSED, checker
        assert checker in module.__all__
    module.report()
    assert "3 of 3" in capsys.readouterr().out


NOTEBOOKS = {positional_encoding: "01_foundations/03_positional_encoding.ipynb",
             queries_keys_values: "01_foundations/04_queries_keys_values.ipynb",
             alignment_scores: "01_foundations/05_alignment_scores.ipynb",
             masking: "01_foundations/06_masking.ipynb"}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_notebook_checks_every_exercise_before_its_report(module):
    """Each of the chapter's checkers is called once, after its solution cell and before report()."""
    path = Path(__file__).resolve().parents[1] / "chapters" / NOTEBOOKS[module]
    sources = [(c.source, cn.is_solution(c)) for c in nbformat.read(path, as_version=4).cells
               if c.cell_type == "code"]
    report = next(i for i, (s, _) in enumerate(sources) if "ex.report()" in s)
    for checker, _ in SOLVED[module]:
        calls = [i for i, (s, _) in enumerate(sources) if f"ex.{checker}(" in s]
        assert len(calls) == 1 and calls[0] < report, checker
        assert any(sol for s, sol in sources[:calls[0]]), checker


def test_notebook_measurements_are_the_checkers_own():
    """The cells after the predictions measure what the checkers measure (same d_k, pairs, seed; same batch)."""
    def sources(module):
        path = Path(__file__).resolve().parents[1] / "chapters" / NOTEBOOKS[module]
        return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")

    scores = sources(alignment_scores)
    assert (f"dot_product_variance([{alignment_scores.STD_D_K}], n_samples={alignment_scores.STD_SAMPLES:_}, "
            f"rng=np.random.default_rng({alignment_scores.STD_SEED}))") in scores
    masks = sources(masking)
    assert f"padding_mask(np.array({list(masking.PAIRS_LENGTHS)}), {masking.PAIRS_MAX_LEN})" in masks
