"""The machinery behind every chapter's exercise checkers.

A chapter module describes each exercise as an :class:`Exercise` (a reference implementation,
a list of seeded :class:`Case` objects and a catalogue of :class:`Mistake` objects) and hands
it to a :class:`Chapter`, which runs the learner's function, diagnoses what is wrong and
records the outcome for :meth:`Chapter.report`.

The diagnosis, in order:

1. the function is missing, a stub (``NotImplementedError``) or returns ``None``: *unsolved*;
2. it raised another exception: name it and the shapes of the case that triggered it;
3. it returned something that is not an array (a tuple, a list, a float): say so;
4. its output matches a catalogued mistake on the cases it gets wrong: that mistake's message;
5. its output has the wrong number of axes, is transposed, or an axis has the wrong length;
6. on the first case it gets wrong: NaN or inf where the reference is finite, with the case's
   own explanation (a fully masked row, logits of 1e4), else the largest difference and where;
7. all right, but it wrote into its inputs: say so (the caller's array would change).

Everything is compared in float64 with ``rtol=1e-6, atol=1e-8``.

A :class:`Prediction` is the other kind of exercise: "predict, then run". The learner writes a
number (how many bytes the cache needs, which head wins), the checker compares it with the value
the chapter computes (``measure()``, with attnlib), within the prediction's relative tolerance,
and names the catalogued wrong predictions (a mistake's ``fn()`` returns the wrong value).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from attnlib.exercises.progress import FAILED, PASSED, UNSOLVED, SessionResults, caller_module_key

RTOL, ATOL = 1e-6, 1e-8


# What each named output axis means, for shape messages ("... should be L_k = 7 (one column per key)").
AXIS_MEANING = {
    "L_q": "one row per query",
    "L_k": "one column per key",
    "d_v": "one column per value feature",
    "d_k": "one column per key feature",
    "d_model": "one column per model feature",
}

# Said when a function runs on unbatched inputs but raises on batched ones. The generic hint is
# about axes counted from the end; the transpose hint is for exercises that transpose keys
# (Q K^T), where `K.T` is the classic cause. An exercise may give its own (``batched_hint``).
BATCHED_HINT = ("It ran on the unbatched cases, so look at how it handles extra leading (batch) axes: "
                "count axes from the end (-1, -2), insert new axes from the end (`x[..., :, None]`), "
                "and keep the batch axes in any reshape (`x.reshape(*x.shape[:-1], ...)`).")
TRANSPOSE_BATCHED_HINT = ("It ran on the unbatched cases, so look at how it handles extra leading (batch) "
                          "axes: `K.T` reverses *all* axes of a batched array; swap only the last two "
                          "with `np.swapaxes(K, -1, -2)` (or `K.swapaxes(-1, -2)`), and index axes from "
                          "the end (-1, -2).")
# Arguments whose name says they are keys that get transposed (Q K^T): the transpose hint applies.
_TRANSPOSED_KEYS = ("K", "K_past")


def batched_hint(ex: "Exercise") -> str:
    """The hint for a function that ran unbatched but raised on a batched case.

    The exercise's own ``batched_hint`` if it has one; else the transpose hint when one of its
    arguments is a key matrix ``K`` (scores ``Q K^T``), else the generic one about axes.
    """
    if ex.batched_hint:
        return ex.batched_hint
    return TRANSPOSE_BATCHED_HINT if any(n in _TRANSPOSED_KEYS for n in ex.arg_names) else BATCHED_HINT


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: ``fn`` reproduces it with the exercise's call signature.

    ``message`` says in a learner's words what is wrong; ``hint`` (optional, else the exercise's
    hint) says how to fix it. If ``fn`` raises on a case, the mistake simply does not match there.
    """
    name: str
    message: str
    fn: Callable[..., Any]
    hint: str | None = None


