"""Chapter 15's experiments: a character GPT against n-gram counts, sampling, longer contexts, the KV cache.

Two maintainer sweeps (:mod:`attnlib.experiments.results`) hold what a notebook's two minutes
cannot: ``ch15_gpt_checkpoint`` trains the shipped checkpoint ``ch15_gpt.safetensors`` (recipe
:data:`CHECKPOINT_RECIPE`, read back with :func:`load_gpt_checkpoint`), and
``ch15_position_extrapolation`` trains learned / RoPE / ALiBi models over three seeds
(:data:`EXTRAPOLATION_RECIPE`) and scores them at longer contexts on the same characters.
Both are rewritten with ``make experiments SWEEPS=<name>``.
"""
from __future__ import annotations

import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from attnlib.checks import check_count, check_positive_count, check_real, check_token_ids
from attnlib.experiments.results import artifact_path, sweep
from attnlib.torch import GPT, evaluate_lm_loss, lm_loss, train
from attnlib.torch.transformer.gpt import POSITION_KINDS

__all__ = ["ngram_loss", "ngram_losses", "train_language_model", "same_target_windows", "context_length_losses",
           "text_loss", "kv_cache_speedup", "sample_word_statistics", "load_gpt_checkpoint", "train_logged_gpt",
           "gpt_checkpoint_sweep", "position_extrapolation_sweep", "CHECKPOINT_RECIPE", "EXTRAPOLATION_RECIPE"]


def _ngram_codes(ids: np.ndarray, n: int, vocab_size: int) -> np.ndarray:
    """The base-``vocab_size`` code of every window of ``n`` ids, shape (len(ids) - n + 1,)."""
    codes = np.zeros(len(ids) - n + 1, dtype=np.int64)
    for j in range(n):
        codes = codes * vocab_size + ids[j:len(ids) - n + 1 + j]
    return codes


def _count_lookup(train_codes: np.ndarray, query_codes: np.ndarray) -> np.ndarray:
    """How often each of ``query_codes`` occurs in ``train_codes``."""
    values, counts = np.unique(train_codes, return_counts=True)
    pos = np.clip(np.searchsorted(values, query_codes), 0, max(len(values) - 1, 0))
    found = (values[pos] == query_codes) if len(values) else np.zeros(len(query_codes), bool)
    return np.where(found, counts[pos] if len(values) else 0, 0)


def ngram_loss(train_ids, eval_ids, n: int, vocab_size: int, alpha: float = 0.1,
               start: int | None = None) -> float:
    r"""Cross-entropy (nats per token) of an add-``alpha`` smoothed count n-gram model.

    The model is trained by counting on ``train_ids``:
    :math:`p(c \mid h) = (N(h, c) + \alpha) / (N(h) + \alpha V)`, with :math:`h` the
    :math:`n - 1` tokens before :math:`c` (none for the unigram) and :math:`V` the vocabulary size.

    Parameters
    ----------
    train_ids, eval_ids : numpy.ndarray of int, shape (N_train,), (N_eval,)
        Token ids in ``[0, vocab_size)``.
    n : int
        The order: 1 unigram, 2 bigram, ...
    vocab_size : int
    alpha : float
        Add-alpha (Lidstone) smoothing, > 0, so unseen n-grams keep a probability.
    start : int, optional
        Score ``eval_ids[start:]``; default ``n - 1`` (the first token with a full context).
        Pass the largest order minus one to score the same tokens for every order.

    Returns
    -------
    float
        Mean :math:`-\log p` over the scored tokens of ``eval_ids``.
    """
    n = check_positive_count(n, "n")
    vocab_size = check_positive_count(vocab_size, "vocab_size")
    check_real(alpha, "alpha", positive=True)
    train_ids, eval_ids = (np.asarray(check_token_ids(a, vocab_size, name), dtype=np.int64)
                           for a, name in ((train_ids, "train_ids"), (eval_ids, "eval_ids")))
    for a, name in ((train_ids, "train_ids"), (eval_ids, "eval_ids")):
        if a.ndim != 1:
            raise ValueError(f"{name} must be a 1-D sequence of ids, got shape {a.shape}")
    start = n - 1 if start is None else check_count(start, "start")
    if start < n - 1:
        raise ValueError(f"start={start} leaves the first tokens without the {n - 1} tokens of context "
                         f"an {n}-gram needs: use start >= {n - 1}")
    if len(train_ids) < n or len(eval_ids) <= start:
        raise ValueError(f"train_ids needs at least n={n} ids and eval_ids more than start={start}, got "
                         f"{len(train_ids)} and {len(eval_ids)}")
    return float(_ngram_nll(train_ids, eval_ids, n, vocab_size, alpha)[start - n + 1:].mean())


