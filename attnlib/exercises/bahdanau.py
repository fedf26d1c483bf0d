"""Checkers for "Bahdanau (additive) attention": the weights of one decoder step, the context, and
the annotations of a bidirectional encoder built from two one-direction GRUs.

In a notebook::

    from attnlib.exercises import bahdanau as ex
    ex.check_step_weights(my_step_weights)   # (s_prev, h, mask, W_q, W_k, v) -> weights (B, L)
    ex.check_context(my_context)             # (weights, forward, backward) -> context (B, 2H)
    ex.check_annotations(my_annotations)     # (forward, backward_reversed, lengths) -> h (B, L, 2H)
    ex.report()

The learner's functions receive **torch tensors** (float64; a bool mask, True = real token; int64
lengths) and return a tensor.

The third exercise is what packing does inside ``GRUEncoder``: the backward GRU was run over each
source reversed *within its length* (padding left at the end, and run over), and its states must be
put back at the positions they describe, zeros at padding, next to the forward ones. Its catalogue:
the whole padded width flipped (padding moved to the front), the states not reversed at all, the
halves swapped, and the states computed over the padding kept.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnlib.exercises.bottleneck import _tensor_fn
from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake

__all__ = ["check_step_weights", "check_context", "check_annotations", "report", "reset"]


def _masked_softmax(e, mask):
    s = np.where(mask, e, -np.inf)
    m = np.max(s, axis=-1, keepdims=True)
    w = np.exp(s - np.where(np.isfinite(m), m, 0.0)) * mask
    tot = w.sum(-1, keepdims=True)
    return w / np.where(tot == 0, 1.0, tot)


def _softmax(x, axis=-1):
    w = np.exp(x - x.max(axis=axis, keepdims=True))
    return w / w.sum(axis=axis, keepdims=True)


# ----------------------------------------------------------------------------- exercise 1: step weights

def _scores(s_prev, h, W_q, W_k, v):
    return np.tanh((s_prev @ W_q)[:, None, :] + h @ W_k) @ v          # (B, L)


def _step_weights(s_prev, h, mask, W_q, W_k, v):
    return _masked_softmax(_scores(s_prev, h, W_q, W_k, v), mask)


def _weights_cases():
    rng = np.random.default_rng(1010)
    out = []
    for B, L, H_dec, H_enc, A, lengths, label in [
            (2, 4, 3, 4, 5, [4, 4], "no padding"),
            (3, 6, 4, 6, 3, [6, 2, 4], "padded batch (lengths 6, 2, 4)"),
            (2, 5, 2, 4, 4, [1, 5], "a source of length 1")]:
        mask = np.arange(L)[None, :] < np.array(lengths)[:, None]
        h = rng.normal(size=(B, L, H_enc))
        h[~mask] = 3.0  # padding is garbage here: it must get weight 0
        out.append(Case((rng.normal(size=(B, H_dec)), h, mask, rng.normal(size=(H_dec, A)),
                         rng.normal(size=(H_enc, A)), rng.normal(scale=2.0, size=A)), label))
    return out


WEIGHTS = Exercise(
    name="step_weights", call="fn(s_prev, h, mask, W_q, W_k, v)",
    arg_names=("s_prev", "h", "mask", "W_q", "W_k", "v"), out_axes=("L",),
    dims=lambda s, h, m, wq, wk, v: {"B": h.shape[0], "L": h.shape[1], "H_enc": h.shape[2]},
    reference=_step_weights, cases=_weights_cases,
    mistakes=(
        Mistake("no_tanh", "You left out the tanh: v . (s W_q + h W_k) is linear in s, so the score "
                "of every position shifts by the same v . (s W_q), which the softmax ignores: the "
                "decoder state could not change the weights. Apply torch.tanh before the dot with v.",
                lambda s, h, m, wq, wk, v: _masked_softmax(((s @ wq)[:, None, :] + h @ wk) @ v, m)),
        Mistake("no_mask", "Your weights ignore the mask: padded positions get weight too. Set their "
                "scores to -inf before the softmax (scores.masked_fill(~mask, float('-inf'))).",
                lambda s, h, m, wq, wk, v: _softmax(_scores(s, h, wq, wk, v))),
        Mistake("masked_after_softmax", "You zeroed the padded weights after the softmax without "
                "renormalising, so the real weights no longer sum to one. Mask the scores before.",
                lambda s, h, m, wq, wk, v: _softmax(_scores(s, h, wq, wk, v)) * m),
        Mistake("inverted_mask", "Your mask is inverted: True means a real token (may attend); block "
                "where the mask is False.",
                lambda s, h, m, wq, wk, v: _masked_softmax(_scores(s, h, wq, wk, v), ~m)),
        Mistake("softmax_over_batch", "Your softmax runs over the batch axis (dim 0); the weights of one "
                "example run over its source positions, the last axis (dim=-1).",
                lambda s, h, m, wq, wk, v: _softmax(np.where(m, _scores(s, h, wq, wk, v), -1e9), 0) * m),
    ),
    hint="q = s_prev @ W_q has shape (B, A) and k = h @ W_k has shape (B, L, A): add them with "
         "q[:, None, :] + k (broadcast over L), apply torch.tanh, then @ v gives the scores (B, L). "
         "Then torch.softmax(scores.masked_fill(~mask, float('-inf')), dim=-1).",
    checked="padded batches with garbage in the padding, and a source of length 1")


# ----------------------------------------------------------------------------- exercise 2: context

def _context(weights, forward, backward):
    return np.einsum("bl,blh->bh", weights, np.concatenate([forward, backward], axis=-1))


def _flip_real(x, mask):
    out = x.copy()
    for b, n in enumerate(mask.sum(-1)):
        out[b, :n] = x[b, :n][::-1]
    return out


def _context_cases():
    rng = np.random.default_rng(1011)
    out = []
    for B, L, H, lengths, label in [(2, 4, 3, [4, 4], "no padding"),
                                    (3, 5, 2, [5, 2, 3], "padded batch (lengths 5, 2, 3)"),
                                    (2, 6, 3, [6, 1], "a source of length 1")]:
        mask = np.arange(L)[None, :] < np.array(lengths)[:, None]
        fwd, bwd = rng.normal(size=(B, L, H)), rng.normal(size=(B, L, H))
        fwd[~mask], bwd[~mask] = 0.0, 0.0  # the encoder's states are zeros at padding
        w = _masked_softmax(rng.normal(scale=2.0, size=(B, L)), mask)
        out.append(Case((w, fwd, bwd), label))
    return out


def _mask_of(w):
    return w > 0


CONTEXT = Exercise(
    name="context", call="fn(weights, forward, backward)",
    arg_names=("weights", "forward", "backward"), out_axes=("2H",),
    dims=lambda w, f, b: {"B": w.shape[0], "L": w.shape[1], "H": f.shape[2], "2H": 2 * f.shape[2]},
    reference=_context, cases=_context_cases,
    mistakes=(
        Mistake("backward_first", "Your annotations are [backward; forward]; the convention here (and "
                "the encoder's) is h_j = [forward_j; backward_j]: concatenate in that order.",
                lambda w, f, b: _context(w, b, f)),
        Mistake("backward_reversed", "You reversed the backward states in time. They are already "
                "stored at the position they describe (backward[:, j] has read x_j ... x_L), so "
                "h_j = [forward[:, j]; backward[:, j]] needs no flip.",
                lambda w, f, b: _context(w, f, _flip_real(b, _mask_of(w) | (f != 0).any(-1)))),
        Mistake("mean", "You averaged the annotations instead of weighting them: the context is "
                "sum_j weights[:, j] * h_j.",
                lambda w, f, b: np.concatenate([f, b], -1).sum(1) / (w > 0).sum(1, keepdims=True)),
    ),
    hint="h = torch.cat([forward, backward], dim=-1) has shape (B, L, 2H); the context is "
         "torch.einsum('bl,blh->bh', weights, h), or torch.bmm(weights.unsqueeze(1), h).squeeze(1).",
    checked="padded batches and a source of length 1")


# ----------------------------------------------------------------------------- exercise 3: annotations

def _backward_in_place(backward_reversed, lengths):
    """The backward states moved to the positions they describe, (B, L, H), zeros at padding.

    Row ``b`` of ``backward_reversed`` was computed over that source reversed within its length
    ``n``, so its step ``t < n`` describes position ``n - 1 - t``.
    """
    j = np.arange(backward_reversed.shape[1])[None, :]
    real = j < lengths[:, None]                                        # (B, L)
    step = np.where(real, lengths[:, None] - 1 - j, 0)                 # the step that describes j
    return np.take_along_axis(backward_reversed, step[..., None], axis=1) * real[..., None]


def _annotations(forward, backward_reversed, lengths):
    """h_j = [forward_j; backward_j], (B, L, 2H), from the forward states and the reversed backward run."""
    return np.concatenate([forward, _backward_in_place(backward_reversed, lengths)], axis=-1)


def _gru_case():
    """A real GRU's two directions: forward packed, backward re-run by hand on the reversed sources.

    The backward run uses the bidirectional GRU's own reverse-direction weights, unpacked, over each
    source reversed within its length, so it runs on over the padding. (The checker's reference,
    applied to it, gives the packed bidirectional GRU's states: see the tests.)
    """
    lengths, (B, L, E, H) = np.array([6, 3, 4]), (3, 6, 4, 3)
    with torch.random.fork_rng(devices=[]):  # building GRUs draws weights: leave the learner's RNG alone
        torch.manual_seed(10)
        both = torch.nn.GRU(E, H, batch_first=True, bidirectional=True).double()
        back = torch.nn.GRU(E, H, batch_first=True).double()
        x = torch.randn(B, L, E, dtype=torch.float64)
    lens = torch.from_numpy(lengths)
    x = x.masked_fill(torch.arange(L)[None, :, None] >= lens[:, None, None], 0.0)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(back, name).copy_(getattr(both, name + "_reverse"))
        packed, _ = both(pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False))
        states, _ = pad_packed_sequence(packed, batch_first=True, total_length=L)
        x_rev = x.clone()
        for b, n in enumerate(lengths):
            x_rev[b, :n] = x[b, :n].flip(0)
        backward_reversed, _ = back(x_rev)
    return states[..., :H].numpy(), backward_reversed.numpy(), lengths


def _annotation_cases():
    rng = np.random.default_rng(1012)
    out = [Case(_gru_case(), "a real GRU, B=3, L=6, H=3, lengths 6, 3, 4")]
    for B, L, H, lengths, label in [(2, 5, 2, [5, 2], "padded batch (lengths 5, 2)"),
                                    (2, 4, 3, [4, 4], "no padding (lengths 4, 4)"),
                                    (3, 4, 2, [1, 4, 3], "a source of length 1 (lengths 1, 4, 3)")]:
        lengths = np.array(lengths)
        pad = np.arange(L)[None, :] >= lengths[:, None]
        forward = rng.normal(size=(B, L, H))
        forward[pad] = 0.0                                         # packed: zeros at padding
        backward_reversed = rng.normal(size=(B, L, H))
        backward_reversed[pad] += 3.0                              # run on over the padding: junk
        out.append(Case((forward, backward_reversed, lengths), label))
    return out


ANNOTATIONS = Exercise(
    name="annotations", call="fn(forward, backward_reversed, lengths)",
    arg_names=("forward", "backward_reversed", "lengths"), out_axes=("L", "2H"),
    dims=lambda f, br, lengths: {"B": f.shape[0], "L": f.shape[1], "H": f.shape[2], "2H": 2 * f.shape[2]},
    reference=_annotations, cases=_annotation_cases,
    mistakes=(
        Mistake("flipped_whole_width", "You flipped the whole padded width (torch.flip(backward_reversed, "
                "dims=[1])). A shorter source's reversed run has its real steps first and the padding after, "
                "so flipping the whole row moves the padding to the front and shifts every state by the "
                "amount of padding. Reverse only the first lengths[b] steps of each row.",
                lambda f, br, lengths: np.concatenate([f, br[:, ::-1]], axis=-1)),
        Mistake("not_reversed", "You used the backward states in the order they were computed. Step t of "
                "the reversed run has read x_n, ..., x_(n-t), so it describes position n - 1 - t, not t: "
                "reverse the first n = lengths[b] steps of each row to put every state where it belongs.",
                lambda f, br, lengths: np.concatenate([f, br], axis=-1)),
        Mistake("backward_first", "Your annotations are [backward; forward]. The convention here (and the "
                "encoder's) is h_j = [forward_j; backward_j]: the forward states come first.",
                lambda f, br, lengths: np.concatenate([_backward_in_place(br, lengths), f], axis=-1)),
        Mistake("padding_kept", "The real positions are right, but at the padding you kept what the backward "
                "GRU computed there (it ran on over the padding after the reversed source). Those states "
                "describe no token: make the backward half zero at the padding, as the encoder does.",
                lambda f, br, lengths: np.concatenate(
                    [f, np.where((np.arange(f.shape[1])[None, :] < lengths[:, None])[..., None],
                                 _backward_in_place(br, lengths), br)], axis=-1)),
    ),
    hint="For each row b with n = int(lengths[b]) real positions: backward[b, :n] = "
         "backward_reversed[b, :n].flip(0), so that position j gets step n - 1 - j, and zeros after them "
         "(start from torch.zeros_like(backward_reversed)); then torch.cat([forward, backward], dim=-1).",
    checked="a real GRU's two directions, padded batches, a source of length 1 and no padding")

_CHAPTER = Chapter("Bahdanau (additive) attention", [WEIGHTS, CONTEXT, ANNOTATIONS])


def check_step_weights(fn) -> CheckResult:
    """Check ``fn(s_prev (B, H_dec), h (B, L, H_enc), mask (B, L), W_q (H_dec, A), W_k (H_enc, A), v (A,))
    -> weights (B, L)``, the additive attention weights of one decoder step."""
    return _CHAPTER.check(WEIGHTS, _tensor_fn(fn))


def check_context(fn) -> CheckResult:
    """Check ``fn(weights (B, L), forward (B, L, H), backward (B, L, H)) -> context (B, 2H)``."""
    return _CHAPTER.check(CONTEXT, _tensor_fn(fn))


def check_annotations(fn) -> CheckResult:
    """Check ``fn(forward (B, L, H), backward_reversed (B, L, H), lengths (B,)) -> h (B, L, 2H)``: the
    backward states put back at the positions they describe, zeros at padding, after the forward ones."""
    return _CHAPTER.check(ANNOTATIONS, _tensor_fn(fn))


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
