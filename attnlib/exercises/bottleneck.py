"""Checkers for "The fixed-length bottleneck, measured": exact match with padding, and the masked context.

In a notebook::

    from attnlib.exercises import bottleneck as ex
    ex.check_exact_match(my_exact_match)   # my_exact_match(predictions, targets, pad_id) -> float
    ex.check_context(my_context)           # my_context(scores, values, mask) -> (B, H)
    ex.report()

The learner's functions receive **torch tensors** (int64 token ids; float64 scores and values;
a bool mask, True = real token) and may return a tensor or a Python float.
"""
from __future__ import annotations

import numpy as np

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake
from attnlib.exercises.numpy_to_torch import _tensor_fn

__all__ = ["check_exact_match", "check_context", "report", "reset"]



# ----------------------------------------------------------------------------- exercise 1: exact match

def _widen(p, t, pad_id):
    width = max(p.shape[1], t.shape[1])
    grow = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=pad_id)  # noqa: E731
    return grow(p), grow(t)


def _exact_match(predictions, targets, pad_id):
    p, t = _widen(predictions, targets, pad_id)
    return np.asarray(np.mean(np.all(p == t, axis=1)), dtype=float)


def _token_accuracy(predictions, targets, pad_id):
    p, t = _widen(predictions, targets, pad_id)
    real = t != pad_id
    return np.asarray((p == t)[real].mean(), dtype=float)


def _target_positions_only(predictions, targets, pad_id):
    p, t = _widen(predictions, targets, pad_id)
    return np.asarray(np.mean(np.all((p == t) | (t == pad_id), axis=1)), dtype=float)


def _cropped(predictions, targets, pad_id):
    w = min(predictions.shape[1], targets.shape[1])
    return np.asarray(np.mean(np.all(predictions[:, :w] == targets[:, :w], axis=1)), dtype=float)


def _exact_count(predictions, targets, pad_id):
    p, t = _widen(predictions, targets, pad_id)
    return np.asarray(np.sum(np.all(p == t, axis=1)), dtype=float)


def _ids(rows, pad_id):
    width = max(len(r) for r in rows)
    return np.array([r + [pad_id] * (width - len(r)) for r in rows], dtype=np.int64)


def _exact_cases():
    # 2 is <eos>; rows of targets end with it, then padding.
    t1 = _ids([[5, 6, 7, 2], [8, 2], [9, 9, 2], [4, 5, 2]], 0)
    p1 = _ids([[5, 6, 7, 2], [8, 2], [9, 4, 2], [4, 5, 2]], 0)
    t2 = _ids([[5, 6, 7, 8, 2], [6, 2], [7, 7, 2]], 0)
    p2 = _ids([[5, 6, 7, 8], [6, 2], [7, 7, 2]], 0)            # row 0 stopped before <eos>
    t3 = _ids([[5, 6, 2], [6, 2], [7, 2]], 0)
    # Row 1 runs on after <eos>, row 0 has a wrong token: comparing only the target's real
    # positions gives 2/3 here, token accuracy 6/7 (the only case that tells those two apart).
    p3 = _ids([[5, 9, 2], [6, 2, 9, 9], [7, 2]], 0)
    t4 = _ids([[5, 6, 2], [6, 7, 8, 2]], 1)
    p4 = _ids([[5, 6, 2], [6, 7, 8, 9, 2]], 1)                 # pad_id 1; row 1 too long
    return [Case((p1, t1, 0), "same widths, one token wrong in row 2"),
            Case((p2, t2, 0), "predictions narrower than targets (row 0 stopped early)"),
            Case((p3, t3, 0), "predictions wider than targets (row 1 runs on after <eos>, row 0 "
                              "has a wrong token)"),
            Case((p4, t4, 1), "pad_id = 1, row 1 one token too long")]


EXACT = Exercise(
    name="exact_match", call="fn(predictions, targets, pad_id)",
    arg_names=("predictions", "targets", "pad_id"), out_axes=(), dims=lambda *a: {},
    reference=_exact_match, cases=_exact_cases,
    mistakes=(
        Mistake("count", "You returned the *number* of rows predicted exactly right. The exercise asks "
                "for the fraction: divide by the number of rows (the batch size), e.g. with "
                "`.float().mean()` instead of `.sum()`.",
                _exact_count),
        Mistake("token_accuracy", "You computed the fraction of correct *tokens*. Exact match counts "
                "whole sequences: a row is right only if every position is right.",
                _token_accuracy),
        Mistake("target_positions_only", "You only compared the positions where the target has a real "
                "token, so a prediction that runs on after <eos> still counts as right. Compare every "
                "position (after padding both to the same width with pad_id).",
                _target_positions_only),
        Mistake("cropped", "You cut both to the narrower width, so a prediction that stops early or "
                "runs on is judged only on the common part. Pad the narrower one with pad_id instead.",
                _cropped),
    ),
    hint="Pad the narrower tensor with pad_id to the wider width (torch.nn.functional.pad(x, (0, n), "
         "value=pad_id)), compare elementwise, require all positions of a row to agree "
         "(.all(dim=1)), then average over rows (.float().mean()).",
    checked="sequences of different widths, early stops, run-ons and another pad_id")


