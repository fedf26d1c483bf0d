"""Checkers for the chapter "The encoder-decoder Transformer": the decoder's mask and the Noam schedule.

In a notebook::

    from attnlib.exercises import encoder_decoder as ex
    ex.check_decoder_mask(my_decoder_mask)   # (tgt_lengths (B,), T) -> bool (B, T, T), True = may attend
    ex.check_noam_rate(my_noam_rate)         # (step array, d_model, warmup) -> learning rates
    ex.report()

``my_decoder_mask`` receives a torch LongTensor of lengths and an int and returns a boolean
tensor; ``my_noam_rate`` receives a NumPy array of steps (counting from 1) and two ints. The
catalogue holds the classic slips: the causal mask without the padding (or the reverse), the
triangle the wrong way round, the diagonal left out, padding applied to the queries instead
of the keys, an off-by-one on the lengths, the inverted convention (True = hidden) and the
additive one (0 and -inf); a mask with the right pattern but not of dtype ``torch.bool`` (a
float or integer 0/1 tensor, a NumPy array) gets its own diagnosis. For the schedule, ``max`` for ``min``, the wrong
warm-up exponent, a forgotten ``d_model`` factor, steps counted from 0.
"""
from __future__ import annotations

import numpy as np
import torch

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake, failed, fresh, quietly
from attnlib.exercises.numpy_to_torch import _tensor_fn

__all__ = ["check_decoder_mask", "check_noam_rate", "report", "reset"]


# ----------------------------------------------------------------------------- exercise 1

def _tri(T, k=0):
    return torch.ones(T, T, dtype=torch.bool).tril(k)


def _keys(lengths, T, extra=0):
    return torch.arange(T)[None, None, :] < (lengths[:, None, None] + extra)


def _mask(lengths, T):
    return _tri(T)[None] & _keys(lengths, T)


def _mask_cases():
    return [Case((np.array([4, 2, 3]), 4), "B=3, T=4, lengths 4, 2, 3"),
            Case((np.array([5]), 5), "B=1, T=5, no padding (pure causal)"),
            Case((np.array([1, 6, 3, 2]), 6), "B=4, T=6, a length-1 target")]


_MASK_MISTAKES = (
    Mistake("causal_only", "Your mask is only causal: padded target positions are still attended "
            "to. Combine it with the padding mask of the keys: causal & (j < length).",
            lambda n, T: _tri(T)[None].expand(len(n), T, T)),
    Mistake("padding_only", "Your mask only hides padding: every position still sees the future. "
            "And it with the causal mask, torch.ones(T, T, dtype=torch.bool).tril().",
            lambda n, T: _keys(n, T).expand(len(n), T, T)),
    Mistake("upper_triangle", "Your triangle points the wrong way: query i may see keys j <= i "
            "(the lower triangle, .tril()), not j >= i.",
            lambda n, T: _tri(T).T[None] & _keys(n, T)),
    Mistake("no_diagonal", "You left out the diagonal: a position may attend to itself (its own "
            "input token, which it has already read). Use .tril() (offset 0), not .tril(-1).",
            lambda n, T: _tri(T, -1)[None] & _keys(n, T)),
    Mistake("padding_on_queries", "You masked padded *queries* (rows) instead of padded *keys* "
            "(columns). What must never be attended to is a padded key: index the lengths along "
            "the last axis, mask[b, i, j] needs j < length[b].",
            lambda n, T: _tri(T)[None] & (torch.arange(T)[None, :, None] < n[:, None, None])),
    Mistake("off_by_one", "Your padding mask keeps one position too many (j <= length). The real "
            "positions of a target of length n are 0..n-1: j < length.",
            lambda n, T: _tri(T)[None] & _keys(n, T, extra=1)),
    Mistake("inverted", "Your mask is inverted: it is True where attention is *forbidden* (the "
            "convention of nn.MultiheadAttention's attn_mask and key_padding_mask). The course's "
            "masks say True = may attend, like F.scaled_dot_product_attention: return the "
            "negation, causal & (j < length).",
            lambda n, T: ~_mask(n, T)),
    Mistake("additive", "Your mask is additive: 0 where attention is allowed and -inf where it is "
            "not (the float masks of nn.Transformer, added to the scores). The course's masks are "
            "boolean, True = may attend; torch.where(mask, 0.0, float('-inf')) is how a boolean "
            "mask becomes this bias, not the other way round.",
            lambda n, T: torch.zeros(len(n), T, T, dtype=torch.float64).masked_fill(~_mask(n, T), float("-inf"))),
)

_MASK_HINT = ("Build it from comparisons and &: causal = torch.ones(T, T, dtype=torch.bool).tril(); "
              "keys = torch.arange(T) < tgt_lengths[:, None]; causal[None] & keys[:, None, :] is "
              "already torch.bool (or convert with .bool()).")