@dataclass(frozen=True)
class Case:
    """One set of arguments for the learner's function.

    ``args`` are passed positionally (fresh copies each call). ``label`` describes the case in a
    few words ("batched, with a fully masked query row"). ``note`` is added when the function raises
    on this case, ``nonfinite`` when it returns NaN/inf here (e.g. why logits of 1e4 overflow).
    """
    args: tuple
    label: str
    note: str = ""
    nonfinite: str = ""


@dataclass(frozen=True)
class Exercise:
    """One exercise: what the learner writes, how it is called, and how it is checked.

    Attributes
    ----------
    name : str
        Short name used in messages and in the report ("scores").
    call : str
        How the learner's function is called, e.g. ``"fn(Q, K)"``.
    arg_names : tuple of str
        Names of the positional arguments, for describing shapes ("Q of shape (3, 4)").
    out_axes : tuple of str
        Names of the output's trailing axes, e.g. ``("L_q", "L_k")``; leading axes are batch axes.
    dims : callable
        ``dims(*args) -> {name: length}`` for the case, e.g. ``{"L_q": 3, "L_k": 5, "d_k": 4}``.
    reference : callable
        The correct implementation, same signature as the learner's function.
    cases : callable
        ``cases() -> list[Case]``; seeded, so every call builds the same cases.
    mistakes : tuple of Mistake
        The catalogue, most specific first (ties go to the earlier one).
    hint : str
        General hint, shown when unsolved or when no mistake-specific hint applies.
    checked : str
        What passing proves, e.g. "shapes and values match, batched and unbatched".
    batched_hint : str
        Said when the function runs on the unbatched cases but raises on a batched one; empty:
        :func:`batched_hint` picks the generic or the transpose hint.
    """
    name: str
    call: str
    arg_names: tuple
    out_axes: tuple
    dims: Callable[..., dict]
    reference: Callable[..., Any]
    cases: Callable[[], list]
    mistakes: tuple = ()
    hint: str = ""
    checked: str = "shapes and values match"
    batched_hint: str = ""


@dataclass(frozen=True)
class Prediction:
    """A measurement to predict: the learner gives a number, the chapter's code measures it.

    Attributes
    ----------
    name : str
        Short name used in messages and in the report ("cache memory").
    question : str
        The question in a sentence, repeated when the prediction is unsolved.
    measure : callable
        ``measure() -> float``: the value, computed with attnlib the way the chapter computes it.
        It should be cheap (well under a second): it runs on every check.
    mistakes : tuple of Mistake
        Catalogued wrong predictions; each ``fn()`` returns the value that mistake leads to.
    unit : str
        Printed after numbers ("bytes", "" for a count or an index).
    rtol : float
        A prediction within ``rtol`` of the measured value (relative) passes; the same tolerance
        decides whether it matches a mistake.
    hint : str
        How to work the number out.
    explanation : str
        Said with a pass: why the value is what it is.
    categorical : bool
        The number names a choice (a head's index, a position), so a miss is not "too high by a
        factor"; it is just not the one.
    """
    name: str
    question: str
    measure: Callable[[], float]
    mistakes: tuple = ()
    unit: str = ""
    rtol: float = 0.02
    hint: str = ""
    explanation: str = ""
    categorical: bool = False


class CheckResult:
    """The outcome of one check. Its ``repr`` is the message, so a notebook cell displays it as text.

    Attributes
    ----------
    exercise : str
        The exercise's name.
    status : str
        ``"passed"``, ``"failed"`` or ``"unsolved"``.
    message : str
        The full message shown to the learner (includes the hint when there is one).
    hint : str
        The hint alone ("" when passed).
    mistake : str or None
        Name of the catalogued mistake that was recognised, if any.
    """

    def __init__(self, exercise: str, status: str, message: str, hint: str = "",
                 mistake: str | None = None):
        self.exercise, self.status, self.message = exercise, status, message
        self.hint, self.mistake = hint, mistake

    @property
    def passed(self) -> bool:
        """True when the learner's function passed every case."""
        return self.status == PASSED

    def __repr__(self) -> str:
        return self.message

    __str__ = __repr__


