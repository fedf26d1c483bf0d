"""Checkers for the chapter "Scaled dot-product attention and masking".

In a notebook::

    from attnlib.exercises import masking as ex
    ex.check_combined_mask(my_combined_mask)      # my_combined_mask(lengths, max_len) -> (B, L, L)
    ex.check_masked_attention(my_masked_attention)  # (Q, K, V, lengths, causal) -> (B, L_q, d_v)
    ex.check_allowed_pairs(my_allowed_pairs)      # a number, or a function returning it
    ex.report()

Each check returns a :class:`~attnlib.exercises.core.CheckResult` whose text is the verdict.

The third is a :class:`~attnlib.exercises.core.Prediction` ("predict, then run"): how many
(query, key) pairs the padding-and-causal self-attention mask allows for the explorer's batch, lengths
(5, 3, 7) padded to 7. ``measure()`` builds the mask with attnlib as the chapter does and counts its
True entries; a count is exact, so the prediction must be too. The catalogue: padded query rows
blocked as well, the causal part or the padding left out, the diagonal blocked, the masks combined
with OR, and every entry of the (3, 7, 7) array counted.
"""
from __future__ import annotations

import math

import numpy as np

from attnlib.exercises.core import (
    Case,
    Chapter,
    CheckResult,
    Exercise,
    Mistake,
    Prediction,
    _number,
    failed,
    fresh,
    quietly,
)
from attnlib.numpy import (
    causal_mask,
    combine_masks,
    key_padding_mask,
    padding_mask,
    scaled_dot_product_attention,
    softmax,
)

__all__ = ["check_combined_mask", "check_masked_attention", "check_allowed_pairs", "report", "reset"]

# ----------------------------------------------------------------------------- references

def _combined(lengths, max_len):
    """Self-attention mask (B, max_len, max_len): key padding AND causal."""
    return combine_masks(key_padding_mask(lengths, max_len, max_len), causal_mask(max_len))


def _mask_for(lengths, L_q, L_k, causal):
    return combine_masks(key_padding_mask(lengths, L_q, L_k),
                         causal_mask(L_q, L_k) if causal else None)


def _masked_attention(Q, K, V, lengths, causal):
    """(B, L_q, d_k), (B, L_k, d_k), (B, L_k, d_v), lengths (B,), bool -> (B, L_q, d_v)."""
    return scaled_dot_product_attention(Q, K, V, _mask_for(lengths, Q.shape[-2], K.shape[-2],
                                                           causal))[0]


# ----------------------------------------------------------------------------- cases

EMPTY = ("That batch element has length 0: every key is padding, so each of its query rows is "
         "fully masked. Its weights must be all zeros and its output zero, not NaN: treat a row "
         "max of -inf as 0 and divide by 1 where the row sum is 0.")


def _mask_cases():
    L = lambda *n: np.array(n, dtype=int)  # noqa: E731
    return [Case((L(3, 5, 1), 5), "lengths [3, 5, 1], padded to 5"),
            Case((L(4, 2), 6), "lengths [4, 2], padded to 6 (longer than every sequence)"),
            Case((L(2, 0, 3), 3), "lengths [2, 0, 3]: an empty sequence"),
            Case((L(1,), 1), "a single sequence of length 1")]


def _attention_cases():
    rng = np.random.default_rng(6006)
    n = lambda *shape: rng.normal(size=shape)  # noqa: E731
    L = lambda *v: np.array(v, dtype=int)  # noqa: E731
    return [Case((n(3, 5, 4), n(3, 5, 4), n(3, 5, 2), L(5, 2, 3), False),
                 "self-attention shapes, lengths [5, 2, 3], not causal"),
            Case((n(3, 5, 4), n(3, 5, 4), n(3, 5, 2), L(4, 5, 1), True),
                 "self-attention shapes, lengths [4, 5, 1], causal"),
            Case((n(2, 3, 4), n(2, 6, 4), n(2, 6, 3), L(6, 2), False),
                 "cross-attention: 3 queries, 6 keys, lengths [6, 2]",
                 note="Queries and keys differ in length here: the padding belongs to the keys, so "
                      "the mask is (B, 1, L_k), padding_mask(lengths, L_k)[:, None, :], which "
                      "broadcasts over the L_q query rows."),
            Case((n(2, 3, 4), n(2, 5, 4), n(2, 5, 2), L(5, 4), True),
                 "causal with 3 queries and 5 keys, lengths [5, 4]",
                 note="Queries and keys differ in length here: causal_mask(L_q, L_k) is (L_q, L_k), "
                      "True where j <= i (aligned top-left), and the key padding is (B, 1, L_k)."),
            Case((n(2, 4, 3), n(2, 4, 3), n(2, 4, 5), L(3, 0), True),
                 "lengths [3, 0]: an empty sequence, causal", nonfinite=EMPTY)]


