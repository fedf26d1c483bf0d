"""Chapter 11's experiment: the Luong variants (global dot/general/concat/location, local-m,
local-p) and Bahdanau's model, built alike for one comparison, and the maintainer sweep that
repeats the comparison over seeds (:func:`luong_seed_sweep`).
"""
from __future__ import annotations

from collections.abc import Sequence

from attnlib.checks import check_positive_count
from attnlib.experiments.results import sweep
from attnlib.torch import (
    BahdanauDecoder,
    ConcatAttention,
    GRUEncoder,
    InputFeedingDecoder,
    LocalAttentionDecoder,
    LocalMonotonicAttention,
    LocalPredictiveAttention,
    LocationAttention,
    MultiplicativeAttention,
    Seq2Seq,
)

__all__ = ["attention_variants", "luong_task", "train_variants", "argmax_agreement",
           "teacher_forced_weights", "component_parameters", "luong_seed_sweep"]


def attention_variants(source_vocab_size: int, target_vocab_size: int, embed_dim: int = 16,
                       hidden_size: int = 32, window: int = 8, max_source_length: int = 32) -> dict:
    """The attention models the Luong chapter compares, all on the same bidirectional encoder.

    Every model has a :class:`~attnlib.torch.GRUEncoder` (bidirectional, ``hidden_size`` per
    direction) and a decoder of state size ``H = 2 * hidden_size`` (so that *dot* applies):

    - ``"Bahdanau"``: :class:`~attnlib.torch.BahdanauDecoder` (additive, attends with ``s_{t-1}``);
    - ``"dot"``, ``"general"``, ``"concat"``, ``"location"``: global attention with input feeding
      (:class:`InputFeedingDecoder`); *location* scores the positions from the state alone
      (:class:`~attnlib.torch.LocationAttention`, ``max_source_length`` rows);
    - ``"local-m"``, ``"local-p"``: local attention with input feeding and general scores,
      half-width ``window`` (:class:`~attnlib.torch.LocalAttentionDecoder`).

    Parameters
    ----------
    source_vocab_size, target_vocab_size : int
    embed_dim : int
    hidden_size : int
        Per encoder direction.
    window : int
        ``D`` of the local variants.
    max_source_length : int
        The longest source the *location* model can attend over.

    Returns
    -------
    dict of str to callable
        Name -> a function of no argument that builds a fresh :class:`~attnlib.torch.Seq2Seq`
        (call it after seeding, so that every variant starts from its own seeded weights).
    """

    V, E, H = target_vocab_size, embed_dim, 2 * hidden_size
    decoders = {
        "Bahdanau": lambda: BahdanauDecoder(V, E, H, H),
        "dot": lambda: InputFeedingDecoder(V, E, H, H, MultiplicativeAttention(H, H, "dot")),
        "general": lambda: InputFeedingDecoder(V, E, H, H, MultiplicativeAttention(H, H, "general")),
        "concat": lambda: InputFeedingDecoder(V, E, H, H, ConcatAttention(H, H, H)),
        "location": lambda: InputFeedingDecoder(V, E, H, H, LocationAttention(H, H, max_source_length)),
        "local-m": lambda: LocalAttentionDecoder(V, E, H, H, LocalMonotonicAttention(H, H, window)),
        "local-p": lambda: LocalAttentionDecoder(V, E, H, H, LocalPredictiveAttention(H, H, window)),
    }

    def build(make_decoder):
        return lambda: Seq2Seq(GRUEncoder(source_vocab_size, E, hidden_size, bidirectional=True),
                               make_decoder())

    return {name: build(make) for name, make in decoders.items()}


def luong_task(n_train: int = 3000):
    """The chapter's date task: ``date_task(n_train, n_val=500, n_test=1000, seed=0)``."""
    from attnlib.data import date_task

    return date_task(n_train=check_positive_count(n_train, "n_train"), n_val=500, n_test=1000, seed=0)


def train_variants(task, seed: int = 0, steps: int = 150, names: Sequence | None = None,
                   device=None, progress: bool = True) -> tuple:
    """Train the chapter's variants with one seed: the chapter's recipe, in one place.

    Each model is built right after ``attnlib.seed(seed)`` and trained with Adam (1e-2) on
    ``task.batch_stream("train", 64, seed=seed)`` for ``steps`` steps.

    Parameters
    ----------
    task : attnlib.data.TranslationTask
    seed : int
    steps : int
    names : sequence of str, optional
        Which variants of :func:`attention_variants` (default: all).
    device : torch.device, optional
    progress : bool

    Returns
    -------
    models : dict of str to Seq2Seq
    histories : dict of str to attnlib.torch.History
    """
    import torch

    import attnlib
    from attnlib.torch import seq2seq_loss, train

    steps = check_positive_count(steps, "steps")
    builders = attention_variants(len(task.source_vocab), len(task.target_vocab), embed_dim=16,
                                  hidden_size=32, window=8)
    names = list(builders) if names is None else list(names)
    unknown = [n for n in names if n not in builders]
    if unknown:
        raise ValueError(f"names must be among {list(builders)}, got {unknown}")
    models, histories = {}, {}
    for name in names:
        attnlib.seed(seed)
        models[name] = builders[name]().to(device) if device is not None else builders[name]()
        histories[name] = train(models[name], task.batch_stream("train", 64, seed=seed, device=device),
                                seq2seq_loss, torch.optim.Adam(models[name].parameters(), lr=1e-2),
                                steps=steps, desc=f"{name}" if seed == 0 else f"{name}, seed {seed}",
                                progress=progress)
    return models, histories


