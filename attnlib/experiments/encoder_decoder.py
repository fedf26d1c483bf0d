"""Chapter 14's experiments: the date recipe, training a Transformer on it, every attention map."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch

from attnlib.torch import (
    Transformer,
    default_device,
    noam_schedule,
    predict,
    seq2seq_loss,
    shared_vocabulary_map,
    train,
    warmup_linear_decay,
)

__all__ = ["DateRecipe", "DATE_RECIPE", "train_transformer", "attention_maps"]


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
                      desc: str = "Transformer", **recipe):
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
    history = train(model, task.batch_stream("train", r["batch_size"], seed=seed, device=device),
                    lambda m, b: seq2seq_loss(m, b, r["label_smoothing"]), opt, steps=r["steps"],
                    scheduler=sched, clip=1.0, progress=progress, desc=desc)
    return model.eval(), history