# ----------------------------------------------------------------------------- mistakes

_MASK_MISTAKES = (
    Mistake("inverted", "Your mask has inverted polarity: it is True where attention is blocked. "
            "The convention is True = may attend: real keys at or before the query.",
            lambda n, L: ~_combined(n, L)),
    Mistake("query_rows_masked", "Your mask also blocks the padded *query rows*: a padded query "
            "i >= lengths[b] is allowed no key at all. That is what masking the padded queries as "
            "well as the padded keys gives (real & real-query & causal); with the causal mask it is "
            "also what putting the padding on the query axis alone (mask[:, :, None]) gives, since "
            "then every real row comes out right. The exercise asks for the key padding only: "
            "mask[b, i, j] depends on whether KEY j is real, whatever query i is. A padded query row "
            "may attend to the real keys (its output is ignored later); blocking it leaves it empty.",
            lambda n, L: combine_masks(padding_mask(n, L)[:, None, :], padding_mask(n, L)[:, :, None],
                                       causal_mask(L))),
    Mistake("strict_diagonal", "Your causal part is off by one: it blocks the diagonal, so a token "
            "cannot attend to itself (j < i). A query may attend to keys j <= i, its own position "
            "included (np.tril with k=0).",
            lambda n, L: combine_masks(key_padding_mask(n, L, L), np.tril(np.ones((L, L), bool), -1))),
    Mistake("upper_triangle", "Your causal part is transposed: it lets query i see keys j >= i, the "
            "future. True must sit on and *below* the diagonal (np.tril, not np.triu).",
            lambda n, L: combine_masks(key_padding_mask(n, L, L), causal_mask(L).T)),
    Mistake("or_instead_of_and", "You combined the masks with OR: a key is then allowed if *either* "
            "mask allows it. It must be allowed by both: combine with & (logical and).",
            lambda n, L: key_padding_mask(n, L, L) | causal_mask(L)),
    Mistake("no_causal", "Your mask has the padding but not the causal part: query i may still see "
            "later keys. AND it with causal_mask(max_len).",
            lambda n, L: key_padding_mask(n, L, L)),
    Mistake("no_padding", "Your mask has the causal part but not the padding: padded keys are "
            "still allowed. AND it with the key padding mask.",
            lambda n, L: np.broadcast_to(causal_mask(L), (len(n), L, L))),
)


def _weights_then(fn_weights):
    """Lift a wrong weights rule to an attention mistake (scores scaled as they should be)."""
    def fn(Q, K, V, lengths, causal):
        s = Q @ np.swapaxes(K, -1, -2) / math.sqrt(Q.shape[-1])
        return fn_weights(s, _mask_for(lengths, Q.shape[-2], K.shape[-2], causal)) @ V
    return fn


def _naive(s, m):
    x = np.where(m, s, -np.inf)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _with_mask(mask_fn):
    def fn(Q, K, V, lengths, causal):
        return scaled_dot_product_attention(Q, K, V, mask_fn(lengths, Q.shape[-2], K.shape[-2], causal))[0]
    return fn


