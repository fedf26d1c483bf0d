"""Chapter 13's experiments on the Transformer block: what each sublayer costs, how gradients and
activations behave with depth under pre-LN and post-LN, and a toy tagging task (string reversal as
per-position labels) to compare the two norm placements with and without learning-rate warm-up.

The layers themselves are in :mod:`attnlib.torch.transformer`; this module only measures them.
"""
from __future__ import annotations

import torch
from torch import nn

from attnlib.checks import (
    check_positive_count,
    check_real,
    check_torch_bool_mask,
    check_torch_inputs,
    check_torch_token_ids,
)
from attnlib.experiments.results import sweep
from attnlib.torch import (
    DecoderLayer,
    EncoderLayer,
    History,
    TransformerEncoder,
    default_device,
    sequence_cross_entropy,
    train,
    warmup_schedule,
)

__all__ = ["SequenceTagger", "sublayer_parameter_counts", "gradient_norms_by_depth",
           "reverse_tagging_batch", "train_tagger", "norm_warmup_runs", "activation_stats",
           "layer_gradient_norms", "init_gradient_norms", "majority_token_accuracy",
           "WARMUP_TASK", "warmup_task", "warmup_sweep"]


# ----------------------------------------------------------------------------- parameter counts

def sublayer_parameter_counts(d_model: int, num_heads: int, d_ff: int, decoder: bool = False) -> dict:
    """Number of parameters of each sublayer of one layer, counted on a freshly built layer.

    Parameters
    ----------
    d_model, num_heads, d_ff : int
    decoder : bool
        Count a :class:`DecoderLayer` (with cross-attention) instead of an :class:`EncoderLayer`.

    Returns
    -------
    dict of str to int
        ``{"self-attention": 4 d^2 + 4 d, ["cross-attention": ...,] "feed-forward":
        2 d d_ff + d_ff + d, "layer norms": 2 d per norm, "total": ...}``.
    """
    layer = (DecoderLayer if decoder else EncoderLayer)(d_model, num_heads, d_ff, dropout=0.0)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    counts = {"self-attention": n(layer.self_attn)}
    if decoder:
        counts["cross-attention"] = n(layer.cross_attn)
    counts["feed-forward"] = n(layer.ffn)
    counts["layer norms"] = sum(n(m) for m in layer.modules() if isinstance(m, nn.LayerNorm))
    counts["total"] = n(layer)
    return counts


# ----------------------------------------------------------------------------- experiments

def gradient_norms_by_depth(num_layers: int = 24, d_model: int = 64, num_heads: int = 4,
                            d_ff: int = 256, norm_first: bool = False, residual: bool = True,
                            batch: int = 8, length: int = 8, seed: int = 0) -> torch.Tensor:
    """Gradient norm reaching the input of each layer of a freshly initialised deep stack.

    A random input goes through ``num_layers`` encoder layers (dropout off); the loss is the sum
    of the output times a fixed random tensor. The returned entry ``l`` is
    :math:`\\lVert \\partial \\text{loss} / \\partial x_l \\rVert` for the input :math:`x_l` of layer
    ``l`` (entry ``num_layers`` is the gradient at the stack's output, before a final norm).

    Parameters
    ----------
    num_layers, d_model, num_heads, d_ff : int
    norm_first : bool
        Pre-LN (True) or post-LN (False).
    residual : bool
        False removes the skip connections.
    batch, length : int
        Shape of the random input.
    seed : int

    Returns
    -------
    torch.Tensor, shape (num_layers + 1,), float64
    """
    batch, length = check_positive_count(batch, "batch"), check_positive_count(length, "length")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    stack = TransformerEncoder(num_layers, d_model, num_heads, d_ff, dropout=0.0,
                               norm_first=norm_first, residual=residual, dtype=torch.float64)
    x = torch.randn(batch, length, d_model, generator=g, dtype=torch.float64)
    states = []
    h = x
    for layer in stack.layers:
        h = h.detach().requires_grad_(True) if not states else h
        h.retain_grad()
        states.append(h)
        h = layer(h)
    h.retain_grad()
    states.append(h)
    out = stack.norm(h) if stack.norm is not None else h
    (out * torch.randn(out.shape, generator=g, dtype=torch.float64)).sum().backward()
    return torch.stack([s.grad.norm() for s in states]).detach()


