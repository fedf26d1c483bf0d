"""Checkers for the chapter "Alignment scores and softmax": additive scores, softmax Jacobian.

In a notebook::

    from attnlib.exercises import alignment_scores as ex
    ex.check_additive_scores(my_additive_scores)  # (q, k, W_q, W_k, v) -> (..., L_q, L_k)
    ex.check_softmax_jacobian(my_softmax_jacobian)  # (x) -> (..., n, n)
    ex.report()

Each check returns a :class:`~attnlib.exercises.core.CheckResult` whose text is the verdict.
"""
from __future__ import annotations

import numpy as np

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake
from attnlib.numpy import additive_scores, softmax, softmax_jacobian

__all__ = ["check_additive_scores", "check_softmax_jacobian", "report", "reset"]


# ----------------------------------------------------------------------------- cases

def _additive_cases():
    rng = np.random.default_rng(6006)
    n = rng.normal

    def case(qs, ks, d_q, d_k, h, label):
        return Case((n(size=qs + (d_q,)), n(size=ks + (d_k,)), n(size=(d_q, h)), n(size=(d_k, h)),
                     n(size=h)), label)
    return [case((3,), (5,), 4, 4, 6, "unbatched, 3 queries, 5 keys, d_q = d_k = 4, h = 6"),
            case((2,), (4,), 3, 5, 7, "unbatched, d_q = 3 and d_k = 5 differ"),
            case((4,), (4,), 4, 4, 3, "4 queries and 4 keys"),
            case((2, 3), (2, 6), 5, 2, 4, "batched (B=2)")]


LARGE = ("The scores there are about ±1e4: exp overflows to inf (or underflows to 0), giving "
         "inf/inf or 0/0 = NaN in p. Compute p with a max-subtracted softmax first.")


def _jacobian_cases():
    rng = np.random.default_rng(7007)
    large = rng.normal(size=5) + np.array([1e4, 0, 0, 0, 0])
    return [Case((rng.normal(size=4),), "one row of 4 scores"),
            Case((rng.normal(scale=2, size=(3, 5)),), "3 rows of 5 scores (batched)"),
            Case((rng.normal(size=(2, 2, 3)),), "two batch axes"),
            Case((large,), "scores of magnitude 1e4", nonfinite=LARGE)]


# ----------------------------------------------------------------------------- mistakes

def _hidden(q, k, W_q, W_k):
    return (q @ W_q)[..., :, None, :] + (k @ W_k)[..., None, :, :]


_ADDITIVE_MISTAKES = (
    Mistake("transposed", "Your scores are transposed: one row per key. Row i must hold query i's "
            "scores against every key, shape (..., L_q, L_k): put the query axis first, "
            "(q @ W_q)[..., :, None, :] + (k @ W_k)[..., None, :, :].",
            lambda q, k, W_q, W_k, v: np.swapaxes(additive_scores(q, k, W_q, W_k, v), -1, -2)),
    Mistake("missing_tanh", "Your scores are v . (q W_q + k W_k) without the tanh: the additive score "
            "is a small network, v . tanh(q W_q + k W_k). Without the nonlinearity it is just a "
            "query part plus a key part, and the query part cancels in the softmax.",
            lambda q, k, W_q, W_k, v: _hidden(q, k, W_q, W_k) @ v),
    Mistake("tanh_separately", "You applied tanh to q W_q and k W_k separately and added afterwards; "
            "add first, then tanh: v . tanh(q W_q + k W_k).",
            lambda q, k, W_q, W_k, v: (np.tanh(q @ W_q)[..., :, None, :]
                                       + np.tanh(k @ W_k)[..., None, :, :]) @ v),
    Mistake("v_inside_tanh", "You applied v inside the tanh, tanh((q W_q + k W_k) . v): the tanh acts on "
            "each of the h hidden units, and v then weights them: v . tanh(q W_q + k W_k), i.e. "
            "np.tanh(...) @ v.",
            lambda q, k, W_q, W_k, v: np.tanh(_hidden(q, k, W_q, W_k) @ v)),
    Mistake("scaled_by_sqrt_d_k", "Your scores are the additive scores divided by sqrt(d_k) (the keys' "
            "feature count): that scaling belongs to the scaled DOT product, whose variance grows "
            "with d_k. The additive score has no such factor: v . tanh(q W_q + k W_k).",
            lambda q, k, W_q, W_k, v: additive_scores(q, k, W_q, W_k, v) / np.sqrt(k.shape[-1])),
    Mistake("scaled_by_sqrt_d_q", "Your scores are the additive scores divided by sqrt(d_q) (the queries' "
            "feature count): that scaling belongs to the scaled DOT product. The additive score has "
            "no such factor: v . tanh(q W_q + k W_k).",
            lambda q, k, W_q, W_k, v: additive_scores(q, k, W_q, W_k, v) / np.sqrt(q.shape[-1])),
    Mistake("scaled_by_sqrt_h", "Your scores are the additive scores divided by sqrt(h), the number of "
            "hidden units. The additive score has no scaling: v . tanh(q W_q + k W_k).",
            lambda q, k, W_q, W_k, v: additive_scores(q, k, W_q, W_k, v) / np.sqrt(v.shape[-1])),
    Mistake("sum_not_v", "You summed the hidden units instead of weighting them with v: the score "
            "is v . tanh(...), i.e. tanh(...) @ v.",
            lambda q, k, W_q, W_k, v: np.tanh(_hidden(q, k, W_q, W_k)).sum(-1)),
    Mistake("softmaxed", "You returned attention weights (a softmax over the keys). This exercise "
            "asks for the scores themselves, before any softmax.",
            lambda q, k, W_q, W_k, v: softmax(additive_scores(q, k, W_q, W_k, v))),
)

