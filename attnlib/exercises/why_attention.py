"""Checkers for chapter 1, "Why attention, by hand": scores, weights, attention.

In a notebook::

    from attnlib.exercises import why_attention as ex
    ex.check_scores(my_scores)        # my_scores(Q, K) -> (..., L_q, L_k)
    ex.check_weights(my_weights)      # my_weights(scores, mask) -> (..., L_q, L_k)
    ex.check_attention(my_attention)  # my_attention(Q, K, V, mask) -> (..., L_q, d_v)
    ex.report()

Each check returns a :class:`~attnlib.exercises.core.CheckResult` whose text is the verdict.
"""
from __future__ import annotations

import math

import numpy as np

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake
from attnlib.numpy import scaled_dot_product_attention, softmax

__all__ = ["check_scores", "check_weights", "check_attention", "report", "reset"]

# ----------------------------------------------------------------------------- references

def _scores(Q, K):
    """(..., L_q, d_k), (..., L_k, d_k) -> (..., L_q, L_k) = Q K^T / sqrt(d_k)."""
    return Q @ np.swapaxes(K, -1, -2) / math.sqrt(Q.shape[-1])


def _weights(scores, mask):
    """(..., L_q, L_k), bool mask broadcastable to it or None -> weights, rows sum to 1 (or 0)."""
    return softmax(scores, axis=-1, mask=mask)


def _attention(Q, K, V, mask):
    """(..., L_q, d_k), (..., L_k, d_k), (..., L_k, d_v), mask -> output (..., L_q, d_v)."""
    return scaled_dot_product_attention(Q, K, V, mask)[0]


# ----------------------------------------------------------------------------- cases

FULLY_MASKED = ("That query row has no allowed key: its weights must be all zeros (so its output is "
                "zero), not 0/0 = NaN. Its max is -inf, and -inf - (-inf) is NaN too: treat such a "
                "row's max as 0 and divide by 1 where the row sum is 0.")
LARGE = ("The scores there are about ±1e4: exp(1e4) overflows to inf and exp(-1e4) underflows to 0, "
         "so exp(s) / sum(exp(s)) is inf/inf or 0/0 = NaN. Subtract each row's max before exp: "
         "the weights do not change, but nothing overflows (this is overflow, not a masking problem).")
BROADCAST = ("The mask there has shape (B, 1, L_k), one padding mask per sequence shared by all queries, "
             "so it must broadcast: np.where(mask, scores, -np.inf) does, boolean indexing "
             "scores[~mask] does not.")


def _mixed_mask(rng, shape):
    """A random bool mask where every query row has at least one allowed and one blocked key.

    Rows with both kinds are what tell 'mask inverted' from 'mask ignored' from a correct answer.
    """
    mask = rng.random(shape) < 0.5
    for i in range(shape[-2]):
        mask[..., i, i % shape[-1]] = True
        mask[..., i, (i + 1) % shape[-1]] = False
    return mask


def _padding(lengths, L_k):
    """Key-padding mask of shape (B, 1, L_k): True on the first ``lengths[b]`` keys."""
    return (np.arange(L_k)[None, :] < np.asarray(lengths)[:, None])[:, None, :]


def _scores_cases():
    rng = np.random.default_rng(1001)
    shapes = [((3, 4), (5, 4), "unbatched, 3 queries and 5 keys"),
              ((4, 6), (4, 6), "unbatched, 4 queries and 4 keys"),
              ((1, 4), (6, 4), "a single query"),
              ((2, 3, 5), (2, 7, 5), "batched (B=2)"),
              ((2, 3, 4, 8), (2, 3, 6, 8), "two batch axes (B=2, H=3)")]
    return [Case((rng.normal(size=q), rng.normal(size=k)), label) for q, k, label in shapes]


def _weights_cases():
    rng = np.random.default_rng(2002)
    s = lambda *shape: rng.normal(scale=2.0, size=shape)  # noqa: E731  (scores of a few units)
    fully = _mixed_mask(rng, (2, 4, 6))
    fully[0, 1, :] = False
    large = s(3, 5) + np.array([[1e4], [-1e4], [1e4]])
    return [Case((s(3, 5), None), "unbatched, no mask"),
            Case((s(2, 3, 5), None), "batched (B=2), no mask"),
            Case((s(3, 5), _mixed_mask(rng, (3, 5))), "unbatched, with a mask"),
            Case((s(2, 4, 6), fully), "batched, query row 1 of batch 0 fully masked",
                 nonfinite=FULLY_MASKED),
            Case((s(2, 4, 6), _padding([4, 2], 6)), "batched, with a padding mask",
                 note=BROADCAST),
            Case((large, None), "with scores of magnitude 1e4", nonfinite=LARGE)]


