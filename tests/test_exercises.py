"""The exercise checkers, proved both ways.

A correct answer, written here independently with plain Python loops, must pass; every catalogued
mistake, re-implemented here the way a learner would write it, must get its own diagnosis; stubs
are 'unsolved'; crashes, shapes and non-arrays are explained; report() counts.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from attnlib.exercises import Case, Chapter, CheckResult, Exercise, Mistake, Prediction
from attnlib.exercises import why_attention as ex
from attnlib.exercises.core import catalogue_problem


@pytest.fixture(autouse=True)
def _fresh_chapter():
    """Every test starts with no recorded results."""
    ex.reset()
    yield
    ex.reset()


# ----------------------------------------------------------------------------- independent answers

def loop_scores(Q, K):
    """Q K^T / sqrt(d_k) with explicit loops over batch, queries, keys and features."""
    batch = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2])
    Q, K = np.broadcast_to(Q, batch + Q.shape[-2:]), np.broadcast_to(K, batch + K.shape[-2:])
    d = Q.shape[-1]
    out = np.zeros(batch + (Q.shape[-2], K.shape[-2]))
    for b in np.ndindex(*batch):
        for i in range(Q.shape[-2]):
            for j in range(K.shape[-2]):
                out[b + (i, j)] = sum(Q[b + (i, t)] * K[b + (j, t)] for t in range(d)) / math.sqrt(d)
    return out


def loop_weights(scores, mask):
    """Row-by-row softmax over the allowed keys, with Python floats; a row with none stays zero."""
    mask = np.ones(scores.shape, bool) if mask is None else np.broadcast_to(mask, scores.shape)
    out = np.zeros(scores.shape)
    for row in np.ndindex(*scores.shape[:-1]):
        allowed = [j for j in range(scores.shape[-1]) if mask[row + (j,)]]
        if not allowed:
            continue
        top = max(scores[row + (j,)] for j in allowed)
        e = {j: math.exp(scores[row + (j,)] - top) for j in allowed}
        total = sum(e.values())
        for j in allowed:
            out[row + (j,)] = e[j] / total
    return out


def loop_attention(Q, K, V, mask):
    """Weighted sum of value rows, one query at a time."""
    w = loop_weights(loop_scores(Q, K), mask)
    out = np.zeros(w.shape[:-1] + (V.shape[-1],))
    for row in np.ndindex(*w.shape[:-1]):
        for j in range(w.shape[-1]):
            out[row] += w[row + (j,)] * V[row[:-1] + (j,)]
    return out


# ----------------------------------------------------------------------------- learner-style mistakes

def _all(scores, mask):
    return np.ones(scores.shape, bool) if mask is None else mask


def stable(s, axis=-1):
    """What a careful learner writes: max-subtracted softmax, a row of -inf gives zeros."""
    m = s.max(axis=axis, keepdims=True)
    e = np.exp(s - np.where(np.isinf(m), 0, m))
    t = e.sum(axis=axis, keepdims=True)
    return e / np.where(t == 0, 1, t)


def swap(K):
    return np.swapaxes(K, -1, -2)


SCORES_MISTAKES = {
    "transposed": (lambda Q, K: K @ swap(Q) / np.sqrt(Q.shape[-1]), "transposed"),
    "no_scaling": (lambda Q, K: np.einsum("...qd,...kd->...qk", Q, K), "sqrt(d_k)"),
    "divided_by_d_k": (lambda Q, K: Q @ swap(K) / Q.shape[-1], "divided by d_k"),
    "d_k_from_Q_shape0": (lambda Q, K: Q @ swap(K) / np.sqrt(len(Q)), "Q.shape[-1]"),
    "d_k_from_K_shape0": (lambda Q, K: Q @ swap(K) / len(K) ** 0.5, "K.shape[-1]"),
}


def w_wrong_axis(s, mask):
    return stable(np.where(_all(s, mask), s, -np.inf), axis=-2)


def w_sum_over_queries(s, mask):
    x = np.where(_all(s, mask), s, -np.inf)
    m = x.max(-1, keepdims=True)
    e = np.exp(x - np.where(np.isinf(m), 0, m))
    t = e.sum(axis=0 if e.ndim == 2 else -2, keepdims=True)
    return e / np.where(t == 0, 1, t)


def w_nan_fully_masked(s, mask):
    x = np.where(_all(s, mask), s, -np.inf)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def w_overflow(s, mask):
    e = np.exp(np.where(_all(s, mask), s, -np.inf))
    return e / e.sum(-1, keepdims=True)


def w_global_max(s, mask, guard):
    x = np.where(_all(s, mask), s, -np.inf)
    e = np.exp(x - x.max())                      # the max of the whole array, not of each row
    t = e.sum(-1, keepdims=True)
    return e / np.where(t == 0, 1, t) if guard else e / t


WEIGHTS_MISTAKES = {
    "wrong_axis": (w_wrong_axis, "axis"),
    "sum_over_queries": (w_sum_over_queries, "axis"),
    "mask_inverted": (lambda s, m: stable(np.where(_all(s, m), -np.inf, s)) if m is not None else stable(s),
                      "inverted"),
    "mask_ignored": (lambda s, m: stable(s), "ignore the mask"),
    "masked_scores_zero": (lambda s, m: stable(s * _all(s, m)), "exp(0)"),
    "masked_after_softmax": (lambda s, m: stable(s) * _all(s, m), "after the softmax"),
    "uniform_fully_masked": (lambda s, m: stable(np.where(_all(s, m), s, -1e9)), "uniform"),
    "nan_fully_masked": (w_nan_fully_masked, "NaN"),
    "overflow": (w_overflow, "overflow"),
    "not_normalized": (lambda s, m: np.exp(np.where(_all(s, m), s, -np.inf)
                                           - s.max(-1, keepdims=True)) * _all(s, m), "not normalized"),
    "not_normalized_raw": (lambda s, m: np.exp(s) * _all(s, m), "not normalized"),
    "global_max": (lambda s, m: w_global_max(s, m, guard=True), "own max"),
    "global_max_unguarded": (lambda s, m: w_global_max(s, m, guard=False), "own max"),
    "normalized_over_everything": (lambda s, m: (lambda e: e / np.sum(e))(np.exp(s) * _all(s, m)),
                                   "whole array"),
}


def good_scores(Q, K):
    return Q @ swap(K) / np.sqrt(Q.shape[-1])


def good_weights(s, mask):
    return stable(np.where(_all(s, mask), s, -np.inf))


def attention_of(scores_fn, weights_fn):
    """An attention function built from a scores and a weights function: weights @ V."""
    return lambda Q, K, V, mask: weights_fn(scores_fn(Q, K), mask) @ V


ATTENTION_MISTAKES = {
    "returned_weights": (lambda Q, K, V, m: good_weights(good_scores(Q, K), m), "weights @ V"),
    "no_softmax": (lambda Q, K, V, m: good_scores(Q, K) @ V, "raw scores"),
    **{name: (attention_of(fn, good_weights), word) for name, (fn, word) in SCORES_MISTAKES.items()
       if name != "transposed"},  # K Q^T cannot be multiplied by V unless L_q == L_k
    **{name: (attention_of(good_scores, fn), word) for name, (fn, word) in WEIGHTS_MISTAKES.items()},
}

CHECKERS = {"scores": ex.check_scores, "weights": ex.check_weights, "attention": ex.check_attention}
CORRECT = {"scores": loop_scores, "weights": loop_weights, "attention": loop_attention}
MISTAKES = {"scores": SCORES_MISTAKES, "weights": WEIGHTS_MISTAKES, "attention": ATTENTION_MISTAKES}
EXERCISES = {"scores": ex.SCORES, "weights": ex.WEIGHTS, "attention": ex.ATTENTION}


# ----------------------------------------------------------------------------- passing

@pytest.mark.parametrize("name", list(CHECKERS))
def test_independent_correct_answer_passes(name, capsys):
    result = CHECKERS[name](CORRECT[name])
    assert isinstance(result, CheckResult)
    assert result.status == "passed", result.message
    assert result.passed
    assert result.message.startswith(f"✅ Passed: {name} — ")
    assert "cases" in result.message
    assert repr(result) == result.message == str(result)
    assert capsys.readouterr().out == "", "a check displays its result; it must not print as well"


@pytest.mark.parametrize("name", list(CHECKERS))
def test_vectorized_correct_answer_passes(name):
    fn = {"scores": good_scores, "weights": good_weights,
          "attention": attention_of(good_scores, good_weights)}[name]
    assert CHECKERS[name](fn).status == "passed"


def test_loop_references_agree_with_attnlib_on_a_fresh_case():
    """The independent answers are themselves right (else 'passes' above would prove little)."""
    from attnlib.numpy import scaled_dot_product_attention
    rng = np.random.default_rng(7)
    Q, K, V = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 2))
    mask = rng.random((2, 3, 5)) < 0.6
    mask[1, 0] = False
    out, w = scaled_dot_product_attention(Q, K, V, mask)
    np.testing.assert_allclose(loop_weights(loop_scores(Q, K), mask), w, atol=1e-12)
    np.testing.assert_allclose(loop_attention(Q, K, V, mask), out, atol=1e-12)
    assert not out[1, 0].any()


def test_tolerance_is_rtol_1e6():
    assert ex.check_scores(lambda Q, K: good_scores(Q, K) * (1 + 1e-8)).status == "passed"
    r = ex.check_scores(lambda Q, K: good_scores(Q, K) * (1 + 1e-4))
    assert r.status == "failed" and "max |difference|" in r.message


# ----------------------------------------------------------------------------- each mistake, diagnosed

MISTAKE_PARAMS = [(ex_name, m_name) for ex_name, table in MISTAKES.items() for m_name in table]


@pytest.mark.parametrize("ex_name,mistake", MISTAKE_PARAMS)
def test_learner_style_mistake_gets_its_diagnosis(ex_name, mistake):
    fn, word = MISTAKES[ex_name][mistake]
    result = CHECKERS[ex_name](fn)
    assert result.status == "failed", result.message
    assert result.mistake == mistake, result.message
    assert result.message.startswith("❌ ")
    assert word in result.message
    assert "\nHint: " in result.message and result.hint


@pytest.mark.parametrize("ex_name", list(EXERCISES))
def test_every_catalogued_mistake_is_tested_here(ex_name):
    assert {m.name for m in EXERCISES[ex_name].mistakes} == set(MISTAKES[ex_name])


@pytest.mark.parametrize("ex_name,mistake", [(e, m.name) for e, x in EXERCISES.items() for m in x.mistakes])
def test_cases_tell_every_catalogued_mistake_apart(ex_name, mistake):
    """The catalogue's own implementation of each mistake is recognised as that mistake, no other."""
    m = next(m for m in EXERCISES[ex_name].mistakes if m.name == mistake)
    assert CHECKERS[ex_name](m.fn).mistake == mistake


