"""The fixed-length bottleneck, measured: two encoder-decoders of the same size, with and without attention.

:func:`bottleneck_models` builds the pair (same embedding size, same bidirectional GRU encoder
design, hidden sizes chosen so the parameter counts are within a few per cent), and
:func:`accuracy_by_length` measures exact-match accuracy in bins of source length, the curve on
which a decoder that sees only the encoder's final state falls off.
"""
from __future__ import annotations

from collections.abc import Sequence

from attnlib.checks import check_count, check_positive_count
from attnlib.experiments.results import sweep
from attnlib.torch import (
    AdditiveAttention,
    AttentionDecoder,
    GRUDecoder,
    GRUEncoder,
    Seq2Seq,
    predict,
)

__all__ = ["bottleneck_models", "length_bins", "accuracy_by_length", "reversal_task",
           "bottleneck_seed_sweep", "pooled_accuracy", "interleaved_step_times"]


def bottleneck_models(source_vocab_size: int, target_vocab_size: int, embed_dim: int = 32,
                      hidden_plain: int = 64, hidden_attention: int = 54):
    """An encoder-decoder without attention and one with additive attention.

    Both use a bidirectional :class:`~attnlib.torch.GRUEncoder`. The plain model's
    :class:`~attnlib.torch.GRUDecoder` starts from the encoder's final state and never sees the
    source again; the other's :class:`~attnlib.torch.AttentionDecoder` attends to every encoder
    state through :class:`~attnlib.torch.AdditiveAttention`. The defaults give 66,510 and 67,924
    parameters for vocabularies of 14 tokens (both sides), within 3 %.

    Parameters
    ----------
    source_vocab_size, target_vocab_size : int
    embed_dim : int
    hidden_plain : int
        Hidden size (per encoder direction, and of the decoder) without attention.
    hidden_attention : int
        The same with attention (smaller: attention adds parameters).

    Returns
    -------
    plain : Seq2Seq
    attentive : Seq2Seq
    """
    enc = GRUEncoder(source_vocab_size, embed_dim, hidden_plain, bidirectional=True)
    plain = Seq2Seq(enc, GRUDecoder(target_vocab_size, embed_dim, hidden_plain, enc.output_size))
    h = hidden_attention
    enc2 = GRUEncoder(source_vocab_size, embed_dim, h, bidirectional=True)
    dec2 = AttentionDecoder(target_vocab_size, embed_dim, h, enc2.output_size,
                            AdditiveAttention(h, enc2.output_size, h))
    return plain, Seq2Seq(enc2, dec2)


def length_bins(lo: int, hi: int, width: int) -> list:
    """Consecutive inclusive ranges ``[(lo, lo+width-1), ...]`` covering ``lo..hi``.

    Parameters
    ----------
    lo, hi, width : int

    Returns
    -------
    list of (int, int)
        The last range ends at ``hi``.
    """
    lo, hi, width = check_count(lo, "lo"), check_count(hi, "hi"), check_positive_count(width, "width")
    if hi < lo:
        raise ValueError(f"need width >= 1 and hi >= lo, got lo={lo}, hi={hi}, width={width}")
    return [(a, min(a + width - 1, hi)) for a in range(lo, hi + 1, width)]


def accuracy_by_length(model: Seq2Seq, task, pairs: Sequence, bins: Sequence, device=None) -> list:
    """Exact-match accuracy of greedy decoding, per bin of source length.

    Parameters
    ----------
    model : Seq2Seq
    task : attnlib.data.TranslationTask
    pairs : sequence of attnlib.data.Pair
    bins : sequence of (int, int)
        Inclusive source-length ranges, e.g. from :func:`length_bins`.
    device : torch.device, optional

    Returns
    -------
    list of dict
        One per bin: ``{"lo", "hi", "n", "accuracy"}`` (accuracy is NaN for an empty bin).
    """
    bins = list(bins)
    for b in bins:
        if not (isinstance(b, (tuple, list)) and len(b) == 2):
            raise ValueError(f"bins must be (lo, hi) pairs, e.g. from length_bins(...), got {b!r}")
    pairs = list(pairs)
    texts = predict(model, task, pairs, device=device)
    out = []
    for lo, hi in bins:
        hits = [t == p.target for t, p in zip(texts, pairs) if lo <= len(p.source) <= hi]
        out.append({"lo": lo, "hi": hi, "n": len(hits),
                    "accuracy": sum(hits) / len(hits) if hits else float("nan")})
    return out


def reversal_task():
    """The chapter's reversal task: strings of 3-16 letters a-j, 4000 / 200 / 900 pairs, seed 0."""
    from attnlib.data import reverse_task

    return reverse_task(n_train=4000, n_val=200, n_test=900, min_len=3, max_len=16,
                        alphabet="abcdefghij", seed=0)


