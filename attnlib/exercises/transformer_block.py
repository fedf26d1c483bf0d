"""Checkers for the chapter "The Transformer block": a pre-LN residual sublayer and the position-wise FFN.

In a notebook::

    from attnlib.exercises import transformer_block as ex
    ex.check_pre_ln_sublayer(my_pre_ln_sublayer)   # (x, gamma, beta, W) -> x + LN(x) @ W
    ex.check_feed_forward(my_feed_forward)         # (x, W1, b1, W2, b2) -> relu(x W1 + b1) W2 + b2
    ex.report()

The learner's functions receive float64 torch tensors and return a tensor. The catalogue holds the
classic slips: the norm in the wrong place (post-LN, or normalising the sublayer's output), the
residual missing, LayerNorm over the wrong axis or with the unbiased variance, and, for the FFN,
mixing positions, a missing or misplaced activation, forgotten biases.
"""
from __future__ import annotations

import numpy as np
import torch

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake
from attnlib.exercises.numpy_to_torch import _tensor_fn

__all__ = ["check_pre_ln_sublayer", "check_feed_forward", "report", "reset"]

EPS = 1e-5


def _ln(x, gamma, beta, dim=-1, unbiased=False):
    mu = x.mean(dim, keepdim=True)
    var = x.var(dim, keepdim=True, unbiased=unbiased)
    return (x - mu) / torch.sqrt(var + EPS) * gamma + beta


# ----------------------------------------------------------------------------- exercise 1

def _pre_ln(x, gamma, beta, W):
    return x + _ln(x, gamma, beta) @ W


def _sublayer_cases():
    rng = np.random.default_rng(1313)
    n = lambda *s: rng.normal(size=s)  # noqa: E731
    return [Case((n(2, 5, 4) * 3 + 1, 1 + 0.2 * n(4), 0.3 * n(4), n(4, 4)), "B=2, L=5, d=4"),
            Case((n(1, 3, 6), 1 + 0.2 * n(6), 0.3 * n(6), n(6, 6)), "B=1, L=3, d=6"),
            Case((n(3, 6, 6) - 2, 1 + 0.2 * n(6), 0.3 * n(6), n(6, 6)), "B=3, L=6, d=6 (square)")]


_SUBLAYER_MISTAKES = (
    Mistake("post_ln", "You normalised after the residual addition, LN(x + F(x)): that is post-LN, the "
            "original Transformer's placement. Pre-LN normalises the sublayer's *input* and adds to the "
            "raw x: x + F(LN(x)).", lambda x, g, b, W: _ln(x + x @ W, g, b)),
    Mistake("norm_output", "You normalised the sublayer's output, x + LN(F(x)). The norm goes on the "
            "input of the sublayer: x + F(LN(x)).", lambda x, g, b, W: x + _ln(x @ W, g, b)),
    Mistake("no_residual", "The residual connection is missing: you returned F(LN(x)) only. Add x back: "
            "x + F(LN(x)); this skip path is what carries the gradient through deep stacks.",
            lambda x, g, b, W: _ln(x, g, b) @ W),
    Mistake("ln_over_positions", "Your LayerNorm normalises over the positions (dim=-2), like a norm over "
            "the sequence. LayerNorm normalises each token's features on its own: mean and variance "
            "over dim=-1.", lambda x, g, b, W: x + _ln(x, g, b, dim=-2) @ W),
    Mistake("unbiased", "Your variance is the unbiased one (divides by d - 1). LayerNorm uses the "
            "population variance: x.var(-1, unbiased=False, keepdim=True) (divides by d).",
            lambda x, g, b, W: x + _ln(x, g, b, unbiased=True) @ W),
    Mistake("no_affine", "You forgot LayerNorm's gain and bias: multiply the normalised x by gamma and "
            "add beta before the sublayer.", lambda x, g, b, W: x + _ln(x, 1.0, 0.0) @ W),
)

SUBLAYER = Exercise(
    name="pre_ln_sublayer", call="fn(x, gamma, beta, W)", arg_names=("x", "gamma", "beta", "W"),
    out_axes=("L", "d_model"), dims=lambda x, g, b, W: {"L": x.shape[-2], "d_model": x.shape[-1]},
    reference=_tensor_fn(_pre_ln), cases=_sublayer_cases,
    mistakes=tuple(Mistake(m.name, m.message, _tensor_fn(m.fn), m.hint) for m in _SUBLAYER_MISTAKES),
    hint="mu = x.mean(-1, keepdim=True); var = x.var(-1, unbiased=False, keepdim=True); "
         "h = (x - mu) / torch.sqrt(var + 1e-5) * gamma + beta; return x + h @ W.",
    checked="norm before the sublayer, residual added, population variance, gain and bias")


