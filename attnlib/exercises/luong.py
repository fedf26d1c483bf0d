"""Checkers for "Luong attention": the *general* score's weights, local-p's Gaussian window, and
local-p's predicted centre.

In a notebook::

    from attnlib.exercises import luong as ex
    ex.check_general_weights(my_general_weights)       # (s, h, mask, W) -> weights (B, L)
    ex.check_local_p_weights(my_local_p_weights)       # (scores, mask, p, D) -> weights (B, L)
    ex.check_predicted_centre(my_predicted_centre)     # (s, mask, W_p, v_p) -> p_t (B,)
    ex.report()

The learner's functions receive **torch tensors** (float64; a bool mask, True = real token; ``D``
an int) and return a tensor.

The third exercise is the centre local-p predicts, p_t = S sigmoid(v_p^T tanh(W_p s_t)), with S
each example's own source length (the mask's row sum). Its catalogue: the padded length L for S,
S - 1 for S, the scale S forgotten, the tanh or the sigmoid left out, and W_p transposed.
"""
from __future__ import annotations

import numpy as np

from attnlib.exercises.bottleneck import _tensor_fn
from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake

__all__ = ["check_general_weights", "check_local_p_weights", "check_predicted_centre", "report", "reset"]


def _masked_softmax(e, mask):
    s = np.where(mask, e, -np.inf)
    m = np.max(s, axis=-1, keepdims=True)
    w = np.exp(s - np.where(np.isfinite(m), m, 0.0)) * mask
    tot = w.sum(-1, keepdims=True)
    return w / np.where(tot == 0, 1.0, tot)


def _softmax(x, axis=-1):
    w = np.exp(x - x.max(axis=axis, keepdims=True))
    return w / w.sum(axis=axis, keepdims=True)


def _lengths_mask(lengths, L):
    return np.arange(L)[None, :] < np.array(lengths)[:, None]


# ----------------------------------------------------------------------------- exercise 1: general

def _general(s, h, mask, W):
    return _masked_softmax(np.einsum("bd,de,ble->bl", s, W, h), mask)


def _general_cases():
    rng = np.random.default_rng(1110)
    out = []
    for B, L, Hd, He, lengths, label in [(2, 4, 3, 3, [4, 4], "square W, no padding"),
                                         (3, 5, 2, 4, [5, 2, 3], "W of shape (2, 4), padded batch"),
                                         (2, 6, 4, 3, [1, 6], "W of shape (4, 3), a source of length 1")]:
        mask = _lengths_mask(lengths, L)
        h = rng.normal(size=(B, L, He))
        h[~mask] = 2.0
        out.append(Case((rng.normal(size=(B, Hd)), h, mask, rng.normal(size=(Hd, He))), label))
    return out


GENERAL = Exercise(
    name="general_weights", call="fn(s, h, mask, W)", arg_names=("s", "h", "mask", "W"),
    out_axes=("L",), dims=lambda s, h, m, W: {"B": h.shape[0], "L": h.shape[1]},
    reference=_general, cases=_general_cases,
    mistakes=(
        Mistake("transposed_W", "You used W transposed: the score is s . (W h_j), i.e. s_t^T W h_j "
                "with W of shape (H_dec, H_enc). Compute h @ W.T (B, L, H_dec), then dot with s.",
                lambda s, h, m, W: _masked_softmax(np.einsum("bd,ed,ble->bl", s, W, h), m)),
        Mistake("dot", "You computed the dot score s . h_j and left W out: general puts W between them.",
                lambda s, h, m, W: _masked_softmax(np.einsum("bd,bld->bl", s, h), m)),
        Mistake("no_mask", "Your weights ignore the mask: padded positions get weight. Set their scores "
                "to -inf before the softmax.",
                lambda s, h, m, W: _softmax(np.einsum("bd,de,ble->bl", s, W, h))),
        Mistake("masked_after_softmax", "You zeroed the padded weights after the softmax without "
                "renormalising. Mask the scores before the softmax.",
                lambda s, h, m, W: _softmax(np.einsum("bd,de,ble->bl", s, W, h)) * m),
    ),
    hint="scores = torch.einsum('bd,de,ble->bl', s, W, h) (or ((h @ W.T) @ s[:, :, None])[..., 0]); "
         "then torch.softmax(scores.masked_fill(~mask, float('-inf')), dim=-1).",
    checked="square and rectangular W, padded batches, a source of length 1")