def _every_catalogued_mistake():
    import importlib
    import pkgutil

    import attnlib.exercises
    for info in pkgutil.iter_modules(attnlib.exercises.__path__):
        module = importlib.import_module(f"attnlib.exercises.{info.name}")
        for exercise in [v for v in vars(module).values() if isinstance(v, (Exercise, Prediction))]:
            for m in exercise.mistakes:
                yield pytest.param(exercise, m, id=f"{info.name}-{exercise.name}-{m.name}")


@pytest.mark.parametrize("exercise, mistake", list(_every_catalogued_mistake()))
def test_every_chapters_catalogued_mistakes_can_be_diagnosed(exercise, mistake):
    """In every chapter, each catalogued mistake runs on some case and is named where it runs."""
    assert catalogue_problem(exercise, mistake) == ""


def _doubling(mistakes):
    cases = lambda: [Case((np.arange(3.0),), "three numbers"), Case((np.ones((2, 2)),), "a 2 x 2 array")]
    return Exercise(name="double", call="fn(x)", arg_names=("x",), out_axes=(), dims=lambda x: {},
                    reference=lambda x: 2 * x, cases=cases, mistakes=mistakes, hint="Multiply by two.")


def test_a_mistake_that_crashes_on_every_case_fails_the_catalogue_check():
    def broken(x):  # meant to be "tripled", but a typo makes it raise on every case
        return 3 * x.nonexistent

    crashing = Mistake("tripled", "You tripled it.", broken)
    problem = catalogue_problem(_doubling((crashing,)), crashing)
    assert "raises on every case" in problem and "AttributeError" in problem
    # Raising on some cases is fine, as long as the cases where it runs name it.
    partly = Mistake("tripled", "You tripled it.", lambda x: 3 * x if x.ndim == 1 else x.nonexistent)
    assert catalogue_problem(_doubling((partly,)), partly) == ""


