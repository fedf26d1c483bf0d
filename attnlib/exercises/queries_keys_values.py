"""Checkers for the chapter "Queries, keys and values": Gaussian-kernel weights, Nadaraya–Watson,
and the leave-one-out predictions that the bandwidth is learned from.

In a notebook::

    from attnlib.exercises import queries_keys_values as ex
    ex.check_kernel_weights(my_kernel_weights)  # (x_query, x_key, h) -> (..., L_q, L_k)
    ex.check_nadaraya_watson(my_nadaraya_watson)  # (x_query, x_key, y_key, h) -> (..., L_q)
    ex.check_leave_one_out(my_leave_one_out)    # (x, y, h) -> (..., n)
    ex.report()

Each check returns a :class:`~attnlib.exercises.core.CheckResult` whose text is the verdict. The
leave-one-out catalogue: each point allowed to see itself, its own weight zeroed after the softmax
without renormalising, the weights normalised over the queries, h^2 without the factor 2, and
NaN for a tiny bandwidth (no max-subtraction).
"""
from __future__ import annotations

import numpy as np

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake
from attnlib.numpy import gaussian_kernel_weights, nadaraya_watson, softmax

__all__ = ["check_kernel_weights", "check_nadaraya_watson", "check_leave_one_out", "report", "reset"]


# ----------------------------------------------------------------------------- references

def _weights(xq, xk, h):
    return gaussian_kernel_weights(xq, xk, h)


def _predict(xq, xk, yk, h):
    return nadaraya_watson(xq, xk, yk, h)[0]


def _others(n):
    """The leave-one-out mask (n, n): True = may attend, every point but itself."""
    return ~np.eye(n, dtype=bool)


def _leave_one_out(x, y, h):
    """x, y (..., n), h > 0 -> (..., n): each point predicted from all the others."""
    return nadaraya_watson(x, x, y, h, mask=_others(x.shape[-1]))[0]


# ----------------------------------------------------------------------------- cases

TINY_H = ("The bandwidth there is tiny (h = 0.01) and the points are far apart: every "
          "exp(-(x_q - x_k)^2 / (2h^2)) underflows to 0, and 0/0 is NaN. Subtract each row's max "
          "score before exp (a softmax does): the nearest key then gets weight 1.")


def _sorted(rng, *shape, low=0.0, high=5.0):
    return np.sort(rng.uniform(low, high, size=shape), axis=-1)


def _weights_cases():
    rng = np.random.default_rng(4004)
    return [Case((_sorted(rng, 4), _sorted(rng, 6), 0.7), "unbatched, 4 queries and 6 keys, h = 0.7"),
            Case((_sorted(rng, 5), _sorted(rng, 5), 1.5), "5 queries and 5 keys, h = 1.5"),
            Case((_sorted(rng, 2, 3), _sorted(rng, 2, 7), 0.4), "batched (B=2), h = 0.4"),
            Case((np.array([0.0, 2.5]), np.array([0.3, 1.0, 4.0]), 0.01), "a tiny bandwidth, h = 0.01",
                 nonfinite=TINY_H)]


def _predict_cases():
    rng = np.random.default_rng(5005)
    return [Case((_sorted(rng, 4), _sorted(rng, 6), rng.normal(size=6), 0.7),
                 "unbatched, 4 queries and 6 keys, h = 0.7"),
            Case((_sorted(rng, 5), _sorted(rng, 5), rng.normal(size=5), 1.5),
                 "5 queries and 5 keys, h = 1.5"),
            Case((_sorted(rng, 2, 3), _sorted(rng, 2, 7), rng.normal(size=(2, 7)), 0.4),
                 "batched (B=2), h = 0.4"),
            Case((np.array([0.0, 2.5]), np.array([0.3, 1.0, 4.0]), np.array([1.0, -2.0, 3.0]), 0.01),
                 "a tiny bandwidth, h = 0.01", nonfinite=TINY_H)]


TINY_H_LOO = ("The bandwidth there is tiny (h = 0.01) and the points are far apart: with its own key "
              "blocked, every other exp(-(x_i - x_j)^2 / (2h^2)) of a row underflows to 0, and 0/0 is "
              "NaN. Subtract each row's max over the allowed keys before exp (a softmax with a mask "
              "does): the nearest other point then gets weight 1.")


