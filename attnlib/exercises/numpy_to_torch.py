"""Checkers for the chapter "From NumPy to PyTorch": the same exercises machinery, with tensors.

In a notebook::

    from attnlib.exercises import numpy_to_torch as ex
    ex.check_batched_attention(my_attention)  # my_attention(q, k, v, mask) -> output tensor
    ex.check_merge_heads(my_merge_heads)      # my_merge_heads(x) (B, H, L, d_head) -> (B, L, E)
    ex.check_query_gradient(my_query_gradient)  # my_query_gradient(q, k, v, mask, C) -> d loss / d q
    ex.report()

The learner's function receives float64 **torch tensors** (and a bool tensor mask or None) and
returns a tensor; the checker turns the result back into NumPy and diagnoses it with
:mod:`attnlib.exercises.core`. The catalogue holds the classic PyTorch slips: ``k.T`` on a batched
tensor, softmax over the wrong dim, the mask's polarity inverted (PyTorch's own
``nn.MultiheadAttention`` uses True = blocked), ``masked_fill`` with 0 instead of ``-inf``, and,
when merging heads, a reshape without the transpose or ``view`` on a transposed tensor.

The third exercise is autograd: the gradient of the chapter's loss
``loss = sum(attention(q, k, v, mask) * C)`` with respect to the queries, from ``backward()``. The
checker's reference is the chain rule written out in NumPy (no autograd); its catalogue holds the
slips of setting up the loss and reading the gradient: the loss without ``C``, its mean instead of
its sum, the mask not passed, the scaling forgotten, and the keys' gradient returned.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake
from attnlib.numpy import causal_mask, padding_mask
from attnlib.torch import merge_heads, scaled_dot_product_attention

__all__ = ["check_batched_attention", "check_merge_heads", "check_query_gradient", "report", "reset"]

_VIEW_HELP = ("After a transpose the tensor's memory is no longer in row order, so .view() cannot "
              "merge those axes. Use .reshape(...) (copies when it must), or .contiguous().view(...).")


_GRAD_HELP = ("The tensors you are given do not require gradients, so autograd recorded nothing: make "
              "the one you differentiate by a leaf that does, e.g. q = q.detach().clone().requires_grad_(True), "
              "before computing the loss from it.")


def _tensor_fn(fn):
    """Wrap a function of tensors as a function of NumPy arrays, for the NumPy-based checker.

    Arrays become tensors that share their memory (so writing into an input is still noticed);
    a tensor result comes back as a NumPy array (floats as float64), a Python scalar as a 0-d
    array. Known PyTorch errors get an explanation. Every PyTorch chapter's checkers use it.
    """
    if not callable(fn):
        return fn

    def call(*args):
        targs = tuple(torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args)
        try:
            out = fn(*targs)
        except NotImplementedError:
            raise
        except RuntimeError as err:
            if "view size is not compatible" in str(err):
                raise RuntimeError(f"{err} {_VIEW_HELP}") from None
            if "does not require grad" in str(err):
                raise RuntimeError(f"{err} {_GRAD_HELP}") from None
            raise
        if isinstance(out, torch.Tensor):
            out = out.detach().cpu()
            return (out.double() if out.is_floating_point() else out).numpy()
        if isinstance(out, (bool, int, float)):  # a scalar answer (an accuracy, a loss)
            return np.asarray(float(out))
        return out

    call.__name__ = getattr(fn, "__name__", "fn")
    return call


# ----------------------------------------------------------------------------- exercise 1

def _attention(q, k, v, mask):
    return scaled_dot_product_attention(q, k, v, mask)[0]


def _attention_with(transpose=lambda k: k.transpose(-2, -1), softmax_dim=-1, scale=True,
                    mask_mode="ok"):
    """Attention in torch with one thing done wrong, for the catalogue."""
    def fn(q, k, v, mask):
        scores = q @ transpose(k)
        if scale:
            scores = scores / math.sqrt(q.shape[-1])
        if mask is not None:
            if mask_mode == "ok":
                scores = scores.masked_fill(~mask, float("-inf"))
            elif mask_mode == "inverted":
                scores = scores.masked_fill(mask, float("-inf"))
            elif mask_mode == "zero":
                scores = scores.masked_fill(~mask, 0.0)
        return torch.softmax(scores, dim=softmax_dim) @ v
    return fn


def _attention_cases():
    rng = np.random.default_rng(8008)
    n = lambda *shape: rng.normal(size=shape)  # noqa: E731
    batched = ("A batched case: index axes from the end. `k.T` reverses *all* axes of a 3-D "
               "tensor (and is deprecated); `k.transpose(-2, -1)` (or `k.mT`) swaps only the last two.")
    four_d = ("A 4-D case (B, H, L, d): `transpose(1, 2)` or `softmax(dim=1)` that worked on 3-D "
              "tensors now hit the head axis; count axes from the end (-1, -2).")
    return [
        Case((n(3, 4), n(5, 4), n(5, 2), causal_mask(3, 5)), "unbatched, L_q=3, L_k=5, causal mask"),
        Case((n(2, 3, 4), n(2, 6, 4), n(2, 6, 5), padding_mask(np.array([6, 2]), 6)[:, None, :]),
             "batched (B=2), L_q=3, L_k=6, key padding mask (B, 1, L_k)", note=batched),
        Case((n(2, 4, 3), n(2, 4, 3), n(2, 4, 3), (rng.random((2, 4, 4)) < 0.5) | np.eye(4, dtype=bool)),
             "batched self-attention, L=4, d=3, a (B, L_q, L_k) mask", note=batched),
        Case((n(2, 3, 5, 4), n(2, 3, 6, 4), n(2, 3, 6, 4), None),
             "4-D (B=2, H=3), L_q=5, L_k=6, no mask", note=four_d),
    ]


_ATTENTION_MISTAKES = (
    Mistake("inverted_mask", "Your mask is inverted: you blocked the keys where the mask is True. "
            "In this course (and in torch.nn.functional.scaled_dot_product_attention) a boolean mask "
            "means True = may attend, so block where it is False: "
            "scores.masked_fill(~mask, float('-inf')). (nn.MultiheadAttention's boolean masks use the "
            "opposite convention, True = blocked: a classic source of this bug.)",
            _attention_with(mask_mode="inverted")),
    Mistake("mask_zero", "You set the blocked scores to 0, but a score of 0 still gets weight "
            "exp(0) after the softmax. Blocked scores must be -inf: "
            "scores.masked_fill(~mask, float('-inf')).", _attention_with(mask_mode="zero")),
    Mistake("softmax_dim_queries", "Your softmax normalises over the queries (dim=-2, or dim=1 on a "
            "batched tensor): each *column* of weights sums to 1. Each query's weights over the keys "
            "must sum to 1: torch.softmax(scores, dim=-1).", _attention_with(softmax_dim=-2)),
    Mistake("softmax_dim_1", "Your softmax uses dim=1, which is the last axis only for 2-D tensors: on "
            "(B, L_q, L_k) scores it normalises over the queries, on (B, H, L_q, L_k) over the heads. "
            "Use dim=-1, which is the key axis whatever the batch.", _attention_with(softmax_dim=1)),
    Mistake("no_scaling", "Your scores are not scaled: divide q @ k^T by sqrt(d_k), the queries' last "
            "dimension (q.shape[-1]).", _attention_with(scale=False)),
)

ATTENTION = Exercise(
    name="batched_attention", call="fn(q, k, v, mask)", arg_names=("q", "k", "v", "mask"),
    out_axes=("L_q", "d_v"),
    dims=lambda q, k, v, mask: {"L_q": q.shape[-2], "L_k": k.shape[-2], "d_v": v.shape[-1]},
    reference=_tensor_fn(_attention), cases=_attention_cases,
    mistakes=tuple(Mistake(m.name, m.message, _tensor_fn(m.fn), m.hint) for m in _ATTENTION_MISTAKES),
    hint="scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]); if there is a mask, "
         "scores = scores.masked_fill(~mask, float('-inf')); then torch.softmax(scores, dim=-1) @ v.",
    checked="unbatched, batched and 4-D tensors, with causal, padding and random masks",
    batched_hint="It ran on the unbatched cases, so look at the batched ones: `k.T` reverses *all* axes "
                 "of a batched tensor (PyTorch warns that it is deprecated there); swap only the last "
                 "two with k.transpose(-2, -1) (or k.mT), and take the softmax over dim=-1.")


# ----------------------------------------------------------------------------- exercise 2

def _merge_cases():
    rng = np.random.default_rng(9009)
    n = lambda *shape: rng.normal(size=shape)  # noqa: E731
    return [Case((n(1, 2, 3, 4),), "B=1, H=2, L=3, d_head=4"),
            Case((n(2, 3, 5, 2),), "B=2, H=3, L=5, d_head=2"),
            Case((n(2, 4, 4, 4),), "B=2, H=4, L=4, d_head=4 (square: shapes cannot tell the mistakes)"),
            Case((n(3, 1, 2, 6),), "one head")]


def _merge_no_transpose(x):
    B, H, L, d = x.shape
    return x.reshape(B, L, H * d)


def _merge_interleaved(x):
    B, H, L, d = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, L, H * d)


def _merge_wrong_axes(x):
    B, H, L, d = x.shape
    return x.transpose(1, 3).reshape(B, L, H * d)


_MERGE_MISTAKES = (
    Mistake("no_transpose", "You reshaped (B, H, L, d_head) straight to (B, L, H * d_head). The shape "
            "is right but a reshape keeps the memory order, so each 'token' gets pieces of several "
            "tokens of one head. First move the head axis back behind the sequence axis, "
            "x.transpose(1, 2) -> (B, L, H, d_head), then reshape.", _merge_no_transpose),
    Mistake("interleaved", "Your features are interleaved: feature j of head h landed at column "
            "j * H + h instead of h * d_head + j, because the axes were ordered (L, d_head, H) before "
            "the reshape. Order them (B, L, H, d_head): x.transpose(1, 2).reshape(B, L, H * d_head).",
            _merge_interleaved),
    Mistake("wrong_axes", "You swapped the wrong axes (transpose(1, 3) exchanges heads and features). "
            "Swap the head and sequence axes: x.transpose(1, 2), then reshape.", _merge_wrong_axes),
)

MERGE = Exercise(
    name="merge_heads", call="fn(x)", arg_names=("x",), out_axes=("L", "E"),
    dims=lambda x: {"L": x.shape[-2], "E": x.shape[-3] * x.shape[-1]},
    reference=_tensor_fn(merge_heads), cases=_merge_cases,
    mistakes=tuple(Mistake(m.name, m.message, _tensor_fn(m.fn), m.hint) for m in _MERGE_MISTAKES),
    hint="x.transpose(1, 2) gives (B, L, H, d_head); then .reshape(B, L, H * d_head) (not .view: the "
         "transposed tensor is not contiguous).",
    checked="1 to 4 heads, square and non-square shapes")


# ----------------------------------------------------------------------------- exercise 3: autograd

def _masked_softmax(scores, mask):
    """Softmax over the last axis, blocked where ``mask`` is False (every row has an allowed key)."""
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _query_gradient(q, k, v, mask, C):
    """d/dq of sum(attention(q, k, v, mask) * C), with the chain rule written out (no autograd).

    Shapes: q (..., L_q, d_k), k (..., L_k, d_k), v (..., L_k, d_v), C (..., L_q, d_v) -> (..., L_q, d_k).
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    P = _masked_softmax(q @ np.swapaxes(k, -1, -2) * scale, mask)   # (..., L_q, L_k)
    dP = C @ np.swapaxes(v, -1, -2)                                  # d loss / d P
    dS = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))           # through each row's softmax
    return dS @ k * scale                                            # d loss / d q


