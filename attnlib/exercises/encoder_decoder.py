"""Checkers for the chapter "The encoder-decoder Transformer": the decoder's mask, the Noam schedule
and the label-smoothed loss.

In a notebook::

    from attnlib.exercises import encoder_decoder as ex
    ex.check_decoder_mask(my_decoder_mask)   # (tgt_lengths (B,), T) -> bool (B, T, T), True = may attend
    ex.check_noam_rate(my_noam_rate)         # (step array, d_model, warmup) -> learning rates
    ex.check_smoothed_loss(my_smoothed_loss) # (logits (B, T, V), targets (B, T), pad_id, epsilon) -> scalar
    ex.report()

``my_decoder_mask`` receives a torch LongTensor of lengths and an int and returns a boolean
tensor; ``my_noam_rate`` receives a NumPy array of steps (counting from 1) and two ints. The
catalogue holds the classic slips: the causal mask without the padding (or the reverse), the
triangle the wrong way round, the diagonal left out, padding applied to the queries instead
of the keys, an off-by-one on the lengths, the inverted convention (True = hidden) and the
additive one (0 and -inf); a mask with the right pattern but not of dtype ``torch.bool`` (a
float or integer 0/1 tensor, a NumPy array) gets its own diagnosis. For the schedule, ``max`` for ``min``, the wrong
warm-up exponent, a forgotten ``d_model`` factor, steps counted from 0. For the label-smoothed
loss (``my_smoothed_loss`` receives float64 logits, LongTensor targets and returns a scalar tensor
or float): padding counted as tokens, padding zeroed but still in the divisor, a mean per sentence
then over sentences, the factor ``1 - epsilon`` forgotten, ``epsilon`` spread over the ``V - 1``
wrong tokens only, and the logits used as log-probabilities.
"""
from __future__ import annotations

import numpy as np
import torch

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake, failed, fresh, quietly
from attnlib.exercises.numpy_to_torch import _tensor_fn
from attnlib.torch import sequence_cross_entropy

__all__ = ["check_decoder_mask", "check_noam_rate", "check_smoothed_loss", "report", "reset"]


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


# ----------------------------------------------------------------------------- exercise 3

def _smoothed(logits, targets, pad_id, eps):
    """The chapter's loss: ``sequence_cross_entropy`` (F.cross_entropy, ignore_index and label_smoothing)."""
    return sequence_cross_entropy(logits, targets, pad_id, eps)


def _token_losses(logits, targets, eps, on_right=None, off_right=None, log_p=None):
    """-sum_v q_v log p_v at every position (B, T); q puts ``on_right`` on the target, ``off_right`` elsewhere."""
    V = logits.shape[-1]
    on_right = 1 - eps + eps / V if on_right is None else on_right
    off_right = eps / V if off_right is None else off_right
    onehot = torch.nn.functional.one_hot(targets, V).to(logits.dtype)
    q = onehot * on_right + (1 - onehot) * off_right
    log_p = logits.log_softmax(-1) if log_p is None else log_p
    return -(q * log_p).sum(-1)


def _mean_real(losses, targets, pad_id):
    real = (targets != pad_id).to(losses.dtype)
    return (losses * real).sum() / real.sum()


def _loss_cases():
    rng = np.random.default_rng(1414)

    def batch(lengths, T, V, pad_id, scale=2.0):
        ids = [i for i in range(V) if i != pad_id]
        targets = np.full((len(lengths), T), pad_id, dtype=np.int64)
        for b, n in enumerate(lengths):
            targets[b, :n] = rng.choice(ids, size=n)
        return rng.normal(size=(len(lengths), T, V)) * scale, targets

    return [Case((*batch([5, 3], 5, 7, 0), 0, 0.1), "B=2, T=5, V=7, lengths 5 and 3, pad_id 0, epsilon 0.1"),
            Case((*batch([6, 2, 4], 6, 5, 2, 3.0), 2, 0.2),
                 "B=3, T=6, V=5, lengths 6, 2, 4, pad_id 2 (not 0), epsilon 0.2"),
            Case((*batch([4], 4, 6, 0), 0, 0.1), "B=1, T=4, V=6, no padding, epsilon 0.1"),
            Case((*batch([4, 1], 4, 6, 0), 0, 0.0), "B=2, T=4, V=6, lengths 4 and 1, epsilon 0 (plain cross-entropy)")]