def _attention_cases():
    rng = np.random.default_rng(3003)
    n = lambda *shape: rng.normal(size=shape)  # noqa: E731
    fully = _mixed_mask(rng, (2, 3, 5))
    fully[1, 2, :] = False
    # Large scores with non-trivial weights: a constant key feature times a huge query feature
    # adds ±1e4 to a whole row of scores, which only max-subtraction survives.
    Q, K = n(3, 6), n(4, 6)
    K[:, 0] = 1.0
    Q[:, 0] = np.array([1e4, -1e4, 1e4]) * math.sqrt(6)
    return [Case((n(3, 4), n(5, 4), n(5, 6), None), "unbatched, no mask"),
            Case((n(4, 3), n(4, 3), n(4, 5), None), "unbatched, 4 queries and 4 keys"),
            Case((n(2, 3, 4), n(2, 5, 4), n(2, 5, 6), fully),
                 "batched, query row 2 of batch 1 fully masked", nonfinite=FULLY_MASKED),
            Case((n(2, 4, 3), n(2, 6, 3), n(2, 6, 2), _padding([4, 2], 6)),
                 "batched, with a padding mask", note=BROADCAST),
            Case((Q, K, n(4, 5), None), "with scores of magnitude 1e4", nonfinite=LARGE)]


# ----------------------------------------------------------------------------- mistakes

def _fill(s, mask, value=-np.inf):
    """Scores with blocked entries replaced by ``value`` (mask None blocks nothing)."""
    return s if mask is None else np.where(mask, s, value)


def _exp_rows(x):
    """exp(x - row max), with an all -inf row giving zeros (as a careful learner would)."""
    m = np.max(x, axis=-1, keepdims=True)
    return np.exp(x - np.where(np.isfinite(m), m, 0.0))


def _safe_div(e, total):
    return e / np.where(total == 0, 1.0, total)


def _global_max_softmax(s, mask, guarded: bool):
    """The mistake: exp(s - max of the WHOLE array), then row sums (divided by 1 where 0 if guarded)."""
    x = _fill(s, mask)
    top = np.max(x)
    e = np.exp(x - (top if np.isfinite(top) else 0.0))
    total = e.sum(-1, keepdims=True)
    return _safe_div(e, total) if guarded else e / total


GLOBAL_MAX = ("You subtracted the maximum of the whole array (one global max) instead of each row's own "
              "max. It gives the same weights as long as every row is near the top, but a query row "
              "whose scores all lie far below the global max (here about -1e4 against +1e4 in another "
              "row) underflows: every exp in it is 0, and the row becomes 0/0 = NaN, or zeros. Subtract "
              "the max over the keys of each row: scores.max(axis=-1, keepdims=True).")
AXIS = ("Your weights are normalized over the wrong axis: your columns (over queries, axis -2) sum to "
        "one. Each query's weights over the keys — a row, the last axis — must sum to one.")
NORM = ("Your weights are not normalized: each query row must sum to one. Divide by the row sum, "
        "e / e.sum(axis=-1, keepdims=True).")

_SCALING = [
    Mistake("no_scaling", "Your scores are Q K^T without the scaling: divide by sqrt(d_k), the square "
            "root of the query/key dimension.", lambda Q, K: Q @ np.swapaxes(K, -1, -2)),
    Mistake("divided_by_d_k", "You divided by d_k; the scaling is 1/sqrt(d_k), the square root.",
            lambda Q, K: Q @ np.swapaxes(K, -1, -2) / Q.shape[-1]),
    Mistake("d_k_from_Q_shape0", "You scaled by the square root of the wrong length: d_k is the LAST "
            "axis, Q.shape[-1], not Q.shape[0] (the number of queries, or the batch size).",
            lambda Q, K: Q @ np.swapaxes(K, -1, -2) / math.sqrt(Q.shape[0])),
    Mistake("d_k_from_K_shape0", "You scaled by the square root of the wrong length: d_k is the LAST "
            "axis, K.shape[-1], not K.shape[0] (the number of keys, or the batch size).",
            lambda Q, K: Q @ np.swapaxes(K, -1, -2) / math.sqrt(K.shape[0])),
]

