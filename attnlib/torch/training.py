"""The one training loop of Parts II and III, checkpoints in safetensors, and two metrics.

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
import torch.nn.functional as F

__all__ = ["History", "train", "save_checkpoint", "load_checkpoint", "exact_match",
           "sequence_cross_entropy", "count_parameters"]


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
    if (steps is not None and steps < 1) or (epochs is not None and epochs < 1):
        raise ValueError(f"steps/epochs must be positive, got steps={steps}, epochs={epochs}")
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


# ----------------------------------------------------------------------------- checkpoints

def save_checkpoint(model: torch.nn.Module, path, metadata: dict | None = None) -> None:
    """Save ``model.state_dict()`` to a safetensors file, with string metadata.

    Tensors are copied to the CPU and made contiguous; tensors shared between parameters (tied
    weights) are stored once per name.

    Parameters
    ----------
    model : torch.nn.Module
    path : str or os.PathLike
    metadata : dict of str to str, optional
        E.g. ``{"task": "reverse", "hidden": "64"}``; anything but strings raises ``ValueError``.
    """
    from safetensors.torch import save_file

    metadata = dict(metadata or {})
    bad = {k: type(v).__name__ for k, v in metadata.items()
           if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise ValueError(f"metadata must map str to str (safetensors stores text); not strings: {bad}. "
                         "Convert with str(...) or json.dumps(...).")
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata=metadata)


def load_checkpoint(model: torch.nn.Module, path, strict: bool = True) -> dict:
    """Load a safetensors checkpoint into ``model`` (on the model's device); return its metadata.

    Parameters
    ----------
    model : torch.nn.Module
    path : str or os.PathLike
    strict : bool
        Require the file and the model to have exactly the same tensor names.

    Returns
    -------
    dict of str to str
        The metadata stored by :func:`save_checkpoint`.

    Raises
    ------
    ValueError
        Naming every missing, unexpected or mis-shaped tensor
        (``"decoder.out.weight: file (20, 64), model (18, 64)"``); nothing is loaded then.
    """
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as f:
        metadata = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    shapes = [f"{k}: file {tuple(tensors[k].shape)}, model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(tensors)) if tensors[k].shape != own[k].shape]
    problems = []
    if shapes:
        problems.append("mis-shaped tensors: " + "; ".join(shapes))
    if strict and missing:
        problems.append("missing in the file: " + ", ".join(missing))
    if strict and unexpected:
        problems.append("not in the model: " + ", ".join(unexpected))
    if problems:
        raise ValueError(f"checkpoint {path} does not fit the model: " + " | ".join(problems))
    model.load_state_dict({k: v for k, v in tensors.items() if k in own}, strict=strict)
    return metadata


# ----------------------------------------------------------------------------- metrics and losses

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
    if logits.ndim != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"logits {tuple(logits.shape)} must be (B, T, V) and targets "
                         f"{tuple(targets.shape)} (B, T)")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=pad_id, label_smoothing=label_smoothing)


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters (``requires_grad``) of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
