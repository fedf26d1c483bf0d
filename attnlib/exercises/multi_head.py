"""Checkers for the chapter "Multi-head, self- and cross-attention".

In a notebook::

    from attnlib.exercises import multi_head as ex
    ex.check_split_heads(my_split_heads)   # my_split_heads(x, num_heads) -> (..., H, L, d_head)
    ex.check_multi_head_attention(my_mha)  # my_mha(x_q, x_kv, W_q, W_k, W_v, W_o, num_heads, mask)
    ex.check_winning_head(my_winning_head) # a head's index, or a function returning it
    ex.report()

Each check returns a :class:`~attnlib.exercises.core.CheckResult` whose text is the verdict.

The third is a :class:`~attnlib.exercises.core.Prediction` ("predict, then run"): in a 4-head
layer built by hand (:func:`head_race_layer`: 4 tokens, ``d_head = 4``, a causal mask), which head
puts the most weight on key 1 for the query at position 2? The learner reads each head's dot
products for that query and predicts; ``measure()`` runs :func:`attnlib.numpy.multi_head_attention`
and takes the argmax over heads. The catalogue: the head with the largest dot product on key 1
(a weight is a share of its own row), the head that would win if the masked later key counted,
the most peaked head (its peak is on another key), and the index counted from 1.
"""
from __future__ import annotations

import numpy as np

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake, Prediction
from attnlib.numpy import (
    causal_mask,
    merge_heads,
    multi_head_attention,
    padding_mask,
    scaled_dot_product_attention,
    split_heads,
)

__all__ = ["check_split_heads", "check_multi_head_attention", "check_winning_head", "head_race_layer",
           "report", "reset"]


# ----------------------------------------------------------------------------- references

def _mha(x_q, x_kv, W_q, W_k, W_v, W_o, num_heads, mask):
    """The output (..., L_q, d_model) of multi-head attention."""
    return multi_head_attention(x_q, x_kv, W_q, W_k, W_v, W_o, num_heads, mask)[0]


# ----------------------------------------------------------------------------- cases

def _split_cases():
    rng = np.random.default_rng(7007)
    n = lambda *shape: rng.normal(size=shape)  # noqa: E731
    return [Case((n(5, 6), 2), "unbatched, L=5, d_model=6, 2 heads"),
            Case((n(4, 12), 3), "unbatched, L=4, d_model=12, 3 heads"),
            Case((n(2, 3, 8), 4), "batched (B=2), L=3, d_model=8, 4 heads"),
            Case((n(3, 6), 1), "one head")]


def _mha_cases():
    rng = np.random.default_rng(7117)
    n = lambda *shape: rng.normal(size=shape)  # noqa: E731
    W = lambda d: [n(d, d) / np.sqrt(d) for _ in range(4)]  # noqa: E731
    x = n(2, 4, 8)
    return [Case((x, x, *W(8), 2, None), "self-attention, B=2, L=4, d_model=8, 2 heads"),
            Case((n(2, 3, 12), n(2, 5, 12), *W(12), 3, None),
                 "cross-attention, L_q=3, L_k=5, d_model=12, 3 heads"),
            Case((x, x, *W(8), 4, causal_mask(4)), "self-attention, causal mask, 4 heads"),
            Case((n(2, 3, 8), n(2, 6, 8), *W(8), 2, padding_mask(np.array([6, 2]), 6)[:, None, :]),
                 "cross-attention with a key padding mask, 2 heads"),
            Case((n(5, 6), n(5, 6), *W(6), 1, None), "unbatched, one head")]


# ----------------------------------------------------------------------------- mistakes