def _ngram_nll(train_ids: np.ndarray, eval_ids: np.ndarray, n: int, vocab_size: int, alpha: float) -> np.ndarray:
    """-log p of each of ``eval_ids[n - 1:]`` under the add-alpha n-gram counted on ``train_ids``."""
    full = _ngram_codes(eval_ids, n, vocab_size)   # (history, token) of each scored token
    joint = _count_lookup(_ngram_codes(train_ids, n, vocab_size), full)
    if n == 1:
        history = np.full(len(full), len(train_ids))
    else:  # N(h): histories counted where a next token follows, so that sum_c N(h, c) = N(h)
        history = _count_lookup(_ngram_codes(train_ids[:-1], n - 1, vocab_size), full // vocab_size)
    return -np.log((joint + alpha) / (history + alpha * vocab_size))


def ngram_losses(train_ids, eval_ids, vocab_size: int, orders=(1, 2, 3, 4), alpha: float = 0.1) -> dict:
    """:func:`ngram_loss` of each order in ``orders``, all on the same tokens of ``eval_ids``.

    Returns
    -------
    dict
        ``{n: nats per token}``; every order scores ``eval_ids[max(orders) - 1:]``.
    """
    orders = [check_positive_count(n, "each of orders") for n in orders]
    if not orders:
        raise ValueError("orders must name at least one n-gram order")
    start = max(orders) - 1
    return {n: ngram_loss(train_ids, eval_ids, n, vocab_size, alpha, start=start) for n in orders}


def train_language_model(model: GPT, corpus, steps: int, batch_size: int = 64, lr: float = 3e-3,
                         block_size: int | None = None, seed: int = 0, progress: bool = True,
                         desc: str = "training GPT", warmup: int = 0, eval_fn=None, eval_every: int | None = None):
    """Train ``model`` on random blocks of ``corpus`` with the shared loop :func:`attnlib.torch.train`.

    AdamW with a cosine learning-rate decay to 10 % over ``steps`` (after an optional linear
    warm-up of ``warmup`` steps), gradient clipping at 1.

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
    warmup : int
        Steps of linear learning-rate warm-up (0: none).
    eval_fn, eval_every : optional
        Passed to :func:`attnlib.torch.train` (e.g. a validation loss every ``eval_every`` steps).

    Returns
    -------
    attnlib.torch.History
    """

    if not isinstance(model, GPT):
        raise TypeError(f"model must be an attnlib.torch.GPT, got {type(model).__name__}")
    steps, batch_size = check_positive_count(steps, "steps"), check_positive_count(batch_size, "batch_size")
    check_real(lr, "lr", positive=True)
    block_size = model.block_size if block_size is None else check_positive_count(block_size, "block_size")
    warmup = check_count(warmup, "warmup")
    if warmup >= steps:
        raise ValueError(f"warmup={warmup} must be shorter than steps={steps}")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.01)

    def factor(s):
        if s < warmup:
            return (s + 1) / warmup
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s - warmup, steps - warmup) / (steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return train(model, corpus.batch_stream("train", batch_size, block_size, seed), lm_loss, opt,
                 steps=steps, scheduler=sched, clip=1.0, progress=progress, desc=desc,
                 eval_fn=eval_fn, eval_every=eval_every)


def _target_ends(n: int, max_len: int, num_blocks: int, seed: int) -> np.ndarray:
    """The seeded end positions of :func:`same_target_windows` (the last target of each window)."""
    return np.random.default_rng(seed).integers(max_len, n - 1, size=num_blocks)


def same_target_windows(ids: np.ndarray, lengths, num_blocks: int, score_last: int, seed: int = 0):
    """Windows of every length in ``lengths`` that end at the same target positions of ``ids``.

    Window ``b`` of length ``L`` is ``x = ids[e_b - L : e_b]`` with targets ``y = ids[e_b - L + 1 :
    e_b + 1]``; the ends ``e_b`` are drawn once (seeded), so the last ``score_last`` targets are the
    same characters at every length and only the context before them grows.

    Parameters
    ----------
    ids : numpy.ndarray of int, shape (N,)
    lengths : sequence of int
    num_blocks, score_last, seed : int

    Returns
    -------
    dict
        ``{L: (x, y)}``, each of shape (num_blocks, L), int64.
    """
    lengths = [check_positive_count(L, "each of lengths") for L in lengths]
    num_blocks = check_positive_count(num_blocks, "num_blocks")
    score_last = check_positive_count(score_last, "score_last")
    ids = np.asarray(ids)
    if not lengths:
        raise ValueError("lengths must name at least one window length")
    if score_last > min(lengths):
        raise ValueError(f"score_last={score_last} must not exceed the shortest length {min(lengths)}")
    if ids.ndim != 1 or len(ids) <= max(lengths) + 1:
        raise ValueError(f"ids must be 1-D and longer than the longest length {max(lengths)} + 1, got shape {ids.shape}")
    ends = _target_ends(len(ids), max(lengths), num_blocks, check_count(seed, "seed"))
    out = {}
    for L in lengths:
        window = ends[:, None] + np.arange(-L, 1)[None, :]
        blocks = ids[window].astype(np.int64)
        out[L] = (blocks[:, :-1], blocks[:, 1:])
    return out


def context_length_losses(models: dict, ids: np.ndarray, lengths, num_blocks: int = 32,
                          seed: int = 0, last_only: int | None = None, batch_size: int = 16) -> dict:
    """Loss of each model on the same target characters, seen with each context length.

    Every length scores the same ``last_only`` characters at the end of ``num_blocks`` windows
    (:func:`same_target_windows`): only the context before them changes, so differences between
    lengths are what the longer context is worth (or costs), not a change of test characters.

    Parameters
    ----------
    models : dict
        ``{name: GPT}``.
    ids : numpy.ndarray of int, shape (N,)
    lengths : sequence of int
        Window lengths, e.g. 1x, 2x and 4x the training context.
    num_blocks, seed : int
        How many windows, and the seed that picks their ends (the same for every model).
    last_only : int, optional
        How many characters at the end of each window are scored; default the shortest length.
    batch_size : int
        Windows per forward pass.

    Returns
    -------
    dict
        ``{name: {length: loss}}`` in nats per character; learned positions give NaN beyond their table.
    """
    if not isinstance(models, dict):
        raise TypeError(f"models must be a dict {{name: GPT}}, got {type(models).__name__}")
    lengths = [check_positive_count(L, "each of lengths") for L in lengths]
    last_only = min(lengths) if last_only is None else check_positive_count(last_only, "last_only")
    batch_size = check_positive_count(batch_size, "batch_size")
    windows = same_target_windows(ids, lengths, num_blocks, last_only, seed)
    out = {}
    for name, model in models.items():
        if not isinstance(model, GPT):
            raise TypeError(f"models[{name!r}] must be an attnlib.torch.GPT, got {type(model).__name__}")
        out[name] = {}
        device = model.tok_emb.weight.device
        was_training = model.training
        model.eval()
        try:
            for L in lengths:
                if model.positions == "learned" and L > model.block_size:
                    out[name][L] = float("nan")  # learned positions cannot go past block_size
                    continue
                x, y = windows[L]
                total = 0.0
                with torch.no_grad():
                    for b in range(0, len(x), batch_size):
                        xb = torch.as_tensor(x[b:b + batch_size], device=device)
                        yb = torch.as_tensor(y[b:b + batch_size, -last_only:], device=device)
                        logits = model(xb)[:, -last_only:]
                        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1),
                                                 reduction="sum").item()
                out[name][L] = total / (len(x) * last_only)
        finally:
            model.train(was_training)
    return out