def _loo_cases():
    rng = np.random.default_rng(4114)
    return [Case((_sorted(rng, 6), rng.normal(size=6), 0.7), "unbatched, 6 points, h = 0.7"),
            Case((_sorted(rng, 5), rng.normal(size=5), 1.5), "5 points, h = 1.5"),
            Case((_sorted(rng, 2, 7), rng.normal(size=(2, 7)), 0.4), "batched (B=2), 7 points, h = 0.4"),
            Case((np.array([0.0, 4.0]), np.array([1.0, -2.0]), 0.8),
                 "two points: each one is predicted by the other alone"),
            Case((np.array([0.0, 2.5, 4.0]), np.array([1.0, -2.0, 3.0]), 0.01),
                 "a tiny bandwidth, h = 0.01", nonfinite=TINY_H_LOO)]


# ----------------------------------------------------------------------------- mistakes

def _d2(xq, xk):
    return (xq[..., :, None] - xk[..., None, :]) ** 2


def _raw(xq, xk, h):
    """What a learner writes without max-subtraction: exp, then normalize."""
    e = np.exp(-_d2(xq, xk) / (2 * h**2))
    return e / e.sum(-1, keepdims=True)


_WEIGHT_MISTAKES = (
    Mistake("transposed", "Your weights are transposed: one row per key. Row i must hold query "
            "i's weights over all keys, shape (..., L_q, L_k), so take x_query[..., :, None] - "
            "x_key[..., None, :].",
            lambda xq, xk, h: np.swapaxes(gaussian_kernel_weights(xq, xk, h), -1, -2)),
    Mistake("wrong_axis", "Your weights are normalized over the queries (axis -2): each column sums "
            "to one. Each query's weights over the keys, a row (axis -1), must sum to one.",
            lambda xq, xk, h: softmax(-_d2(xq, xk) / (2 * h**2), axis=-2)),
    Mistake("no_minus", "Your weights grow with distance: the score is MINUS the squared distance, "
            "-(x_q - x_k)^2 / (2h^2), so that the nearest keys get the most weight.",
            lambda xq, xk, h: softmax(_d2(xq, xk) / (2 * h**2))),
    Mistake("no_square", "You used the distance |x_q - x_k| itself; the Gaussian kernel uses its "
            "square, (x_q - x_k)^2.",
            lambda xq, xk, h: softmax(-np.sqrt(_d2(xq, xk)) / (2 * h**2))),
    Mistake("laplacian", "You used a Laplacian kernel, exp(-|x_q - x_k| / h): the absolute distance "
            "over h. This exercise asks for the Gaussian kernel, exp(-(x_q - x_k)^2 / (2h^2)): the "
            "SQUARED distance over 2h^2.",
            lambda xq, xk, h: softmax(-np.sqrt(_d2(xq, xk)) / h)),
    Mistake("no_factor_two", "You divided by h^2; the Gaussian kernel divides by 2h^2.",
            lambda xq, xk, h: softmax(-_d2(xq, xk) / h**2)),
    Mistake("h_not_squared", "You divided by 2h; the Gaussian kernel divides by 2h^2 (h squared).",
            lambda xq, xk, h: softmax(-_d2(xq, xk) / (2 * h))),
    Mistake("not_normalized", "Your weights are the raw kernel values exp(-(x_q - x_k)^2 / (2h^2)); "
            "divide each row by its sum so it sums to one (that is the softmax).",
            lambda xq, xk, h: np.exp(-_d2(xq, xk) / (2 * h**2))),
    Mistake("overflow", "Your weights are NaN for a tiny bandwidth: every exp underflows to 0 and "
            "you divide 0 by 0. Subtract each row's max score before exp.", _raw),
)