# ----------------------------------------------------------------------------- results

def passed(ex: Exercise, n_cases: int) -> CheckResult:
    """A passing result naming the exercise and what was checked."""
    return CheckResult(ex.name, PASSED, f"✅ Passed: {ex.name} — {n_cases} cases, {ex.checked}.")


def unsolved(ex: Exercise, why: str = "") -> CheckResult:
    """An 'unsolved' result: a stub, a function returning None, or no function at all."""
    hint = ex.hint
    why = f" {why}" if why else ""
    return CheckResult(ex.name, UNSOLVED,
                       f"⏳ Not solved yet: {ex.name}.{why}\nHint: {hint}", hint)


def failed(ex: Exercise, what: str, hint: str | None = None, mistake: str | None = None) -> CheckResult:
    """A failing result: ``what`` says what is wrong, then the hint."""
    hint = hint or ex.hint
    return CheckResult(ex.name, FAILED, f"❌ {what}\nHint: {hint}", hint, mistake)


# ----------------------------------------------------------------------------- helpers

def fresh(args: tuple) -> tuple:
    """Copies of the arrays in ``args``, so a function that writes into its inputs harms nothing."""
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def quietly(fn: Callable, args: tuple):
    """Call ``fn(*args)`` with NumPy's overflow/invalid warnings silenced.

    The checker reports overflow and NaN itself, in words; the raw RuntimeWarnings would only
    clutter the learner's notebook. Pass fresh copies (:func:`fresh`) as ``args``.
    """
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return fn(*args)


def describe(ex: Exercise, case: Case) -> str:
    """``"Q of shape (2, 3, 4), K of shape (2, 5, 4), mask None"`` for a case."""
    parts = []
    for name, a in zip(ex.arg_names, case.args):
        parts.append(f"{name} of shape {a.shape}" if isinstance(a, np.ndarray) else f"{name} {a!r}")
    return ", ".join(parts)


def is_batched(case: Case) -> bool:
    """True when some array argument has more than two axes."""
    return any(isinstance(a, np.ndarray) and a.ndim > 2 for a in case.args)


def as_output_array(out) -> tuple[np.ndarray | None, str]:
    """Turn the learner's return value into a float64 array, or explain why it is not one.

    Returns ``(array, "")`` or ``(None, problem)``.
    """
    if isinstance(out, tuple):
        return None, (f"it returned a tuple of {len(out)} items instead of one array "
                      "(if you return several things, e.g. (output, weights), return only the one asked for)")
    if isinstance(out, list):
        return None, "it returned a Python list instead of a NumPy array (wrap it in np.array(...))"
    if not (isinstance(out, np.ndarray) or hasattr(out, "__array__")):
        return None, f"it returned a {type(out).__name__} instead of a NumPy array"
    try:
        arr = np.asarray(out)
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
                or arr.dtype == bool):
            return None, f"it returned an array of dtype {arr.dtype} instead of real numbers"
        return arr, ""
    except Exception as err:  # e.g. a torch tensor that requires grad
        return None, f"its return value ({type(out).__name__}) could not be turned into a NumPy array: {err}"


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Same shape and equal within rtol=1e-6, atol=1e-8 in float64; NaN equals NaN, inf equals inf."""
    if a is None or b is None or a.shape != b.shape:
        return False
    return bool(np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=RTOL, atol=ATOL,
                            equal_nan=True))


def mistake_output(m: Mistake, case: Case):
    """The mistake's output on a case, or None where the mistake cannot even run there."""
    try:
        out = quietly(m.fn, fresh(case.args))
    except Exception:
        return None
    return np.asarray(out)