def text_loss(model: GPT, ids: np.ndarray, block_size: int | None = None, batch_size: int = 32) -> float:
    """Mean next-token loss over a whole text, cut into consecutive windows (every target scored once).

    Parameters
    ----------
    model : GPT
    ids : numpy.ndarray of int, shape (N,)
    block_size : int, optional
        Window length; default the model's. Targets ``ids[1:]`` are each scored once, the first of
        each window with no context, the last with ``block_size - 1`` characters.
    batch_size : int

    Returns
    -------
    float
        Nats per token over ``ids[1 : 1 + k * block_size]`` (``k`` whole windows).
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an attnlib.torch.GPT, got {type(model).__name__}")
    block_size = model.block_size if block_size is None else check_positive_count(block_size, "block_size")
    batch_size = check_positive_count(batch_size, "batch_size")
    ids = np.asarray(check_token_ids(ids, model.vocab_size, "ids"), dtype=np.int64)
    k = (len(ids) - 1) // block_size
    if ids.ndim != 1 or k < 1:
        raise ValueError(f"ids must be 1-D and longer than block_size={block_size}, got shape {ids.shape}")
    x = ids[:k * block_size].reshape(k, block_size)
    y = ids[1:k * block_size + 1].reshape(k, block_size)
    device = model.tok_emb.weight.device
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        with torch.no_grad():
            for b in range(0, k, batch_size):
                logits = model(torch.as_tensor(x[b:b + batch_size], device=device))
                total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                         torch.as_tensor(y[b:b + batch_size], device=device).reshape(-1),
                                         reduction="sum").item()
    finally:
        model.train(was_training)
    return total / y.size


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
        ``cached_s``, ``uncached_s`` (median seconds per generation), ``speedup`` (their ratio),
        ``ratios`` (uncached / cached of each interleaved round, after one warm-up round) and
        ``identical`` (same tokens).
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
    ratios = [u / c for c, u in zip(times[True][1:], times[False][1:])]
    return {"cached_s": cached, "uncached_s": uncached, "speedup": uncached / cached, "ratios": ratios,
            "identical": bool(torch.equal(outs[True], outs[False]))}


def sample_word_statistics(model: GPT, corpus, prompt: str, settings, num_samples: int = 8,
                           new_tokens: int = 100, seed: int = 0) -> dict:
    """How word-like the samples of each sampling setting are, with the spread over samples.

    For each ``(temperature, top_k, top_p)`` in ``settings``, ``num_samples`` continuations of
    ``prompt`` are drawn (one batched, seeded ``generate``); in each, the complete words (the
    last, possibly cut, word is dropped) are looked up in the words of the training text.

    Parameters
    ----------
    model : GPT
    corpus : attnlib.data.CharCorpus
    prompt : str
    settings : sequence of (float, int or None, float or None)
    num_samples, new_tokens, seed : int

    Returns
    -------
    dict
        ``{(temperature, top_k, top_p): {"known": [share per sample], "rare": [share of the rare
        letters j, q, x, z per sample], "mean_known", "std_known", "mean_rare", "std_rare"}}``
        (std over samples, ddof 1; needs ``num_samples >= 2``).
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an attnlib.torch.GPT, got {type(model).__name__}")
    num_samples = check_positive_count(num_samples, "num_samples")
    if num_samples < 2:
        raise ValueError(f"num_samples must be at least 2 (a spread needs two samples), got {num_samples}")
    new_tokens = check_positive_count(new_tokens, "new_tokens")
    vocabulary = set(corpus.decode(corpus.train_ids).split())
    device = model.tok_emb.weight.device
    idx = torch.as_tensor(np.tile(corpus.encode(prompt), (num_samples, 1)), device=device)
    out = {}
    for setting in settings:
        temperature, top_k, top_p = setting
        g = torch.Generator(device=device).manual_seed(check_count(seed, "seed"))
        toks = model.generate(idx, new_tokens, temperature, top_k, generator=g, top_p=top_p)
        known, rare = [], []
        for row in toks[:, idx.shape[1]:].cpu():
            text = corpus.decode(row)
            words = text.split()[:-1] if not text.endswith(" ") else text.split()
            known.append(float(np.mean([w in vocabulary for w in words])) if words else 0.0)
            letters = text.replace(" ", "")
            rare.append(sum(letters.count(c) for c in "jqxz") / max(len(letters), 1))
        out[tuple(setting)] = {"known": known, "rare": rare,
                               "mean_known": float(np.mean(known)), "std_known": float(np.std(known, ddof=1)),
                               "mean_rare": float(np.mean(rare)), "std_rare": float(np.std(rare, ddof=1))}
    return out