_PREDICT_MISTAKES = (
    Mistake("returned_weights", "You returned the attention weights (..., L_q, L_k); the prediction "
            "is their weighted sum of the values, one number per query, shape (..., L_q).",
            lambda xq, xk, yk, h: gaussian_kernel_weights(xq, xk, h)),
    Mistake("mean_of_values", "Your prediction is the plain mean of the values, the same for every "
            "query: weight each value by the query's kernel weights.",
            lambda xq, xk, yk, h: np.broadcast_to(yk.mean(-1, keepdims=True),
                                                  np.broadcast_shapes(xq.shape[:-1], yk.shape[:-1]) + xq.shape[-1:])),
    Mistake("pooled_keys", "You averaged the key positions x_key instead of the values y_key: "
            "attention pooling returns a blend of the VALUES.",
            lambda xq, xk, yk, h: _predict(xq, xk, xk, h)),
    Mistake("wrong_axis", "Your weights are normalized over the queries (axis -2); each query's "
            "weights over the keys (axis -1) must sum to one.",
            lambda xq, xk, yk, h: (softmax(-_d2(xq, xk) / (2 * h**2), axis=-2) @ yk[..., :, None])[..., 0]),
    Mistake("not_normalized", "You summed kernel-weighted values without dividing by the sum of the "
            "kernel values: Nadaraya–Watson divides by sum_j K(x, x_j) so the weights sum to one.",
            lambda xq, xk, yk, h: (np.exp(-_d2(xq, xk) / (2 * h**2)) @ yk[..., :, None])[..., 0]),
    Mistake("laplacian", "Your kernel is Laplacian, exp(-|x_q - x_k| / h) (the absolute distance over "
            "h); Nadaraya–Watson here uses the Gaussian kernel exp(-(x_q - x_k)^2 / (2h^2)), the "
            "squared distance over 2h^2.",
            lambda xq, xk, yk, h: (softmax(-np.sqrt(_d2(xq, xk)) / h) @ yk[..., :, None])[..., 0]),
    Mistake("no_factor_two", "Your kernel divides by h^2; the Gaussian kernel divides by 2h^2.",
            lambda xq, xk, yk, h: _predict(xq, xk, yk, h / np.sqrt(2))),
    Mistake("overflow", "Your prediction is NaN for a tiny bandwidth: every exp underflows to 0 and "
            "you divide 0 by 0. Subtract each row's max score before exp.",
            lambda xq, xk, yk, h: (_raw(xq, xk, h) @ yk[..., :, None])[..., 0]),
)


def _loo_weights_then(weights):
    """Lift a wrong weights rule ``weights(scores, mask)`` to leave-one-out predictions."""
    def fn(x, y, h):
        scores = -_d2(x, x) / (2 * h**2)
        return np.sum(weights(scores, _others(x.shape[-1])) * y[..., None, :], axis=-1)
    return fn


def _zeroed_after(scores, mask):
    return softmax(scores) * mask


def _no_max_subtraction(scores, mask):
    e = np.exp(scores) * mask
    return e / e.sum(-1, keepdims=True)


_LOO_MISTAKES = (
    Mistake("self_included", "Each point still sees itself: your predictions are the plain "
            "Nadaraya–Watson fit at the training points. Its own key is the nearest (distance 0), so "
            "as h shrinks each prediction copies its own target and the loss goes to 0: block the "
            "diagonal, mask = ~np.eye(n, dtype=bool) (True = may attend).",
            lambda x, y, h: _predict(x, x, y, h)),
    Mistake("zeroed_after_softmax", "You zeroed each point's own weight after the softmax, so the other "
            "weights no longer sum to one and the predictions shrink towards 0. Block the diagonal "
            "BEFORE the softmax (its score -inf), so the remaining weights are renormalised.",
            _loo_weights_then(_zeroed_after)),
    Mistake("wrong_axis", "Your weights are normalised over the queries (axis -2): each column sums to "
            "one. Each point's weights over the other points, a row (axis -1), must sum to one.",
            _loo_weights_then(lambda s, m: softmax(s, axis=-2, mask=m))),
    Mistake("no_factor_two", "Your kernel divides by h^2; the Gaussian kernel divides by 2h^2.",
            lambda x, y, h: _leave_one_out(x, y, h / np.sqrt(2))),
    Mistake("overflow", "Your predictions are NaN for a tiny bandwidth: with its own key blocked, every "
            "exp in the row underflows to 0 and you divide 0 by 0. Subtract each row's max over the "
            "allowed keys before exp (or use softmax(scores, mask=...)).",
            _loo_weights_then(_no_max_subtraction)),
)

# ----------------------------------------------------------------------------- exercises

