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
from attnlib.torch import (
    DecoderLayer,
    EncoderLayer,
    TransformerEncoder,
    default_device,
    sequence_cross_entropy,
    train,
    warmup_schedule,
)

__all__ = ["SequenceTagger", "sublayer_parameter_counts", "gradient_norms_by_depth",
           "reverse_tagging_batch", "train_tagger", "norm_warmup_runs", "activation_stats"]


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
        positions = torch.arange(src.shape[1], device=src.device)
        h = self.embed(src) + self.pos(positions)
        return self.out(self.encoder(h, padding_mask=src != self.pad_id))


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
                 d_ff: int = 128, seed: int = 0, progress: bool = True, device=None):
    """Train a :class:`SequenceTagger` to reverse strings with :func:`attnlib.torch.train`.

    Adam with the given peak learning rate, linear warm-up over ``warmup_steps`` then constant,
    gradient clipping at 1, a fixed number of steps, seeded.

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

    Returns
    -------
    model : SequenceTagger
    history : attnlib.torch.History
        ``losses`` per step; ``evals[-1]["token_accuracy"]`` on the validation split.
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

    name = f"{'pre' if norm_first else 'post'}-LN, warm-up {warmup_steps}"
    history = train(model, task.batch_stream("train", batch_size, seed=seed, device=device), loss_fn,
                    opt, steps=steps, scheduler=sched, clip=1.0, progress=progress, eval_fn=eval_fn,
                    desc=name)
    return model, history


def norm_warmup_runs(task, steps: int = 300, lr: float = 1e-3, warmup_steps: int = 100,
                     progress: bool = True, **kwargs) -> dict:
    """Train the same tagger four ways: post-/pre-LN, each with and without warm-up.

    Parameters
    ----------
    task : attnlib.data.TranslationTask
    steps, lr, warmup_steps : optional
        Shared by all four runs (the runs without warm-up use 0).
    progress : bool
    **kwargs
        Passed to :func:`train_tagger` (model sizes, seed, device).

    Returns
    -------
    dict
        Keyed by ``(norm, warmup)`` with norm in {"post-LN", "pre-LN"} and warmup in {False, True};
        each value a dict with ``"losses"`` (numpy array, one per step), ``"accuracy"`` (final
        validation token accuracy) and ``"seconds"``.
    """

    runs = {}
    threads = torch.get_num_threads()
    # Models this small run fastest on one CPU thread (and far faster on a busy machine, where
    # several threads wait for each other); the setting is restored afterwards.
    if torch.device(kwargs.get("device") or "cpu").type == "cpu":
        torch.set_num_threads(1)
    try:
        runs = _four_runs(task, steps, lr, warmup_steps, progress, **kwargs)
    finally:
        torch.set_num_threads(threads)
    return runs


def _four_runs(task, steps, lr, warmup_steps, progress, **kwargs) -> dict:
    import numpy as np

    runs = {}
    for norm_first in (False, True):
        for warm in (False, True):
            _, h = train_tagger(task, norm_first, warmup_steps if warm else 0, steps=steps, lr=lr,
                                progress=progress, **kwargs)
            runs[("pre-LN" if norm_first else "post-LN", warm)] = {
                "losses": np.asarray(h.losses), "accuracy": h.evals[-1]["token_accuracy"],
                "seconds": h.seconds}
    return runs