_JACOBIAN_MISTAKES = (
    Mistake("diag_only", "You returned diag(p) only: the softmax couples its outputs, so subtract "
            "the outer product, J = diag(p) - p p^T.",
            lambda x: softmax(x)[..., :, None] * np.eye(x.shape[-1])),
    Mistake("outer_only", "You returned -p p^T (or p p^T) only; the diagonal needs diag(p) too: "
            "J = diag(p) - p p^T.", lambda x: -softmax(x)[..., :, None] * softmax(x)[..., None, :]),
    Mistake("outer_plus", "Your outer product has the wrong sign: J = diag(p) - p p^T, so each row "
            "sums to zero (adding the same number to all scores changes nothing).",
            lambda x: -softmax_jacobian(x)),
    Mistake("outer_positive", "You added p p^T; it is subtracted: J = diag(p) - p p^T.",
            lambda x: softmax(x)[..., :, None] * np.eye(x.shape[-1])
            + softmax(x)[..., :, None] * softmax(x)[..., None, :]),
    Mistake("used_scores", "You built the Jacobian from the scores x; it is made of the softmax "
            "OUTPUT p = softmax(x): J = diag(p) - p p^T.",
            lambda x: x[..., :, None] * np.eye(x.shape[-1]) - x[..., :, None] * x[..., None, :]),
    Mistake("wrong_axis", "Your p is a softmax over the wrong axis (the rows of a batch instead of "
            "the last axis): take softmax(x, axis=-1).",
            lambda x: (lambda p: p[..., :, None] * np.eye(x.shape[-1]) - p[..., :, None] * p[..., None, :])(
                softmax(x, axis=0))),
    Mistake("overflow", "Your Jacobian is NaN for scores of magnitude 1e4: exp overflows. Compute "
            "p with a max-subtracted softmax.",
            lambda x: (lambda e: (lambda p: p[..., :, None] * np.eye(x.shape[-1])
                                  - p[..., :, None] * p[..., None, :])(e / e.sum(-1, keepdims=True)))(
                np.exp(x))),
)

# ----------------------------------------------------------------------------- exercises

ADDITIVE = Exercise(
    name="additive scores", call="fn(q, k, W_q, W_k, v)", arg_names=("q", "k", "W_q", "W_k", "v"),
    out_axes=("L_q", "L_k"),
    dims=lambda q, k, W_q, W_k, v: {"L_q": q.shape[-2], "L_k": k.shape[-2], "h": v.shape[-1]},
    reference=additive_scores, cases=_additive_cases, mistakes=_ADDITIVE_MISTAKES,
    hint="Project first: a = q @ W_q of shape (..., L_q, h) and b = k @ W_k of shape (..., L_k, h). "
         "Then a[..., :, None, :] + b[..., None, :, :] has shape (..., L_q, L_k, h); apply np.tanh "
         "and contract the last axis with v: (...) @ v.",
    checked="batched and unbatched, d_q != d_k: shapes and values match",
    batched_hint="It ran on the unbatched cases, so look at the batched one: insert the new axes counted "
                 "from the end, (q @ W_q)[..., :, None, :] and (k @ W_k)[..., None, :, :] (not "
                 "[:, None, :], which puts the new axis after the batch axis of a 3-D array).")

JACOBIAN = Exercise(
    name="softmax Jacobian", call="fn(x)", arg_names=("x",), out_axes=("n", "n"),
    dims=lambda x: {"n": x.shape[-1]},
    reference=softmax_jacobian, cases=_jacobian_cases, mistakes=_JACOBIAN_MISTAKES,
    hint="p = softmax(x) over the last axis (max-subtracted); then "
         "p[..., :, None] * np.eye(n) - p[..., :, None] * p[..., None, :].",
    checked="batched and unbatched, and scores of 1e4: shapes and values match",
    batched_hint="It ran on one row of scores, so look at the batched cases: take the softmax over "
                 "axis=-1 with keepdims=True, build diag(p) as p[..., :, None] * np.eye(n) and p p^T as "
                 "p[..., :, None] * p[..., None, :] (np.outer and np.diag work on 1-D arrays only).")

_CHAPTER = Chapter("Alignment scores and softmax", [ADDITIVE, JACOBIAN])


def check_additive_scores(fn) -> CheckResult:
    """Check ``fn(q, k, W_q, W_k, v)`` -> ``v . tanh(q W_q + k W_k)`` of shape (..., L_q, L_k).

    q (..., L_q, d_q), k (..., L_k, d_k), W_q (d_q, h), W_k (d_k, h), v (h,).
    """
    return _CHAPTER.check(ADDITIVE, fn)


def check_softmax_jacobian(fn) -> CheckResult:
    """Check ``fn(x)`` -> the Jacobian ``diag(p) - p p^T`` of ``p = softmax(x)``, shape (..., n, n)."""
    return _CHAPTER.check(JACOBIAN, fn)


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