def best_mistake(ex: Exercise, cases: list, outs: list, bad: list) -> Mistake | None:
    """The catalogued mistake that reproduces the learner's output on the most failing cases.

    A mistake counts on a case only if it reproduces the learner's whole output there, so two
    mistakes together (say, no scaling and no max-subtraction) still get the first one named:
    after fixing it the learner sees the next. Ties go to the earlier entry of the catalogue.
    """
    best, best_hits = None, 0
    for m in ex.mistakes:
        hits = sum(close(outs[i], mistake_output(m, cases[i])) for i in bad)
        if hits > best_hits:
            best, best_hits = m, hits
    return best


def shape_problem(ex: Exercise, case: Case, got: tuple, want: tuple) -> str:
    """Explain in words how ``got`` differs from ``want`` for this case ("" when they agree)."""
    if got == want:
        return ""
    where = f"On the case {case.label} ({describe(ex, case)})"
    names = ("batch…",) * (len(want) - len(ex.out_axes)) + tuple(ex.out_axes)
    if len(got) != len(want):
        return (f"{where} your output has shape {got} ({len(got)} axes) but should have shape {want} "
                f"({len(want)} axes: {', '.join(dict.fromkeys(names))}).")
    n = len(ex.out_axes)
    if n >= 2 and got[:-2] == want[:-2] and got[-2:] == want[-2:][::-1] and want[-1] != want[-2]:
        a, b = ex.out_axes[-2], ex.out_axes[-1]
        return (f"{where} your output is transposed: its last two axes are ({b}, {a}) = {got[-2:]} "
                f"but should be ({a}, {b}) = {want[-2:]}: {AXIS_MEANING.get(a, a)}, "
                f"{AXIS_MEANING.get(b, b)}.")
    dims = ex.dims(*case.args)
    for axis in range(-1, -len(want) - 1, -1):
        if got[axis] == want[axis]:
            continue
        if -axis <= n:
            name = ex.out_axes[axis]
            # Name the size it *does* have when that is unambiguous (e.g. "= L_k": weights, not output).
            alias = [k for k, v in dims.items() if v == got[axis] and k != name]
            alias = f" (= {alias[0]})" if len(alias) == 1 else ""
            return (f"{where} axis {axis} of your output has length {got[axis]}{alias} but should be "
                    f"{name} = {want[axis]} ({AXIS_MEANING.get(name, name)}); "
                    f"your output has shape {got}, expected {want}.")
        return (f"{where} batch axis {axis % len(want)} of your output has length {got[axis]} but "
                f"should be {want[axis]} (keep the inputs' batch axes); "
                f"your output has shape {got}, expected {want}.")
    return ""


def values_problem(ex: Exercise, case: Case, out: np.ndarray, ref: np.ndarray) -> str:
    """Explain a difference in values on one case: NaN/inf first, else the largest difference."""
    where = f"on the case {case.label} ({describe(ex, case)})"
    out64 = out.astype(np.float64)
    bad = ~np.isfinite(out64) & np.isfinite(ref)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(out64[idx]) else "inf"
        extra = f" {case.nonfinite}" if case.nonfinite else ""
        return f"Your output contains {kind} (first at index {idx}) {where}.{extra}"
    diff = np.abs(out64 - ref)
    idx = tuple(int(i) for i in np.unravel_index(np.argmax(diff), diff.shape))
    msg = (f"Values differ from the reference (max |difference| = {diff[idx]:.3g}) {where}: "
           f"at index {idx} yours is {out64[idx]:.6g}, expected {ref[idx]:.6g}.")
    if out.dtype in (np.float16, np.float32):
        msg += (f" Your output is {out.dtype}, which keeps only ~{np.finfo(out.dtype).precision} "
                "digits: compute in float64, the inputs' dtype.")
    return msg


def changed_inputs(ex: Exercise, fn: Callable, case: Case) -> str:
    """Name an argument the function modified in place ("" if none)."""
    args = fresh(case.args)
    try:
        quietly(fn, args)
    except Exception:  # it ran before; if it is not repeatable, there is nothing more to say here
        return ""
    for name, before, after in zip(ex.arg_names, case.args, args):
        if isinstance(before, np.ndarray) and not (before.shape == after.shape and
                                                   np.array_equal(before, after, equal_nan=True)):
            return name
    return ""