def test_a_mistake_the_cases_cannot_tell_from_an_earlier_one_fails_the_catalogue_check():
    tripled = Mistake("tripled", "You tripled it.", lambda x: 3 * x)
    also = Mistake("x_plus_2x", "You added x to 2 x.", lambda x: x + 2 * x)  # the same numbers
    ex_ = _doubling((tripled, also))
    assert catalogue_problem(ex_, tripled) == ""
    assert "diagnosed as 'tripled'" in catalogue_problem(ex_, also)
    right = Mistake("right", "Not a mistake.", lambda x: x * 2)
    assert "diagnosed as 'passed'" in catalogue_problem(_doubling((right,)), right)


def test_two_mistakes_at_once_name_the_one_seen_on_most_cases():
    # No scaling *and* no max-subtraction: the scaling is wrong on every ordinary case.
    r = ex.check_attention(attention_of(SCORES_MISTAKES["no_scaling"][0], w_overflow))
    assert r.mistake == "no_scaling"
    # Without max-subtraction a fully masked row is NaN too, but overflow is the cause to name.
    assert ex.check_weights(w_overflow).mistake == "overflow"
    assert ex.check_weights(w_nan_fully_masked).mistake == "nan_fully_masked"


def test_overflow_named_even_when_not_an_exact_catalogue_match():
    def guarded_no_max(s, mask):  # guards 0/0 but still overflows for +1e4
        e = np.exp(np.where(_all(s, mask), s, -np.inf))
        t = e.sum(-1, keepdims=True)
        return e / np.where(t == 0, 1, t)
    r = ex.check_weights(guarded_no_max)
    assert r.status == "failed" and r.mistake is None
    assert "NaN" in r.message and "overflow" in r.message and "1e4" in r.message