def _gradient_with(loss="sum", use_mask=True, scale=True, wrt="q"):
    """The autograd gradient in torch with one thing done wrong, for the catalogue."""
    def fn(q, k, v, mask, C):
        q, k = q.detach().clone().requires_grad_(True), k.detach().clone().requires_grad_(True)
        scores = q @ k.transpose(-2, -1)
        if scale:
            scores = scores / math.sqrt(q.shape[-1])
        if use_mask and mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        total = {"sum": (out * C).sum(), "mean": (out * C).mean(), "no_C": out.sum()}[loss]
        total.backward()
        return (q if wrt == "q" else k).grad
    return fn


def _gradient_cases():
    rng = np.random.default_rng(8118)
    n = lambda *shape: rng.normal(size=shape)  # noqa: E731
    return [
        Case((n(3, 4), n(5, 4), n(5, 2), causal_mask(3, 5), n(3, 2)), "unbatched, L_q=3, L_k=5, causal mask"),
        Case((n(2, 3, 4), n(2, 6, 4), n(2, 6, 5), padding_mask(np.array([6, 2]), 6)[:, None, :], n(2, 3, 5)),
             "batched (B=2), L_q=3, L_k=6, key padding mask (B, 1, L_k)"),
        Case((n(2, 4, 3), n(2, 4, 3), n(2, 4, 3), (rng.random((2, 4, 4)) < 0.5) | np.eye(4, dtype=bool),
              n(2, 4, 3)),
             "batched self-attention, L_q = L_k = 4, d_k = d_v = 3, a (B, L_q, L_k) mask"),
        Case((n(2, 2, 5, 4), n(2, 2, 6, 4), n(2, 2, 6, 3), None, n(2, 2, 5, 3)),
             "4-D (B=2, H=2), L_q=5, L_k=6, no mask"),
    ]


