"""Checkers for the chapter "Alignment scores and softmax": additive scores, softmax Jacobian, and a
prediction of how large unscaled dot-product scores are.

In a notebook::

    from attnlib.exercises import alignment_scores as ex
    ex.check_additive_scores(my_additive_scores)  # (q, k, W_q, W_k, v) -> (..., L_q, L_k)
    ex.check_softmax_jacobian(my_softmax_jacobian)  # (x) -> (..., n, n)
    ex.check_score_std(my_score_std)                # a number, or a function returning it
    ex.report()

Each check returns a :class:`~attnlib.exercises.core.CheckResult` whose text is the verdict.

The third is a :class:`~attnlib.exercises.core.Prediction` ("predict, then run"): the standard
deviation of the unscaled score q . k for q, k with independent standard-normal entries at
d_k = 256. ``measure()`` computes it as the chapter does, with ``dot_product_variance`` on 20,000
seeded pairs (sampling error about 0.5 %, so a prediction within 5 % passes). The catalogue: the
variance d_k given for the standard deviation, no growth with d_k (1, the scaled score's), the
variances of q_i and k_i added (sqrt(2 d_k)), the standard deviation of the MEAN of the products
(1/sqrt(d_k)), and the mean of the scores (0).
"""
from __future__ import annotations

import numpy as np

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake, Prediction
from attnlib.numpy import additive_scores, dot_product_variance, softmax, softmax_jacobian

__all__ = ["check_additive_scores", "check_softmax_jacobian", "check_score_std", "report", "reset"]


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


# ----------------------------------------------------------------------------- a prediction

STD_D_K, STD_SAMPLES, STD_SEED = 256, 20_000, 256  # the question's d_k; the pairs and seed measured


def _measure_score_std() -> float:
    """Standard deviation of q . k over STD_SAMPLES seeded pairs at d_k = STD_D_K (about 0.15 s).

    The chapter's measurement, ``dot_product_variance``, on its own generator, so that the learner's
    random state is left alone and every check measures the same value.
    """
    var_dot, _ = dot_product_variance([STD_D_K], n_samples=STD_SAMPLES, rng=np.random.default_rng(STD_SEED))
    return float(np.sqrt(var_dot[0]))


SCORE_STD = Prediction(
    name="score std",
    question=(f"what is the standard deviation of the unscaled score q . k when q and k have "
              f"d_k = {STD_D_K} independent entries of mean 0 and variance 1?"),
    measure=_measure_score_std, rtol=0.05,
    hint="Each product q_i k_i has mean 0 and variance E[q_i^2] E[k_i^2] = 1; the d_k products are "
         "uncorrelated, so their variances add up. The standard deviation is the square root of the "
         "variance.",
    explanation=(f"Var(q . k) = d_k = {STD_D_K}, so its standard deviation is sqrt({STD_D_K}) = "
                 f"{STD_D_K ** 0.5:g}: a typical unscaled score is {STD_D_K ** 0.5:g}, and dividing by "
                 "sqrt(d_k) brings it back to 1."),
    mistakes=(
        Mistake("variance", f"That is the variance, Var(q . k) = d_k = {STD_D_K}. The question asks for "
                "the standard deviation, its square root.", lambda: float(STD_D_K)),
        Mistake("no_growth", "That is the standard deviation of the SCALED score q . k / sqrt(d_k). The "
                "unscaled score is a sum of d_k terms, and it grows with d_k: that growth is why the "
                "Transformer scales.", lambda: 1.0),
        Mistake("variances_added", "You added the variances of q_i and k_i, Var(q_i k_i) = 1 + 1 = 2. "
                "Variances add for a SUM of independent variables; for a product of independent "
                "zero-mean variables they multiply: Var(q_i k_i) = 1 x 1 = 1.",
                lambda: float(np.sqrt(2 * STD_D_K))),
        Mistake("mean_of_products", "That is the standard deviation of the MEAN of the d_k products, "
                "which shrinks like 1/sqrt(d_k). The dot product is their SUM: its variance is d_k "
                "times theirs, not 1/d_k.", lambda: float(1 / np.sqrt(STD_D_K))),
        Mistake("mean", "That is the mean of q . k (0: positive and negative products cancel on "
                "average). The standard deviation measures how far a typical score is from 0.",
                lambda: 0.0),
    ))

_CHAPTER = Chapter("Alignment scores and softmax", [ADDITIVE, JACOBIAN, SCORE_STD])


def check_additive_scores(fn) -> CheckResult:
    """Check ``fn(q, k, W_q, W_k, v)`` -> ``v . tanh(q W_q + k W_k)`` of shape (..., L_q, L_k).

    q (..., L_q, d_q), k (..., L_k, d_k), W_q (d_q, h), W_k (d_k, h), v (h,).
    """
    return _CHAPTER.check(ADDITIVE, fn)


def check_softmax_jacobian(fn) -> CheckResult:
    """Check ``fn(x)`` -> the Jacobian ``diag(p) - p p^T`` of ``p = softmax(x)``, shape (..., n, n)."""
    return _CHAPTER.check(JACOBIAN, fn)


def check_score_std(prediction) -> CheckResult:
    """Check a predicted standard deviation of the unscaled score q . k at d_k = 256.

    ``prediction`` is the number, or a function of no arguments that returns it (the notebook's
    stub is such a function: a learner copy's checkers are handed stubs that raise
    NotImplementedError). It passes within 5 % of what :func:`_measure_score_std` measures.
    """
    return _CHAPTER.check(SCORE_STD, prediction)


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