_LOSS_MISTAKES = (
    Mistake("padding_counted", "Your loss counts the padded positions as tokens to predict (the pad id "
            "as their target). Padding is not part of the target: ignore it, e.g. "
            "F.cross_entropy(..., ignore_index=pad_id), or a mask targets != pad_id.",
            lambda z, y, pad, eps: _token_losses(z, y, eps).mean()),
    Mistake("divide_by_all", "You zeroed the loss of padded positions but divided by every position "
            "(B * T). Divide by the number of *real* target tokens, (targets != pad_id).sum().",
            lambda z, y, pad, eps: (_token_losses(z, y, eps) * (y != pad)).sum() / y.numel()),
    Mistake("per_sentence_mean", "You averaged each sentence's tokens, then the sentences: a short "
            "sentence's tokens then weigh more than a long one's. The loss is the mean over all real "
            "tokens of the batch: sum every real token's loss, divide by their total number.",
            lambda z, y, pad, eps: ((_token_losses(z, y, eps) * (y != pad)).sum(-1)
                                    / (y != pad).sum(-1)).mean()),
    Mistake("no_one_minus_eps", "Your smoothed target is onehot + epsilon / V: it sums to 1 + epsilon. "
            "Scale the one-hot part down: q = (1 - epsilon) * onehot + epsilon / V.",
            lambda z, y, pad, eps: _mean_real(_token_losses(z, y, eps, on_right=1 + eps / z.shape[-1]), y, pad)),
    Mistake("eps_over_others", "You gave the right token exactly 1 - epsilon and spread epsilon over the "
            "V - 1 other tokens. The chapter's label smoothing (and PyTorch's label_smoothing) mixes "
            "with the uniform distribution over *all* V tokens: q = (1 - epsilon) * onehot + epsilon / V, "
            "so the right token gets 1 - epsilon + epsilon / V.",
            lambda z, y, pad, eps: _mean_real(_token_losses(z, y, eps, on_right=1 - eps,
                                                            off_right=eps / (z.shape[-1] - 1)), y, pad)),
    Mistake("logits_as_log_probs", "You multiplied q by the raw logits. Cross-entropy needs log-"
            "probabilities: take logits.log_softmax(-1) first (not log(logits), not the softmax itself).",
            lambda z, y, pad, eps: _mean_real(_token_losses(z, y, eps, log_p=z), y, pad)),
)

SMOOTHED_LOSS = Exercise(
    name="smoothed_loss", call="fn(logits, targets, pad_id, epsilon)",
    arg_names=("logits", "targets", "pad_id", "epsilon"), out_axes=(), dims=lambda *a: {},
    reference=_tensor_fn(_smoothed), cases=_loss_cases,
    mistakes=tuple(Mistake(m.name, m.message, _tensor_fn(m.fn), m.hint) for m in _LOSS_MISTAKES),
    hint="q = (1 - epsilon) * F.one_hot(targets, V).to(logits.dtype) + epsilon / V; per token "
         "-(q * logits.log_softmax(-1)).sum(-1) (B, T); real = targets != pad_id; return "
         "(loss * real).sum() / real.sum().",
    checked="padding ignored (another pad id too), mean over the batch's real tokens, epsilon 0 and > 0")

_CHAPTER = Chapter("The encoder-decoder Transformer", [DECODER_MASK, NOAM, SMOOTHED_LOSS])


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


def check_smoothed_loss(fn) -> CheckResult:
    """Check ``fn(logits, targets, pad_id, epsilon) -> scalar``: logits (B, T, V) float64, targets (B, T)
    LongTensor; the mean over the real (non-pad) target tokens of ``-sum_v q_v log softmax(logits)_v``
    with ``q = (1 - epsilon) onehot(target) + epsilon / V``."""
    return _CHAPTER.check(SMOOTHED_LOSS, _tensor_fn(fn))


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
