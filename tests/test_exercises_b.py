"""The third exercises of chapters 7-10, proved both ways.

For each: a correct answer written here independently (plain Python loops, or, for the prediction,
the weights derived by hand) passes; every catalogued mistake, re-written here the way a learner
would write it (not by calling the catalogue's fn), gets its own diagnosis; a stub is unsolved.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from attnlib.exercises import multi_head
from attnlib.exercises.core import PASSED, UNSOLVED, catalogue_problem

MODULES = (multi_head,)


@pytest.fixture(autouse=True)
def _fresh_chapters():
    """Every test starts with no recorded results."""
    for m in MODULES:
        m.reset()
    yield
    for m in MODULES:
        m.reset()


def stub(*args):
    """A learner's function before it is written."""
    raise NotImplementedError


# ============================================================================= ch7: which head wins?

def loop_head_rows(masked=True):
    """Each head's dot products and weights for the race query, from the layer, with Python loops.

    Returns (dots, weights): lists of H rows of L_k floats. The projections are x @ W written
    as sums over features; head h owns the columns h * d_head : (h + 1) * d_head; the weights are
    a softmax with math.exp over the keys the causal mask lets the query see (all keys if not masked).
    """
    x, (W_q, W_k, _, _), _ = multi_head.head_race_layer()
    L, d_model = x.shape
    H = multi_head.RACE_HEADS
    d_head = d_model // H
    i = multi_head.RACE_QUERY

    def project(W, t, col):
        return sum(float(x[t, f]) * float(W[f, col]) for f in range(d_model))

    dots, weights = [], []
    for h in range(H):
        cols = range(h * d_head, (h + 1) * d_head)
        row = [sum(project(W_q, i, c) * project(W_k, j, c) for c in cols) for j in range(L)]
        visible = [j for j in range(L) if j <= i or not masked]
        scaled = {j: row[j] / math.sqrt(d_head) for j in visible}
        top = max(scaled.values())
        total = sum(math.exp(s - top) for s in scaled.values())
        dots.append(row)
        weights.append([math.exp(scaled[j] - top) / total if j in scaled else 0.0 for j in range(L)])
    return dots, weights


def argmax(values):
    return max(range(len(values)), key=lambda h: values[h])


def test_race_layer_is_what_the_exercise_says():
    x, (W_q, W_k, W_v, W_o), mask = multi_head.head_race_layer()
    assert x.shape == (4, 16) and all(W.shape == (16, 16) for W in (W_q, W_k, W_v, W_o))
    assert mask.tolist() == [[j <= i for j in range(4)] for i in range(4)]
    dots, _ = loop_head_rows()
    np.testing.assert_array_equal(dots, multi_head._RACE_DOTS)   # the table the notebook prints
    np.testing.assert_array_equal(multi_head._race_dots(), multi_head._RACE_DOTS)


def test_winning_head_measured_equals_the_weights_derived_by_hand():
    key = multi_head.RACE_KEY
    _, weights = loop_head_rows()
    truth = argmax([w[key] for w in weights])
    assert multi_head._measure_winning_head() == truth == 3
    np.testing.assert_allclose(multi_head._race_weights(), weights, atol=1e-12)
    # The formula the solution states: key 1 leads its visible rivals by 3 in head 3, by 2 in head 1.
    assert math.isclose(weights[3][key], math.e ** 3 / (math.e ** 3 + 2), rel_tol=1e-12)
    assert math.isclose(weights[1][key], math.e ** 2 / (math.e ** 2 + 2), rel_tol=1e-12)
    # The winner wins clearly, not by a rounding: more than 0.1 ahead of the next head.
    second = sorted((w[key] for w in weights), reverse=True)[1]
    assert weights[truth][key] - second > 0.1


def test_winning_head_right_answer_passes_as_a_number_or_a_function():
    for value in (3, 3.0, np.int64(3), lambda: 3):
        r = multi_head.check_winning_head(value)
        assert r.status == PASSED, r.message
        assert "measures 3" in r.message


def wrong_by_learner(name):
    """The head a learner gets by each wrong line of reasoning, derived here from the loops."""
    key = multi_head.RACE_KEY
    dots, weights = loop_head_rows()
    _, unmasked = loop_head_rows(masked=False)
    return {
        "largest_dot_product": argmax([d[key] for d in dots]),        # compared raw scores across heads
        "mask_ignored": argmax([w[key] for w in unmasked]),           # let the query see key 3
        "most_peaked_head": argmax([max(w) for w in weights]),        # the most confident head
        "counted_from_one": argmax([w[key] for w in weights]) + 1,    # heads numbered 1 to 4
    }[name]


RACE_MISTAKES = ["largest_dot_product", "mask_ignored", "most_peaked_head", "counted_from_one"]


def test_every_race_mistake_is_tested_here():
    assert [m.name for m in multi_head.WINNING_HEAD.mistakes] == RACE_MISTAKES


@pytest.mark.parametrize("name", RACE_MISTAKES)
def test_winning_head_each_wrong_reasoning_gets_its_diagnosis(name):
    value = wrong_by_learner(name)
    r = multi_head.check_winning_head(value)
    assert r.status == "failed" and r.mistake == name, r.message
    assert r.message.startswith("❌ ") and "\nHint: " in r.message
    assert multi_head.check_winning_head(lambda: value).mistake == name


def test_winning_head_catalogue_values_differ_from_each_other_and_from_the_answer():
    values = [wrong_by_learner(n) for n in RACE_MISTAKES]
    assert len(set(values)) == len(values) == 4
    assert multi_head._measure_winning_head() not in values
    assert sorted(float(m.fn()) for m in multi_head.WINNING_HEAD.mistakes) == sorted(values)


@pytest.mark.parametrize("value", [None, ..., stub])
def test_winning_head_no_prediction_yet_is_unsolved(value):
    r = multi_head.check_winning_head(value)
    assert r.status == UNSOLVED and "Not solved yet" in r.message


def test_winning_head_a_function_that_fails_is_explained():
    r = multi_head.check_winning_head(lambda: [][0])
    assert r.status == "failed" and "IndexError" in r.message
    assert multi_head.check_winning_head(7).mistake is None


def test_winning_head_is_measured_cheaply():
    start = time.perf_counter()
    multi_head._measure_winning_head()
    assert time.perf_counter() - start < 1.0


def test_multi_head_report_counts_three(capsys):
    from attnlib.numpy import split_heads
    multi_head.check_split_heads(split_heads)
    multi_head.check_multi_head_attention(multi_head._mha)
    multi_head.check_winning_head(3)
    multi_head.report()
    assert "3 of 3" in capsys.readouterr().out


# ============================================================================= the catalogues of chapters 7-10

def _new_exercises():
    return [multi_head.WINNING_HEAD]


@pytest.mark.parametrize("exercise", _new_exercises(), ids=lambda e: e.name)
def test_every_catalogued_mistake_can_be_diagnosed(exercise):
    for m in exercise.mistakes:
        assert catalogue_problem(exercise, m) == "", m.name