def argmax_agreement(weights_a, weights_b, offsets: Sequence = (-1, 0, 1)) -> dict:
    """How often two alignments point at the same source position, with rows shifted by ``k``.

    For each offset ``k``, the fraction of rows ``t`` (over all examples) where
    ``argmax_j a[t, j] == argmax_j b[t + k, j]``, counting only rows where both exist. A model
    whose rows are those of another shifted by one agrees best at ``k = 1`` or ``k = -1``.

    Parameters
    ----------
    weights_a, weights_b : sequence of array-like, each (T, L)
        The alignment matrices of the same examples under two models (same T and L per example,
        e.g. teacher-forced).
    offsets : sequence of int

    Returns
    -------
    dict of int to float
    """
    import numpy as np

    if len(weights_a) != len(weights_b) or not len(weights_a):
        raise ValueError(f"weights_a and weights_b must hold the same number (> 0) of matrices, got "
                         f"{len(weights_a)} and {len(weights_b)}")
    out = {}
    for k in offsets:
        hits = total = 0
        for a, b in zip(weights_a, weights_b):
            a, b = np.asarray(a), np.asarray(b)
            if a.shape != b.shape or a.ndim != 2:
                raise ValueError(f"each pair of alignments must have the same 2-d shape, got {a.shape} "
                                 f"and {b.shape}")
            ia, ib = a.argmax(1), b.argmax(1)
            T = len(ia)
            rows = [t for t in range(T) if 0 <= t + k < T]
            hits += sum(int(ia[t] == ib[t + k]) for t in rows)
            total += len(rows)
        out[int(k)] = hits / total if total else float("nan")
    return out


def _check_seq2seq(model) -> None:
    if not all(hasattr(model, a) for a in ("encoder", "decoder")) or \
            getattr(model.decoder, "attention", None) is None:
        raise TypeError(f"model must be an attnlib.torch.Seq2Seq whose decoder has an attention module "
                        f"(e.g. from attention_variants), got {type(model).__name__}")


def teacher_forced_weights(model, task, pairs) -> list:
    """Attention weights with the true target fed in: one (T, L) NumPy array per pair.

    Row ``t`` is the attention while producing target character ``t`` (the last row, ``<eos>``);
    columns are the real source characters.
    """
    import torch

    _check_seq2seq(model)
    pairs = list(pairs)
    if not pairs:
        raise ValueError("pairs must hold at least one attnlib.data.Pair")
    batch = task.encode_batch(pairs, next(model.parameters()).device)
    model.eval()
    with torch.no_grad():
        _, w = model(batch.src, batch.src_lengths, batch.tgt_in, need_weights=True)
    return [w[i, :len(p.target) + 1, :len(p.source)].double().cpu().numpy() for i, p in enumerate(pairs)]


def component_parameters(model) -> dict:
    """Trainable parameters of a chapter model, by part: encoder, decoder cell, scorer, the rest.

    Returns
    -------
    dict of str to int
        ``{"encoder", "GRU cell", "scorer", "rest of the decoder", "total"}``; the scorer is the
        decoder's ``attention`` module (Bahdanau's :math:`W_a, U_a, v_a`, Luong's :math:`W_a`...).
    """
    _check_seq2seq(model)
    count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
    enc, cell, scorer = count(model.encoder), count(model.decoder.cell), count(model.decoder.attention)
    total = count(model)
    return {"encoder": enc, "GRU cell": cell, "scorer": scorer,
            "rest of the decoder": total - enc - cell - scorer, "total": total}


@sweep("ch11_luong_seeds", rtol=1e-4, atol=1e-6)
def luong_seed_sweep(reduced: bool) -> dict:
    """The chapter's comparison over 3 seeds: exact match of every variant after 150 steps.

    Seed ``s`` trains every variant with :func:`train_variants` (seed 0 is the chapter's live run),
    then measures exact match on the first 300 validation and 300 test dates, and the argmax
    agreement (:func:`argmax_agreement`, teacher forcing on the first 200 validation dates) of
    Bahdanau's rows and of *general*'s with *dot*'s, at row offsets -1, 0 and 1. ``reduced``: one
    seed, 5 steps, 20 dates.

    Returns
    -------
    dict
        ``{"seeds", "steps", "models", "val": {name: [per seed]}, "test": {...},
        "agreement": {"Bahdanau vs dot": {"-1": [per seed], "0": ..., "1": ...},
        "general vs dot": {...}}}``.
    """
    from attnlib.torch import evaluate_exact_match

    seeds = [0] if reduced else [0, 1, 2]
    steps = 5 if reduced else 150
    n_eval, n_align = (20, 20) if reduced else (300, 200)
    task = luong_task()
    out = {"seeds": seeds, "steps": steps, "val": {}, "test": {},
           "agreement": {"Bahdanau vs dot": {}, "general vs dot": {}}}
    for seed in seeds:
        models, _ = train_variants(task, seed=seed, steps=steps, progress=not reduced)
        out["models"] = list(models)
        for name, m in models.items():
            out["val"].setdefault(name, []).append(evaluate_exact_match(m, task, task.val[:n_eval]))
            out["test"].setdefault(name, []).append(evaluate_exact_match(m, task, task.test[:n_eval]))
        tf = {n: teacher_forced_weights(models[n], task, task.val[:n_align]) for n in ("Bahdanau", "dot", "general")}
        for key, a in (("Bahdanau vs dot", "Bahdanau"), ("general vs dot", "general")):
            for k, v in argmax_agreement(tf[a], tf["dot"]).items():
                out["agreement"][key].setdefault(str(k), []).append(v)
    return out