def layer_gradient_norms(model: "SequenceTagger", src: torch.Tensor, target: torch.Tensor,
                         names=("ffn.linear1.weight", "ffn.linear2.weight")) -> dict:
    """Norm of the gradient of the tagging loss with respect to each encoder layer's parameters.

    The loss is the mean cross-entropy of ``model(src)`` against ``target`` over the non-padding
    targets (:func:`attnlib.torch.sequence_cross_entropy`), as in training. The gradients are taken
    with ``torch.autograd.grad``, so the model's ``.grad`` fields are left untouched. This is the
    quantity Xiong et al. (2020) analyse: at initialisation, the size of the gradient of the
    parameters of layer ``l``, for example the FFN's :math:`W^{1,l}` and :math:`W^{2,l}`.

    Parameters
    ----------
    model : SequenceTagger
    src : torch.LongTensor, shape (B, L)
        Token ids, padding 0.
    target : torch.LongTensor, shape (B, L)
        Target ids, 0 where there is no target.
    names : sequence of str
        Parameter names inside one :class:`attnlib.torch.EncoderLayer`, as in its
        ``named_parameters()`` (e.g. ``"ffn.linear2.weight"``, ``"self_attn.q_proj.weight"``).

    Returns
    -------
    dict of str to torch.Tensor
        ``name -> (num_layers,)`` float64 tensor of Frobenius norms, layer 0 first (next to the
        embeddings), the last entry the layer next to the read-out.

    Raises
    ------
    TypeError
        If ``model`` is not a :class:`SequenceTagger`.
    ValueError
        If a name is not a parameter of the layers, or ``target`` does not match ``src``.
    """
    if not isinstance(model, SequenceTagger):
        raise TypeError(f"model must be a SequenceTagger, got {type(model).__name__}")
    check_torch_token_ids(target, model.out.out_features, "target", module=model)
    if tuple(target.shape) != tuple(src.shape):
        raise ValueError(f"target must have the shape of src {tuple(src.shape)}, got {tuple(target.shape)}")
    if isinstance(names, str) or not names:
        raise ValueError(f"names must be a non-empty sequence of parameter names, got {names!r}")
    layers = model.encoder.layers
    available = dict(layers[0].named_parameters())
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"no parameter named {unknown} in an encoder layer; the layer has "
                         f"{sorted(available)}")
    params = [dict(layer.named_parameters())[n] for layer in layers for n in names]
    loss = sequence_cross_entropy(model(src), target, pad_id=model.pad_id)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    norms = torch.stack([torch.zeros((), dtype=torch.float64) if g is None else g.detach().double().norm()
                         for g in grads]).view(len(layers), len(names)).cpu()
    return {n: norms[:, i] for i, n in enumerate(names)}


def init_gradient_norms(task, depths=(3, 6, 12, 24), seeds=(0, 1, 2), d_model: int = 32,
                        num_heads: int = 4, d_ff: int = 128, batch_size: int = 64,
                        names=("ffn.linear1.weight", "ffn.linear2.weight")) -> dict:
    """Per-layer parameter-gradient norms of freshly initialised post-LN and pre-LN taggers.

    For every depth, placement and seed a :class:`SequenceTagger` is built (seeded as in
    :func:`train_tagger`) and :func:`layer_gradient_norms` measured on the first ``batch_size``
    training examples of ``task`` (the same batch for every model).

    Parameters
    ----------
    task : attnlib.data.TranslationTask
        From :func:`attnlib.data.reverse_task`.
    depths : sequence of int
        Numbers of layers.
    seeds : sequence of int
        At least one.
    d_model, num_heads, d_ff, batch_size : int
    names : sequence of str
        Passed to :func:`layer_gradient_norms`.

    Returns
    -------
    dict
        ``{(norm, depth): {name: numpy array (len(seeds), depth)}}`` with norm in
        {"post-LN", "pre-LN"}.
    """
    import numpy as np

    depths = [check_positive_count(L, "depth") for L in depths]
    seeds = list(seeds)
    if not depths or not seeds:
        raise ValueError(f"depths and seeds must be non-empty, got {depths!r} and {seeds!r}")
    batch_size = check_positive_count(batch_size, "batch_size")
    batch = next(iter(task.batches("train", batch_size, shuffle=False)))
    src, target = reverse_tagging_batch(batch)
    max_len = max(len(p.source) for p in task.train + task.val + task.test)
    out = {}
    for norm_first in (False, True):
        for depth in depths:
            per_seed = []
            for seed in seeds:
                torch.manual_seed(seed)
                model = SequenceTagger(len(task.source_vocab), max_len, d_model, num_heads, d_ff,
                                       depth, norm_first)
                per_seed.append(layer_gradient_norms(model, src, target, names))
            out[("pre-LN" if norm_first else "post-LN", depth)] = {
                n: np.stack([g[n].numpy() for g in per_seed]) for n in names}
    return out