def _interleaved(x, H):
    """Split into (d_head, H) instead of (H, d_head): head h gets every H-th feature."""
    *b, L, d = x.shape
    return np.moveaxis(x.reshape(*b, L, d // H, H), -1, -3)


def _direct_reshape(x, H):
    """Reshape straight to (H, L, d_head) without the transpose: mixes tokens between heads."""
    *b, L, d = x.shape
    return x.reshape(*b, H, L, d // H)


_SPLIT_MISTAKES = (
    Mistake("interleaved", "Your heads are interleaved: head h got every H-th feature (columns h, "
            "h+H, h+2H, ...) because the last axis was split as (d_head, H). Split it as "
            "(H, d_head), so head h gets the contiguous block h*d_head:(h+1)*d_head.",
            _interleaved),
    Mistake("direct_reshape", "You reshaped (..., L, d_model) straight to (..., H, L, d_head). That "
            "has the right shape but the wrong contents: a reshape keeps the memory order, so the "
            "'heads' mix features of different tokens. First reshape to (..., L, H, d_head), then "
            "swap the L and H axes (np.swapaxes(x, -2, -3)).",
            _direct_reshape),
    Mistake("no_transpose", "You split the features but kept the axes in the order (..., L, H, "
            "d_head). The heads must come before the sequence: (..., H, L, d_head), so that each "
            "head is a separate attention problem. Swap axes -2 and -3.",
            lambda x, H: x.reshape(*x.shape[:-1], H, x.shape[-1] // H)),
)


def _mha_with(split=split_heads, merge=merge_heads, scale_dim=None, out_proj=True, heads=True,
              use_mask=True, head_axis=True):
    """A multi-head attention with one thing done wrong, for the catalogue."""
    def fn(x_q, x_kv, W_q, W_k, W_v, W_o, H, mask):
        H_eff = H if heads else 1
        q, k, v = (split(a, H_eff) for a in (x_q @ W_q, x_kv @ W_k, x_kv @ W_v))
        if scale_dim == "d_model":
            q = q * np.sqrt(q.shape[-1] / x_q.shape[-1])  # so that SDPA's sqrt(d_head) becomes sqrt(d_model)
        m = None if (mask is None or not use_mask) else (np.expand_dims(mask, -3) if head_axis else mask)
        heads_out, _ = scaled_dot_product_attention(q, k, v, mask=m)
        if merge == "interleaved":
            *b, h, L, dh = heads_out.shape
            merged = np.moveaxis(heads_out, -3, -1).reshape(*b, L, h * dh)
        else:
            merged = merge(heads_out)
        return merged @ W_o if out_proj else merged
    return fn


_MHA_MISTAKES = (
    Mistake("no_output_projection", "You forgot the output projection: after concatenating the "
            "heads, multiply by W_o. (The concatenation alone keeps the heads in separate columns; "
            "W_o mixes what the heads found.)", _mha_with(out_proj=False)),
    Mistake("scaled_by_d_model", "Each head's scores are divided by sqrt(d_model). Each head is "
            "attention over d_head = d_model / H features, so its scale is sqrt(d_head).",
            _mha_with(scale_dim="d_model")),
    Mistake("interleaved", "Your heads are interleaved: the features were split as (d_head, H), so "
            "head h got every H-th column. Split the last axis as (H, d_head): head h takes the "
            "contiguous columns h*d_head:(h+1)*d_head (and merge back the same way).",
            _mha_with(split=_interleaved, merge="interleaved")),
    Mistake("direct_reshape", "You reshaped (..., L, d_model) straight to (..., H, L, d_head), which "
            "mixes features of different tokens. Reshape to (..., L, H, d_head) and swap axes -2 "
            "and -3 (and undo it the same way when merging).",
            _mha_with(split=_direct_reshape,
                      merge=lambda o: o.reshape(*o.shape[:-3], o.shape[-2], -1))),
    Mistake("one_head", "Your result is single-head attention over all d_model features: the "
            "projections were not split into num_heads heads.", _mha_with(heads=False)),
    Mistake("mask_ignored", "Your output ignores the mask. Give it a head axis, "
            "np.expand_dims(mask, -3), so one mask applies to every head, and pass it on.",
            _mha_with(use_mask=False)),
    Mistake("mask_without_head_axis", "You passed the mask to the heads without a head axis. The "
            "heads' scores are (B, H, L_q, L_k); a key padding mask (B, 1, L_k) then broadcasts as "
            "(1, B, 1, L_k): its BATCH axis lines up with the HEAD axis, so head h of every example "
            "gets example h's padding (NumPy raises only when B and H differ). A causal (L_q, L_k) "
            "mask happens to work. Give every mask its head axis with np.expand_dims(mask, -3), "
            "which makes (B, 1, L_k) into (B, 1, 1, L_k).",
            _mha_with(head_axis=False)),
    Mistake("transposed_weights", "You projected with x @ W.T. In this course (and the design's "
            "API) projections are x @ W with W of shape (d_model, d_model); torch's nn.Linear is "
            "the one that stores W transposed.",
            lambda x_q, x_kv, W_q, W_k, W_v, W_o, H, mask: _mha(x_q, x_kv, W_q.T, W_k.T, W_v.T,
                                                                W_o.T, H, mask)),
)

# ----------------------------------------------------------------------------- exercises

SPLIT = Exercise(
    name="split_heads", call="fn(x, num_heads)", arg_names=("x", "num_heads"),
    out_axes=("H", "L", "d_head"),
    dims=lambda x, H: {"H": H, "L": x.shape[-2], "d_head": x.shape[-1] // H},
    reference=split_heads, cases=_split_cases, mistakes=_SPLIT_MISTAKES,
    hint="x.reshape(*x.shape[:-1], num_heads, d_head) splits the features into heads; then "
         "np.swapaxes(..., -2, -3) moves the head axis in front of the sequence axis.",
    checked="batched and unbatched, 1 to 4 heads",
    batched_hint="It ran on the unbatched cases, so look at the batched one: keep every leading axis, "
                 "x.reshape(*x.shape[:-1], num_heads, d_head), and swap axes counted from the end, "
                 "np.swapaxes(..., -2, -3) (not axes 0 and 1).")

MHA = Exercise(
    name="multi_head_attention", call="fn(x_q, x_kv, W_q, W_k, W_v, W_o, num_heads, mask)",
    arg_names=("x_q", "x_kv", "W_q", "W_k", "W_v", "W_o", "num_heads", "mask"),
    out_axes=("L_q", "d_model"),
    dims=lambda x_q, x_kv, *rest: {"L_q": x_q.shape[-2], "L_k": x_kv.shape[-2],
                                   "d_model": x_q.shape[-1]},
    reference=_mha, cases=_mha_cases, mistakes=_MHA_MISTAKES,
    hint="Project (x_q @ W_q, x_kv @ W_k, x_kv @ W_v), split each into heads, call "
         "scaled_dot_product_attention with np.expand_dims(mask, -3) (if there is a mask), merge "
         "the heads, and multiply by W_o.",
    checked="self- and cross-attention, with causal and padding masks, 1 to 4 heads",
    batched_hint="It ran on the unbatched cases, so look at the batched ones: split the heads with axes "
                 "counted from the end (reshape(*x.shape[:-1], H, d_head), swapaxes(-2, -3)), and give "
                 "the mask its head axis with np.expand_dims(mask, -3), so that (B, 1, L_k) becomes "
                 "(B, 1, 1, L_k) and lines up with the scores (B, H, L_q, L_k).")

# ----------------------------------------------------------------------------- exercise 3: a prediction

RACE_HEADS, RACE_D_HEAD, RACE_QUERY, RACE_KEY = 4, 4, 2, 1
RACE_LENGTH = 4
# Head h's dot products q . k (before the 1/sqrt(d_head) scaling) of the query at RACE_QUERY with
# keys 0-3. The causal mask blocks key 3 for that query. The rows are built so that every line of
# reasoning in the catalogue below points at a different head.
_RACE_DOTS = np.array([[0.0, 12.0, 14.0, 0.0],     # key 1 scores highest of all heads, key 2 higher
                       [0.0, 4.0, 0.0, -16.0],     # key 1 ahead of the other visible keys by 4
                       [16.0, 0.0, 0.0, 0.0],      # sharply on key 0
                       [0.0, 6.0, 0.0, 10.0]])     # key 1 ahead by 6; the masked key 3 higher still


def head_race_layer():
    """A hand-built 4-head self-attention layer over 4 tokens, for the "which head wins?" prediction.

    Tokens are one-hot positions (features 0-3 of ``d_model = 16``). Every head's keys are those
    one-hot positions, so head ``h``'s query of the token at position ``RACE_QUERY`` has the dot
    products ``_RACE_DOTS[h]`` with keys 0-3 (the other queries have dot product 0 with every key).
    ``W_v`` copies the one-hot position into every head and ``W_o`` is the identity, so head ``h``'s
    block of the output is its weights.

    Returns
    -------
    x : numpy.ndarray, shape (4, 16)
    weights : tuple of 4 numpy.ndarray, each shape (16, 16)
        ``(W_q, W_k, W_v, W_o)``, for :func:`attnlib.numpy.multi_head_attention` with ``num_heads=4``.
    mask : numpy.ndarray of bool, shape (4, 4)
        The causal mask.
    """
    L, H, d = RACE_LENGTH, RACE_HEADS, RACE_D_HEAD
    x = np.zeros((L, H * d))
    x[np.arange(L), np.arange(L)] = 1.0
    W_q, W_k, W_v = (np.zeros((H * d, H * d)) for _ in range(3))
    for h in range(H):
        W_q[RACE_QUERY, h * d:h * d + L] = _RACE_DOTS[h]
        W_k[np.arange(L), h * d + np.arange(L)] = 1.0
        W_v[np.arange(L), h * d + np.arange(L)] = 1.0
    return x, (W_q, W_k, W_v, np.eye(H * d)), causal_mask(L)


def _race_weights(masked: bool = True) -> np.ndarray:
    """Every head's weights (H, L_k) for the query at RACE_QUERY, from multi_head_attention."""
    x, W, mask = head_race_layer()
    _, weights = multi_head_attention(x, x, *W, RACE_HEADS, mask=mask if masked else None)
    return weights[:, RACE_QUERY]


def _race_dots() -> np.ndarray:
    """Every head's dot products q . k (H, L_k) for the query at RACE_QUERY, before the scaling."""
    x, (W_q, W_k, _, _), _ = head_race_layer()
    q, k = split_heads(x @ W_q, RACE_HEADS), split_heads(x @ W_k, RACE_HEADS)   # (H, L, d_head)
    return (q @ np.swapaxes(k, -1, -2))[:, RACE_QUERY]


def _measure_winning_head() -> float:
    """The index of the head whose weight on key RACE_KEY is largest, for the query at RACE_QUERY."""
    return float(np.argmax(_race_weights()[:, RACE_KEY]))


WINNING_HEAD = Prediction(
    name="winning_head",
    question=(f"which head (0 to {RACE_HEADS - 1}) of ex.head_race_layer() puts the most weight on key "
              f"{RACE_KEY} for the query at position {RACE_QUERY}?"),
    measure=_measure_winning_head, rtol=0.0, categorical=True,
    hint=(f"Each head has its own softmax, over the keys the query at position {RACE_QUERY} may see "
          f"(the causal mask blocks the later keys). Divide the dot products by sqrt(d_head) = "
          f"{RACE_D_HEAD ** 0.5:g}; then, head by head, see how far key {RACE_KEY}'s score stands above "
          f"the other visible keys of the same row: its weight is exp(s_{RACE_KEY}) / sum_j exp(s_j) "
          "over the visible keys j only."),
    explanation=(f"A weight is a share of its head's own row: key {RACE_KEY} wins where it stands "
                 "highest above the other keys the query may see, not where its own score is largest, "
                 "and a masked key takes no share."),
    mistakes=(
        Mistake("largest_dot_product", f"That head gives key {RACE_KEY} the largest dot product of all "
                "heads. But a weight is a share of its head's own row after the softmax, and in that "
                f"head another visible key scores higher still and takes most of the weight. Compare key "
                f"{RACE_KEY}'s score with the other visible keys of the same head, not across heads.",
                lambda: float(np.argmax(_race_dots()[:, RACE_KEY]))),
        Mistake("mask_ignored", f"That head would win if the query at position {RACE_QUERY} could see "
                f"key {RACE_LENGTH - 1}. It cannot: the mask is causal, so a later key gets weight 0 and no "
                "share of the softmax, in every head (one mask for all heads). Leave the masked keys out "
                "of each row before you compare.",
                lambda: float(np.argmax(_race_weights(masked=False)[:, RACE_KEY]))),
        Mistake("most_peaked_head", "That head is the most confident one of the row (its largest weight "
                f"is the largest of all heads), but its peak is on another key, not on key {RACE_KEY}. "
                f"Compare the heads' weights on key {RACE_KEY} itself.",
                lambda: float(np.argmax(_race_weights().max(axis=-1)))),
        Mistake("counted_from_one", f"Heads are numbered from 0: the weights' head axis runs from w[0] to "
                f"w[{RACE_HEADS - 1}]. If you counted the heads from 1, subtract one.",
                lambda: _measure_winning_head() + 1.0),
    ))


_CHAPTER = Chapter("Multi-head, self- and cross-attention", [SPLIT, MHA, WINNING_HEAD])


def check_split_heads(fn) -> CheckResult:
    """Check ``fn(x, num_heads)``: (..., L, d_model) -> (..., H, L, d_head), contiguous blocks."""
    return _CHAPTER.check(SPLIT, fn)


def check_multi_head_attention(fn) -> CheckResult:
    """Check ``fn(x_q, x_kv, W_q, W_k, W_v, W_o, num_heads, mask) -> output`` (..., L_q, d_model).

    Projections are ``x @ W``; ``mask`` is None or bool, broadcastable to (..., L_q, L_k).
    """
    return _CHAPTER.check(MHA, fn)


def check_winning_head(prediction) -> CheckResult:
    """Check a predicted head index: which head of :func:`head_race_layer` puts the most weight on
    key 1 for the query at position 2.

    ``prediction`` is the index, or a function of no arguments that returns it (the notebook's stub
    is such a function, raising NotImplementedError until it is written); it is compared with what
    :func:`attnlib.numpy.multi_head_attention` computes.
    """
    return _CHAPTER.check(WINNING_HEAD, prediction)


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far (report() then counts from zero)."""
    _CHAPTER.reset()
