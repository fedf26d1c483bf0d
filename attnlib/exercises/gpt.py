"""Checkers for the chapter "Decoder-only models: GPT": the sampling distribution, a cached attention
step, and a prediction of the KV cache's memory.

In a notebook::

    from attnlib.exercises import gpt as ex
    ex.check_top_k_probs(my_top_k_probs)          # (logits, temperature, k) -> probabilities
    ex.check_cached_attention(my_cached_attention) # (q, K_past, V_past, k, v) -> output
    ex.check_kv_cache_bytes(my_kv_cache_bytes)     # a number of bytes, or a function returning it
    ex.report()

The learner's functions receive float64 torch tensors (and plain numbers) and return a tensor.
The catalogue holds the classic slips: multiplying by the temperature, keeping the k smallest
logits, filtering after the softmax without renormalising; and, for the KV cache, forgetting to
append the new key and value (the token cannot attend to itself), appending only one of them, or
dropping the scaling.

The third is a :class:`~attnlib.exercises.core.Prediction` ("predict, then run"): how many bytes
the keys and values of the chapter's checkpoint GPT (3 layers, 4 heads of 24 features, float32)
take in a KV cache after a 64-token prompt, batch 1. ``measure()`` fills an attnlib ``KVCache`` of
that model and adds up its tensors' bytes. The catalogue: keys only, one layer only, bits instead
of bytes, ``d_model`` used as every head's size, the heads forgotten, the answer in MiB.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake, Prediction
from attnlib.exercises.numpy_to_torch import _tensor_fn
from attnlib.torch import GPT

__all__ = ["check_top_k_probs", "check_cached_attention", "check_kv_cache_bytes", "report", "reset"]


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


# ----------------------------------------------------------------------------- exercise 3: a prediction

KV_LENGTH, KV_BATCH = 64, 1  # the prompt the question is about: the checkpoint's whole context, one sequence


def _checkpoint_sizes() -> dict:
    """The checkpoint GPT's sizes that the cache depends on (from its recipe), and float32's bytes."""
    from attnlib.experiments.gpt import CHECKPOINT_RECIPE as r

    return {"layers": r["num_layers"], "heads": r["num_heads"], "d_model": r["d_model"],
            "d_head": r["d_model"] // r["num_heads"], "bytes": torch.finfo(torch.float32).bits // 8}


def _measure_kv_bytes() -> float:
    """Bytes of the keys and values a KVCache of the checkpoint GPT holds after KV_LENGTH tokens.

    A GPT of the checkpoint's recipe (its weights do not change the sizes) reads a seeded prompt of
    shape (KV_BATCH, KV_LENGTH) with ``model.new_cache``; every layer's cached keys and values,
    (batch, heads, length, d_head) each, are added up as numel * element_size.
    """
    from attnlib.data import char_corpus
    from attnlib.experiments.gpt import CHECKPOINT_RECIPE as r

    vocab = char_corpus().vocab_size
    with torch.random.fork_rng(devices=[]):  # building a model draws weights: leave the learner's RNG alone
        torch.manual_seed(0)
        model = GPT(vocab, r["block_size"], r["d_model"], r["num_heads"], r["num_layers"],
                    positions=r["positions"]).eval()
    prompt = torch.randint(0, vocab, (KV_BATCH, KV_LENGTH), generator=torch.Generator().manual_seed(1517))
    cache = model.new_cache(KV_BATCH, max_len=KV_LENGTH)
    with torch.no_grad():
        model(prompt, cache=cache)
    return float(sum(t.numel() * t.element_size() for layer in cache.layers
                     for t in (layer.keys[:, :, :layer.length], layer.values[:, :, :layer.length])))


def _kv_formula(kv=2, layers=None, heads=None, d_head=None, bytes_per=None) -> float:
    """kv x layers x batch x heads x length x d_head x bytes, with any factor replaced (for the mistakes)."""
    c = _checkpoint_sizes()
    return float(kv * (c["layers"] if layers is None else layers) * KV_BATCH
                 * (c["heads"] if heads is None else heads) * KV_LENGTH
                 * (c["d_head"] if d_head is None else d_head) * (c["bytes"] if bytes_per is None else bytes_per))


_KV_HINT = ("Every layer caches a key tensor and a value tensor, each of shape (batch, heads, positions, d_head), "
            "with d_head = d_model / heads, in every layer; a float32 is 4 bytes.")

KV_CACHE = Prediction(
    name="kv_cache_bytes",
    question=("how many bytes do the keys and values in the KV cache of the checkpoint GPT (3 layers, d_model "
              "96, 4 heads, float32) take after a 64-token prompt, batch 1?"),
    measure=_measure_kv_bytes, unit="bytes", rtol=0.02, hint=_KV_HINT,
    explanation=("Keys and values (2) x 3 layers x 1 sequence x 4 heads x 64 positions x 24 features x 4 bytes: "
                 "heads x d_head = d_model, so the head count cancels and the cache grows as "
                 "2 x layers x length x d_model numbers per sequence, linearly in the length."),
    mistakes=(
        Mistake("keys_only", "That is the keys alone. The cache holds the values too (attention needs both: "
                "weights from q.K, output from the weighted V), so twice as much.",
                lambda: _kv_formula(kv=1)),
        Mistake("one_layer", "That is one layer's cache. Every layer has its own attention, so its own keys and "
                "values: multiply by the number of layers (3).",
                lambda: _kv_formula(layers=1)),
        Mistake("bits", "That is the size in bits. A float32 is 32 bits = 4 bytes: count 4 bytes per number.",
                lambda: _kv_formula(bytes_per=32)),
        Mistake("d_model_per_head", "You gave every head d_model = 96 features. The heads split d_model: each "
                "has d_head = 96 / 4 = 24, so heads x d_head = d_model.",
                lambda: _kv_formula(d_head=_checkpoint_sizes()["d_model"])),
        Mistake("forgot_heads", "You counted one head's d_head = 24 features per position. There are 4 heads, "
                "each with its own keys and values: 4 x 24 = 96 = d_model numbers per position and layer.",
                lambda: _kv_formula(heads=1)),
        Mistake("mebibytes", "That is the size in MiB (the chapter's table prints MiB). The question asks for "
                "bytes: multiply by 2**20.",
                lambda: _kv_formula() / 2 ** 20),
    ))

_CHAPTER = Chapter("Decoder-only models: GPT", [TOP_K, CACHED, KV_CACHE])


def check_top_k_probs(fn) -> CheckResult:
    """Check ``fn(logits, temperature, k) -> probabilities``: logits (B, vocab) float64, the
    softmax of ``logits / temperature`` restricted to the k largest logits (others 0)."""
    return _CHAPTER.check(TOP_K, _tensor_fn(fn))


def check_cached_attention(fn) -> CheckResult:
    """Check ``fn(q, K_past, V_past, k, v) -> output (B, H, 1, d_head)``: one generation step with a
    KV cache. ``q``, ``k``, ``v`` (B, H, 1, d_head) belong to the new token; ``K_past``, ``V_past``
    (B, H, n, d_head) are the cached keys and values."""
    return _CHAPTER.check(CACHED, _tensor_fn(fn))


def check_kv_cache_bytes(prediction) -> CheckResult:
    """Check a predicted number of bytes for the KV cache of the checkpoint GPT after 64 tokens, batch 1.

    ``prediction`` is the number, or a function of no arguments that returns it (the notebook's stub
    is such a function, raising NotImplementedError until it is written); it is compared with what
    :func:`_measure_kv_bytes` measures on an attnlib ``KVCache``, within 2 %.
    """
    return _CHAPTER.check(KV_CACHE, prediction)


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