def majority_token_accuracy(task, split: str = "val") -> float:
    """Token accuracy of always predicting the most frequent target letter of ``split``.

    The baseline of the tagging runs: a model that ignores the input scores this much.

    Parameters
    ----------
    task : attnlib.data.TranslationTask
    split : {"train", "val", "test"}

    Returns
    -------
    float
    """
    from collections import Counter

    counts = Counter(ch for p in task.split(split) for ch in p.target)
    total = sum(counts.values())
    if total == 0:
        raise ValueError(f"the {split} split is empty")
    return max(counts.values()) / total


def activation_stats(stack: TransformerEncoder, x: torch.Tensor, padding_mask=None) -> dict:
    """Mean and standard deviation of the residual stream after each layer (per token, averaged).

    Parameters
    ----------
    stack : TransformerEncoder
    x : torch.Tensor, shape (B, L, d_model)
    padding_mask : torch.Tensor of bool, optional, shape (B, L)
        Real tokens (only they are counted).

    Returns
    -------
    dict
        ``"rms"``: tensor (num_layers + 1,) of the root-mean-square size of the residual stream at
        the input and after each layer; ``"std"``: the per-token standard deviation over features,
        averaged over tokens, same shape.
    """
    if not isinstance(stack, TransformerEncoder):
        raise TypeError(f"stack must be a TransformerEncoder, got {type(stack).__name__}")
    check_torch_inputs({"x": x}, module=stack)
    if x.dim() != 3 or x.shape[-1] != stack.layers[0].d_model:
        raise ValueError(f"x must have shape (B, L, d_model={stack.layers[0].d_model}), got shape {tuple(x.shape)}")
    if padding_mask is not None:
        check_torch_bool_mask(padding_mask, "padding_mask", x.device)
        if tuple(padding_mask.shape) != tuple(x.shape[:2]):
            raise ValueError(f"padding_mask must be (B, L) = {tuple(x.shape[:2])}, got {tuple(padding_mask.shape)}")
    keep = (torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if padding_mask is None
            else padding_mask)
    rms, std = [], []
    with torch.no_grad():
        h = x
        for i in range(len(stack.layers) + 1):
            real = h[keep]  # (N, d_model)
            rms.append(real.pow(2).mean().sqrt())
            std.append(real.std(dim=-1, unbiased=False).mean())
            if i < len(stack.layers):
                h = stack.layers[i](h, padding_mask=padding_mask)
    return {"rms": torch.stack(rms).cpu(), "std": torch.stack(std).cpu()}


# ----------------------------------------------------------------------------- a toy model and task