def pooled_accuracy(accuracy, counts: Sequence, lengths: Sequence, lo: int, hi: int):
    """Exact match pooled over the source lengths ``lo..hi``, weighted by how many strings each has.

    Parameters
    ----------
    accuracy : array-like, shape (..., n_lengths)
        Exact match per length (e.g. the sweep's seeds x checkpoints x lengths).
    counts : sequence of int, n_lengths of them
        Test strings per length.
    lengths : sequence of int
        The source length of each column.
    lo, hi : int
        Inclusive range of lengths to pool.

    Returns
    -------
    numpy.ndarray, shape (...)
        ``sum(accuracy * n) / sum(n)`` over the columns inside the range.
    """
    import numpy as np

    lo, hi = check_count(lo, "lo"), check_count(hi, "hi")
    a = np.asarray(accuracy, dtype=float)
    n, lengths = np.asarray(counts, dtype=float), np.asarray(lengths)
    if a.shape[-1:] != n.shape or n.shape != lengths.shape:
        raise ValueError(f"accuracy (..., n_lengths), counts and lengths must agree on n_lengths, got "
                         f"{a.shape}, {n.shape} and {lengths.shape}")
    inside = (lengths >= lo) & (lengths <= hi) & (n > 0)
    if not inside.any():
        raise ValueError(f"no length in {lo}..{hi} has a test string")
    return (a[..., inside] * n[inside]).sum(-1) / n[inside].sum()


@sweep("ch9_bottleneck_seeds", rtol=1e-4, atol=1e-6)
def bottleneck_seed_sweep(reduced: bool) -> dict:
    """Both models of the chapter over 3 seeds, with exact match per source length every 300 steps.

    Seed ``s`` builds both models after ``attnlib.seed(s)`` and trains each after ``attnlib.seed(s)``
    on ``batch_stream("train", 64, seed=s)`` with Adam at 1e-2 (the chapter's recipe; seed 0 is the
    chapter's live run). The model without attention trains for 900 steps (3 times the chapter's
    budget, more than the attention model's training time), the attention model for 300; both are
    evaluated on the 900 test strings every 300 steps. ``reduced`` runs one seed
    for 10 steps on 60 test strings.

    Returns
    -------
    dict
        ``{"seeds", "steps", "every", "lengths", "no attention": {...}, "attention": {...}}`` where
        each model maps ``"step"`` (list of ints) to ``"accuracy"`` (seeds x checkpoints x lengths)
        and ``"final_loss"`` (seeds; mean of the last 20 training losses).
    """
    import torch

    import attnlib
    from attnlib.torch import seq2seq_loss, train

    seeds = [0] if reduced else [0, 1, 2]
    every = 5 if reduced else 300
    steps = {"no attention": 10 if reduced else 900, "attention": 10 if reduced else 300}
    task = reversal_task()
    test = task.test[:60] if reduced else task.test
    lengths = list(range(3, 17))
    bins = [(n, n) for n in lengths]
    V = len(task.source_vocab)
    out = {"seeds": seeds, "every": every, "steps": steps, "lengths": lengths,
           "n": [r["n"] for r in _counts(test, bins)]}
    for name in steps:
        out[name] = {"step": [], "accuracy": [], "final_loss": []}
    for seed in seeds:
        attnlib.seed(seed)
        plain, attentive = bottleneck_models(V, V)
        for name, model in [("no attention", plain), ("attention", attentive)]:
            attnlib.seed(seed)
            history = train(model, task.batch_stream("train", 64, seed=seed), seq2seq_loss,
                            torch.optim.Adam(model.parameters(), lr=1e-2), steps=steps[name],
                            eval_fn=lambda m: {"acc": [r["accuracy"] for r in
                                                       accuracy_by_length(m, task, test, bins)]},
                            eval_every=every, progress=not reduced, desc=f"{name}, seed {seed}")
            out[name]["step"] = [e["step"] for e in history.evals]
            out[name]["accuracy"].append([e["acc"] for e in history.evals])
            out[name]["final_loss"].append(sum(history.losses[-20:]) / len(history.losses[-20:]))
    return out


def _counts(pairs: Sequence, bins: Sequence) -> list:
    """How many of ``pairs`` fall in each inclusive source-length bin: ``[{"lo", "hi", "n"}]``."""
    pairs = list(pairs)
    return [{"lo": lo, "hi": hi, "n": sum(lo <= len(p.source) <= hi for p in pairs)} for lo, hi in bins]


def interleaved_step_times(models: dict, batch, loss_fn, repeats: int = 15) -> dict:
    """Median seconds of one training step (forward, backward, Adam) per model, measured interleaved.

    Each model is copied (so the originals do not change) and given its own Adam optimizer; then,
    ``repeats`` times, every model in turn does one step on the same ``batch``. Timing the models
    alternately in one loop exposes them to the same machine load, so the *ratios* of the medians
    are meaningful; the absolute times depend on the machine and are not.

    Parameters
    ----------
    models : dict of str to torch.nn.Module
    batch : the argument of ``loss_fn(model, batch)``
    loss_fn : callable
    repeats : int

    Returns
    -------
    dict of str to float
    """
    import copy
    import statistics
    import time

    import torch

    repeats = check_positive_count(repeats, "repeats")
    if not isinstance(models, dict) or not models:
        raise TypeError(f"models must be a non-empty dict of name -> nn.Module, got {type(models).__name__}")
    copies = {n: copy.deepcopy(m).train() for n, m in models.items()}
    optims = {n: torch.optim.Adam(m.parameters(), lr=1e-3) for n, m in copies.items()}
    times = {n: [] for n in copies}
    for i in range(repeats + 1):                      # the first round warms up and is not counted
        for name, m in copies.items():
            start = time.perf_counter()
            optims[name].zero_grad(set_to_none=True)
            loss_fn(m, batch).backward()
            optims[name].step()
            if i:
                times[name].append(time.perf_counter() - start)
    return {n: statistics.median(t) for n, t in times.items()}