_GRADIENT_MISTAKES = (
    Mistake("loss_without_C", "Your gradient is that of out.sum(), the loss without C. The chapter's loss "
            "weights every output entry by C: loss = (out * C).sum(); backward() then gives its gradient.",
            _gradient_with(loss="no_C")),
    Mistake("mean_loss", "Your gradient is too small by a constant factor: you took the mean, "
            "(out * C).mean(), which divides the loss (and so its gradient) by the number of output "
            "entries. The loss asked for is the sum: (out * C).sum().", _gradient_with(loss="mean")),
    Mistake("mask_not_passed", "Your gradient is that of attention without the mask: blocked keys took a "
            "share of the weights, so they changed the loss. Pass the mask on (mask=mask, or "
            "masked_fill(~mask, float('-inf')) before the softmax).", _gradient_with(use_mask=False)),
    Mistake("no_scaling", "Your gradient is that of unscaled attention: divide q @ k^T by "
            "sqrt(d_k) = sqrt(q.shape[-1]) before the softmax (or use atorch.scaled_dot_product_attention).",
            _gradient_with(scale=False)),
    Mistake("keys_gradient", "You returned the gradient with respect to the keys (k.grad). The exercise asks "
            "for d loss / d q: make q the tensor that requires grad and return q.grad.",
            _gradient_with(wrt="k")),
)