class SequenceTagger(nn.Module):
    """Token embedding + learned positions + :class:`TransformerEncoder` + a linear read-out per position.

    The smallest model that lets a stack of encoder layers learn a sequence task: it predicts one
    output token at every input position (for example, the input reversed).

    Parameters
    ----------
    vocab_size : int
    max_len : int
        Longest input (number of learned position embeddings).
    d_model, num_heads, d_ff, num_layers : int
    norm_first : bool
    dropout : float
    pad_id : int

    Attributes
    ----------
    embed : torch.nn.Embedding
    pos : torch.nn.Embedding
    encoder : TransformerEncoder
    out : torch.nn.Linear
    """

    def __init__(self, vocab_size: int, max_len: int, d_model: int = 64, num_heads: int = 4,
                 d_ff: int = 128, num_layers: int = 6, norm_first: bool = False, dropout: float = 0.0,
                 pad_id: int = 0):
        super().__init__()
        check_positive_count(vocab_size, "vocab_size")
        check_positive_count(max_len, "max_len")
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.pos = nn.Embedding(max_len, d_model)
        self.encoder = TransformerEncoder(num_layers, d_model, num_heads, d_ff, dropout, norm_first)
        self.out = nn.Linear(d_model, vocab_size)

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        """Logits for every position.

        Parameters
        ----------
        src : torch.LongTensor, shape (B, L)
            Token ids, right-padded with ``pad_id``; L <= max_len.

        Returns
        -------
        torch.Tensor, shape (B, L, vocab_size)
        """
        check_torch_token_ids(src, self.embed.num_embeddings, "src", module=self)
        if src.dim() != 2 or src.shape[1] > self.pos.num_embeddings:
            raise ValueError(f"src must be (B, L) with L <= max_len={self.pos.num_embeddings}, got "
                             f"shape {tuple(src.shape)}")
        return self.out(self.encoder(self.embeddings(src), padding_mask=src != self.pad_id))

    def embeddings(self, src: torch.Tensor) -> torch.Tensor:
        """The input of the encoder stack: token plus position embeddings.

        Parameters
        ----------
        src : torch.LongTensor, shape (B, L)

        Returns
        -------
        torch.Tensor, shape (B, L, d_model)
        """
        check_torch_token_ids(src, self.embed.num_embeddings, "src", module=self)
        if src.dim() != 2 or src.shape[1] > self.pos.num_embeddings:
            raise ValueError(f"src must be (B, L) with L <= max_len={self.pos.num_embeddings}, got "
                             f"shape {tuple(src.shape)}")
        positions = torch.arange(src.shape[1], device=src.device)
        return self.embed(src) + self.pos(positions)