# ----------------------------------------------------------------------------- the check

def run_check(ex: Exercise | Prediction, fn) -> CheckResult:
    """Run ``fn`` on every case of ``ex`` and diagnose the outcome (see the module docstring).

    For a :class:`Prediction`, ``fn`` is the learner's number: see :func:`check_prediction`.
    """
    if isinstance(ex, Prediction):
        return check_prediction(ex, fn)
    if fn is None:
        return unsolved(ex, f"Pass your function itself; it will be called as {ex.call}.")
    if not callable(fn):
        return failed(ex, f"You passed a value of type {type(fn).__name__}, not a function. Pass the function itself, "
                          f"without calling it (no parentheses): it will be called as {ex.call}.")
    cases = ex.cases()
    outs = []
    for case in cases:
        try:
            outs.append(quietly(fn, fresh(case.args)))
        except NotImplementedError:
            return unsolved(ex, "Your function still raises NotImplementedError.")
        except Exception as err:
            return raised(ex, cases, outs, case, err)
    if all(o is None for o in outs):
        return unsolved(ex, "Your function returns None (is the `return` statement missing?).")
    for case, out in zip(cases, outs):
        if out is None:
            return failed(ex, f"Your function returned None on the case {case.label} ({describe(ex, case)}): "
                              "is a `return` missing on some path (one branch of an if/else)?")
    arrays = []
    for case, out in zip(cases, outs):
        arr, problem = as_output_array(out)
        if problem:
            return failed(ex, f"Your function's output is not an array: {problem}. "
                              f"On the case {case.label} ({describe(ex, case)}).")
        arrays.append(arr)
    return diagnose(ex, fn, cases, arrays)


# ----------------------------------------------------------------------------- predictions

def _number(value) -> tuple[float | None, str]:
    """The learner's prediction as a float, or ``(None, why it is not a number)``."""
    if isinstance(value, (bool, np.bool_)):
        return None, f"you gave {value!r}, a truth value; give a number"
    if isinstance(value, str):
        return None, f"you gave the text {value!r}; give a number, without quotes"
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None, f"you gave a {type(value).__name__}; give a single number"
    if arr.size != 1:
        return None, f"you gave {arr.size} numbers (shape {arr.shape}); give a single number"
    number = float(arr.reshape(()))
    if not np.isfinite(number):
        return None, f"you gave {number}; give a finite number"
    return number, ""


def near(a: float, b: float, rtol: float) -> bool:
    """``a`` within ``rtol`` of ``b``, relative to ``b`` (exact when ``b`` is 0)."""
    return abs(a - b) <= rtol * abs(b) + 1e-12


def _fmt(x: float, unit: str = "") -> str:
    """A number as a learner writes it: ``4,096 bytes``, ``0.125``."""
    text = f"{int(round(x)):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:.4g}"
    return f"{text} {unit}".strip()