_ATTENTION_MISTAKES = (
    Mistake("inverted", "Your mask is inverted: you blocked the real keys and let the padding "
            "through. True = may attend.",
            _with_mask(lambda n, Lq, Lk, c: ~_mask_for(n, Lq, Lk, c))),
    Mistake("query_axis", "Your padding blocks *query rows* instead of *key columns*: broadcast the "
            "padding mask as padding_mask(lengths, L_k)[:, None, :] (one row for all queries).",
            _with_mask(lambda n, Lq, Lk, c: combine_masks(
                padding_mask(n, Lk)[:, :, None], causal_mask(Lq, Lk) if c else None))),
    Mistake("query_rows_masked", "You masked the padded *query rows* as well as the padded keys, so "
            "their outputs are zero. `lengths` are the lengths of the KEY sequences only (in "
            "cross-attention the queries are another sequence with no lengths given): the mask is the "
            "key padding (B, 1, L_k), plus the causal part, and a query row is blocked only where it "
            "has no real key.",
            _with_mask(lambda n, Lq, Lk, c: combine_masks(
                key_padding_mask(n, Lq, Lk), np.arange(Lq)[None, :, None] < n[:, None, None],
                causal_mask(Lq, Lk) if c else None))),
    Mistake("causal_bottom_right", "Your causal mask is aligned to the bottom-right corner: with L_q "
            "queries and L_k keys it lets query i see keys j <= i + (L_k - L_q), the convention of a "
            "decoder whose queries are the LAST L_q of the L_k positions (a KV cache; torch's "
            "causal_lower_right). This chapter's causal mask, causal_mask(L_q, L_k), is aligned "
            "top-left: query i sees keys j <= i, whatever L_k is. The two agree only when "
            "L_q == L_k.",
            _with_mask(lambda n, Lq, Lk, c: combine_masks(
                key_padding_mask(n, Lq, Lk),
                np.tril(np.ones((Lq, Lk), bool), Lk - Lq) if c else None))),
    Mistake("no_padding", "Padded keys still get weight: your mask ignores the lengths. AND a key "
            "padding mask into it.",
            _with_mask(lambda n, Lq, Lk, c: causal_mask(Lq, Lk) if c else None)),
    Mistake("no_causal", "With causal=True, query i must not see keys j > i: AND causal_mask(L_q, L_k) "
            "into the mask when causal is True.",
            _with_mask(lambda n, Lq, Lk, c: key_padding_mask(n, Lq, Lk))),
    Mistake("strict_diagonal", "Your causal mask blocks the diagonal (j < i): a token may attend to "
            "itself, j <= i.",
            _with_mask(lambda n, Lq, Lk, c: combine_masks(
                key_padding_mask(n, Lq, Lk), np.tril(np.ones((Lq, Lk), bool), -1) if c else None))),
    Mistake("causal_always", "You applied the causal mask even when causal is False.",
            _with_mask(lambda n, Lq, Lk, c: _mask_for(n, Lq, Lk, True))),
    Mistake("uniform_fully_masked", "The empty sequence's queries got uniform weights over the "
            "padding (their output is the mean of the padded values) instead of zeros: filling "
            "blocked scores with -1e9 does that. A query with no allowed key must give zero.",
            _weights_then(lambda s, m: softmax(np.where(m, s, -1e9)))),
    Mistake("nan_fully_masked", "The empty sequence gives NaN: all its keys are blocked, the row max "
            "is -inf, and -inf - (-inf) is NaN. Such rows must give zeros.",
            _weights_then(_naive)),
    Mistake("masked_after_softmax", "You zeroed the blocked weights after the softmax, so the rows no "
            "longer sum to one. Mask the scores (set them to -inf) before the softmax.",
            _weights_then(lambda s, m: softmax(s) * m)),
    Mistake("no_scaling", "Your scores are not scaled: divide Q K^T by sqrt(d_k) = sqrt(Q.shape[-1]).",
            lambda Q, K, V, n, c: softmax(Q @ np.swapaxes(K, -1, -2),
                                          mask=_mask_for(n, Q.shape[-2], K.shape[-2], c)) @ V),
)

# ----------------------------------------------------------------------------- exercises