# ----------------------------------------------------------------------------- exercise 2: local-p

def _window(p, L, D):
    return np.abs(np.arange(L)[None, :] - p[:, None]) <= D


def _gauss(p, L, sigma):
    return np.exp(-(np.arange(L)[None, :] - p[:, None]) ** 2 / (2 * sigma ** 2))


def _local_p(scores, mask, p, D):
    L = scores.shape[1]
    return _masked_softmax(scores, mask & _window(p, L, D)) * _gauss(p, L, D / 2)


def _local_cases():
    rng = np.random.default_rng(1111)
    out = []
    for B, L, lengths, p, D, label in [
            (2, 10, [10, 10], [4.3, 7.0], 2, "no padding, D = 2"),
            (3, 12, [12, 8, 5], [2.5, 6.2, 4.9], 3, "padded batch, D = 3, windows cut by the padding"),
            (2, 9, [9, 9], [0.0, 9.0], 4, "p_t at both ends (0 and S), D = 4")]:
        mask = _lengths_mask(lengths, L)
        out.append(Case((rng.normal(scale=2.0, size=(B, L)), mask, np.array(p), D), label))
    return out


LOCAL_P = Exercise(
    name="local_p_weights", call="fn(scores, mask, p, D)", arg_names=("scores", "mask", "p", "D"),
    out_axes=("L",), dims=lambda s, m, p, D: {"B": s.shape[0], "L": s.shape[1]},
    reference=_local_p, cases=_local_cases,
    mistakes=(
        Mistake("sigma_D", "Your Gaussian is too wide: its standard deviation is D / 2, so the exponent "
                "is -(j - p)^2 / (2 (D/2)^2), not -(j - p)^2 / (2 D^2).",
                lambda s, m, p, D: _masked_softmax(s, m & _window(p, s.shape[1], D)) * _gauss(p, s.shape[1], D)),
        Mistake("renormalised", "You renormalised after multiplying by the Gaussian. Luong et al. do not: "
                "the weights are the window's softmax times the Gaussian factor, and sum to less than 1.",
                lambda s, m, p, D: (lambda w: w / w.sum(-1, keepdims=True))(_local_p(s, m, p, D))),
        Mistake("no_window", "You took the softmax over every real position: restrict it to the window "
                "|j - p_t| <= D (and the real tokens) before normalising.",
                lambda s, m, p, D: _masked_softmax(s, m) * _gauss(p, s.shape[1], D / 2)),
        Mistake("no_gaussian", "You forgot the Gaussian factor exp(-(j - p_t)^2 / (2 (D/2)^2)).",
                lambda s, m, p, D: _masked_softmax(s, m & _window(p, s.shape[1], D))),
        Mistake("no_mask", "Your window ignores the padding mask: allow only positions that are real "
                "tokens *and* inside the window.",
                lambda s, m, p, D: _masked_softmax(s, _window(p, s.shape[1], D)) * _gauss(p, s.shape[1], D / 2)),
    ),
    hint="j = torch.arange(L); inside = ((j[None, :] - p[:, None]).abs() <= D) & mask; "
         "align = torch.softmax(scores.masked_fill(~inside, float('-inf')), dim=-1); multiply by "
         "torch.exp(-(j[None, :] - p[:, None]) ** 2 / (2 * (D / 2) ** 2)). No renormalisation.",
    checked="windows cut by the padding and by both ends, several D")

# ----------------------------------------------------------------------------- exercise 3: p_t

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _centre_logit(s, W_p, v_p):
    """v_p . tanh(W_p s_t) for every row s_t of s: (B,)."""
    return np.tanh(s @ W_p.T) @ v_p


def _centre(s, mask, W_p, v_p):
    return mask.sum(-1) * _sigmoid(_centre_logit(s, W_p, v_p))