# ----------------------------------------------------------------------------- maintainer sweeps

#: The recipe of the shipped checkpoint ``ch15_gpt.safetensors`` (sweep ``ch15_gpt_checkpoint``).
CHECKPOINT_RECIPE = {"block_size": 64, "d_model": 96, "num_heads": 4, "num_layers": 3, "positions": "learned",
                     "steps": 1600, "batch_size": 32, "lr": 3e-3, "warmup": 100, "seed": 0,
                     "log_every": 100, "log_val_blocks": 32}
CHECKPOINT_FILE = "ch15_gpt.safetensors"


def _gpt_of_recipe(recipe: dict, vocab_size: int) -> GPT:
    return GPT(vocab_size, recipe["block_size"], recipe["d_model"], recipe["num_heads"], recipe["num_layers"],
               positions=recipe["positions"])


def load_gpt_checkpoint(path=None, device=None) -> GPT:
    """The shipped GPT of sweep ``ch15_gpt_checkpoint``, its SHA-256 checked, in eval mode.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        Default: the stored artifact ``ch15_gpt.safetensors`` (via :func:`load_artifact_path`).
    device : torch.device or str, optional

    Returns
    -------
    GPT
        Built from :data:`CHECKPOINT_RECIPE`, vocabulary of :func:`attnlib.data.char_corpus`.
    """
    from attnlib.data import char_corpus
    from attnlib.experiments.results import load_artifact_path
    from attnlib.torch import load_checkpoint

    path = load_artifact_path("ch15_gpt_checkpoint", CHECKPOINT_FILE) if path is None else path
    model = _gpt_of_recipe(CHECKPOINT_RECIPE, char_corpus().vocab_size)
    if device is not None:
        model = model.to(device)
    load_checkpoint(model, path)
    return model.eval()


