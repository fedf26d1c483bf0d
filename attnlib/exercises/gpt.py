"""Checkers for the chapter "Decoder-only models: GPT": the sampling distribution and a cached attention step.

In a notebook::

    from attnlib.exercises import gpt as ex
    ex.check_top_k_probs(my_top_k_probs)          # (logits, temperature, k) -> probabilities
    ex.check_cached_attention(my_cached_attention) # (q, K_past, V_past, k, v) -> output
    ex.report()

The learner's functions receive float64 torch tensors (and plain numbers) and return a tensor.
The catalogue holds the classic slips: multiplying by the temperature, keeping the k smallest
logits, filtering after the softmax without renormalising; and, for the KV cache, forgetting to
append the new key and value (the token cannot attend to itself), appending only one of them, or
dropping the scaling.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake
from attnlib.exercises.numpy_to_torch import _tensor_fn

__all__ = ["check_top_k_probs", "check_cached_attention", "report", "reset"]


# ----------------------------------------------------------------------------- exercise 1

def _filter(z, k, largest=True):
    kth = torch.topk(z, k, dim=-1, largest=largest).values[..., -1:]
    return z.masked_fill(z < kth if largest else z > kth, float("-inf"))


def _top_k_probs(logits, temperature, k):
    return torch.softmax(_filter(logits / temperature, k), dim=-1)


def _top_k_cases():
    rng = np.random.default_rng(1515)
    return [Case((rng.normal(size=(1, 8)) * 2, 0.7, 3), "one row of 8 logits, T=0.7, k=3"),
            Case((rng.normal(size=(3, 10)) * 3, 1.5, 4), "3 rows of 10 logits, T=1.5, k=4"),
            Case((rng.normal(size=(2, 6)), 1.0, 6), "2 rows, T=1, k = vocabulary size (no filtering)"),
            Case((rng.normal(size=(2, 5)) * 2, 0.3, 1), "2 rows, T=0.3, k=1 (greedy)")]


_TOP_K_MISTAKES = (
    Mistake("times_temperature", "You multiplied the logits by the temperature. Divide them: z / T, so a "
            "small T sharpens the distribution and a large T flattens it.",
            lambda z, T, k: torch.softmax(_filter(z * T, k), -1)),
    Mistake("smallest", "You kept the k *smallest* logits. Keep the k largest: torch.topk(z, k).values "
            "gives them, sorted from the largest.",
            lambda z, T, k: torch.softmax(_filter(z / T, k, largest=False), -1)),
    Mistake("not_renormalised", "You zeroed the probabilities outside the top k after the softmax, but "
            "the rest no longer sums to 1. Set the filtered logits to -inf *before* the softmax (or "
            "divide by the sum).",
            lambda z, T, k: torch.softmax(z / T, -1) * (_filter(z / T, k) > float("-inf"))),
    Mistake("no_temperature", "You ignored the temperature: divide the logits by it before the softmax.",
            lambda z, T, k: torch.softmax(_filter(z, k), -1)),
    Mistake("no_filter", "You did not filter: every token keeps some probability. Set all logits "
            "below the k-th largest to -inf.", lambda z, T, k: torch.softmax(z / T, -1)),
    Mistake("wrong_axis", "Your softmax or top-k runs over the wrong axis: each row (the last axis, "
            "the vocabulary) is its own distribution.",
            lambda z, T, k: torch.softmax(_filter((z / T).T, min(k, z.shape[0])).T, 0)),
)

TOP_K = Exercise(
    name="top_k_probs", call="fn(logits, temperature, k)", arg_names=("logits", "temperature", "k"),
    out_axes=("vocab",), dims=lambda z, T, k: {"vocab": z.shape[-1]},
    reference=_tensor_fn(_top_k_probs), cases=_top_k_cases,
    mistakes=tuple(Mistake(m.name, m.message, _tensor_fn(m.fn), m.hint) for m in _TOP_K_MISTAKES),
    hint="z = logits / temperature; kth = torch.topk(z, k, dim=-1).values[..., -1:]; "
         "z = z.masked_fill(z < kth, float('-inf')); return torch.softmax(z, dim=-1).",
    checked="temperature divides, the k largest are kept, rows sum to 1, k=1 and k=vocabulary size")


# ----------------------------------------------------------------------------- exercise 2

def _attend(q, K, V, scale=True):
    s = q @ K.transpose(-2, -1)
    if scale:
        s = s / math.sqrt(q.shape[-1])
    return torch.softmax(s, -1) @ V


def _cached(q, K_past, V_past, k, v):
    return _attend(q, torch.cat([K_past, k], -2), torch.cat([V_past, v], -2))


def _cached_cases():
    rng = np.random.default_rng(1516)
    n = lambda *s: rng.normal(size=s)  # noqa: E731
    return [Case((n(1, 2, 1, 4), n(1, 2, 5, 4), n(1, 2, 5, 4), n(1, 2, 1, 4), n(1, 2, 1, 4)),
                 "B=1, H=2, 5 cached positions, d_head=4"),
            Case((n(2, 3, 1, 6) * 2, n(2, 3, 7, 6), n(2, 3, 7, 6), n(2, 3, 1, 6) * 2, n(2, 3, 1, 6)),
                 "B=2, H=3, 7 cached positions, d_head=6 (a new key that matters)"),
            Case((n(1, 1, 1, 4), n(1, 1, 1, 4), n(1, 1, 1, 4), n(1, 1, 1, 4), n(1, 1, 1, 4)),
                 "B=1, H=1, 1 cached position")]


_CACHED_MISTAKES = (
    Mistake("not_appended", "Your new token attends only over the cached keys: append its own key and "
            "value first (torch.cat([K_past, k], dim=-2)). In a causal model a token sees itself too.",
            lambda q, K, V, k, v: _attend(q, K, V)),
    Mistake("key_only", "You appended the new key but not the new value, so the weights and values "
            "do not line up. Append both.",
            lambda q, K, V, k, v: torch.softmax(q @ torch.cat([K, k], -2).transpose(-2, -1) / math.sqrt(q.shape[-1]), -1)
            @ torch.cat([V, V[..., -1:, :]], -2)),
    Mistake("no_scaling", "You did not divide the scores by sqrt(d_head).",
            lambda q, K, V, k, v: _attend(q, torch.cat([K, k], -2), torch.cat([V, v], -2), scale=False)),
    Mistake("only_new", "Your token attends only to itself: the cached keys and values are the past "
            "it must see. Concatenate them with the new ones.",
            lambda q, K, V, k, v: _attend(q, k, v)),
)

CACHED = Exercise(
    name="cached_attention", call="fn(q, K_past, V_past, k, v)",
    arg_names=("q", "K_past", "V_past", "k", "v"), out_axes=("1", "d_head"),
    dims=lambda q, K, V, k, v: {"1": 1, "d_head": q.shape[-1]},
    reference=_tensor_fn(_cached), cases=_cached_cases,
    mistakes=tuple(Mistake(m.name, m.message, _tensor_fn(m.fn), m.hint) for m in _CACHED_MISTAKES),
    hint="K = torch.cat([K_past, k], dim=-2); V = torch.cat([V_past, v], dim=-2); "
         "w = torch.softmax(q @ K.transpose(-2, -1) / d_head ** 0.5, dim=-1); return w @ V.",
    checked="new key and value appended, scaled scores, batched over B and H")

_CHAPTER = Chapter("Decoder-only models: GPT", [TOP_K, CACHED])


def check_top_k_probs(fn) -> CheckResult:
    """Check ``fn(logits, temperature, k) -> probabilities``: logits (B, vocab) float64, the
    softmax of ``logits / temperature`` restricted to the k largest logits (others 0)."""
    return _CHAPTER.check(TOP_K, _tensor_fn(fn))


def check_cached_attention(fn) -> CheckResult:
    """Check ``fn(q, K_past, V_past, k, v) -> output (B, H, 1, d_head)``: one generation step with a
    KV cache. ``q``, ``k``, ``v`` (B, H, 1, d_head) belong to the new token; ``K_past``, ``V_past``
    (B, H, n, d_head) are the cached keys and values."""
    return _CHAPTER.check(CACHED, _tensor_fn(fn))


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