# ----------------------------------------------------------------------------- exercise 2

def _ffn(x, W1, b1, W2, b2):
    return torch.relu(x @ W1 + b1) @ W2 + b2


def _ffn_cases():
    rng = np.random.default_rng(1414)
    n = lambda *s: rng.normal(size=s)  # noqa: E731
    return [Case((n(2, 3, 4), n(4, 8), n(8), n(8, 4), n(4)), "B=2, L=3, d_model=4, d_ff=8"),
            Case((n(1, 5, 3), n(3, 6), n(6), n(6, 3), n(3)), "B=1, L=5, d_model=3, d_ff=6"),
            Case((n(2, 4, 4), n(4, 8), n(8), n(8, 4), n(4)),
                 "B=2, L=4, d_model=4 (L = d_model: shapes cannot tell positions from features)")]


_FFN_MISTAKES = (
    Mistake("across_positions", "Your FFN mixes positions: it multiplies along the sequence axis "
            "(x.transpose(-2, -1) @ W1 ...). The FFN is position-wise: the same MLP on each token's "
            "feature vector, x @ W1 with x of shape (B, L, d_model).",
            lambda x, W1, b1, W2, b2: (torch.relu(x.transpose(-2, -1) @ W1 + b1) @ W2 + b2)
            .transpose(-2, -1)),
    Mistake("no_activation", "Your FFN has no nonlinearity: two linear layers in a row are just one "
            "linear layer. Apply ReLU to the hidden layer: torch.relu(x @ W1 + b1) @ W2 + b2.",
            lambda x, W1, b1, W2, b2: (x @ W1 + b1) @ W2 + b2),
    Mistake("activation_at_end", "Your ReLU is on the output instead of the hidden layer. The output must "
            "be able to go negative: torch.relu(x @ W1 + b1) @ W2 + b2.",
            lambda x, W1, b1, W2, b2: torch.relu((x @ W1 + b1) @ W2 + b2)),
    Mistake("bias_after_relu", "You added b1 after the ReLU. The bias belongs inside: relu(x @ W1 + b1).",
            lambda x, W1, b1, W2, b2: (torch.relu(x @ W1) + b1) @ W2 + b2),
    Mistake("no_biases", "You left out the biases b1 and b2.",
            lambda x, W1, b1, W2, b2: torch.relu(x @ W1) @ W2),
)

FFN = Exercise(
    name="feed_forward", call="fn(x, W1, b1, W2, b2)", arg_names=("x", "W1", "b1", "W2", "b2"),
    out_axes=("L", "d_model"), dims=lambda x, *w: {"L": x.shape[-2], "d_model": x.shape[-1]},
    reference=_tensor_fn(_ffn), cases=_ffn_cases,
    mistakes=tuple(Mistake(m.name, m.message, _tensor_fn(m.fn), m.hint) for m in _FFN_MISTAKES),
    hint="return torch.relu(x @ W1 + b1) @ W2 + b2  (x @ W1 acts on the last axis, the features of "
         "each position).",
    checked="position-wise, ReLU on the hidden layer, both biases, including L = d_model")

_CHAPTER = Chapter("The Transformer block", [SUBLAYER, FFN])


def check_pre_ln_sublayer(fn) -> CheckResult:
    """Check ``fn(x, gamma, beta, W) -> x + LN(x) @ W`` on float64 tensors.

    ``x`` is (B, L, d), ``gamma`` and ``beta`` (d,), ``W`` (d, d) (the sublayer is a linear map);
    LayerNorm over the last axis with eps = 1e-5 and the population variance.
    """
    return _CHAPTER.check(SUBLAYER, _tensor_fn(fn))


def check_feed_forward(fn) -> CheckResult:
    """Check ``fn(x, W1, b1, W2, b2) -> relu(x @ W1 + b1) @ W2 + b2``: x (B, L, d_model),
    W1 (d_model, d_ff), b1 (d_ff,), W2 (d_ff, d_model), b2 (d_model,)."""
    return _CHAPTER.check(FFN, _tensor_fn(fn))


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