def _dtype_problem(fn) -> tuple[str, str] | None:
    """``(mistake name, message)`` when ``fn`` returns the right pattern in the wrong type, else None."""
    n, T = fresh(_mask_cases()[0].args)
    out = quietly(fn, (torch.from_numpy(n), T))
    if isinstance(out, torch.Tensor) and out.dtype == torch.bool:
        return None
    if isinstance(out, torch.Tensor) and out.is_floating_point():
        return "float_mask", (
            f"Your mask has the right 0/1 pattern but dtype {out.dtype}: the course's masks are "
            "boolean, True = may attend. A float mask means something else in PyTorch: "
            "F.scaled_dot_product_attention *adds* a float attn_mask to the scores, so a 0/1 "
            "mask hides nothing (it adds 1 to the allowed scores); ~mask raises on floats; and "
            "attnlib's MultiHeadAttention refuses it.")
    if isinstance(out, torch.Tensor):
        return "integer_mask", (
            f"Your mask has the right 0/1 pattern but dtype {out.dtype}: the course's masks are "
            "boolean, True = may attend. On an integer tensor ~ is the bitwise not (~1 = -2, "
            "~0 = -1, both nonzero), masked_fill refuses it and attnlib's MultiHeadAttention too.")
    return "not_a_tensor", (
        f"Your mask has the right pattern but is a {type(out).__name__}, not a torch tensor: the "
        "inputs are tensors, and the mask goes into torch attention as a torch.bool tensor.")


DECODER_MASK = Exercise(
    name="decoder_mask", call="fn(tgt_lengths, T)", arg_names=("tgt_lengths", "T"),
    out_axes=("T_q", "T_k"), dims=lambda n, T: {"T_q": T, "T_k": T},
    reference=_tensor_fn(_mask), cases=_mask_cases,
    mistakes=tuple(Mistake(m.name, m.message, _tensor_fn(m.fn), m.hint) for m in _MASK_MISTAKES),
    hint="causal = torch.ones(T, T, dtype=torch.bool).tril(); keys = torch.arange(T) < "
         "tgt_lengths[:, None]  (B, T); return causal[None] & keys[:, None, :].",
    checked="causal, padded keys hidden, diagonal kept, with and without padding, dtype torch.bool")


# ----------------------------------------------------------------------------- exercise 2

def _noam(step, d_model, warmup):
    step = np.asarray(step, dtype=np.float64)
    return d_model ** -0.5 * np.minimum(step ** -0.5, step * warmup ** -1.5)


def _noam_cases():
    return [Case((np.arange(1, 41), 64, 10), "steps 1..40, d_model=64, warm-up 10"),
            Case((np.array([1, 100, 400, 401, 4000]), 512, 400),
                 "steps around the peak, d_model=512, warm-up 400"),
            Case((np.arange(1, 7), 16, 1), "warm-up of 1 step: decay from the start")]


_NOAM_MISTAKES = (
    Mistake("max", "You took the max of the two branches; the schedule is the *min*: the linear "
            "rise s * w^-1.5 while it is smaller, then the decay s^-0.5.",
            lambda s, d, w: d ** -0.5 * np.maximum(np.asarray(s, float) ** -0.5,
                                                   np.asarray(s, float) * w ** -1.5)),
    Mistake("warmup_exponent", "The warm-up branch should be step * warmup^-1.5 (so that the two "
            "branches meet at step = warmup); you used another power of warmup.",
            lambda s, d, w: d ** -0.5 * np.minimum(np.asarray(s, float) ** -0.5,
                                                   np.asarray(s, float) * w ** -0.5)),
    Mistake("no_d_model", "You forgot the factor d_model^-0.5 in front.",
            lambda s, d, w: np.minimum(np.asarray(s, float) ** -0.5, np.asarray(s, float) * w ** -1.5)),
    Mistake("d_model_power", "The factor in front is d_model^-0.5 (one over the square root), not "
            "1 / d_model.",
            lambda s, d, w: d ** -1.0 * np.minimum(np.asarray(s, float) ** -0.5,
                                                   np.asarray(s, float) * w ** -1.5)),
    Mistake("from_zero", "You shifted the steps by one (step - 1 or step + 1): steps already count "
            "from 1 here; use them as given.",
            lambda s, d, w: _noam(np.asarray(s, float) + 1, d, w)),
)

NOAM = Exercise(
    name="noam_rate", call="fn(step, d_model, warmup)", arg_names=("step", "d_model", "warmup"),
    out_axes=("steps",), dims=lambda s, d, w: {"steps": len(s)},
    reference=_noam, cases=_noam_cases, mistakes=_NOAM_MISTAKES,
    hint="step = np.asarray(step, dtype=float); return d_model ** -0.5 * np.minimum(step ** -0.5, "
         "step * warmup ** -1.5)",
    checked="warm-up, peak and decay, including a one-step warm-up")

_CHAPTER = Chapter("The encoder-decoder Transformer", [DECODER_MASK, NOAM])


def check_decoder_mask(fn) -> CheckResult:
    """Check ``fn(tgt_lengths, T) -> mask``: ``tgt_lengths`` a LongTensor (B,), ``mask`` bool (B, T, T),
    True where query i may attend to key j (``j <= i`` and ``j < tgt_lengths[b]``).

    A function with the right pattern in another type (a float or integer 0/1 tensor, a NumPy
    array) fails with its own diagnosis: the course's masks are ``torch.bool``.
    """
    result = _CHAPTER.check(DECODER_MASK, _tensor_fn(fn))
    if result.passed:
        try:
            problem = _dtype_problem(fn)
        except Exception:  # noqa: BLE001 - it passed the cases, so it ran on this one
            problem = None
        if problem is not None:
            result = failed(DECODER_MASK, problem[1], _MASK_HINT, problem[0])
            _CHAPTER.results[DECODER_MASK.name] = result.status
    return result


def check_noam_rate(fn) -> CheckResult:
    """Check ``fn(step, d_model, warmup) -> d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)``
    for a NumPy array of steps counted from 1."""
    return _CHAPTER.check(NOAM, fn)


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