# ----------------------------------------------------------------------------- exercise 2: context

def _weights(scores, mask):
    s = np.where(mask, scores, -np.inf)
    m = np.max(s, axis=-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(m), m, 0.0)) * mask
    tot = e.sum(-1, keepdims=True)
    return e / np.where(tot == 0, 1.0, tot)


def _context(scores, values, mask):
    return np.einsum("bl,blh->bh", _weights(scores, mask), values)


def _context_cases():
    rng = np.random.default_rng(909)
    out = []
    for B, L, H, lengths, label in [(2, 4, 3, [4, 4], "no padding"),
                                    (3, 5, 2, [5, 2, 3], "padded batch (lengths 5, 2, 3)"),
                                    (2, 6, 4, [1, 4], "a sequence of length 1")]:
        mask = np.arange(L)[None, :] < np.array(lengths)[:, None]
        values = rng.normal(size=(B, L, H))
        values[~mask] = 50.0  # padding is garbage: it must not leak into the context
        out.append(Case((rng.normal(scale=2, size=(B, L)), values, mask), label))
    mask = np.array([[True, True, False], [False, False, False]])
    out.append(Case((rng.normal(size=(2, 3)), rng.normal(size=(2, 3, 2)), mask),
                    "row 1 fully masked", nonfinite="A row with no real token must get a zero context, "
                    "not 0/0 = NaN: give it all-zero weights."))
    return out


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


CONTEXT = Exercise(
    name="context", call="fn(scores, values, mask)",
    arg_names=("scores", "values", "mask"), out_axes=("H",),
    dims=lambda s, v, m: {"B": s.shape[0], "L": s.shape[1], "H": v.shape[2]},
    reference=_context, cases=_context_cases,
    mistakes=(
        Mistake("no_mask", "Your context ignores the mask: padded positions get weight too, and their "
                "values leak into the context. Set their scores to -inf before the softmax.",
                lambda s, v, m: np.einsum("bl,blh->bh", _softmax(s, -1), v)),
        Mistake("masked_after_softmax", "You zeroed the padded weights after the softmax but did not "
                "renormalise, so the real weights no longer sum to one. Mask the scores (-inf) "
                "before the softmax instead.",
                lambda s, v, m: np.einsum("bl,blh->bh", _softmax(s, -1) * m, v)),
        Mistake("inverted_mask", "Your mask is inverted: True means a real token (may attend), so block "
                "where mask is False (scores.masked_fill(~mask, -inf)).",
                lambda s, v, m: _context(s, v, ~m)),
        Mistake("softmax_over_batch", "Your softmax runs over the batch axis (dim 0); the weights of one "
                "sequence run over its positions, the last axis (dim=-1).",
                lambda s, v, m: np.einsum("bl,blh->bh", _softmax(np.where(m, s, -1e9), 0) * m, v)),
    ),
    hint="weights = torch.softmax(scores.masked_fill(~mask, float('-inf')), dim=-1); turn NaN rows "
         "(no real token) into zeros, e.g. torch.nan_to_num(weights, nan=0.0); then "
         "context = torch.einsum('bl,blh->bh', weights, values) (or torch.bmm).",
    checked="padded batches with garbage in the padding, and a fully masked row")

_CHAPTER = Chapter("The fixed-length bottleneck, measured", [EXACT, CONTEXT])


def check_exact_match(fn) -> CheckResult:
    """Check ``fn(predictions (B, T_p), targets (B, T_t), pad_id) -> float``: fraction of rows exactly right."""
    return _CHAPTER.check(EXACT, _tensor_fn(fn))


def check_context(fn) -> CheckResult:
    """Check ``fn(scores (B, L), values (B, L, H), mask (B, L)) -> context (B, H)`` of masked attention."""
    return _CHAPTER.check(CONTEXT, _tensor_fn(fn))


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
