"""The one training loop of Parts II and III, and a parameter count.

:func:`train` is deliberately small: it asks for a ``loss_fn(model, batch) -> scalar tensor``
(so the model's forward call lives in one place the reader can see), steps the optimizer,
clips gradients, optionally steps a scheduler and evaluates every few steps, shows a
``tqdm.auto`` progress bar, and returns a :class:`History`.

Example
-------
::

    from attnlib.data import reverse_task
    from attnlib.torch import (train, sequence_cross_entropy, Seq2Seq, GRUEncoder,
                               AttentionDecoder, AdditiveAttention)
    task = reverse_task()
    model = ...                                   # a Seq2Seq
    loss_fn = lambda m, b: sequence_cross_entropy(m(b.src, b.src_lengths, b.tgt_in), b.tgt_out, pad_id=0)
    history = train(model, task.batch_stream("train", 64), loss_fn,
                    torch.optim.Adam(model.parameters(), 3e-3), steps=500)
    history.losses[-1], history.seconds
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from attnlib.checks import check_positive_count, check_real

__all__ = ["History", "train", "count_parameters"]


@dataclass
class History:
    """What :func:`train` saw.

    Attributes
    ----------
    steps : list of int
        Step number (1-based) of each entry of ``losses``.
    losses : list of float
        Training loss at every step.
    evals : list of dict
        One dict per evaluation: ``{"step": s, **metrics}``.
    seconds : float
        Wall-clock time of the whole call, evaluations included.
    train_seconds : float
        Time spent in training steps only (forward, backward, update; evaluations excluded).
    """
    steps: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    evals: list = field(default_factory=list)
    seconds: float = 0.0
    train_seconds: float = 0.0

    def metric(self, name: str) -> list:
        """The values of one evaluated metric, in order (e.g. ``history.metric("accuracy")``)."""
        return [e[name] for e in self.evals if name in e]


def _epochs(batches):
    """Yield iterators, one per epoch, from a factory, a re-iterable or a single iterator."""
    if callable(batches):
        while True:
            yield iter(batches())
    elif isinstance(batches, Iterable):
        single = iter(batches) is batches
        while True:
            yield iter(batches)
            if single:  # a generator or iterator cannot be restarted
                return
    else:
        raise ValueError("batches must be a callable returning an iterable of batches, or an iterable "
                         f"of batches, got {type(batches).__name__}")


def train(model: torch.nn.Module, batches, loss_fn: Callable, optimizer: torch.optim.Optimizer, *,
          steps: int | None = None, epochs: int | None = None, scheduler=None,
          clip: float | None = 1.0, progress: bool = True, eval_fn: Callable | None = None,
          eval_every: int | None = None, desc: str = "training") -> History:
    """Train ``model`` for a fixed number of steps or epochs; return a :class:`History`.

    Parameters
    ----------
    model : torch.nn.Module
        Put in train mode for the steps and eval mode (under ``torch.no_grad``) for evaluations.
    batches : callable or iterable
        Where batches come from. A callable is called with no argument at the start of every
        epoch and must return an iterable of batches (e.g. ``task.batch_stream("train", 64)``);
        an iterable (a list, a DataLoader) is re-iterated every epoch; a one-shot iterator or
        generator gives one epoch only.
    loss_fn : callable
        ``loss_fn(model, batch) -> scalar tensor`` to minimise.
    optimizer : torch.optim.Optimizer
    steps : int, optional
        Number of optimizer steps. Exactly one of ``steps`` and ``epochs`` must be given.
    epochs : int, optional
        Number of passes over ``batches``.
    scheduler : optional
        A learning-rate scheduler, stepped after every optimizer step.
    clip : float or None
        Clip the global gradient norm to this value (None: no clipping).
    progress : bool
        Show a ``tqdm.auto`` progress bar with the running loss.
    eval_fn : callable, optional
        ``eval_fn(model) -> dict of metrics`` (or a float, stored as ``"metric"``), called every
        ``eval_every`` steps and once at the end.
    eval_every : int, optional
        Steps between evaluations (default: only at the end).
    desc : str
        Label of the progress bar.

    Returns
    -------
    History

    Raises
    ------
    ValueError
        If both or neither of ``steps`` and ``epochs`` are given, if a loss is not a finite
        scalar, or if a one-shot iterator runs out before ``steps``.
    """
    from tqdm.auto import tqdm

    if (steps is None) == (epochs is None):
        raise ValueError(f"give exactly one of steps and epochs, got steps={steps}, epochs={epochs}")
    steps = None if steps is None else check_positive_count(steps, "steps")
    epochs = None if epochs is None else check_positive_count(epochs, "epochs")
    eval_every = None if eval_every is None else check_positive_count(eval_every, "eval_every")
    if clip is not None:
        check_real(clip, "clip", positive=True)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for name, fn in (("loss_fn", loss_fn), ("eval_fn", eval_fn)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be a function of (model, batch) (eval_fn: of model), got "
                            f"{type(fn).__name__}")
    if not all(callable(getattr(optimizer, m, None)) for m in ("zero_grad", "step")):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer (e.g. torch.optim.Adam(model.parameters())), "
                        f"got {type(optimizer).__name__}")
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"scheduler must have a step() method (a torch.optim.lr_scheduler), got "
                        f"{type(scheduler).__name__}")
    history = History()
    start = time.perf_counter()
    eval_time = 0.0

    def evaluate(step):
        nonlocal eval_time
        t = time.perf_counter()
        was_training = model.training
        model.eval()
        with torch.no_grad():
            result = eval_fn(model)
        model.train(was_training)
        metrics = dict(result) if isinstance(result, dict) else {"metric": float(result)}
        history.evals.append({"step": step, **metrics})
        eval_time += time.perf_counter() - t
        return metrics

    bar = tqdm(total=steps, desc=desc, disable=not progress, unit="step", leave=True)
    model.train()
    step, epoch = 0, 0
    done = False
    for epoch_batches in _epochs(batches):
        if epochs is not None and epoch >= epochs:
            break
        for batch in epoch_batches:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model, batch)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise ValueError("loss_fn must return a scalar tensor, got "
                                 f"{type(loss).__name__} {getattr(loss, 'shape', '')}")
            value = float(loss.detach())
            if not math.isfinite(value):
                raise ValueError(f"the loss is {value} at step {step + 1}: lower the learning rate "
                                 "or check the inputs")
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
            history.steps.append(step)
            history.losses.append(value)
            bar.update(1)
            if step % 10 == 0 or step == steps:
                bar.set_postfix(loss=f"{sum(history.losses[-10:]) / len(history.losses[-10:]):.3f}")
            if eval_fn is not None and eval_every and step % eval_every == 0 and step != steps:
                evaluate(step)
            if steps is not None and step >= steps:
                done = True
                break
        epoch += 1
        if done:
            break
    bar.close()
    if steps is not None and step < steps:
        raise ValueError(f"the batches ran out after {step} of {steps} steps: pass a callable that "
                         "returns a fresh iterable each epoch (e.g. task.batch_stream(...)), or a list")
    if eval_fn is not None:
        evaluate(step)
    history.seconds = time.perf_counter() - start
    history.train_seconds = history.seconds - eval_time
    return history


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters (``requires_grad``) of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
