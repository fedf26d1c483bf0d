"""The "predict, then run" exercises: a learner's number against the value the chapter measures.

The measured value here is computed independently of the checker (a formula written in the test);
every kind of wrong input gets its own message, and the catalogue check refuses mistakes that
cannot be told apart.
"""
from __future__ import annotations

import numpy as np
import pytest

from attnlib.exercises import Chapter, Mistake, Prediction
from attnlib.exercises.core import PASSED, UNSOLVED, catalogue_problem

# A KV cache for 2 layers, 4 heads of 16 features, 128 positions, float32: K and V each.
LAYERS, HEADS, D_HEAD, LENGTH, BYTES = 2, 4, 16, 128, 4
TRUE = 2 * LAYERS * HEADS * D_HEAD * LENGTH * BYTES  # 131,072 bytes


def _cache_prediction(**kw):
    mistakes = (Mistake("keys_only", "You counted the keys only: the cache holds K and V.",
                        lambda: TRUE / 2),
                Mistake("one_layer", "Every layer has its own cache.", lambda: TRUE / LAYERS),
                Mistake("bits", "You counted bits: a float32 is 4 bytes.", lambda: TRUE * 8))
    return Prediction(name="cache memory", question="How many bytes does the cache hold?",
                      measure=lambda: float(TRUE), mistakes=mistakes, unit="bytes",
                      hint="2 (K and V) x layers x heads x d_head x length x bytes per number.",
                      explanation="Twice, for keys and values.", **kw)


def test_the_right_number_passes_in_any_numeric_form():
    ex = _cache_prediction()
    for value in (TRUE, float(TRUE), np.int64(TRUE), np.array(TRUE), np.array([TRUE]), TRUE * 1.01):
        r = Chapter("c", [ex]).check(ex, value)
        assert r.status == PASSED, (value, r.message)
        assert f"{TRUE:,} bytes" in r.message and "Twice" in r.message


@pytest.mark.parametrize("name, value", [("keys_only", TRUE / 2), ("one_layer", TRUE / LAYERS),
                                         ("bits", TRUE * 8)])
def test_each_catalogued_wrong_value_is_named(name, value):
    ex = _cache_prediction()
    r = Chapter("c", [ex]).check(ex, value)
    # TRUE/2 is both "keys only" and "one layer" with 2 layers: the earlier entry is named.
    assert r.mistake == ("keys_only" if value == TRUE / 2 else name)
    assert r.status == "failed" and r.hint


def test_an_uncatalogued_miss_says_which_way_and_by_how_much_without_the_answer():
    ex = _cache_prediction()
    r = ex_check = Chapter("c", [ex]).check(ex, TRUE * 3)
    assert "too high" in r.message and "3" in r.message and f"{TRUE:,}" not in r.message
    r = Chapter("c", [ex]).check(ex, TRUE / 5)
    assert "too low" in r.message and "5" in r.message
    assert ex_check.mistake is None


@pytest.mark.parametrize("value, word", [(None, UNSOLVED), (..., UNSOLVED)])
def test_no_prediction_yet_is_unsolved_and_repeats_the_question(value, word):
    ex = _cache_prediction()
    r = Chapter("c", [ex]).check(ex, value)
    assert r.status == word and "How many bytes" in r.message


@pytest.mark.parametrize("value, words", [("65536", "text"), (True, "truth value"),
                                          ([1, 2], "2 numbers"),
                                          (float("nan"), "finite"), (object(), "object")])
def test_not_a_number_is_explained(value, words):
    ex = _cache_prediction()
    r = Chapter("c", [ex]).check(ex, value)
    assert r.status == "failed" and "not a number" in r.message and words in r.message


def test_tolerance_is_the_predictions_own():
    strict = _cache_prediction(rtol=0.0)
    assert Chapter("c", [strict]).check(strict, TRUE + 1).status == "failed"
    assert Chapter("c", [strict]).check(strict, TRUE).status == PASSED


def test_zero_measured_value_needs_zero():
    ex = Prediction(name="zero", question="?", measure=lambda: 0.0)
    assert Chapter("c", [ex]).check(ex, 0).status == PASSED
    assert "lower" in Chapter("c", [ex]).check(ex, 1).message
    assert Chapter("c", [ex]).check(ex, 1).status == "failed"


def test_catalogue_check_refuses_a_mistake_that_equals_the_answer_or_an_earlier_one():
    ex = _cache_prediction()
    assert catalogue_problem(ex, ex.mistakes[0]) == ""
    assert "diagnosed as 'keys_only'" in catalogue_problem(ex, ex.mistakes[1])
    right = Mistake("right", "Not a mistake.", lambda: float(TRUE))
    assert "diagnosed as 'passed'" in catalogue_problem(_cache_prediction(), right)
    broken = Mistake("broken", "?", lambda: 1 / 0)
    assert "cannot be computed" in catalogue_problem(ex, broken)


def test_a_measure_that_fails_is_reported_not_raised():
    ex = Prediction(name="broken", question="?", measure=lambda: 1 / 0)
    r = Chapter("c", [ex]).check(ex, 3)
    assert r.status == "failed" and "checker itself failed" in r.message


def test_report_counts_predictions(capsys):
    ex = _cache_prediction()
    chapter = Chapter("c", [ex])
    chapter.check(ex, TRUE)
    chapter.report()
    assert "1 of 1 (cache memory)" in capsys.readouterr().out


def test_a_function_returning_the_number_is_called_and_a_stub_is_unsolved():
    ex = _cache_prediction()
    assert Chapter("c", [ex]).check(ex, lambda: TRUE).status == PASSED

    def stub():
        raise NotImplementedError
    assert Chapter("c", [ex]).check(ex, stub).status == UNSOLVED
    r = Chapter("c", [ex]).check(ex, lambda: 1 / 0)
    assert r.status == "failed" and "ZeroDivisionError" in r.message


def test_a_near_miss_is_told_in_percent():
    ex = _cache_prediction()
    r = Chapter("c", [ex]).check(ex, TRUE * 1.05)
    assert "close, but too high" in r.message and "5%" in r.message


def test_a_categorical_miss_is_not_told_as_a_factor():
    ex = Prediction(name="head", question="Which head?", measure=lambda: 3.0, rtol=0.0, categorical=True)
    r = Chapter("c", [ex]).check(ex, 2)
    assert r.status == "failed" and "factor" not in r.message and "Not 2" in r.message
    assert Chapter("c", [ex]).check(ex, 3).status == PASSED