COMBINED_MASK = Exercise(
    name="combined_mask", call="fn(lengths, max_len)", arg_names=("lengths", "max_len"),
    out_axes=("L_q", "L_k"), dims=lambda n, L: {"L_q": L, "L_k": L},
    reference=_combined, cases=_mask_cases, mistakes=_MASK_MISTAKES,
    hint="Build the key padding mask np.arange(max_len)[None, :] < lengths[:, None], give it a query "
         "axis with [:, None, :], and AND (&) it with the causal mask np.tril(np.ones((max_len, "
         "max_len), dtype=bool)); broadcasting does the rest.",
    checked="boolean masks of shape (B, max_len, max_len), including an empty sequence")

MASKED_ATTENTION = Exercise(
    name="masked_attention", call="fn(Q, K, V, lengths, causal)",
    arg_names=("Q", "K", "V", "lengths", "causal"), out_axes=("L_q", "d_v"),
    dims=lambda Q, K, V, n, c: {"L_q": Q.shape[-2], "L_k": K.shape[-2], "d_v": V.shape[-1]},
    reference=_masked_attention, cases=_attention_cases, mistakes=_ATTENTION_MISTAKES,
    hint="Build the mask (key padding, [:, None, :], AND the causal mask causal_mask(L_q, L_k) if "
         "causal) and pass it to scaled_dot_product_attention from attnlib.numpy, or to your own "
         "softmax with -inf.",
    checked="self- and cross-attention, causal or not (also with L_q != L_k), with an empty sequence")


# ----------------------------------------------------------------------------- a prediction

PAIRS_LENGTHS, PAIRS_MAX_LEN = (5, 3, 7), 7  # the explorer's batch


def _count(*masks) -> float:
    """True entries of the masks ANDed together, broadcast to the batch's (B, L, L)."""
    B, L = len(PAIRS_LENGTHS), PAIRS_MAX_LEN
    return float(np.broadcast_to(combine_masks(*masks), (B, L, L)).sum())


def _pad():
    return padding_mask(np.array(PAIRS_LENGTHS), PAIRS_MAX_LEN)  # (B, L): True = real token


def _measure_allowed_pairs() -> float:
    """True entries of the chapter's combined mask, padding (B, 1, L_k) AND causal (L, L)."""
    return _count(_pad()[:, None, :], causal_mask(PAIRS_MAX_LEN))