def test_no_numpy_warnings_reach_the_notebook():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ex.check_weights(w_overflow).mistake == "overflow"


def test_learner_floating_point_errors_setting_does_not_hide_the_diagnosis():
    """A learner who set np.seterr(all='raise') still gets 'overflow', not a FloatingPointError."""
    with np.errstate(all="raise"):
        assert ex.check_weights(w_overflow).mistake == "overflow"


@pytest.mark.parametrize("ex_name", ["weights", "attention"])
def test_masked_rows_mix_allowed_and_blocked_keys(ex_name):
    """Polarity and 'mask ignored' are told apart only on rows with both kinds of key; the one
    deliberately fully masked row is the only exception."""
    fully = 0
    for case in EXERCISES[ex_name].cases():
        mask = case.args[-1]
        if mask is None:
            continue
        scores = case.args[0] if ex_name == "weights" else loop_scores(*case.args[:2])
        for row in np.broadcast_to(mask, scores.shape).reshape(-1, mask.shape[-1]):
            fully += not row.any()
            assert not row.all(), f"a row with every key allowed in {case.label}"
    assert fully == 1


# ----------------------------------------------------------------------------- shapes and types

def test_transposed_output_is_named():
    r = ex.check_scores(lambda Q, K: 2 * K @ swap(Q))
    assert r.status == "failed" and r.mistake is None
    assert "transposed" in r.message and "(L_k, L_q)" in r.message and "one row per query" in r.message