def train_logged_gpt(recipe: dict, corpus, progress: bool = True, desc: str = "training GPT"):
    """Train a GPT of ``recipe`` (keys as :data:`CHECKPOINT_RECIPE`), logging train and validation loss.

    Returns
    -------
    model : GPT
    log : dict
        ``step``, ``train`` (mean training loss over the last ``log_every`` steps) and ``val``
        (:func:`attnlib.torch.evaluate_lm_loss` on ``log_val_blocks`` fixed validation windows),
        every ``log_every`` steps and at the end; ``train_seconds``.
    """
    from attnlib.seeding import seed as seed_all

    seed_all(recipe["seed"])
    model = _gpt_of_recipe(recipe, corpus.vocab_size)
    val = lambda m: {"val": evaluate_lm_loss(m, corpus.val_ids, recipe["block_size"],  # noqa: E731
                                             recipe["log_val_blocks"], seed=1)}
    hist = train_language_model(model, corpus, recipe["steps"], recipe["batch_size"], recipe["lr"],
                                seed=recipe["seed"], progress=progress, desc=desc, warmup=recipe["warmup"],
                                eval_fn=val, eval_every=recipe["log_every"])
    steps = [e["step"] for e in hist.evals]
    every = recipe["log_every"]
    train_means = [float(np.mean(hist.losses[max(0, s - every):s])) for s in steps]
    return model, {"step": steps, "train": train_means, "val": [e["val"] for e in hist.evals],
                   "train_seconds": hist.train_seconds}


@sweep("ch15_gpt_checkpoint", rtol=1e-4, atol=1e-5, artifacts=(CHECKPOINT_FILE,))
def gpt_checkpoint_sweep(reduced: bool) -> dict:
    """Train the chapter's shipped GPT (:data:`CHECKPOINT_RECIPE`) and compare it with n-gram counts.

    Full: the recipe, its log, its loss on the whole validation text (:func:`text_loss`) beside the
    add-0.1 n-grams of orders 1-5, and the checkpoint written to ``ch15_gpt.safetensors``.
    Reduced: the same recipe for 20 steps (logged every 10), its losses only; nothing is written.
    """
    from attnlib.data import char_corpus
    from attnlib.torch import save_checkpoint

    corpus = char_corpus()
    recipe = dict(CHECKPOINT_RECIPE)
    if reduced:
        recipe.update(steps=20, warmup=5, log_every=10, log_val_blocks=4)
    model, log = train_logged_gpt(recipe, corpus, progress=not reduced, desc="ch15 checkpoint")
    train_seconds = log.pop("train_seconds")
    out = {"recipe": recipe, "log": log}
    if reduced:
        return out
    out["train_seconds"] = round(train_seconds, 1)
    out["parameters"] = sum(p.numel() for p in model.parameters())
    out["val_text_loss"] = text_loss(model, corpus.val_ids)
    out["train_text_loss_first_115k"] = text_loss(model, corpus.train_ids[:len(corpus.val_ids)])
    out["ngram_val"] = {str(n): v for n, v in ngram_losses(corpus.train_ids, corpus.val_ids, corpus.vocab_size,
                                                           orders=(1, 2, 3, 4, 5)).items()}
    save_checkpoint(model, artifact_path(CHECKPOINT_FILE),
                    metadata={"recipe": json.dumps(recipe), "sweep": "ch15_gpt_checkpoint",
                              "command": "make experiments SWEEPS=ch15_gpt_checkpoint"})
    return out