ALLOWED_PAIRS = Prediction(
    name="allowed pairs",
    question=(f"how many (query, key) pairs, summed over the batch, does the padding-and-causal "
              f"self-attention mask allow for lengths {PAIRS_LENGTHS} padded to {PAIRS_MAX_LEN}? "
              f"That is, how many of the mask's {len(PAIRS_LENGTHS) * PAIRS_MAX_LEN ** 2} entries are True?"),
    measure=_measure_allowed_pairs, rtol=0.0, unit="pairs",
    hint="Count one sequence of length n padded to L row by row: a real query i < n sees the keys "
         "0..i (a staircase), a padded query i >= n sees the n real keys (padding is about keys only). "
         "Then add the three sequences.",
    explanation=("A sequence of length n padded to L gives n(n+1)/2 for its real rows plus (L - n) n "
                 "for its padded rows: " + " + ".join(
                     str(n * (n + 1) // 2 + (PAIRS_MAX_LEN - n) * n) for n in PAIRS_LENGTHS) + "."),
    mistakes=(
        Mistake("query_rows_blocked", "You blocked the padded query rows too. The padding mask is about "
                "KEYS: a padded query may attend to the real keys (its output is ignored later), so each "
                "of its rows allows the n real keys.",
                lambda: _count(_pad()[:, None, :], _pad()[:, :, None], causal_mask(PAIRS_MAX_LEN))),
        Mistake("no_padding", "You counted the causal staircase of all 7 rows for every sequence, padded "
                "keys included. A key is allowed only where BOTH masks allow it: no padded key.",
                lambda: _count(causal_mask(PAIRS_MAX_LEN))),
        Mistake("no_causal", "You counted every real key for every query, future keys included. With the "
                "causal part, query i sees only keys j <= i.",
                lambda: _count(_pad()[:, None, :])),
        Mistake("diagonal_blocked", "You left out the diagonal: the causal mask allows j <= i, so every "
                "query sees itself too (if it is a real key).",
                lambda: _count(_pad()[:, None, :], np.tril(np.ones((PAIRS_MAX_LEN,) * 2, bool), -1))),
        Mistake("or_instead_of_and", "You counted the pairs that EITHER mask allows. A pair is allowed "
                "only if both allow it: the masks combine with a logical and.",
                lambda: float(np.sum(_pad()[:, None, :] | causal_mask(PAIRS_MAX_LEN)))),
        Mistake("every_entry", "That is the size of the mask, B x L x L, all its entries. Count only the "
                "True ones: real keys at or before each query.",
                lambda: float(len(PAIRS_LENGTHS) * PAIRS_MAX_LEN ** 2)),
    ))

_CHAPTER = Chapter("Scaled dot-product attention and masking", [COMBINED_MASK, MASKED_ATTENTION, ALLOWED_PAIRS])


def check_combined_mask(fn) -> CheckResult:
    """Check ``fn(lengths, max_len) -> mask`` of shape (B, max_len, max_len), bool.

    ``mask[b, i, j]`` must be True exactly where key ``j`` is a real token of sequence ``b``
    (``j < lengths[b]``) and not in the future of query ``i`` (``j <= i``).
    """
    result = _CHAPTER.check(COMBINED_MASK, fn)
    if result.passed:
        dtype = np.asarray(quietly(fn, fresh(_mask_cases()[0].args))).dtype
        if dtype != bool:
            result = failed(COMBINED_MASK, f"Your mask has the right True/False pattern but dtype "
                                           f"{dtype}: attention masks are boolean (True = may "
                                           "attend); a float mask would be rejected.",
                            "Build it from comparisons (<, <=) and &, or call .astype(bool).")
            _CHAPTER.results[COMBINED_MASK.name] = result.status
    return result


def check_masked_attention(fn) -> CheckResult:
    """Check ``fn(Q, K, V, lengths, causal) -> output`` (B, L_q, d_v) of masked attention on a batch.

    Q (B, L_q, d_k), K (B, L_k, d_k), V (B, L_k, d_v); ``lengths`` (B,) are the key lengths;
    ``causal`` adds a causal mask. A query with no allowed key gets a zero output.
    """
    return _CHAPTER.check(MASKED_ATTENTION, fn)


def check_allowed_pairs(prediction) -> CheckResult:
    """Check a predicted count of allowed (query, key) pairs for lengths (5, 3, 7) padded to 7.

    ``prediction`` is the number, or a function of no arguments that returns it (the notebook's
    stub is such a function: a learner copy's checkers are handed stubs that raise
    NotImplementedError). A count is exact: only the measured number passes.
    """
    result = _CHAPTER.check(ALLOWED_PAIRS, prediction)
    near_miss = _near_miss(prediction) if result.status == "failed" and result.mistake is None else ""
    if near_miss:
        result = failed(ALLOWED_PAIRS, near_miss)
    return result


def _near_miss(prediction) -> str:
    """A clearer message than "too low by a factor of about 1" for a count that is not whole or just off."""
    if callable(prediction):  # the stub form: the checker has already called it once without error
        try:
            prediction = prediction()
        except Exception:  # noqa: BLE001 - the checker's own message says what went wrong
            return ""
    number, problem = _number(prediction)  # the checker's own reading of a prediction
    if problem:
        return ""  # not a single finite number: the checker's own message says so
    if not number.is_integer():
        return f"Your prediction {number:g} is not a whole number: count the True entries of the mask."
    truth = _measure_allowed_pairs()
    if abs(number - truth) <= 0.1 * truth:
        way = "low" if number < truth else "high"
        return (f"Your prediction {number:,.0f} is close but too {way} (within 10 %): recount one "
                "sequence at a time, row by row (is one row, or one sequence, off by a few keys?).")
    return ""


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far (report() then counts from zero)."""
    _CHAPTER.reset()