def check_prediction(ex: Prediction, value) -> CheckResult:
    """Compare the learner's predicted number with ``ex.measure()`` and explain a miss.

    ``value`` is the number, or a function of no arguments returning it (the notebook's stub, which
    raises NotImplementedError until the learner writes it). Order: no prediction yet (None,
    ``...``, a stub) is *unsolved*; not a number says so; within
    ``ex.rtol`` passes; a catalogued mistake's value is named; otherwise the miss is told as
    too high or too low and by what factor, without giving the number away.
    """
    if callable(value):  # the notebook's stub is a function of no arguments that returns the number
        try:
            value = value()
        except NotImplementedError:
            return unsolved(ex, f"Your function still raises NotImplementedError: make it return your number. "
                                f"{ex.question}")
        except Exception as err:  # noqa: BLE001 - say what went wrong, never crash the notebook
            return failed(ex, f"Calling your function raised {type(err).__name__}: {err}. It should just "
                              "return your predicted number.")
    if value is None or value is Ellipsis:
        return unsolved(ex, f"Write your prediction as a number: {ex.question}")
    number, problem = _number(value)
    if problem:
        return failed(ex, f"Your prediction is not a number: {problem}.")
    truth = float(ex.measure())
    if near(number, truth, ex.rtol):
        said = f" {ex.explanation}" if ex.explanation else ""
        return CheckResult(ex.name, PASSED,
                           f"✅ Passed: {ex.name} — you predicted {_fmt(number, ex.unit)}; the chapter's code "
                           f"measures {_fmt(truth, ex.unit)}.{said}")
    for m in ex.mistakes:
        try:
            wrong = float(m.fn())
        except Exception:  # noqa: BLE001 - a mistake that cannot be computed matches nothing
            continue
        if near(number, wrong, ex.rtol):
            return failed(ex, m.message, m.hint, m.name)
    if ex.categorical:
        miss = f"Not {_fmt(number, ex.unit)}: that is not the one the chapter's code measures."
    elif truth == 0 or number == 0 or np.sign(number) != np.sign(truth):
        miss = f"Your prediction {_fmt(number, ex.unit)} is not right: the measured value is {'higher' if truth > number else 'lower'}."
    else:
        ratio = number / truth
        way = "too high" if ratio > 1 else "too low"
        factor = ratio if ratio > 1 else 1 / ratio
        miss = (f"Your prediction {_fmt(number, ex.unit)} is close, but {way}: off by about "
                f"{100 * (factor - 1):.2g}%." if factor < 1.1 else
                f"Your prediction {_fmt(number, ex.unit)} is {way}, by a factor of about {factor:.2g}.")
    return failed(ex, miss)


def prediction_catalogue_problem(ex: Prediction, mistake: Mistake) -> str:
    """Why the catalogued ``mistake`` of a prediction can never get its own diagnosis ("" when it can)."""
    try:
        wrong = float(mistake.fn())
    except Exception as err:  # noqa: BLE001
        return f"mistake {mistake.name!r} cannot be computed ({type(err).__name__}: {err})"
    result = check_prediction(ex, wrong)
    if result.mistake != mistake.name:
        return (f"mistake {mistake.name!r} (value {wrong:.6g}) is diagnosed as "
                f"{result.mistake or result.status!r}: {result.message.splitlines()[0]}")
    return ""


def raised(ex: Exercise, cases: list, outs: list, case: Case, err: Exception) -> CheckResult:
    """A failure naming the exception, the call and the shapes of the case that triggered it."""
    what = (f"Calling {ex.call} raised {type(err).__name__}: {err}\n"
            f"   on the case {case.label} ({describe(ex, case)}).")
    if case.note:
        what += f" {case.note}"
    # The case's own note (e.g. "the mask broadcasts") is the better lead when there is one.
    ran_unbatched = any(not is_batched(c) for c in cases[:len(outs)])
    hint = batched_hint(ex) if is_batched(case) and ran_unbatched and not case.note else None
    return failed(ex, what, hint)


def diagnose(ex: Exercise, fn, cases: list, arrays: list) -> CheckResult:
    """Compare the learner's outputs with the reference and explain the first thing wrong."""
    refs = [np.asarray(ex.reference(*fresh(c.args)), dtype=np.float64) for c in cases]
    bad = [i for i, (a, r) in enumerate(zip(arrays, refs)) if not close(a, r)]
    if not bad:
        name = next((n for n in (changed_inputs(ex, fn, c) for c in cases) if n), "")
        if name:
            return failed(ex, f"Your values are right, but your function changed its input `{name}` "
                              "in place, so the caller's array is modified.",
                          f"Work on a new array: `x = np.where(...)` or `x = x - m` instead of "
                          f"`x[...] = ...` or `x -= m` on `{name}`.")
        return passed(ex, len(cases))
    m = best_mistake(ex, cases, arrays, bad)
    if m is not None:
        return failed(ex, m.message, m.hint, m.name)
    for i in bad:
        problem = shape_problem(ex, cases[i], arrays[i].shape, refs[i].shape)
        if problem:
            return failed(ex, problem)
    i = bad[0]
    return failed(ex, values_problem(ex, cases[i], arrays[i], refs[i]))


