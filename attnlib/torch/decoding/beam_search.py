r"""Beam search for the encoder-decoder :class:`~attnlib.torch.Transformer`, batched over examples.

Greedy decoding keeps one hypothesis and commits to the most likely token at every step. Beam
search keeps the ``k`` best partial translations (the *beam*) by total log-probability
:math:`\log p(y_{1:t} \mid x) = \sum_{i \le t} \log p(y_i \mid y_{<i}, x)`: at each step every
hypothesis is extended by every token, and the ``k`` best extensions survive. A hypothesis that
emits ``<eos>`` is finished and keeps its score. At the end the best finished hypothesis wins,
ranked by its log-probability divided by the length penalty of Wu et al. (2016),

.. math:: \mathrm{lp}(Y) = \left(\frac{5 + |Y|}{6}\right)^{\alpha},

(:math:`\alpha = 0`: plain log-probability, which favours short outputs; :math:`\alpha = 1`:
close to the mean log-probability per token). With ``beam_size=1`` it is greedy decoding.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from attnlib.checks import check_positive_count, check_real, check_torch_tensor
from attnlib.torch.decoding.greedy import _check_max_len

__all__ = ["BeamResult", "beam_search", "length_penalty", "beam_predict", "beam_step", "beam_nbest",
           "rerank_nbest", "target_log_probs"]


def length_penalty(length, alpha: float):
    r"""GNMT's length penalty :math:`((5 + |Y|) / 6)^\alpha`.

    Parameters
    ----------
    length : int, float, numpy.ndarray or torch.Tensor
        Number of emitted tokens (``<eos>`` included), >= 0.
    alpha : float
        0 switches the penalty off (returns 1).

    Returns
    -------
    float or torch.Tensor (same shape as ``length``)

    Raises
    ------
    ValueError
        When ``alpha`` is not a finite real number or a length is negative.
    """
    check_real(alpha, "alpha")
    if isinstance(length, torch.Tensor):
        if length.is_complex() or length.dtype == torch.bool:
            raise ValueError(f"length must hold numbers of tokens, got dtype {length.dtype}")
        if length.numel() and bool((length < 0).any()):
            raise ValueError(f"length must be >= 0 (a number of tokens), got a minimum of {float(length.min())}")
    else:
        try:
            a = np.asarray(length, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"length must be a number of tokens (int, float, array or tensor), got "
                             f"{type(length).__name__}") from None
        if a.size and not bool((a >= 0).all()):
            raise ValueError(f"length must be >= 0 (a number of tokens), got {length!r}")
    return ((5.0 + length) / 6.0) ** alpha


def beam_step(scores: torch.Tensor, log_probs: torch.Tensor, beam_size: int):
    """One beam-search step: the ``beam_size`` best one-token extensions of the current beam.

    Parameters
    ----------
    scores : torch.Tensor, shape (B, k)
        Total log-probability of each hypothesis (``-inf`` for an empty slot).
    log_probs : torch.Tensor, shape (B, k, V)
        Log-probabilities of the next token for each hypothesis.
    beam_size : int
        Extensions to keep, at most ``k * V``.

    Returns
    -------
    new_scores : torch.Tensor, shape (B, beam_size)
        Sorted, best first.
    parents : torch.LongTensor, shape (B, beam_size)
        Which hypothesis each extension extends.
    tokens : torch.LongTensor, shape (B, beam_size)
        The token it appends.
    """
    for name, t in (("scores", scores), ("log_probs", log_probs)):  # dtypes may differ: they promote
        check_torch_tensor(t, name, floating=True)
    beam_size = check_positive_count(beam_size, "beam_size")
    if scores.dim() != 2 or log_probs.dim() != 3 or log_probs.shape[:2] != scores.shape:
        raise ValueError(f"scores must be (B, k) and log_probs (B, k, V); got {tuple(scores.shape)} "
                         f"and {tuple(log_probs.shape)}")
    B, k, V = log_probs.shape
    if not 1 <= beam_size <= k * V:
        raise ValueError(f"beam_size must be in [1, k * V = {k * V}], got {beam_size}")
    total = (scores[:, :, None] + log_probs).reshape(B, k * V)
    new_scores, flat = total.topk(beam_size, dim=-1)
    return new_scores, flat // V, flat % V


@dataclass
class BeamResult:
    """What :func:`beam_search` found.

    Attributes
    ----------
    tokens : torch.LongTensor, shape (B, T)
        The best hypothesis of each example (``<eos>`` included, ``<pad>`` after it).
    scores : torch.Tensor, shape (B,)
        Its log-probability divided by the length penalty.
    log_probs : torch.Tensor, shape (B,)
        Its log-probability.
    nbest : list of list of tuple
        Per example, every hypothesis of the final beam, best first, as
        ``(token ids list, normalised score, log-probability)``.
    steps : list of tuple
        Per decoding step ``(sequences (B, k, t), scores (B, k), finished (B, k))``: the beams
        as the search saw them (for illustrations).
    """
    tokens: torch.Tensor
    scores: torch.Tensor
    log_probs: torch.Tensor
    nbest: list = field(default_factory=list)
    steps: list = field(default_factory=list)


@torch.no_grad()
def beam_search(model, src: torch.Tensor, src_lengths: torch.Tensor, beam_size: int = 4,
                max_len: int | None = None, alpha: float = 0.0) -> BeamResult:
    """Batched beam search with a model that has ``encode`` and ``decode`` (a :class:`~attnlib.torch.Transformer`).

    Every example keeps ``beam_size`` hypotheses; all ``B * beam_size`` prefixes go through the
    decoder together at each step (re-run over the whole prefix: no cache). A finished
    hypothesis (one that emitted ``<eos>``) stays in the beam with its score and is extended
    only by ``<pad>`` at no cost. The search stops when every hypothesis is finished or after
    ``max_len`` tokens; hypotheses cut off by ``max_len`` count as they are.

    Parameters
    ----------
    model : Transformer
        Needs ``encode(src, src_lengths) -> (memory, src_mask)``, ``decode(tgt_in, memory,
        src_mask) -> logits (B, T, V)`` and ``bos_id``, ``eos_id``, ``pad_id``.
    src : torch.LongTensor, shape (B, S)
    src_lengths : torch.LongTensor, shape (B,)
    beam_size : int
        1 gives greedy decoding.
    max_len : int, optional
        Most tokens to emit (``<eos>`` included); default ``S + 10``.
    alpha : float
        Length-penalty exponent (:func:`length_penalty`) used to rank the final hypotheses.

    Returns
    -------
    BeamResult
    """
    beam_size = check_positive_count(beam_size, "beam_size")
    check_torch_tensor(src, "src")
    check_torch_tensor(src_lengths, "src_lengths")
    if src.dim() != 2 or src_lengths.shape != src.shape[:1]:
        raise ValueError(f"src must be (B, S) and src_lengths (B,), got {tuple(src.shape)} and "
                         f"{tuple(src_lengths.shape)}")
    max_len = src.shape[1] + 10 if max_len is None else _check_max_len(max_len)
    check_real(alpha, "alpha")
    for name in ("encode", "decode", "bos_id", "eos_id", "pad_id"):
        if not hasattr(model, name):
            raise TypeError(f"model must have encode, decode, bos_id, eos_id and pad_id (a Transformer); "
                            f"{type(model).__name__} has no {name}")
    k, B, dev = beam_size, src.shape[0], src.device
    memory, src_mask = model.encode(src, src_lengths)
    memory = memory.repeat_interleave(k, dim=0)        # (B k, S, d)
    src_mask = src_mask.repeat_interleave(k, dim=0)
    seqs = torch.full((B, k, 1), model.bos_id, dtype=torch.long, device=dev)
    scores = torch.full((B, k), float("-inf"), device=dev, dtype=memory.dtype)
    scores[:, 0] = 0.0                                  # one live hypothesis to start
    finished = torch.zeros(B, k, dtype=torch.bool, device=dev)
    lengths = torch.zeros(B, k, device=dev, dtype=memory.dtype)
    steps = []
    for _ in range(max_len):
        logits = model.decode(seqs.reshape(B * k, -1), memory, src_mask)[:, -1]
        logp = logits.log_softmax(dim=-1).reshape(B, k, -1)
        V = logp.shape[-1]
        # A finished hypothesis may only append <pad>, at no cost.
        done_row = torch.full((V,), float("-inf"), device=dev, dtype=logp.dtype)
        done_row[model.pad_id] = 0.0
        logp = torch.where(finished[:, :, None], done_row, logp)
        if k == 1:  # greedy: the same argmax as Transformer.greedy, free of rounding ties
            tokens = logits.reshape(B, 1, V).argmax(-1)
            tokens = torch.where(finished, torch.full_like(tokens, model.pad_id), tokens)
            parents = torch.zeros_like(tokens)
            scores = scores + logp.gather(2, tokens[:, :, None])[:, :, 0]
        else:
            scores, parents, tokens = beam_step(scores, logp, min(k, k * V))
        seqs = torch.cat([seqs.gather(1, parents[:, :, None].expand(-1, -1, seqs.shape[2])),
                          tokens[:, :, None]], dim=2)
        was_done = finished.gather(1, parents)
        lengths = lengths.gather(1, parents) + (~was_done).float()
        finished = was_done | (tokens == model.eos_id)
        steps.append((seqs[:, :, 1:].cpu(), scores.cpu(), finished.cpu()))
        if bool((finished | torch.isinf(scores)).all()):
            break
    normalised = scores / length_penalty(lengths.clamp(min=1), alpha)
    normalised = torch.where(torch.isinf(scores), scores, normalised)
    order = normalised.argsort(dim=1, descending=True)
    best = order[:, 0]
    out = seqs[torch.arange(B, device=dev), best, 1:]
    nbest = []
    for b in range(B):
        nbest.append([(seqs[b, j, 1:1 + int(lengths[b, j])].tolist(), float(normalised[b, j]),
                       float(scores[b, j])) for j in order[b].tolist() if not torch.isinf(scores[b, j])])
    return BeamResult(out, normalised[torch.arange(B), best],
                      scores[torch.arange(B), best], nbest, steps)


@torch.no_grad()
def beam_predict(model, task, pairs, beam_size: int = 4, alpha: float = 0.0, batch_size: int = 256,
                 max_len: int | None = None, device=None) -> list:
    """Beam-search translations of a list of pairs, as strings (the model is put in eval mode).

    Parameters
    ----------
    model : Transformer
    task : attnlib.data.TranslationTask
    pairs : sequence of attnlib.data.Pair
    beam_size : int
    alpha : float
    batch_size : int
    max_len : int, optional
    device : torch.device, optional
        Default: the device of the model's parameters.

    Returns
    -------
    list of str
    """
    return [task.target_vocab.decode(row)
            for result in _batched_beams(model, task, pairs, beam_size, batch_size, max_len, device, alpha)
            for row in result.tokens]


def _batched_beams(model, task, pairs, beam_size, batch_size, max_len, device, alpha):
    """:func:`beam_search` over ``pairs`` in batches, in eval mode; one BeamResult per batch."""
    batch_size = check_positive_count(batch_size, "batch_size")
    beam_size = check_positive_count(beam_size, "beam_size")
    if max_len is not None:
        _check_max_len(max_len)
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    pairs, results = list(pairs), []
    try:
        for i in range(0, len(pairs), batch_size):
            batch = task.encode_batch(pairs[i:i + batch_size], device)
            results.append(beam_search(model, batch.src, batch.src_lengths, beam_size, max_len, alpha))
    finally:
        model.train(was_training)
    return results


@torch.no_grad()
def beam_nbest(model, task, pairs, beam_size: int = 4, batch_size: int = 256,
               max_len: int | None = None, device=None) -> list:
    """The final beam of every pair: :func:`beam_search`'s ``nbest``, batched over the pairs.

    The search itself does not depend on ``alpha`` (the length penalty only ranks the final
    beam), so one call serves every ``alpha`` through :func:`rerank_nbest`.

    Parameters
    ----------
    model : Transformer
    task : attnlib.data.TranslationTask
    pairs : sequence of attnlib.data.Pair
    beam_size, batch_size : int
    max_len : int, optional
    device : torch.device, optional
        Default: the device of the model's parameters.

    Returns
    -------
    list of list of tuple
        Per pair, ``(token ids, score at alpha 0, log-probability)`` for every hypothesis of
        the final beam, best log-probability first; the ids include ``<eos>`` when the
        hypothesis finished.
    """
    return [hyps for result in _batched_beams(model, task, pairs, beam_size, batch_size, max_len, device, 0.0)
            for hyps in result.nbest]


def rerank_nbest(nbest: list, alpha: float) -> list:
    """The winner of each final beam under the length penalty ``alpha``.

    Ranks every hypothesis by its log-probability divided by :func:`length_penalty` of its
    length (at least 1), as :func:`beam_search` does with the same ``alpha``; ties go to the
    earlier hypothesis.

    Parameters
    ----------
    nbest : list of list of tuple
        Per example, ``(token ids, score, log-probability)`` tuples (:func:`beam_nbest`, or
        ``BeamResult.nbest``).
    alpha : float

    Returns
    -------
    list of list of int
        The token ids of each example's winner.
    """
    check_real(alpha, "alpha")
    if not isinstance(nbest, (list, tuple)):
        raise TypeError(f"nbest must be a list (one final beam per example), got {type(nbest).__name__}")
    winners = []
    for i, beam in enumerate(nbest):
        if not beam:
            raise ValueError(f"nbest[{i}] is empty: every example needs at least one hypothesis")
        best = max(range(len(beam)),
                   key=lambda j: (beam[j][2] / length_penalty(max(len(beam[j][0]), 1), alpha), -j))
        winners.append(list(beam[best][0]))
    return winners


@torch.no_grad()
def target_log_probs(model, task, pairs, targets=None, batch_size: int = 256, device=None) -> np.ndarray:
    r"""The log-probability the model gives each target, :math:`\sum_t \log p(y_t \mid y_{<t}, x)`.

    Teacher-forced: one pass over ``<bos>`` + target scores every token of target + ``<eos>``,
    the sum :func:`beam_search` reports as ``log_probs`` for the hypotheses it finds. Comparing
    the score of the reference with that of the search's output tells a *search error* (the
    reference scores higher: the search missed it) from a *model error* (the model prefers the
    wrong output).

    Parameters
    ----------
    model : Transformer or Seq2Seq
    task : attnlib.data.TranslationTask
    pairs : sequence of attnlib.data.Pair
    targets : sequence of str, optional
        The texts to score, one per pair (default: each pair's reference target).
    batch_size : int
    device : torch.device, optional

    Returns
    -------
    numpy.ndarray of float64, shape (N,)
    """
    batch_size = check_positive_count(batch_size, "batch_size")
    pairs = list(pairs)
    if targets is not None:
        targets = list(targets)
        if len(targets) != len(pairs) or not all(isinstance(t, str) for t in targets):
            raise ValueError(f"targets must be {len(pairs)} strings, one per pair, got {len(targets)} items")
        pairs = [type(p)(p.source, t, p.kind) for p, t in zip(pairs, targets)]
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(pairs), batch_size):
        b = task.encode_batch(pairs[i:i + batch_size], device)
        logp = model(b.src, b.src_lengths, b.tgt_in).double().log_softmax(-1)
        token = logp.gather(2, b.tgt_out[:, :, None])[:, :, 0]
        out.append((token * b.tgt_mask).sum(1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0)
