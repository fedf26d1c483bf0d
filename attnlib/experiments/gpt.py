"""Chapter 15's experiments: training a character GPT, losses at longer contexts, the KV cache's speed-up."""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from attnlib.checks import check_positive_count, check_real
from attnlib.torch import GPT, evaluate_lm_loss, lm_loss, train

__all__ = ["train_language_model", "context_length_losses", "kv_cache_speedup"]


def train_language_model(model: GPT, corpus, steps: int, batch_size: int = 64, lr: float = 3e-3,
                         block_size: int | None = None, seed: int = 0, progress: bool = True,
                         desc: str = "training GPT"):
    """Train ``model`` on random blocks of ``corpus`` with the shared loop :func:`attnlib.torch.train`.

    AdamW with a cosine learning-rate decay to 10 % over ``steps``, gradient clipping at 1.

    Parameters
    ----------
    model : GPT
    corpus : attnlib.data.CharCorpus
    steps, batch_size : int
    lr : float
        Peak learning rate.
    block_size : int, optional
        Training window; default the model's ``block_size``.
    seed : int
        Seeds the choice of blocks.
    progress : bool
    desc : str

    Returns
    -------
    attnlib.torch.History
    """

    if not isinstance(model, GPT):
        raise TypeError(f"model must be an attnlib.torch.GPT, got {type(model).__name__}")
    steps, batch_size = check_positive_count(steps, "steps"), check_positive_count(batch_size, "batch_size")
    check_real(lr, "lr", positive=True)
    block_size = model.block_size if block_size is None else check_positive_count(block_size, "block_size")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    return train(model, corpus.batch_stream("train", batch_size, block_size, seed), lm_loss, opt,
                 steps=steps, scheduler=sched, clip=1.0, progress=progress, desc=desc)


def context_length_losses(models: dict, ids: np.ndarray, lengths, num_blocks: int = 32,
                          seed: int = 0, last_only: int | None = None) -> dict:
    """Validation loss of each model at each evaluation length (NaN where a model cannot run).

    Parameters
    ----------
    models : dict
        ``{name: GPT}``.
    ids : numpy.ndarray of int, shape (N,)
    lengths : sequence of int
        Window lengths, e.g. 1x, 2x and 4x the training context.
    num_blocks, seed : int
        As in :func:`evaluate_lm_loss` (the same windows for every model).
    last_only : int, optional
        Score only the last ``last_only`` positions of each window.

    Returns
    -------
    dict
        ``{name: {length: loss}}``; learned positions give NaN beyond their table.
    """
    if not isinstance(models, dict):
        raise TypeError(f"models must be a dict {{name: GPT}}, got {type(models).__name__}")
    lengths = [check_positive_count(L, "each of lengths") for L in lengths]
    num_blocks = check_positive_count(num_blocks, "num_blocks")
    out = {}
    for name, model in models.items():
        out[name] = {}
        for L in lengths:
            try:
                out[name][L] = evaluate_lm_loss(model, ids, L, num_blocks, seed=seed, last_only=last_only)
            except ValueError:  # learned positions cannot go past block_size
                out[name][L] = float("nan")
    return out


def kv_cache_speedup(model: GPT, prompt_len: int = 16, new_tokens: int = 256, repeats: int = 3,
                     seed: int = 0) -> dict:
    """Time greedy generation with and without the KV cache (medians of interleaved runs).

    Parameters
    ----------
    model : GPT
        Its ``block_size`` should be at least ``prompt_len + new_tokens``, or both paths re-run
        the window once the cache is full.
    prompt_len, new_tokens, repeats, seed : int

    Returns
    -------
    dict
        ``cached_s``, ``uncached_s`` (seconds per generation), ``speedup`` (uncached / cached)
        and ``identical`` (same tokens).
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an attnlib.torch.GPT, got {type(model).__name__}")
    for name, n in (("prompt_len", prompt_len), ("new_tokens", new_tokens), ("repeats", repeats)):
        check_positive_count(n, name)
    g = torch.Generator().manual_seed(seed)
    device = model.tok_emb.weight.device
    prompt = torch.randint(0, model.vocab_size, (1, prompt_len), generator=g).to(device)
    times = {True: [], False: []}
    outs = {}
    for _ in range(repeats + 1):  # the first round warms up
        for use_cache in (True, False):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            outs[use_cache] = model.generate(prompt, new_tokens, temperature=0, use_cache=use_cache)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[use_cache].append(time.perf_counter() - t)
    cached, uncached = (float(np.median(times[c][1:])) for c in (True, False))
    return {"cached_s": cached, "uncached_s": uncached, "speedup": uncached / cached,
            "identical": bool(torch.equal(outs[True], outs[False]))}
