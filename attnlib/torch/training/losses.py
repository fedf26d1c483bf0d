"""The losses the chapters train with: sequence cross-entropy (with label smoothing) and the LM loss.

Each ``*_loss(model, batch)`` is ready to pass to :func:`attnlib.torch.train` as ``loss_fn``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from attnlib.checks import (
    check_positive_count,
    check_probability,
    check_token_ids,
    check_torch_tensor,
    check_torch_token_ids,
)
from attnlib.data.language_model import random_blocks

__all__ = ["sequence_cross_entropy", "label_smoothing_targets", "seq2seq_loss", "lm_loss",
           "evaluate_lm_loss", "scheduled_sampling_inputs", "scheduled_sampling_loss"]


def sequence_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, pad_id: int = 0,
                           label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy over the real (non-pad) target tokens of a batch.

    Parameters
    ----------
    logits : torch.Tensor, shape (B, T, V)
    targets : torch.LongTensor, shape (B, T)
        Positions holding ``pad_id`` are ignored (they neither count nor divide).
    pad_id : int
    label_smoothing : float
        As in :func:`torch.nn.functional.cross_entropy`.

    Returns
    -------
    torch.Tensor, scalar
    """
    check_torch_tensor(logits, "logits", floating=True)
    check_torch_tensor(targets, "targets")
    if logits.ndim != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"logits {tuple(logits.shape)} must be (B, T, V) and targets "
                         f"{tuple(targets.shape)} (B, T)")
    if targets.dtype not in (torch.int64, torch.uint8):  # what cross_entropy reads as class ids
        raise ValueError(f"targets must hold token ids as torch.long, got dtype {targets.dtype}: use targets.long()")
    if targets.device != logits.device:
        raise ValueError(f"targets is on {targets.device} but logits on {logits.device}: move it with "
                         f"targets.to('{logits.device}')")
    check_probability(label_smoothing, "label_smoothing", allow_one=True)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=pad_id, label_smoothing=label_smoothing)


def label_smoothing_targets(target: torch.Tensor, vocab_size: int, epsilon: float) -> torch.Tensor:
    r"""The smoothed target distribution of ``cross_entropy(..., label_smoothing=epsilon)``.

    :math:`q = (1 - \varepsilon)\,\text{onehot}(y) + \varepsilon / V`: the right token keeps
    :math:`1 - \varepsilon + \varepsilon/V`, every other token gets :math:`\varepsilon / V`.

    Parameters
    ----------
    target : torch.LongTensor, shape (N,)
    vocab_size : int
    epsilon : float
        In [0, 1].

    Returns
    -------
    torch.Tensor, shape (N, vocab_size), float32; rows sum to 1
    """
    check_probability(epsilon, "epsilon", allow_one=True)
    vocab_size = check_positive_count(vocab_size, "vocab_size")
    check_torch_token_ids(target, vocab_size, "target")
    onehot = torch.nn.functional.one_hot(target, vocab_size).float()
    return (1.0 - epsilon) * onehot + epsilon / vocab_size


def seq2seq_loss(model, batch, label_smoothing: float = 0.0) -> torch.Tensor:
    """Teacher-forced cross-entropy of a :class:`~attnlib.torch.Seq2Seq` (or :class:`~attnlib.torch.Transformer`) on a :class:`~attnlib.data.Batch`.

    Ready to pass to :func:`attnlib.torch.train` as ``loss_fn``.

    Returns
    -------
    torch.Tensor, scalar
    """
    logits = model(batch.src, batch.src_lengths, batch.tgt_in)
    return sequence_cross_entropy(logits, batch.tgt_out, model.pad_id, label_smoothing)