_SCORES_MISTAKES = (
    Mistake("transposed", "Your scores are transposed: you computed K Q^T, one row per key. Scores are "
            "Q K^T: row i holds query i's scores against every key (shape (..., L_q, L_k)).",
            lambda Q, K: K @ np.swapaxes(Q, -1, -2) / math.sqrt(Q.shape[-1])),
    *_SCALING,
)

_WEIGHTS_MISTAKES = (
    Mistake("wrong_axis", AXIS, lambda s, m: softmax(s, axis=-2, mask=m)),
    Mistake("sum_over_queries", AXIS,
            lambda s, m: _safe_div(_exp_rows(_fill(s, m)), _exp_rows(_fill(s, m)).sum(-2, keepdims=True))),
    Mistake("mask_inverted", "Your mask polarity is inverted: you blocked the keys where mask is True. "
            "The convention is True = may attend, False = blocked.",
            lambda s, m: softmax(s, mask=None if m is None else ~m)),
    Mistake("mask_ignored", "Your weights ignore the mask: blocked keys (mask False) still get weight. "
            "Set their scores to -inf before the softmax.", lambda s, m: softmax(s)),
    Mistake("masked_scores_zero", "Blocked keys still get weight: you set their scores to 0, but "
            "exp(0) = 1. Set blocked scores to -inf so that exp gives exactly 0.",
            lambda s, m: softmax(_fill(s, m, 0.0))),
    Mistake("masked_after_softmax", "You zeroed the blocked weights after the softmax, so the rows no "
            "longer sum to one. Mask the scores (set them to -inf) before the softmax.",
            lambda s, m: softmax(s) * (1.0 if m is None else m)),
    Mistake("uniform_fully_masked", "A query row with no allowed key got uniform weights 1/L_k (its "
            "output is then the mean of the values) instead of all zeros: filling blocked scores with "
            "a large negative number like -1e9 leaves such a row all equal. Give it zero weights.",
            lambda s, m: softmax(_fill(s, m, -1e9))),
    Mistake("nan_fully_masked", "A query row with no allowed key gives NaN: its max is -inf, and "
            "-inf - (-inf), like 0/0, is NaN. Such a row must get all-zero weights (and output).",
            lambda s, m: (lambda e: e / e.sum(-1, keepdims=True))(
                np.exp(_fill(s, m) - _fill(s, m).max(-1, keepdims=True)))),
    Mistake("global_max", GLOBAL_MAX, lambda s, m: _global_max_softmax(s, m, guarded=True)),
    Mistake("global_max_unguarded", GLOBAL_MAX, lambda s, m: _global_max_softmax(s, m, guarded=False)),
    Mistake("overflow", "Your result is NaN for scores of magnitude 1e4: exp overflows (exp(1e4) = inf, "
            "exp(-1e4) = 0), giving inf/inf or 0/0. Subtract each row's max before exp: the softmax "
            "does not change, and nothing overflows.",
            lambda s, m: (lambda e: e / e.sum(-1, keepdims=True))(np.exp(_fill(s, m)))),
    Mistake("not_normalized", NORM, lambda s, m: _exp_rows(_fill(s, m))),
    Mistake("not_normalized_raw", NORM, lambda s, m: np.exp(_fill(s, m))),
    Mistake("normalized_over_everything", "You divided by the sum over the whole array; each query row "
            "(the last axis) must sum to one on its own: e.sum(axis=-1, keepdims=True).",
            lambda s, m: (lambda e: e / e.sum())(np.exp(_fill(s, m) - _fill(s, m).max()))),
)


def _then_values(m: Mistake, via_scores: bool) -> Mistake:
    """Lift a scores or weights mistake to an attention mistake: the same error, then @ V."""
    if via_scores:
        fn = lambda Q, K, V, mask: softmax(m.fn(Q, K), mask=mask) @ V  # noqa: E731
    else:
        fn = lambda Q, K, V, mask: m.fn(_scores(Q, K), mask) @ V  # noqa: E731
    return Mistake(m.name, m.message, fn, m.hint)


