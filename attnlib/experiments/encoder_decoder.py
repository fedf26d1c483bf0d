"""Chapter 14's experiments: the date recipe, training a Transformer on it, every attention map,
exposure bias and scheduled sampling, and the maintainer sweep over seeds (``ch14_seeds``)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import torch

from attnlib.checks import check_probability
from attnlib.experiments.results import sweep
from attnlib.torch import (
    Transformer,
    beam_nbest,
    default_device,
    exact_match,
    noam_schedule,
    predict,
    rerank_nbest,
    scheduled_sampling_loss,
    seq2seq_loss,
    shared_vocabulary_map,
    target_log_probs,
    train,
    warmup_linear_decay,
)

__all__ = ["DateRecipe", "DATE_RECIPE", "train_transformer", "attention_maps", "token_probabilities",
           "exposure_accuracy", "error_kinds", "length_penalty_table", "build_gru", "train_gru", "seeds_sweep",
           "ALPHAS", "mean_std", "compare_seeds"]

#: The length-penalty exponents the chapter compares.
ALPHAS = (0.0, 0.6, 1.0, 2.0)


@torch.no_grad()
def attention_maps(model: Transformer, task, pair, target: str | None = None) -> dict:
    """Every attention map of ``model`` on one example: encoder self, decoder self and cross.

    The decoder reads ``<bos>`` + ``target``; by default the model's own greedy translation.

    Parameters
    ----------
    model : Transformer
    task : attnlib.data.TranslationTask
    pair : attnlib.data.Pair
    target : str, optional
        The target text to feed (default: the model's greedy prediction).

    Returns
    -------
    dict
        ``"encoder"``: numpy array (layers, H, S, S); ``"decoder"``: (layers, H, T, T);
        ``"cross"``: (layers, H, T, S); ``"source"``: list of S source tokens; ``"target"``:
        list of T output tokens (the target then ``<eos>``), each query row of the decoder maps
        produces the token of the same index; ``"input"``: the T decoder input tokens.
    """

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    if target is None:
        target = predict(model, task, [pair], device=device)[0]
    batch = task.encode_batch([type(pair)(pair.source, target, pair.kind)], device)
    memory, src_mask, enc_w = model.encode(batch.src, batch.src_lengths, need_weights=True)
    _, dec_w = model.decode(batch.tgt_in, memory, src_mask, need_weights=True)
    model.train(was_training)
    stack = lambda ws, k: torch.stack([w[k][0] for w in ws]).cpu().numpy()  # noqa: E731
    out_tokens = list(target) + ["<eos>"]
    return {"encoder": stack(enc_w, "self"), "decoder": stack(dec_w, "self"),
            "cross": stack(dec_w, "cross"), "source": list(pair.source), "target": out_tokens,
            "input": ["<bos>"] + list(target)}


@dataclass(frozen=True)
class DateRecipe:
    """The chapter's training recipe for the date task (see :func:`train_transformer`), frozen.

    Change a setting with ``dataclasses.replace(DATE_RECIPE, steps=500)`` or pass it to
    :func:`train_transformer` as a keyword.
    """
    steps: int = 1000
    batch_size: int = 64
    d_model: int = 64
    num_heads: int = 4
    d_ff: int = 128
    num_layers: int = 2
    dropout: float = 0.0
    label_smoothing: float = 0.1
    lr: float = 0.003
    warmup_steps: int = 100
    schedule: str = "linear"
    shared_vocabulary: bool = True


#: The recipe :func:`train_transformer` uses by default.
DATE_RECIPE = DateRecipe()


def train_transformer(task, seed: int = 0, progress: bool = True, device=None,
                      desc: str = "Transformer", sampling: float = 0.0, **recipe):
    """Train a :class:`Transformer` on a translation task with :func:`attnlib.torch.train`.

    Adam (betas 0.9, 0.98) with a warm-up schedule (``DATE_RECIPE.schedule``),
    label-smoothed cross-entropy (:func:`attnlib.torch.seq2seq_loss`), gradient clipping at 1,
    a fixed number of steps, seeded. The settings default to :data:`DATE_RECIPE`.

    Parameters
    ----------
    task : attnlib.data.TranslationTask
    seed : int
    progress : bool
        Show the progress bar.
    device : torch.device, optional
        Default :func:`attnlib.torch.default_device`.
    desc : str
        Progress-bar label.
    **recipe
        Overrides of :data:`DATE_RECIPE`: ``steps``, ``batch_size``, ``d_model``, ``num_heads``,
        ``d_ff``, ``num_layers`` (encoder and decoder layers each), ``dropout``,
        ``label_smoothing``, ``lr`` (the Noam factor, or the peak rate of the ``"linear"``
        schedule), ``warmup_steps``, ``schedule`` (``"noam"``: :func:`noam_schedule`;
        ``"linear"``: :func:`warmup_linear_decay`), ``shared_vocabulary``
        (one embedding matrix for source, target and output, :func:`shared_vocabulary_map`).
    sampling : float
        Scheduled sampling (:func:`attnlib.torch.scheduled_sampling_loss`, tokens drawn from
        the model): the probability of replacing a gold decoder input by the model's own token
        rises linearly from 0 at the first step to ``sampling`` at the last. 0 (the default)
        trains with plain teacher forcing.

    Returns
    -------
    model : Transformer
        In eval mode.
    history : attnlib.torch.History
    """

    known = [f.name for f in fields(DateRecipe)]
    unknown = set(recipe) - set(known)
    if unknown:
        raise ValueError(f"unknown recipe settings {sorted(unknown)}; known: {sorted(known)}")
    r = asdict(replace(DATE_RECIPE, **recipe))
    device = default_device() if device is None else device
    torch.manual_seed(seed)
    longest = max(max(len(p.source), len(p.target) + 1) for p in task.train + task.val + task.test)
    model = Transformer(len(task.source_vocab), len(task.target_vocab), r["d_model"], r["num_heads"],
                        r["d_ff"], r["num_layers"], r["num_layers"], r["dropout"],
                        max_len=max(64, longest + 16),
                        tgt_to_src=(shared_vocabulary_map(task.source_vocab, task.target_vocab)
                                    if r["shared_vocabulary"] else None)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=r["lr"], betas=(0.9, 0.98), eps=1e-9)
    if r["schedule"] == "noam":
        sched = noam_schedule(opt, r["d_model"], r["warmup_steps"], r["lr"])
    elif r["schedule"] == "linear":
        sched = warmup_linear_decay(opt, r["warmup_steps"], r["steps"])
    else:
        raise ValueError(f"schedule must be 'noam' or 'linear', got {r['schedule']!r}")
    check_probability(sampling, "sampling", allow_one=True)
    if sampling:
        generator = torch.Generator(device=device).manual_seed(10_000 + seed)
        step = [0]

        def loss_fn(m, b):
            step[0] += 1
            rate = sampling * (step[0] - 1) / max(r["steps"] - 1, 1)
            return scheduled_sampling_loss(m, b, rate, r["label_smoothing"], generator)
    else:
        def loss_fn(m, b):
            return seq2seq_loss(m, b, r["label_smoothing"])
    history = train(model, task.batch_stream("train", r["batch_size"], seed=seed, device=device),
                    loss_fn, opt, steps=r["steps"], scheduler=sched, clip=1.0, progress=progress,
                    desc=desc)
    return model.eval(), history


def build_gru(task, device=None):
    """Part II's best date model, untrained: Luong *dot* attention with input feeding on a
    bidirectional GRU encoder, with the Luong chapter's sizes (embeddings 16, 32 units per direction).

    Returns
    -------
    attnlib.torch.Seq2Seq
    """
    from attnlib.experiments.luong import attention_variants

    device = default_device() if device is None else device
    return attention_variants(len(task.source_vocab), len(task.target_vocab), embed_dim=16,
                              hidden_size=32)["dot"]().to(device)


def train_gru(task, seed: int = 0, steps: int = 300, progress: bool = True, device=None):
    """Train :func:`build_gru`'s model as chapter 14 compares it.

    The settings of the Luong chapter: batches of 64, Adam at 1e-2, unsmoothed cross-entropy,
    ``steps`` steps; seeded with ``seed`` (weights and batch order).

    Returns
    -------
    model : attnlib.torch.Seq2Seq
        In eval mode.
    history : attnlib.torch.History
    """
    from attnlib.seeding import seed as seed_all

    device = default_device() if device is None else device
    seed_all(seed)
    rnn = build_gru(task, device)
    history = train(rnn, task.batch_stream("train", 64, seed=seed, device=device), seq2seq_loss,
                    torch.optim.Adam(rnn.parameters(), lr=1e-2), steps=steps, progress=progress,
                    desc="Luong dot (GRU)")
    return rnn.eval(), history


@torch.no_grad()
def token_probabilities(model, task, pairs, batch_size: int = 256) -> dict:
    """Teacher-forced probabilities of every target position (target tokens then ``<eos>``).

    Returns
    -------
    dict
        ``"gold"``: numpy array (N, T) of :math:`p(y_t \\mid y_{<t}, x)` for the reference token;
        ``"top"``: (N, T), the largest probability at that step (the greedy choice given the
        gold prefix); ``"correct"``: bool (N, T), whether that choice is the reference token;
        positions past an example's end hold NaN (False in ``"correct"``). T is the longest
        target + 1.
    """
    pairs = list(pairs)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    T = max(len(p.target) for p in pairs) + 1
    gold = np.full((len(pairs), T), np.nan)
    top = np.full((len(pairs), T), np.nan)
    correct = np.zeros((len(pairs), T), dtype=bool)
    for i in range(0, len(pairs), batch_size):
        b = task.encode_batch(pairs[i:i + batch_size], device)
        prob = model(b.src, b.src_lengths, b.tgt_in).double().softmax(-1)
        g = prob.gather(2, b.tgt_out[:, :, None])[:, :, 0]
        t_max, arg = prob.max(-1)
        m = b.tgt_mask
        n, t = m.shape
        gold[i:i + n, :t] = torch.where(m, g, torch.nan).cpu().numpy()
        top[i:i + n, :t] = torch.where(m, t_max, torch.nan).cpu().numpy()
        correct[i:i + n, :t] = ((arg == b.tgt_out) & m).cpu().numpy()
    model.train(was_training)
    return {"gold": gold, "top": top, "correct": correct}


def exposure_accuracy(model, task, pairs, predictions=None) -> dict:
    """Token accuracy per target position, teacher-forced and free-running (greedy).

    Teacher-forced: the model reads the *reference* prefix and its most likely next token is
    compared with the reference. Free-running: the model reads *its own* greedy output, and the
    token it wrote at position t is compared with the reference token t (``<eos>`` included:
    position ``len(target)`` is right when the output has the reference's length). The gap is
    what reading its own earlier mistakes costs (exposure bias).

    Parameters
    ----------
    model : Transformer or Seq2Seq
    task : attnlib.data.TranslationTask
    pairs : sequence of attnlib.data.Pair
    predictions : list of str, optional
        The greedy outputs, if already computed (:func:`attnlib.torch.predict`).

    Returns
    -------
    dict of lists (one entry per position 0..T-1, T = longest target + 1)
        ``"teacher_forced"``, ``"free_running"``: accuracies; ``"count"``: examples that have
        the position; ``"after_error_free"``, ``"after_error_forced"``: the two accuracies on
        only the examples whose greedy output is already wrong before t (NaN where none);
        ``"after_error_count"``; and the scalars ``"teacher_forced_mean"``,
        ``"free_running_mean"`` (over every real target token).
    """
    pairs = list(pairs)
    preds = predict(model, task, pairs) if predictions is None else list(predictions)
    if len(preds) != len(pairs):
        raise ValueError(f"{len(preds)} predictions for {len(pairs)} pairs")
    forced = token_probabilities(model, task, pairs)["correct"]
    N, T = forced.shape
    free = np.zeros((N, T), dtype=bool)
    real = np.zeros((N, T), dtype=bool)
    wrong_before = np.zeros((N, T), dtype=bool)
    for n, (p, g) in enumerate(zip(pairs, preds)):
        L = len(p.target)
        real[n, :L + 1] = True
        for t in range(L):
            free[n, t] = t < len(g) and g[t] == p.target[t]
        free[n, L] = len(g) == L
        wrong_before[n, 1:] = np.cumsum(~free[n] & real[n])[:-1] > 0

    def rate(hit, where):
        count = where.sum(0)
        with np.errstate(invalid="ignore"):
            return [float(v) for v in np.where(count > 0, (hit & where).sum(0) / np.maximum(count, 1), np.nan)]

    after = real & wrong_before
    return {"teacher_forced": rate(forced, real), "free_running": rate(free, real),
            "count": [int(c) for c in real.sum(0)],
            "after_error_forced": rate(forced, after), "after_error_free": rate(free, after),
            "after_error_count": [int(c) for c in after.sum(0)],
            "teacher_forced_mean": float(forced[real].mean()), "free_running_mean": float(free[real].mean())}


def error_kinds(model, task, pairs, outputs) -> dict:
    """Each wrong output classified as a search error or a model error.

    A *search error*: the model gives the reference a higher log-probability than the output
    the search returned (a better search would have found it). A *model error*: the model
    scores the wrong output at least as high as the reference (no search can fix it).

    Parameters
    ----------
    outputs : list of str
        The decoded outputs, one per pair (greedy or beam).

    Returns
    -------
    dict
        ``"wrong"``, ``"search_errors"``, ``"model_errors"`` (counts) and ``"examples"``: per
        wrong output ``(source, output, reference, log p(output), log p(reference))``.
    """
    pairs, outputs = list(pairs), list(outputs)
    wrong = [i for i, (p, o) in enumerate(zip(pairs, outputs)) if o != p.target]
    if not wrong:
        return {"wrong": 0, "search_errors": 0, "model_errors": 0, "examples": []}
    sub = [pairs[i] for i in wrong]
    lp_out = target_log_probs(model, task, sub, [outputs[i] for i in wrong])
    lp_ref = target_log_probs(model, task, sub)
    examples = [(p.source, outputs[i], p.target, float(a), float(b))
                for i, p, a, b in zip(wrong, sub, lp_out, lp_ref)]
    search = int((lp_ref > lp_out).sum())
    return {"wrong": len(wrong), "search_errors": search, "model_errors": len(wrong) - search,
            "examples": examples}


def length_penalty_table(task, nbest: list, pairs, alphas=ALPHAS) -> dict:
    """Exact match and output lengths of one set of final beams, ranked under each ``alpha``.

    Parameters
    ----------
    nbest : list
        :func:`attnlib.torch.beam_nbest` of ``pairs``.
    alphas : sequence of float

    Returns
    -------
    dict
        ``alpha -> {"exact_match", "mean_length", "wrong_length"}``: the accuracy, the mean
        number of characters written, and the fraction of outputs whose length differs from
        the reference's.
    """
    pairs = list(pairs)
    if len(nbest) != len(pairs):
        raise ValueError(f"{len(nbest)} beams for {len(pairs)} pairs")
    table = {}
    for a in alphas:
        texts = [task.target_vocab.decode(t) for t in rerank_nbest(nbest, a)]
        table[float(a)] = {"exact_match": exact_match(texts, [p.target for p in pairs]),
                           "mean_length": float(np.mean([len(t) for t in texts])),
                           "wrong_length": float(np.mean([len(t) != len(p.target) for t, p in zip(texts, pairs)]))}
    return table


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value) of per-seed results."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError(f"values must be finite numbers, at least one, got {v.tolist()}")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def compare_seeds(a, b, name_a: str, name_b: str, what: str = "it") -> str:
    """A sentence comparing two sets of per-seed results, calling a gap inside the noise no difference.

    The gap of the means counts as a difference only when it exceeds twice its standard error,
    :math:`\\sqrt{s_a^2/n_a + s_b^2/n_b}` (and is not zero); otherwise the sentence says "no
    difference". With 3 seeds this is a coarse test: it guards against reading noise as an effect,
    not the reverse.

    Returns
    -------
    str
        E.g. ``"test exact match: A 0.9950 ± 0.0020 vs B 0.9930 ± 0.0010 (3 seeds each): no
        difference (gap 0.0020, twice its standard error 0.0026)"``.
    """
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    se = float(np.sqrt(sa ** 2 / len(list(a)) + sb ** 2 / len(list(b))))
    gap = ma - mb
    if gap != 0 and abs(gap) > 2 * se:
        verdict = f"{name_a if gap > 0 else name_b} higher"
    else:
        verdict = "no difference"
    return (f"{what}: {name_a} {ma:.4f} ± {sa:.4f} vs {name_b} {mb:.4f} ± {sb:.4f} "
            f"({len(list(a))} and {len(list(b))} seeds): {verdict} "
            f"(gap {abs(gap):.4f}, twice its standard error {2 * se:.4f})")


def _evaluate(model, task, val, test, beams: bool) -> dict:
    """The numbers the chapter reports for one trained model (JSON-ready)."""
    out = {}
    for name, pairs in (("val", val), ("test", test)):
        preds = predict(model, task, pairs)
        out[f"{name}_exact_match"] = exact_match(preds, [p.target for p in pairs])
        if name == "test":
            kinds = error_kinds(model, task, pairs, preds)
            out["greedy_errors"] = {k: kinds[k] for k in ("wrong", "search_errors", "model_errors")}
            out["exposure"] = exposure_accuracy(model, task, pairs, preds)
        if beams:
            for k in (3, 5):
                nb = beam_nbest(model, task, pairs, beam_size=k)
                table = length_penalty_table(task, nb, pairs)
                out[f"{name}_beam{k}"] = {str(a): v for a, v in table.items()}
                if k == 5 and name == "test":
                    texts = [task.target_vocab.decode(t) for t in rerank_nbest(nb, 0.0)]
                    kinds = error_kinds(model, task, pairs, texts)
                    out["beam5_errors"] = {k2: kinds[k2] for k2 in ("wrong", "search_errors", "model_errors")}
    return out


def _sweep_run(job) -> dict:
    """One run of :func:`seeds_sweep`: train ``kind`` with ``seed`` and evaluate it (JSON-ready)."""
    kind, seed, steps, warmup, gru_steps, n_val, n_test, progress = job
    from attnlib.data import date_task

    torch.set_num_threads(1)
    task = date_task(test_formats=())
    val, test = task.val[:n_val], task.test[:n_test]
    device = torch.device("cpu")
    if kind == "gru":
        model, _ = train_gru(task, seed=seed, steps=gru_steps, progress=progress, device=device)
    else:
        model, _ = train_transformer(task, seed=seed, device=device, steps=steps, warmup_steps=warmup,
                                     sampling=0.5 if kind == "scheduled_sampling" else 0.0,
                                     progress=progress, desc=f"{kind} seed {seed}")
    return _evaluate(model, task, val, test, beams=kind == "transformer")


@sweep("ch14_seeds", rtol=1e-4, atol=1e-6)
def seeds_sweep(reduced: bool) -> dict:
    """Chapter 14 over seeds: the recipe with and without scheduled sampling, and Part II's GRU.

    For each seed: the chapter's Transformer (:data:`DATE_RECIPE`), the same with scheduled
    sampling (``sampling=0.5``) and the Luong-dot GRU (300 steps), each evaluated on the
    validation and test splits: greedy exact match, test errors split into search and model
    errors, teacher-forced and free-running token accuracy per position; for the baseline
    Transformer also beams of width 3 and 5 under every length penalty of :data:`ALPHAS`.
    The full sweep runs its nine trainings in four worker processes of one thread each (every
    run is seeded on its own, so the result does not depend on that).
    ``reduced``: one seed, 20 steps with 5 of warm-up (GRU 10 steps), 20 validation and 30 test
    examples, in this process.
    """
    from attnlib.data import date_task

    task = date_task(test_formats=())
    seeds = [0] if reduced else [0, 1, 2]
    steps = 20 if reduced else DATE_RECIPE.steps
    warmup = 5 if reduced else DATE_RECIPE.warmup_steps
    gru_steps = 10 if reduced else 300
    n_val, n_test = (20, 30) if reduced else (len(task.val), len(task.test))
    kinds = ("scheduled_sampling", "transformer", "gru")
    jobs = [(k, s, steps, warmup, gru_steps, n_val, n_test, False) for k in kinds for s in seeds]
    if reduced:
        runs = [_sweep_run(j) for j in jobs]
    else:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(4) as pool:
            runs = pool.map(_sweep_run, jobs, chunksize=1)
    result = {"seeds": seeds, "steps": steps, "gru_steps": gru_steps, "sampling": 0.5,
              "alphas": list(ALPHAS), "n_val": n_val, "n_test": n_test}
    for k in kinds:
        result[k] = [r for j, r in zip(jobs, runs) if j[0] == k]
    return result