GRADIENT = Exercise(
    name="query_gradient", call="fn(q, k, v, mask, C)", arg_names=("q", "k", "v", "mask", "C"),
    out_axes=("L_q", "d_k"),
    dims=lambda q, k, v, mask, C: {"L_q": q.shape[-2], "L_k": k.shape[-2], "d_k": q.shape[-1],
                                   "d_v": v.shape[-1]},
    reference=_query_gradient, cases=_gradient_cases,
    mistakes=tuple(Mistake(m.name, m.message, _tensor_fn(m.fn), m.hint) for m in _GRADIENT_MISTAKES),
    hint="q = q.detach().clone().requires_grad_(True) makes a leaf that autograd tracks; out = "
         "atorch.scaled_dot_product_attention(q, k, v, mask=mask)[0]; loss = (out * C).sum(); "
         "loss.backward(); return q.grad (or torch.autograd.grad(loss, q)[0]).",
    checked="unbatched, batched and 4-D tensors, with causal, padding and random masks, against the chain "
            "rule written out",
    batched_hint="It ran on the unbatched case, so look at the batched ones: transpose the keys with "
                 "k.transpose(-2, -1) (not k.T), take the softmax over dim=-1, and let C have the output's "
                 "shape (..., L_q, d_v).")

_CHAPTER = Chapter("From NumPy to PyTorch", [ATTENTION, MERGE, GRADIENT])


def check_batched_attention(fn) -> CheckResult:
    """Check ``fn(q, k, v, mask) -> output`` on torch tensors.

    ``q`` (..., L_q, d_k), ``k`` (..., L_k, d_k), ``v`` (..., L_k, d_v) are float64 tensors with
    0 to 2 batch axes; ``mask`` is None or a bool tensor broadcastable to (..., L_q, L_k),
    True = may attend. The output is (..., L_q, d_v).
    """
    return _CHAPTER.check(ATTENTION, _tensor_fn(fn))


def check_merge_heads(fn) -> CheckResult:
    """Check ``fn(x) -> merged``: (B, H, L, d_head) tensor -> (B, L, H * d_head), head h in columns
    ``h * d_head : (h + 1) * d_head``."""
    return _CHAPTER.check(MERGE, _tensor_fn(fn))


def check_query_gradient(fn) -> CheckResult:
    """Check ``fn(q, k, v, mask, C) -> d loss / d q`` on torch tensors, loss = sum(attention(q, k, v, mask) * C).

    ``q`` (..., L_q, d_k), ``k`` (..., L_k, d_k), ``v`` (..., L_k, d_v) and ``C`` (..., L_q, d_v) are
    float64 tensors that do not require grad; ``mask`` is None or a bool tensor broadcastable to
    (..., L_q, L_k), True = may attend. The result has q's shape.
    """
    return _CHAPTER.check(GRADIENT, _tensor_fn(fn))


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far (report() then counts from zero)."""
    _CHAPTER.reset()