KERNEL_WEIGHTS = Exercise(
    name="kernel weights", call="fn(x_query, x_key, h)", arg_names=("x_query", "x_key", "h"),
    out_axes=("L_q", "L_k"), dims=lambda xq, xk, h: {"L_q": xq.shape[-1], "L_k": xk.shape[-1]},
    reference=_weights, cases=_weights_cases, mistakes=_WEIGHT_MISTAKES,
    hint="scores = -(x_query[..., :, None] - x_key[..., None, :])**2 / (2 * h**2), then a softmax "
         "over the last axis (subtract the row max, exp, divide by the row sum).",
    checked="batched and unbatched, and a tiny bandwidth: shapes and values match",
    batched_hint="It ran on the unbatched cases, so look at the batched one: take all differences with "
                 "x_query[..., :, None] - x_key[..., None, :] (new axes counted from the end, so that "
                 "leading batch axes pass through) and normalise over axis=-1.")

NADARAYA_WATSON = Exercise(
    name="Nadaraya–Watson", call="fn(x_query, x_key, y_key, h)",
    arg_names=("x_query", "x_key", "y_key", "h"), out_axes=("L_q",),
    dims=lambda xq, xk, yk, h: {"L_q": xq.shape[-1], "L_k": xk.shape[-1]},
    reference=_predict, cases=_predict_cases, mistakes=_PREDICT_MISTAKES,
    hint="Use your kernel weights w of shape (..., L_q, L_k) and return (w @ y_key[..., :, None])[..., 0] "
         "(or np.sum(w * y_key[..., None, :], axis=-1)): one weighted average per query.",
    checked="batched and unbatched, and a tiny bandwidth: shapes and values match",
    batched_hint="It ran on the unbatched cases, so look at the batched one: broadcast the values along "
                 "the query axis with y_key[..., None, :] (not y_key[None, :]) and sum over axis=-1.")

LEAVE_ONE_OUT = Exercise(
    name="leave-one-out", call="fn(x, y, h)", arg_names=("x", "y", "h"), out_axes=("n",),
    dims=lambda x, y, h: {"n": x.shape[-1]},
    reference=_leave_one_out, cases=_loo_cases, mistakes=_LOO_MISTAKES,
    hint="scores = -(x[..., :, None] - x[..., None, :])**2 / (2 * h**2), shape (..., n, n); block "
         "the diagonal with np.where(np.eye(n, dtype=bool), -np.inf, scores) (or softmax(scores, "
         "mask=~np.eye(n, dtype=bool))); softmax over the last axis; then np.sum(w * y[..., None, :], "
         "axis=-1).",
    checked="batched and unbatched, two points, and a tiny bandwidth: shapes and values match",
    batched_hint="It ran on the unbatched cases, so look at the batched one: take the differences with "
                 "x[..., :, None] - x[..., None, :], let the (n, n) mask broadcast over the batch axes, "
                 "and use y[..., None, :] and axis=-1.")

_CHAPTER = Chapter("Queries, keys and values", [KERNEL_WEIGHTS, NADARAYA_WATSON, LEAVE_ONE_OUT])


def check_kernel_weights(fn) -> CheckResult:
    """Check ``fn(x_query, x_key, h)`` -> softmax over keys of ``-(x_q - x_k)^2 / (2 h^2)``.

    ``x_query`` has shape (..., L_q), ``x_key`` (..., L_k); the result (..., L_q, L_k).
    """
    return _CHAPTER.check(KERNEL_WEIGHTS, fn)


def check_nadaraya_watson(fn) -> CheckResult:
    """Check ``fn(x_query, x_key, y_key, h)`` -> Nadaraya–Watson predictions of shape (..., L_q).

    ``y_key`` has shape (..., L_k), one value per key.
    """
    return _CHAPTER.check(NADARAYA_WATSON, fn)


def check_leave_one_out(fn) -> CheckResult:
    """Check ``fn(x, y, h)`` -> leave-one-out Nadaraya–Watson predictions of shape (..., n).

    ``x`` and ``y`` have shape (..., n), n >= 2: the training points are the queries, and each
    may attend to every point but itself (the mask ``~np.eye(n, dtype=bool)``).
    """
    return _CHAPTER.check(LEAVE_ONE_OUT, fn)


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
