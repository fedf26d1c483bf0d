r"""Checkers for "The fixed-length bottleneck, measured": exact match with padding, the masked context
and the fixed-length vector.

In a notebook::

    from attnlib.exercises import bottleneck as ex
    ex.check_exact_match(my_exact_match)   # my_exact_match(predictions, targets, pad_id) -> float
    ex.check_context(my_context)           # my_context(scores, values, mask) -> (B, H)
    ex.check_summary(my_summary)           # my_summary(states, lengths) -> c (B, 2H)
    ex.report()

The learner's functions receive **torch tensors** (int64 token ids and lengths; float64 scores,
values and states; a bool mask, True = real token) and may return a tensor or a Python float.

The third exercise is the bottleneck itself: the fixed-length vector
:math:`c = [\overrightarrow{h}_L; \overleftarrow{h}_1]` that a decoder without attention gets,
taken from a padded batch of bidirectional encoder states (zeros at padding, as
:class:`~attnlib.torch.GRUEncoder` returns them). Its catalogue: the last column of the padded
batch (padding for the shorter sequences), the forward half from the last column, both halves at
the last real position or both at the first, the halves swapped, and the mean of the states.
"""
from __future__ import annotations

import numpy as np
import torch

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake
from attnlib.exercises.numpy_to_torch import _tensor_fn

__all__ = ["check_exact_match", "check_context", "check_summary", "report", "reset"]



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


# ----------------------------------------------------------------------------- exercise 3: the fixed-length vector

def _summary(states, lengths):
    """c = [forward state at the last real position; backward state at position 0], (B, 2H).

    ``states`` (B, L, 2H) holds [forward; backward] at every position, ``lengths`` (B,) the real lengths.
    """
    H = states.shape[-1] // 2
    last = states[np.arange(states.shape[0]), lengths - 1]          # (B, 2H): each row's last real state
    return np.concatenate([last[:, :H], states[:, 0, H:]], axis=-1)


def _encoder_case():
    """States of a real bidirectional GRUEncoder over a padded batch (float64, seeded)."""
    from attnlib.torch import GRUEncoder

    lengths = np.array([6, 3, 5])
    with torch.random.fork_rng(devices=[]):  # building the encoder draws weights: leave the learner's RNG alone
        torch.manual_seed(9)
        encoder = GRUEncoder(12, 5, 3, bidirectional=True).double().eval()
        src = torch.randint(4, 12, (3, 6))
    src[torch.arange(6)[None, :] >= torch.from_numpy(lengths)[:, None]] = 0      # <pad>
    with torch.no_grad():
        states, _ = encoder(src, torch.from_numpy(lengths))
    return states.numpy(), lengths


_INDEX_NOTE = ("If you indexed the positions with lengths: a row's last real position is lengths - 1 "
               "(positions count from 0), and lengths itself is out of range for the longest sequence.")


def _summary_cases():
    rng = np.random.default_rng(9119)
    out = [Case(_encoder_case(), "states of a bidirectional GRUEncoder, H=3, lengths 6, 3, 5", note=_INDEX_NOTE)]
    for B, L, H, lengths, label in [(3, 4, 2, [4, 1, 3], "a sequence of length 1 (lengths 4, 1, 3)"),
                                    (2, 5, 3, [5, 5], "no padding (lengths 5, 5)"),
                                    (3, 6, 4, [2, 6, 4], "padded batch (lengths 2, 6, 4)")]:
        lengths = np.array(lengths)
        states = rng.normal(size=(B, L, 2 * H))
        states[np.arange(L)[None, :] >= lengths[:, None]] = 0.0   # the encoder's states are zeros at padding
        out.append(Case((states, lengths), label, note=_INDEX_NOTE))
    return out


def _halves(forward, backward):
    return lambda states, lengths: (lambda H: np.concatenate(
        [forward(states, lengths)[:, :H], backward(states, lengths)[:, H:]], axis=-1))(states.shape[-1] // 2)


def _last_real(states, lengths):
    return states[np.arange(states.shape[0]), lengths - 1]


def _first(states, lengths):
    return states[:, 0]


def _last_column(states, lengths):
    return states[:, -1]


SUMMARY = Exercise(
    name="summary", call="fn(states, lengths)", arg_names=("states", "lengths"), out_axes=("2H",),
    dims=lambda states, lengths: {"B": states.shape[0], "L": states.shape[1], "2H": states.shape[2]},
    reference=_summary, cases=_summary_cases,
    mistakes=(
        Mistake("last_column", "You took the last column, states[:, -1]. In a padded batch that is the last "
                "real position only for the longest sequences; for the others it is padding (zeros). And "
                "its backward half has read only the last token. Take the forward half at each row's own "
                "last real position, lengths - 1, and the backward half at position 0.",
                _last_column),
        Mistake("forward_last_column", "Your backward half is right, but the forward half comes from the last "
                "column, states[:, -1, :H]: for a sequence shorter than the batch that is padding (zeros). "
                "Index each row at its own last real position: states[torch.arange(B), lengths - 1, :H].",
                _halves(_last_column, _first)),
        Mistake("both_at_last_real", "You took both halves at the last real position. The forward half is "
                "right there, but the backward direction reads right to left: at the last position it has "
                "read one token. Its summary of the whole sequence is at position 0: states[:, 0, H:].",
                _last_real),
        Mistake("both_at_first", "You took both halves at position 0. The backward half is right there, but "
                "the forward direction reads left to right: at position 0 it has read one token. Its "
                "summary is at each row's last real position, lengths - 1.",
                _first),
        Mistake("backward_first", "Your halves are swapped: c is [forward; backward], the forward state "
                "(at lengths - 1) in the first H features and the backward state (at 0) in the last H, as "
                "the encoder's states are [forward; backward] at every position.",
                lambda states, lengths: np.roll(_summary(states, lengths), states.shape[-1] // 2, axis=-1)),
        Mistake("mean_of_states", "You averaged the states over the real positions. That is a summary too "
                "(mean pooling), but not the one this decoder gets: c is the two directions' *final* "
                "states, the forward one at the last real position and the backward one at position 0.",
                lambda states, lengths: states.sum(axis=1) / lengths[:, None]),
    ),
    hint="H = states.shape[-1] // 2. The forward half after the last real token: "
         "states[torch.arange(B), lengths - 1, :H]; the backward half after the first token (it reads "
         "right to left): states[:, 0, H:]; then torch.cat([forward, backward], dim=-1).",
    checked="a real GRUEncoder's states, padded batches, a sequence of length 1 and no padding")

_CHAPTER = Chapter("The fixed-length bottleneck, measured", [EXACT, CONTEXT, SUMMARY])


def check_exact_match(fn) -> CheckResult:
    """Check ``fn(predictions (B, T_p), targets (B, T_t), pad_id) -> float``: fraction of rows exactly right."""
    return _CHAPTER.check(EXACT, _tensor_fn(fn))


def check_context(fn) -> CheckResult:
    """Check ``fn(scores (B, L), values (B, L, H), mask (B, L)) -> context (B, H)`` of masked attention."""
    return _CHAPTER.check(CONTEXT, _tensor_fn(fn))


def check_summary(fn) -> CheckResult:
    """Check ``fn(states (B, L, 2H), lengths (B,)) -> c (B, 2H)``, the fixed-length vector
    [forward state at lengths - 1; backward state at 0] of a padded batch."""
    return _CHAPTER.check(SUMMARY, _tensor_fn(fn))


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