def _centre_cases():
    rng = np.random.default_rng(1112)
    out = []
    # W_p is square (hidden = H_dec, attnlib's default), so a transposed W_p runs and can be named.
    for H, L, lengths, label in [(3, 5, [5, 5], "no padding"),
                                 (4, 7, [7, 3, 5], "padded batch, lengths 7, 3, 5"),
                                 (3, 6, [6, 1], "a source of length 1 (p_t in [0, 1])"),
                                 (5, 8, [4], "one example (B = 1), half of it padding")]:
        B = len(lengths)
        W_p = rng.normal(size=(H, H))
        out.append(Case((rng.normal(size=(B, H)), _lengths_mask(lengths, L), W_p, rng.normal(size=H)), label))
    return out


CENTRE = Exercise(
    name="predicted_centre", call="fn(s, mask, W_p, v_p)", arg_names=("s", "mask", "W_p", "v_p"),
    out_axes=(), dims=lambda s, m, W, v: {"B": s.shape[0]},
    reference=_centre, cases=_centre_cases,
    mistakes=(
        Mistake("padded_length", "You scaled by the padded length L = mask.shape[1]. S is each example's "
                "own source length, the number of real tokens: S = mask.sum(-1). With L, a short source "
                "can get a centre in its padding.",
                lambda s, m, W, v: m.shape[-1] * _sigmoid(_centre_logit(s, W, v))),
        Mistake("last_index", "You scaled by S - 1, the index of the last position. Luong et al. scale by "
                "the source length itself: p_t = S sigmoid(...) lies in [0, S].",
                lambda s, m, W, v: (m.sum(-1) - 1) * _sigmoid(_centre_logit(s, W, v))),
        Mistake("no_scale", "Your centres lie in [0, 1]: the sigmoid gives a fraction of the source, and you "
                "forgot to multiply it by the source length S = mask.sum(-1).",
                lambda s, m, W, v: _sigmoid(_centre_logit(s, W, v))),
        Mistake("no_tanh", "You left out the tanh: the position network is v_p . tanh(W_p s_t), a hidden "
                "layer with a tanh, then the sigmoid.",
                lambda s, m, W, v: m.sum(-1) * _sigmoid((s @ W.T) @ v)),
        Mistake("no_sigmoid", "You left out the sigmoid, so your centres can be negative or beyond the end "
                "of the source. The sigmoid squashes v_p . tanh(W_p s_t) into (0, 1) before the scaling by S.",
                lambda s, m, W, v: m.sum(-1) * _centre_logit(s, W, v)),
        Mistake("transposed_W", "You used W_p transposed: W_p s_t multiplies the column s_t, so for a batch of "
                "rows s (B, H_dec) it is s @ W_p.T, not s @ W_p.",
                lambda s, m, W, v: m.sum(-1) * _sigmoid(np.tanh(s @ W) @ v)),
    ),
    hint="S = mask.sum(-1); return S * torch.sigmoid(torch.tanh(s @ W_p.T) @ v_p)  "
         "(W_p s_t for each row s_t is s @ W_p.T).",
    checked="padded batches, a source of length 1 and a single example")

_CHAPTER = Chapter("Luong attention", [GENERAL, LOCAL_P, CENTRE])


def check_general_weights(fn) -> CheckResult:
    """Check ``fn(s (B, H_dec), h (B, L, H_enc), mask (B, L), W (H_dec, H_enc)) -> weights (B, L)``."""
    return _CHAPTER.check(GENERAL, _tensor_fn(fn))


def check_local_p_weights(fn) -> CheckResult:
    """Check ``fn(scores (B, L), mask (B, L), p (B,), D) -> weights (B, L)`` of local-p attention."""
    return _CHAPTER.check(LOCAL_P, _tensor_fn(fn))


def check_predicted_centre(fn) -> CheckResult:
    """Check ``fn(s (B, H_dec), mask (B, L), W_p (hidden, H_dec), v_p (hidden,)) -> p (B,)``:
    local-p's centre ``S * sigmoid(v_p . tanh(W_p s_t))``, S the number of real tokens."""
    return _CHAPTER.check(CENTRE, _tensor_fn(fn))


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