def catalogue_problem(ex: Exercise | Prediction, mistake: Mistake) -> str:
    """Why the catalogued ``mistake`` of ``ex`` can never get its own diagnosis ("" when it can).

    A mistake is compared only on the cases where its ``fn`` runs. So its ``fn`` must run on at
    least one case without raising: one that raises on every case is never compared, and a
    learner who makes that mistake sees only the crash. And a learner's function that gives the
    mistake's output wherever ``fn`` runs (and the right answer where it raises) must be named
    as this mistake, not as an earlier entry of the catalogue, a shape or a difference in values:
    the cases have to tell the mistakes apart.
    """
    if isinstance(ex, Prediction):
        return prediction_catalogue_problem(ex, mistake)
    cases = ex.cases()
    crashes = []
    for case in cases:
        try:
            quietly(mistake.fn, fresh(case.args))
        except Exception as err:  # noqa: BLE001 - any exception means it cannot be compared here
            crashes.append(f"{type(err).__name__}: {err}")
    if len(crashes) == len(cases):
        return (f"mistake {mistake.name!r} raises on every case ({crashes[0]}), so it is never compared "
                "and can never be diagnosed: make its fn reproduce the learner's wrong output")

    def where_it_runs(*args):
        try:
            return mistake.fn(*args)
        except Exception:  # noqa: BLE001
            return ex.reference(*args)

    result = run_check(ex, where_it_runs)
    if result.mistake != mistake.name:
        return (f"mistake {mistake.name!r}, wherever its fn runs, is diagnosed as "
                f"{result.mistake or result.status!r}: {result.message.splitlines()[0]}")
    return ""


# ----------------------------------------------------------------------------- a chapter

@dataclass
class Chapter:
    """The exercises of one chapter and the results recorded in this Python session.

    Every check is also recorded in the learner's progress file (:mod:`attnlib.exercises.progress`),
    under ``key``: by default the name of the module that made the chapter (``"positional_encoding"``
    for ``attnlib/exercises/positional_encoding.py``), which stays the same when a title changes.
    """
    title: str
    exercises: list
    results: dict = field(default_factory=dict)
    key: str = ""

    def __post_init__(self) -> None:
        self.key = self.key or caller_module_key()
        # Setting results[name] directly (a module's extra check after a pass) amends the file's record.
        self.results = SessionResults(self, self.results)

    def check(self, ex: Exercise | Prediction, fn) -> CheckResult:
        """Check ``fn`` (a number for a :class:`Prediction`) against ``ex``, record the status (the latest check counts) and return it.

        Whatever the kind of exercise, the result is also recorded in the progress file (solved once passed).
        """
        try:
            result = run_check(ex, fn)
        except Exception as err:  # a checker must never crash a learner's notebook
            result = failed(ex, f"The checker itself failed ({type(err).__name__}: {err}). "
                                "Your function may be fine; please report this.")
        self.results.checked(ex.name, result.status)  # this session's status, and the progress file
        return result

    def report(self) -> None:
        """Print how many exercises of this chapter have passed, and which."""
        names = [e.name for e in self.exercises if self.results.get(e.name) == PASSED]
        which = f" ({', '.join(names)})" if names else ""
        print(f"Exercises solved in this chapter: {len(names)} of {len(self.exercises)}{which}")

    def reset(self) -> None:
        """Forget this session's results (e.g. between tests); the progress file keeps its record
        (``attnlib.exercises.reset_progress(key)`` clears that)."""
        self.results.clear()