def test_lost_batch_axis_is_named():
    r = ex.check_scores(lambda Q, K: good_scores(Q, K).reshape(-1, K.shape[-2]))
    assert r.status == "failed"
    assert "(2, 3, 7) (3 axes" in r.message and "(6, 7) (2 axes)" in r.message


def test_wrong_axis_length_is_named_with_what_it_should_be():
    r = ex.check_attention(lambda Q, K, V, m: 2 * good_weights(good_scores(Q, K), m))
    assert r.mistake is None
    assert "axis -1 of your output has length 5 (= L_k) but should be d_v = 6" in r.message
    r = ex.check_scores(lambda Q, K: good_scores(Q, K)[..., :-1])
    assert "axis -1 of your output has length 4 (= d_k) but should be L_k = 5 (one column per key)" in r.message


def test_wrong_batch_axis_is_named():
    r = ex.check_scores(lambda Q, K: good_scores(Q, K)[..., :1, :, :] if Q.ndim > 2 else good_scores(Q, K))
    assert "batch axis 0 of your output has length 1 but should be 2" in r.message


@pytest.mark.parametrize("returned,word", [((1.0, 2.0), "tuple"), ([[0.5]], "list"), (3.0, "float"),
                                           (np.array(["a"]), "dtype")])
def test_not_an_array(returned, word):
    r = ex.check_weights(lambda s, m: returned)
    assert r.status == "failed" and "not an array" in r.message and word in r.message


def test_returning_output_and_weights_says_return_only_one():
    r = ex.check_attention(lambda Q, K, V, m: (attention_of(good_scores, good_weights)(Q, K, V, m), None))
    assert r.status == "failed" and "tuple of 2" in r.message and "(output, weights)" in r.message


# ----------------------------------------------------------------------------- exceptions and stubs

def test_stub_is_unsolved():
    def stub(Q, K):
        raise NotImplementedError
    r = ex.check_scores(stub)
    assert r.status == "unsolved" and r.message.startswith("⏳ Not solved yet:")
    assert r.hint and r.hint in r.message and "NotImplementedError" in r.message


@pytest.mark.parametrize("fn", [None, lambda s, m: None], ids=["no function", "returns None"])
def test_none_is_unsolved(fn):
    r = ex.check_weights(fn)
    assert r.status == "unsolved" and r.message.startswith("⏳ Not solved yet:") and "Hint: " in r.message


def test_none_on_some_cases_is_a_missing_return():
    r = ex.check_weights(lambda s, m: good_weights(s, m) if m is None else None)
    assert r.status == "failed" and "returned None" in r.message and "mask of shape (3, 5)" in r.message


def test_other_exception_is_named_with_shapes():
    def broken(Q, K):
        raise TypeError("unsupported operand")
    r = ex.check_scores(broken)
    assert r.status == "failed" and r.message.startswith("❌ ")
    assert "TypeError: unsupported operand" in r.message
    assert "Q of shape (3, 4), K of shape (5, 4)" in r.message and "fn(Q, K)" in r.message


def test_wrong_signature_is_a_typeerror_not_a_crash():
    r = ex.check_weights(lambda scores: scores)
    assert r.status == "failed" and "TypeError" in r.message and "fn(scores, mask)" in r.message


def test_dot_T_on_batched_input_gets_the_swapaxes_hint():
    r = ex.check_scores(lambda Q, K: Q @ K.T / np.sqrt(Q.shape[-1]))
    assert r.status == "failed" and "ValueError" in r.message and "(2, 3, 5)" in r.message
    assert "swapaxes" in r.hint


def test_boolean_indexing_with_a_broadcast_mask_is_explained():
    def indexing(s, mask):
        s = s.copy()
        if mask is not None:
            s[~mask] = -np.inf
        return stable(s)
    r = ex.check_weights(indexing)
    assert r.status == "failed" and "IndexError" in r.message and "broadcast" in r.message
    assert "mask of shape (2, 1, 6)" in r.message


def test_passing_a_value_instead_of_a_function():
    r = ex.check_scores(np.zeros((3, 5)))
    assert r.status == "failed" and "not a function" in r.message and "parentheses" in r.message