_ATTENTION_MISTAKES = (
    Mistake("returned_weights", "You returned the attention weights, shape (..., L_q, L_k). The output "
            "is the weighted sum of the values, weights @ V, of shape (..., L_q, d_v).",
            lambda Q, K, V, mask: _weights(_scores(Q, K), mask)),
    Mistake("no_softmax", "You multiplied the raw scores by V. Turn the scores into weights with a "
            "softmax over the keys first (and apply the mask there).",
            lambda Q, K, V, mask: _scores(Q, K) @ V),
    *(_then_values(m, True) for m in _SCALING),
    *(_then_values(m, False) for m in _WEIGHTS_MISTAKES),
)

# ----------------------------------------------------------------------------- exercises

SCORES = Exercise(
    name="scores", call="fn(Q, K)", arg_names=("Q", "K"), out_axes=("L_q", "L_k"),
    dims=lambda Q, K: {"L_q": Q.shape[-2], "L_k": K.shape[-2], "d_k": Q.shape[-1]},
    reference=_scores, cases=_scores_cases, mistakes=_SCORES_MISTAKES,
    hint="scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(d_k) with d_k = Q.shape[-1]; swapping only "
         "the last two axes keeps any batch axes in place.",
    checked="batched and unbatched: shapes and values match")

WEIGHTS = Exercise(
    name="weights", call="fn(scores, mask)", arg_names=("scores", "mask"), out_axes=("L_q", "L_k"),
    dims=lambda s, m: {"L_q": s.shape[-2], "L_k": s.shape[-1]},
    reference=_weights, cases=_weights_cases, mistakes=_WEIGHTS_MISTAKES,
    hint="Block with np.where(mask, scores, -np.inf) (skip when mask is None), subtract each row's max "
         "(axis=-1, keepdims=True; use 0 where the max is -inf), exponentiate, and divide by the row "
         "sum (by 1 where it is 0: that row was fully masked and stays all zeros).",
    checked="with masks (one broadcast, one with a fully masked row) and scores of 1e4: shapes and "
            "values match")

ATTENTION = Exercise(
    name="attention", call="fn(Q, K, V, mask)", arg_names=("Q", "K", "V", "mask"),
    out_axes=("L_q", "d_v"),
    dims=lambda Q, K, V, m: {"L_q": Q.shape[-2], "L_k": K.shape[-2], "d_k": Q.shape[-1],
                             "d_v": V.shape[-1]},
    reference=_attention, cases=_attention_cases, mistakes=_ATTENTION_MISTAKES,
    hint="Chain your two answers: weights = my_weights(my_scores(Q, K), mask), then return "
         "weights @ V.",
    checked="with masks (one broadcast, one with a fully masked row) and scores of 1e4: shapes and "
            "values match")

_CHAPTER = Chapter("Why attention, by hand", [SCORES, WEIGHTS, ATTENTION])


def check_scores(fn) -> CheckResult:
    """Check ``fn(Q, K) -> Q K^T / sqrt(d_k)``: Q (..., L_q, d_k), K (..., L_k, d_k) -> (..., L_q, L_k)."""
    return _CHAPTER.check(SCORES, fn)


def check_weights(fn) -> CheckResult:
    """Check ``fn(scores, mask) -> weights``: softmax over the last axis (keys) of (..., L_q, L_k).

    ``mask`` is None or bool, broadcastable to the scores, True = may attend; blocked entries get
    weight 0, a fully masked row all zeros; scores of 1e4 must not overflow.
    """
    return _CHAPTER.check(WEIGHTS, fn)


def check_attention(fn) -> CheckResult:
    """Check ``fn(Q, K, V, mask) -> output`` (..., L_q, d_v) of scaled dot-product attention.

    Q (..., L_q, d_k), K (..., L_k, d_k), V (..., L_k, d_v); ``mask`` as for :func:`check_weights`.
    """
    return _CHAPTER.check(ATTENTION, fn)


def report() -> None:
    """Print how many of this chapter's exercises passed in this session, e.g. '2 of 3 (scores, weights)'."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far (report() then counts from zero)."""
    _CHAPTER.reset()