@torch.no_grad()
def scheduled_sampling_inputs(model, batch, sample_prob: float, generator: torch.Generator | None = None,
                              sample: bool = True) -> torch.Tensor:
    r"""Decoder inputs in which some gold tokens are replaced by the model's own predictions.

    Scheduled sampling (Bengio et al., 2015) trains a decoder on inputs like those it meets when
    it runs free: each real input token :math:`y_{t-1}` (``<bos>`` excepted) is replaced, with
    probability ``sample_prob``, by a token the model predicts for that position. For a
    Transformer, which reads the whole target at once, the predictions come from a first,
    teacher-forced pass without gradients (the two-pass form of Mihaylova and Martins, 2019).

    Parameters
    ----------
    model : Transformer or Seq2Seq
        Called as ``model(src, src_lengths, tgt_in) -> logits (B, T, V)``; its mode is left as is.
    batch : attnlib.data.Batch
    sample_prob : float
        In [0, 1]; 0 returns ``batch.tgt_in`` unchanged (a copy).
    generator : torch.Generator, optional
        Source of randomness (on the batch's device), for reproducible runs.
    sample : bool
        Draw the replacement from the model's distribution (True, as Bengio et al.) or take its
        most likely token (False, the token greedy decoding would read).

    Returns
    -------
    torch.LongTensor, shape (B, T)
        ``<bos>`` and padding are never replaced.
    """
    check_probability(sample_prob, "sample_prob", allow_one=True)
    tgt_in = batch.tgt_in
    check_torch_tensor(tgt_in, "batch.tgt_in")
    mixed = tgt_in.clone()
    if sample_prob == 0.0 or tgt_in.shape[1] < 2:
        return mixed
    logits = model(batch.src, batch.src_lengths, tgt_in)[:, :-1]        # predicts inputs 1..T-1
    if sample:
        probs = logits.float().softmax(-1).reshape(-1, logits.shape[-1])
        pred = torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:2])
    else:
        pred = logits.argmax(-1)
    coin = torch.rand(pred.shape, generator=generator, device=tgt_in.device) < sample_prob
    replace = coin & (tgt_in[:, 1:] != model.pad_id)
    mixed[:, 1:] = torch.where(replace, pred, tgt_in[:, 1:])
    return mixed


def scheduled_sampling_loss(model, batch, sample_prob: float, label_smoothing: float = 0.0,
                            generator: torch.Generator | None = None, sample: bool = True) -> torch.Tensor:
    """:func:`seq2seq_loss` on the mixed inputs of :func:`scheduled_sampling_inputs`.

    The targets stay the gold ``batch.tgt_out``: whatever the model read at a position, it must
    predict the right next token. ``sample_prob = 0`` is exactly :func:`seq2seq_loss`.

    Returns
    -------
    torch.Tensor, scalar
    """
    tgt_in = scheduled_sampling_inputs(model, batch, sample_prob, generator, sample)
    logits = model(batch.src, batch.src_lengths, tgt_in)
    return sequence_cross_entropy(logits, batch.tgt_out, model.pad_id, label_smoothing)


def lm_loss(model, batch) -> torch.Tensor:
    """Mean next-token cross-entropy of a batch ``(x, y)`` (NumPy or torch, shapes (B, T)).

    Parameters
    ----------
    model : attnlib.torch.GPT
    batch : tuple
        Inputs ``x`` and targets ``y`` (``x`` shifted by one), e.g. from
        :func:`attnlib.data.random_blocks`.

    Returns
    -------
    torch.Tensor
        A scalar, in nats per token.
    """
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(f"batch must be a pair (x, y) of (B, T) token ids, got {type(batch).__name__}"
                         f"{f' of length {len(batch)}' if isinstance(batch, (tuple, list)) else ''}")
    for name, t in zip(("x", "y"), batch):  # as_tensor(..., long) would truncate float ids silently
        check_token_ids(t, model.vocab_size, f"batch {name}")
    device = model.tok_emb.weight.device
    x, y = (torch.as_tensor(t, dtype=torch.long, device=device) for t in batch)
    if x.shape != y.shape:
        raise ValueError(f"batch x and y must have the same shape (B, T), got {tuple(x.shape)} and {tuple(y.shape)}")
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


@torch.no_grad()
def evaluate_lm_loss(model, ids: np.ndarray, block_size: int, num_blocks: int = 32,
                     batch_size: int = 16, seed: int = 0, last_only: int | None = None) -> float:
    """Mean next-token loss on fixed random windows of ``ids`` (a validation split).

    Parameters
    ----------
    model : attnlib.torch.GPT
    ids : numpy.ndarray of int, shape (N,)
    block_size : int
        Length of each window (may exceed the model's ``block_size`` for RoPE and ALiBi).
    num_blocks, batch_size : int
        How many windows, evaluated in batches of ``batch_size``.
    seed : int
        Picks the windows (the same windows for every model).
    last_only : int, optional
        Score only the last ``last_only`` positions of each window (those with the longest
        context); default: all positions.

    Returns
    -------
    float
        Nats per token.
    """
    block_size = check_positive_count(block_size, "block_size")
    num_blocks = check_positive_count(num_blocks, "num_blocks")
    batch_size = check_positive_count(batch_size, "batch_size")
    if last_only is not None:
        last_only = check_positive_count(last_only, "last_only")
    was_training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    device = model.tok_emb.weight.device
    total, count = 0.0, 0
    try:
        for start in range(0, num_blocks, batch_size):
            x, y = random_blocks(ids, min(batch_size, num_blocks - start), block_size, rng)
            x, y = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
            logits = model(x)
            if last_only:
                logits, y = logits[:, -last_only:], y[:, -last_only:]
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                     reduction="sum").item()
            count += y.numel()
    finally:
        model.train(was_training)
    return total / count
