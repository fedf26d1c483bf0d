"""Checkers for the chapter "The Transformer block": a pre-LN residual sublayer, the position-wise FFN,
and a prediction of how many parameters one encoder layer holds.

In a notebook::

    from attnlib.exercises import transformer_block as ex
    ex.check_pre_ln_sublayer(my_pre_ln_sublayer)   # (x, gamma, beta, W) -> x + LN(x) @ W
    ex.check_feed_forward(my_feed_forward)         # (x, W1, b1, W2, b2) -> relu(x W1 + b1) W2 + b2
    ex.check_layer_parameters(my_layer_parameters) # a number, or a function returning it
    ex.report()

The learner's functions receive float64 torch tensors and return a tensor. The catalogue holds the
classic slips: the norm in the wrong place (post-LN, or normalising the sublayer's output), the
residual missing, LayerNorm over the wrong axis or with the unbiased variance, and, for the FFN,
mixing positions, a missing or misplaced activation, forgotten biases.

The third is a :class:`~attnlib.exercises.core.Prediction` ("predict, then run"): the number of
parameters of ``EncoderLayer(d_model=64, num_heads=4, d_ff=192)``. ``measure()`` counts them as the
chapter does, with ``sublayer_parameter_counts`` (the sum of ``numel`` over a freshly built layer);
a count is exact, so the prediction must be too. The catalogue: the biases forgotten, the
LayerNorms forgotten, W_Q, W_K and W_V counted as one matrix, the output projection W_O
forgotten, the FFN's width taken as 4 d_model instead of the given d_ff, and a full d x d
projection per head.
"""
from __future__ import annotations

import numpy as np
import torch

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake, Prediction, _number, failed
from attnlib.exercises.numpy_to_torch import _tensor_fn
from attnlib.experiments.transformer_block import sublayer_parameter_counts

__all__ = ["check_pre_ln_sublayer", "check_feed_forward", "check_layer_parameters", "report", "reset"]

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

# ----------------------------------------------------------------------------- a prediction

D_MODEL, HEADS, D_FF = 64, 4, 192  # the question's layer: d_ff = 3 d_model, so "4 d" is a mistake


def _measure_layer_parameters() -> float:
    """Parameters of ``EncoderLayer(D_MODEL, HEADS, D_FF)``, counted on a built layer (a few ms)."""
    return float(sublayer_parameter_counts(D_MODEL, HEADS, D_FF)["total"])


def _count(d=D_MODEL, d_ff=D_FF, projections=4, biases=True, norms=2, heads_each=1):
    """A layer's parameters counted piece by piece, with the pieces a wrong reasoning changes.

    ``projections`` d x d attention matrices (W_Q, W_K, W_V, W_O), of which the input ones
    (all but W_O) are repeated ``heads_each`` times; the FFN d -> d_ff -> d; ``norms`` LayerNorms
    with a gain and a bias of d each; ``biases`` on every linear layer or none.
    """
    b = 1 if biases else 0
    inputs, outputs = projections - 1, 1
    attention = (inputs * heads_each + outputs) * (d * d + b * d)
    ffn = d * d_ff + b * d_ff + d_ff * d + b * d
    return float(attention + ffn + norms * 2 * d)


LAYER_PARAMETERS = Prediction(
    name="layer parameters",
    question=(f"how many parameters (weights and biases, all of them) does "
              f"EncoderLayer(d_model={D_MODEL}, num_heads={HEADS}, d_ff={D_FF}) hold?"),
    measure=_measure_layer_parameters, rtol=0.0, unit="parameters",
    hint="Count the pieces: self-attention has four d x d projections (W_Q, W_K, W_V, W_O), each with a "
         "bias of d; the FFN has a d x d_ff layer with a bias of d_ff and a d_ff x d layer with a bias of "
         "d; each of the two LayerNorms has a gain and a bias of d. The heads split d among them: they do "
         "not add parameters.",
    explanation=(f"Attention 4 d^2 + 4 d = {4 * D_MODEL ** 2 + 4 * D_MODEL:,}, the FFN 2 d d_ff + d_ff + d = "
                 f"{2 * D_MODEL * D_FF + D_FF + D_MODEL:,}, two LayerNorms 2 x 2 d = {4 * D_MODEL}; "
                 f"the {HEADS} heads share the d x d projections, {D_MODEL // HEADS} columns each."),
    mistakes=(
        Mistake("no_biases", "You left out the biases. Every linear layer here has one: d for each of the "
                "four attention projections, d_ff and d for the FFN's two layers.",
                lambda: _count(biases=False)),
        Mistake("no_layer_norms", "You left out the LayerNorms. Each has a learned gain and bias of d "
                "entries, and an encoder layer has two (one per sublayer): 4 d in all.",
                lambda: _count(norms=0)),
        Mistake("qkv_once", "You counted W_Q, W_K and W_V as one matrix. They are three separate d x d "
                "projections (each with its bias), and W_O is a fourth: attention holds 4 d^2 + 4 d.",
                lambda: _count(projections=2)),
        Mistake("no_output_projection", "You forgot the output projection W_O. After the heads are "
                "concatenated, a fourth d x d matrix (with its bias) mixes them: 4 d^2 + 4 d for attention.",
                lambda: _count(projections=3)),
        Mistake("ffn_4d", f"You took the FFN's width as 4 d_model = {4 * D_MODEL}. That is the original "
                f"Transformer's choice, but this layer has d_ff = {D_FF}: the FFN holds 2 d d_ff + d_ff + d.",
                lambda: _count(d_ff=4 * D_MODEL)),
        Mistake("per_head", f"You gave each of the {HEADS} heads its own d x d W_Q, W_K and W_V. The heads "
                f"split the d = {D_MODEL} columns of ONE d x d projection, d / h = {D_MODEL // HEADS} each, so "
                "the count does not depend on the number of heads.",
                lambda: _count(heads_each=HEADS)),
    ))

_CHAPTER = Chapter("The Transformer block", [SUBLAYER, FFN, LAYER_PARAMETERS])


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


def check_layer_parameters(prediction) -> CheckResult:
    """Check a predicted parameter count of ``EncoderLayer(d_model=64, num_heads=4, d_ff=192)``.

    ``prediction`` is the number, or a function of no arguments that returns it (the notebook's
    stub is such a function: a learner copy's checkers are handed stubs that raise
    NotImplementedError). A count is exact: only the measured number passes.
    """
    result = _CHAPTER.check(LAYER_PARAMETERS, prediction)
    near_miss = _near_miss(prediction) if result.status == "failed" and result.mistake is None else ""
    return failed(LAYER_PARAMETERS, near_miss) if near_miss else result


def _near_miss(prediction) -> str:
    """A clearer message for a count that is not whole or just off: which pieces to recount."""
    if callable(prediction):  # the stub form: the checker has already called it once without error
        try:
            prediction = prediction()
        except Exception:  # noqa: BLE001 - the checker's own message says what went wrong
            return ""
    number, problem = _number(prediction)
    if problem:
        return ""  # not a single finite number: the checker's own message says so
    if not number.is_integer():
        return f"Your prediction {number:g} is not a whole number: a parameter count is a count."
    truth = _measure_layer_parameters()
    if abs(number - truth) <= 0.05 * truth:
        way = "low" if number < truth else "high"
        return (f"Your prediction {number:,.0f} is close but too {way} (within 5 %): the big matrices are "
                "right, so recount the small pieces, the biases and the LayerNorms' gains and biases.")
    return ""


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
