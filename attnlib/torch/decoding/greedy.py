"""Greedy decoding: the one loop every encoder-decoder model uses, and what it is scored with.

:func:`greedy_decode` knows nothing of models: it calls a ``step`` function with the previous
token of every row and feeds back the most likely next one, until every row has emitted
``<eos>`` or ``max_len`` tokens. :meth:`attnlib.torch.Seq2Seq.greedy` (a recurrent decoder's
state) and :meth:`attnlib.torch.Transformer.greedy` (the whole prefix, re-run each step) are
this loop with their own ``step``. :func:`predict` and :func:`evaluate_exact_match` decode a
list of pairs with any model that has such a ``greedy`` method.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from attnlib.checks import check_count, check_positive_count

__all__ = ["greedy_decode", "exact_match", "predict", "evaluate_exact_match"]


def _check_max_len(max_len) -> int:
    """``max_len`` of a decoder: a positive integer (decoding emits at least one token)."""
    try:
        return check_positive_count(max_len, "max_len")
    except ValueError:
        raise ValueError(f"max_len must be a positive integer (decoding emits at least one token), "
                         f"got {max_len!r}") from None


@torch.no_grad()
def greedy_decode(step: Callable, batch_size: int, bos_id: int, eos_id: int, pad_id: int,
                  max_len: int, device=None):
    """Decode a batch greedily: feed back the argmax of each step's logits.

    Parameters
    ----------
    step : callable
        ``step(y_prev) -> (logits, weights)`` with ``y_prev`` (B,) the previous token of every
        row (``bos_id`` first), ``logits`` (B, V) and ``weights`` (B, L) the step's attention
        weights, or None. It keeps whatever state it needs between calls.
    batch_size : int
        B.
    bos_id, eos_id, pad_id : int
    max_len : int
        Most tokens to emit per row, ``<eos>`` included.
    device : torch.device, optional

    Returns
    -------
    tokens : torch.LongTensor, shape (B, T)
        Emitted ids, ``<eos>`` included, ``pad_id`` after it; ``T <= max_len`` (the loop stops
        when every row has emitted ``<eos>``).
    weights : torch.Tensor, shape (B, T, L), or None
        Each emitted token's attention weights (zeros after ``<eos>``); None when ``step``
        gives none.
    """
    max_len = _check_max_len(max_len)
    if not callable(step):
        raise TypeError(f"step must be a function step(y_prev) -> (logits, weights), got {type(step).__name__}")
    batch_size = check_count(batch_size, "batch_size")
    y = torch.full((batch_size,), bos_id, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    tokens, weights = [], []
    for _ in range(max_len):
        logits, w = step(y)
        y = logits.argmax(dim=-1)
        tokens.append(torch.where(done, torch.full_like(y, pad_id), y))
        if w is not None:
            weights.append(w * (~done)[:, None])
        done = done | (y == eos_id)
        if bool(done.all()):
            break
    return torch.stack(tokens, dim=1), (torch.stack(weights, dim=1) if weights else None)


def exact_match(predictions, targets, pad_id: int = 0) -> float:
    """Fraction of sequences predicted exactly right.

    Parameters
    ----------
    predictions, targets : torch.Tensor of int, shapes (B, T_p) and (B, T_t); or sequences of str
        Token ids, right-padded with ``pad_id`` (widths may differ: the narrower one is padded
        with ``pad_id``), or decoded strings. A row counts when it equals its target at every
        position, so a prediction that stops early or runs on is wrong.
    pad_id : int

    Returns
    -------
    float
        In [0, 1]; 0.0 for an empty batch.
    """
    if isinstance(predictions, torch.Tensor) or isinstance(targets, torch.Tensor):
        p, t = torch.as_tensor(predictions), torch.as_tensor(targets)
        if p.ndim != 2 or t.ndim != 2 or p.shape[0] != t.shape[0]:
            raise ValueError(f"predictions {tuple(p.shape)} and targets {tuple(t.shape)} must both be "
                             "(B, T) with the same B")
        width = max(p.shape[1], t.shape[1])
        p = F.pad(p, (0, width - p.shape[1]), value=pad_id)
        t = F.pad(t.to(p.device), (0, width - t.shape[1]), value=pad_id)
        return float((p == t).all(dim=1).float().mean()) if len(p) else 0.0
    predictions, targets = list(predictions), list(targets)
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions but {len(targets)} targets")
    return sum(a == b for a, b in zip(predictions, targets)) / len(targets) if targets else 0.0


@torch.no_grad()
def predict(model, task, pairs, batch_size: int = 256, max_len: int | None = None,
            device=None, need_weights: bool = False):
    """Greedy translations of a list of pairs (in eval mode), as strings.

    Parameters
    ----------
    model : torch.nn.Module
        Anything with ``greedy(src, src_lengths, max_len) -> (tokens, weights)``:
        :class:`~attnlib.torch.Seq2Seq`, :class:`~attnlib.torch.Transformer`.
    task : attnlib.data.TranslationTask
        Gives the vocabularies and the batching.
    pairs : sequence of attnlib.data.Pair
    batch_size : int
    max_len : int, optional
        As in :meth:`~attnlib.torch.Seq2Seq.greedy`.
    device : torch.device, optional
        Default: the device of the model's parameters.
    need_weights : bool
        Also return, per pair, its attention weights as a tensor (T_out, L_src) on the CPU
        (T_out counts ``<eos>``), or None without attention.

    Returns
    -------
    list of str
        (and the list of weights when ``need_weights``).
    """
    batch_size = check_positive_count(batch_size, "batch_size")
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    texts, all_weights = [], []
    pairs = list(pairs)
    for i in range(0, len(pairs), batch_size):
        batch = task.encode_batch(pairs[i:i + batch_size], device)
        tokens, weights = model.greedy(batch.src, batch.src_lengths, max_len)
        for b in range(len(batch)):
            text = task.target_vocab.decode(tokens[b])
            texts.append(text)
            if need_weights:
                n_out = min(len(text) + 1, tokens.shape[1])
                L = int(batch.src_lengths[b])
                all_weights.append(None if weights is None else weights[b, :n_out, :L].cpu())
    model.train(was_training)
    return (texts, all_weights) if need_weights else texts


def evaluate_exact_match(model, task, pairs, batch_size: int = 256,
                         max_len: int | None = None, device=None) -> float:
    """Exact-match accuracy of greedy decoding on a list of pairs (see :func:`predict`).

    Returns
    -------
    float
        In [0, 1].
    """
    pairs = list(pairs)
    return exact_match(predict(model, task, pairs, batch_size, max_len, device),
                       [p.target for p in pairs])