# ----------------------------------------------------------------------------- values

def test_other_wrong_values_get_the_largest_difference_and_the_case():
    r = ex.check_scores(lambda Q, K: good_scores(Q, K) + 0.01)
    assert r.status == "failed" and r.mistake is None
    assert "max |difference| = 0.01" in r.message and "Q of shape (3, 4)" in r.message


def test_nan_elsewhere_is_reported_as_nan():
    r = ex.check_weights(lambda s, m: np.where(_all(s, m), good_weights(s, m), np.nan))
    assert r.status == "failed" and r.mistake is None and "contains NaN" in r.message


def test_low_precision_output_is_pointed_out():
    r = ex.check_weights(lambda s, m: good_weights(s, m).astype(np.float16))
    assert r.status == "failed" and "float16" in r.message


def test_writing_into_the_input_fails_even_with_right_values():
    def in_place(s, mask):
        w = good_weights(s, mask)
        s -= s.max(-1, keepdims=True)
        return w
    r = ex.check_weights(in_place)
    assert r.status == "failed" and "in place" in r.message and "`scores`" in r.message


def test_checks_are_deterministic():
    fn = lambda Q, K, V, m: attention_of(good_scores, good_weights)(Q, K, V, m) * 1.1  # noqa: E731
    assert ex.check_attention(fn).message == ex.check_attention(fn).message


def test_checks_leave_the_global_random_state_alone():
    np.random.seed(5)
    expected = np.random.random()
    np.random.seed(5)
    ex.check_attention(loop_attention)
    assert np.random.random() == expected


# ----------------------------------------------------------------------------- report

def test_report_counts_what_passed(capsys):
    ex.report()
    assert capsys.readouterr().out == "Exercises solved in this chapter: 0 of 3\n"
    ex.check_scores(good_scores)
    ex.check_weights(good_weights)
    ex.check_attention(ATTENTION_MISTAKES["no_scaling"][0])
    capsys.readouterr()
    ex.report()
    assert capsys.readouterr().out == "Exercises solved in this chapter: 2 of 3 (scores, weights)\n"


def test_report_uses_the_latest_result(capsys):
    ex.check_scores(good_scores)
    ex.check_weights(good_weights)
    ex.check_scores(None)
    ex.report()
    assert capsys.readouterr().out == "Exercises solved in this chapter: 1 of 3 (weights)\n"


# ----------------------------------------------------------------------------- the generic machinery

def _tiny_exercise(reference=lambda x: 2 * x):
    """A made-up one-exercise chapter, as a later chapter module would declare it."""
    cases = lambda: [Case((np.arange(6.0).reshape(2, 3),), "a 2x3 input"),  # noqa: E731
                     Case((np.ones((2, 2, 3)),), "batched")]
    return Exercise(name="double", call="fn(x)", arg_names=("x",), out_axes=("rows", "cols"),
                    dims=lambda x: {"rows": x.shape[-2], "cols": x.shape[-1]}, reference=reference,
                    cases=cases, mistakes=(Mistake("tripled", "You tripled it.", lambda x: 3 * x),),
                    hint="Multiply by two.")


def test_core_serves_any_chapter(capsys):
    exercise = _tiny_exercise()
    chapter = Chapter("Tiny", [exercise])
    assert chapter.check(exercise, lambda x: x + x).status == "passed"
    r = chapter.check(exercise, lambda x: 3 * x)
    assert r.mistake == "tripled" and r.message == "❌ You tripled it.\nHint: Multiply by two."
    r = chapter.check(exercise, lambda x: 2 * swap(x))
    assert "transposed" in r.message and "(cols, rows)" in r.message
    chapter.report()
    assert capsys.readouterr().out == "Exercises solved in this chapter: 0 of 1\n"


def test_a_broken_checker_reports_instead_of_crashing():
    def reference(x):
        raise RuntimeError("bug in the checker")
    exercise = _tiny_exercise(reference)
    r = Chapter("Tiny", [exercise]).check(exercise, lambda x: 2 * x)
    assert r.status == "failed" and "checker itself failed" in r.message