def reverse_tagging_batch(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a :class:`attnlib.data.Batch` of the reverse task into an encoder-only tagging problem.

    Input: the source ids ``src`` (B, L). Target at position i < length: the source token at
    position ``length - 1 - i`` (the string reversed, in place); padding stays ``<pad>`` = 0 and is
    ignored by the loss.

    Parameters
    ----------
    batch : attnlib.data.Batch

    Returns
    -------
    src : torch.LongTensor, shape (B, L)
    target : torch.LongTensor, shape (B, L)
    """
    src, lengths = batch.src, batch.src_lengths.to(batch.src.device)
    L = src.shape[1]
    i = torch.arange(L, device=src.device)[None, :]
    j = (lengths[:, None] - 1 - i).clamp(min=0)
    target = torch.gather(src, 1, j)
    return src, target.masked_fill(i >= lengths[:, None], 0)


def train_tagger(task, norm_first: bool, warmup_steps: int, steps: int = 300, lr: float = 1e-3,
                 batch_size: int = 64, d_model: int = 64, num_layers: int = 6, num_heads: int = 4,
                 d_ff: int = 128, seed: int = 0, progress: bool = True, device=None,
                 clip: float | None = 1.0, stop_if_nonfinite: bool = False):
    """Train a :class:`SequenceTagger` to reverse strings with :func:`attnlib.torch.train`.

    Adam with the given peak learning rate, linear warm-up over ``warmup_steps`` then constant,
    gradient clipping at ``clip`` (1 by default; None: none), a fixed number of steps, seeded (the
    seed sets both the initial weights and the order of the training batches).

    Parameters
    ----------
    task : attnlib.data.TranslationTask
        From :func:`attnlib.data.reverse_task`.
    norm_first : bool
        Pre-LN (True) or post-LN (False).
    warmup_steps : int
        0 for no warm-up.
    steps, lr, batch_size, d_model, num_layers, num_heads, d_ff, seed : optional
    progress : bool
        Show the progress bar.
    device : torch.device, optional
        Default :func:`attnlib.torch.default_device`.
    clip : float or None
        Clip the global gradient norm to this value; None: no clipping.
    stop_if_nonfinite : bool
        If the loss becomes inf or NaN, stop there and return (``history.diverged`` is True)
        instead of raising ``ValueError``.

    Returns
    -------
    model : SequenceTagger
    history : attnlib.torch.History
        ``losses`` per step (the finite ones); ``evals[-1]["token_accuracy"]`` on the validation
        split; the attribute ``diverged`` (bool) says whether the loss became non-finite.
    """

    steps, batch_size = check_positive_count(steps, "steps"), check_positive_count(batch_size, "batch_size")
    check_real(lr, "lr", positive=True)
    device = default_device() if device is None else device
    torch.manual_seed(seed)
    max_len = max(len(p.source) for p in task.train + task.val + task.test)
    model = SequenceTagger(len(task.source_vocab), max_len, d_model, num_heads, d_ff, num_layers,
                           norm_first).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = warmup_schedule(opt, warmup_steps)

    def loss_fn(m, batch):
        src, target = reverse_tagging_batch(batch)
        return sequence_cross_entropy(m(src), target, pad_id=0)

    val = list(task.batches("val", 256, shuffle=False, device=device))

    def eval_fn(m):
        right = total = 0
        for b in val:
            src, target = reverse_tagging_batch(b)
            real = target != 0
            right += int(((m(src).argmax(-1) == target) & real).sum())
            total += int(real.sum())
        return {"token_accuracy": right / total}

    seen = []

    def recording_loss_fn(m, batch):
        loss = loss_fn(m, batch)
        seen.append(float(loss.detach()))
        return loss

    name = f"{'pre' if norm_first else 'post'}-LN, warm-up {warmup_steps}"
    try:
        history = train(model, task.batch_stream("train", batch_size, seed=seed, device=device),
                        recording_loss_fn, opt, steps=steps, scheduler=sched, clip=clip,
                        progress=progress, eval_fn=eval_fn, desc=name)
        history.diverged = False
    except ValueError as err:
        if not (stop_if_nonfinite and str(err).startswith("the loss is")):
            raise
        history = History()
        history.losses = seen[:-1]
        history.steps = list(range(1, len(seen)))
        model.eval()
        with torch.no_grad():
            history.evals.append({"step": len(seen) - 1, **eval_fn(model)})
        history.diverged = True
    return model, history


def norm_warmup_runs(task, steps: int = 300, lr: float = 1e-3, warmup_steps: int = 100,
                     progress: bool = True, seeds=(0,), configs=None, **kwargs) -> dict:
    """Train the same tagger several ways: post-/pre-LN, each with and without warm-up, over seeds.

    Parameters
    ----------
    task : attnlib.data.TranslationTask
    steps, lr, warmup_steps : optional
        Shared by all runs (the runs without warm-up use 0).
    progress : bool
    seeds : sequence of int
        One run per seed and configuration (the seed sets the initial weights and the batch order).
    configs : sequence of (str, bool), optional
        The ``(norm, warmup)`` pairs to train; default all four, norm in {"post-LN", "pre-LN"}.
    **kwargs
        Passed to :func:`train_tagger` (model sizes, ``num_layers``, ``clip``, device). A run whose
        loss becomes inf or NaN stops there and counts as diverged.

    Returns
    -------
    dict
        Keyed by ``(norm, warmup)``; each value a dict with ``"seeds"`` (list), ``"losses"``
        (numpy array (len(seeds), steps), NaN after a divergence), ``"accuracy"`` (numpy array
        (len(seeds),) of final validation token accuracies) and ``"diverged"`` (numpy bool array).
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    all_configs = [("post-LN", False), ("post-LN", True), ("pre-LN", False), ("pre-LN", True)]
    configs = all_configs if configs is None else [(str(n), bool(w)) for n, w in configs]
    unknown = [c for c in configs if c not in all_configs]
    if unknown:
        raise ValueError(f"configs must be (norm, warmup) pairs from {all_configs}, got {unknown}")
    threads = torch.get_num_threads()
    # Models this small run fastest on one CPU thread (and far faster on a busy machine, where
    # several threads wait for each other); the setting is restored afterwards.
    if torch.device(kwargs.get("device") or "cpu").type == "cpu":
        torch.set_num_threads(1)
    try:
        runs = _runs(task, steps, lr, warmup_steps, progress, seeds, configs, **kwargs)
    finally:
        torch.set_num_threads(threads)
    return runs


def _runs(task, steps, lr, warmup_steps, progress, seeds, configs, **kwargs) -> dict:
    import numpy as np

    runs = {}
    for norm, warm in configs:
        losses = np.full((len(seeds), steps), np.nan)
        accuracy, diverged = np.zeros(len(seeds)), np.zeros(len(seeds), dtype=bool)
        for i, seed in enumerate(seeds):
            _, h = train_tagger(task, norm == "pre-LN", warmup_steps if warm else 0, steps=steps,
                                lr=lr, progress=progress, seed=seed, stop_if_nonfinite=True, **kwargs)
            losses[i, :len(h.losses)] = h.losses
            accuracy[i], diverged[i] = h.evals[-1]["token_accuracy"], h.diverged
        runs[(norm, warm)] = {"seeds": list(seeds), "losses": losses, "accuracy": accuracy,
                              "diverged": diverged}
    return runs


# ----------------------------------------------------------------------------- the warm-up sweep

#: The task and training settings of the chapter's warm-up experiment (and of its sweep).
WARMUP_TASK = {"n_train": 2000, "n_val": 256, "n_test": 16, "min_len": 8, "max_len": 8,
               "alphabet": "abcdefgh"}
_WARMUP_TRAINING = {"steps": 100, "lr": 1e-2, "warmup_steps": 30, "batch_size": 32, "d_model": 32,
                    "num_heads": 4, "d_ff": 64}


def warmup_task():
    """The reverse task of the warm-up experiment: 8 letters out of 8, reversed in place.

    Returns
    -------
    attnlib.data.TranslationTask
    """
    from attnlib.data import reverse_task

    return reverse_task(**WARMUP_TASK)


@sweep("ch13_warmup_sweep")
def warmup_sweep(reduced: bool) -> dict:
    """Does post-LN need warm-up? Final accuracy over seeds, against depth and gradient clipping.

    Adam at a peak learning rate of 1e-2, 100 steps of batch 32, d_model 32, 4 heads, d_ff 64, on
    :func:`warmup_task`; post-LN without and with a 30-step linear warm-up and pre-LN without,
    for 6 and 12 layers, with no clipping and with clipping at 1, seeds 0-4. ``reduced``: the
    same code on 1-layer models, 5 steps, seeds 0-1 (seconds).

    Returns
    -------
    dict
        Plain JSON: the settings, ``"majority_baseline"`` (validation token accuracy of the most
        frequent letter) and ``"cells"``, one per (norm, warmup, layers, clip) with the per-seed
        ``"accuracy"``, ``"final_loss"`` (mean of the last 10 steps) and ``"diverged"`` lists.
    """
    task = warmup_task()
    training = dict(_WARMUP_TRAINING)
    seeds, depths = ([0, 1], [1]) if reduced else ([0, 1, 2, 3, 4], [6, 12])
    if reduced:
        training.update(steps=5, warmup_steps=3)
    clips = [None, 1.0]
    configs = [("post-LN", False), ("post-LN", True), ("pre-LN", False)]
    cells = []
    for clip in clips:
        for depth in depths:
            runs = norm_warmup_runs(task, progress=False, seeds=seeds, configs=configs,
                                    num_layers=depth, clip=clip, device="cpu", **training)
            for (norm, warm), r in runs.items():
                tail = r["losses"][:, -10:]
                cells.append({"norm": norm, "warmup": warm, "layers": depth, "clip": clip,
                              "accuracy": [float(a) for a in r["accuracy"]],
                              "final_loss": [float(v) for v in tail.mean(1)],
                              "diverged": [bool(d) for d in r["diverged"]]})
    return {"seeds": seeds, "depths": depths, "clips": clips, "configs": [list(c) for c in configs],
            **{k: v for k, v in training.items()}, "majority_baseline": majority_token_accuracy(task),
            "cells": cells}