#: The recipe of sweep ``ch15_position_extrapolation``: one small GPT per position kind and seed.
EXTRAPOLATION_RECIPE = {"train_len": 32, "d_model": 64, "num_heads": 4, "num_layers": 2, "steps": 800,
                        "batch_size": 32, "lr": 4e-3, "warmup": 50, "seeds": [0, 1, 2],
                        "lengths": [32, 64, 128, 256], "num_blocks": 128, "score_last": 16}


def _mean_std(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


@sweep("ch15_position_extrapolation", rtol=1e-4, atol=1e-5)
def position_extrapolation_sweep(reduced: bool) -> dict:
    """Learned positions, RoPE and ALiBi, trained at ``train_len`` and scored at longer contexts.

    Each (kind, seed) model is trained with :func:`train_language_model`; :func:`context_length_losses`
    then scores the same ``score_last`` validation characters at the end of ``num_blocks`` windows
    of every length (only the context before them grows). The add-0.1 n-grams of orders 1-5 are
    scored on exactly those characters. Reduced: one seed, 10 steps, lengths 32 and 64, 8 windows.

    Returns
    -------
    dict
        ``recipe``; ``losses[kind][length]``: one loss per seed; ``summary[kind][length]``: mean
        and sample std over seeds; ``change[kind][length]``: the per-seed loss at ``length`` minus
        at ``train_len``, mean and std; ``ngram``: {order: loss on the same characters}.
    """
    from attnlib.data import char_corpus
    from attnlib.seeding import seed as seed_all

    corpus = char_corpus()
    r = dict(EXTRAPOLATION_RECIPE)
    if reduced:
        r.update(steps=10, warmup=2, seeds=[0], lengths=[32, 64], num_blocks=8)
    lengths = r["lengths"]
    losses = {}
    for kind in POSITION_KINDS:
        losses[kind] = {str(L): [] for L in lengths}
        for s in r["seeds"]:
            seed_all(s)
            model = GPT(corpus.vocab_size, r["train_len"], r["d_model"], r["num_heads"], r["num_layers"],
                        positions=kind)
            train_language_model(model, corpus, r["steps"], r["batch_size"], r["lr"], seed=s,
                                 progress=not reduced, desc=f"{kind} seed {s}", warmup=r["warmup"])
            got = context_length_losses({kind: model}, corpus.val_ids, lengths, r["num_blocks"],
                                        seed=0, last_only=r["score_last"])[kind]
            for L in lengths:
                losses[kind][str(L)].append(got[L])
    summary, change = {}, {}
    base = str(r["train_len"])
    for kind, by_len in losses.items():
        summary[kind] = {L: _mean_std(v) if not np.isnan(v).any() else None for L, v in by_len.items()}
        change[kind] = {L: _mean_std(np.subtract(v, by_len[base])) if not np.isnan(v).any() else None
                        for L, v in by_len.items() if L != base}
    losses = {k: {L: (v if not np.isnan(v).any() else None) for L, v in by_len.items()}
              for k, by_len in losses.items()}
    ends = _target_ends(len(corpus.val_ids), max(lengths), r["num_blocks"], 0)
    targets = (ends[:, None] + np.arange(1 - r["score_last"], 1)[None, :]).ravel()
    ngram = {}
    for n in (1, 2, 3, 4, 5):
        nll = _ngram_nll(corpus.train_ids, corpus.val_ids, n, corpus.vocab_size, 0.1)
        ngram[str(n)] = float(nll[targets - n + 1].mean())
    return {"recipe": r, "losses": losses, "summary": summary, "change": change, "ngram": ngram}
