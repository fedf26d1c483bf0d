"""Figures and an explorer for the GPT chapter: next-token distributions, context length, attention.

:func:`next_token_explorer` lets the reader pick a prompt, a temperature and a top-k and see the
distribution the next character is sampled from (its frames are rendered ahead, so it works in
the static book); :func:`next_token_snapshots` draws the same panel for a few key settings side
by side.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from attnlib.viz.frames import MAX_FRAMES, FreeKnob, Knob, frame_explorer

__all__ = ["next_token_distribution", "next_token_frame", "next_token_snapshots", "next_token_explorer",
           "NEXT_TOKEN_TEMPERATURES",
           "context_length_figure", "causal_attention_figure", "loss_curve_figure", "checkpoint_log_figure",
           "extrapolation_figure"]


def _label(ch: str) -> str:
    return "␣" if ch == " " else ch


def next_token_distribution(model, corpus, prompt: str, temperature: float = 1.0, top_k=None) -> np.ndarray:
    """The probabilities of the next character after ``prompt``.

    Parameters
    ----------
    model : attnlib.torch.GPT
    corpus : attnlib.data.CharCorpus
        Encodes the prompt.
    prompt : str
    temperature : float
        0 is greedy (one-hot).
    top_k : int, optional

    Returns
    -------
    numpy.ndarray, shape (vocab_size,)
    """
    from attnlib.torch import next_token_probs

    device = model.tok_emb.weight.device
    idx = torch.as_tensor(corpus.encode(prompt)[-model.block_size:][None], device=device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(idx)[0, -1]
    model.train(was_training)
    return next_token_probs(logits.double(), temperature, top_k).cpu().numpy()


def _draw_distribution(ax, probs, chars, title):
    order = np.argsort(-probs)[:12]
    colours = ["#1f5fa8" if i == order[0] else "#9db8d9" for i in order]
    ax.bar(range(len(order)), probs[order], color=colours)
    ax.set_xticks(range(len(order)), [_label(chars[i]) for i in order])
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)


def next_token_frame(model, corpus, prompt: str, temperature: float, top_k=None,
                     figsize=(5.0, 2.4)) -> Figure:
    """One panel: the 12 most likely next characters and their probabilities (not registered with pyplot).

    Parameters
    ----------
    model : attnlib.torch.GPT
    corpus : attnlib.data.CharCorpus
    prompt : str
    temperature : float
    top_k : int, optional
    figsize : tuple

    Returns
    -------
    matplotlib.figure.Figure
    """
    probs = next_token_distribution(model, corpus, prompt, temperature, top_k)
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    kept = int((probs > 0).sum())
    _draw_distribution(ax, probs, corpus.chars, f"after {prompt[-24:]!r}: τ={temperature:g}, "
                       f"top-k={top_k or 'off'} ({kept} of {len(probs)} characters possible)")
    ax.set_ylabel("probability")
    return fig


def next_token_snapshots(model, corpus, prompt: str,
                         settings=((0.5, None), (1.0, None), (2.0, None), (1.0, 3))) -> Figure:
    """The explorer's key settings side by side: one distribution panel per (temperature, top_k).

    Parameters
    ----------
    model : attnlib.torch.GPT
    corpus : attnlib.data.CharCorpus
    prompt : str
    settings : sequence of (float, int or None)

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = plt.subplots(1, len(settings), figsize=(2.6 * len(settings), 2.6), sharey=True)
    for ax, (T, k) in zip(np.atleast_1d(axes), settings):
        probs = next_token_distribution(model, corpus, prompt, T, k)
        _draw_distribution(ax, probs, corpus.chars, f"τ={T:g}, top-k={k or 'off'}")
    np.atleast_1d(axes)[0].set_ylabel("probability")
    fig.suptitle(f"next character after {prompt!r}", fontsize=10)
    fig.tight_layout()
    return fig


#: The temperatures the next-token explorer offers in the book: greedy, sharpened, the model's own, flattened.
NEXT_TOKEN_TEMPERATURES = (0.0, 0.5, 1.0, 2.0)


def next_token_explorer(model, corpus, prompts, temperatures=NEXT_TOKEN_TEMPERATURES, top_k: int = 3):
    """An explorer: pick a prompt, a temperature and top-k; see the next-character distribution.

    The book's frames are pre-rendered when the notebook runs (see :mod:`attnlib.viz.frames`):
    the prompts (as many as fit in :data:`~attnlib.viz.frames.MAX_FRAMES` frames: 5 with the
    default four temperatures), every temperature of ``temperatures`` and top-k off or
    ``top_k``. In a live kernel a folded "any value" part takes any prompt, any temperature from
    0 to 3 and any top-k.

    Parameters
    ----------
    model : attnlib.torch.GPT
    corpus : attnlib.data.CharCorpus
    prompts : sequence of str
    temperatures : sequence of float
        The temperatures with frames (0: greedy); the explorer starts at 1 if 1 is among them.
    top_k : int
        The top-k with frames, beside off.

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets

    temperatures = sorted({float(t) for t in temperatures})
    if not temperatures or temperatures[0] < 0:
        raise ValueError(f"temperatures must be >= 0, got {temperatures}")
    prompts = list(dict.fromkeys(prompts))[:max(1, MAX_FRAMES // (2 * len(temperatures)))]
    if not prompts:
        raise ValueError("give at least one prompt")
    if not 1 <= int(top_k) <= corpus.vocab_size:
        raise ValueError(f"top_k must lie in [1, {corpus.vocab_size}], got {top_k!r}")
    style = {"description_width": "initial"}
    free = [FreeKnob("any_prompt", widgets.Text(value=prompts[0], description="any prompt", style=style,
                                                continuous_update=False)),
            FreeKnob("any_temperature", widgets.FloatSlider(value=1.0, min=0.0, max=3.0, step=0.05,
                                                            description="any τ", style=style)),
            FreeKnob("any_top_k", widgets.IntSlider(value=0, min=0, max=corpus.vocab_size,
                                                    description="any top-k (0 = off)", style=style))]

    def render(prompt, temperature, top_k, any_prompt=None, any_temperature=None, any_top_k=None):
        if any_prompt is not None:
            prompt, temperature, top_k = (any_prompt or prompt), any_temperature, any_top_k or None
        return next_token_frame(model, corpus, prompt, temperature, top_k)

    knobs = [Knob("prompt", [(repr(p), p) for p in prompts], "prompt", style="dropdown"),
             Knob("temperature", temperatures, "temperature τ", value=1.0 if 1.0 in temperatures else None),
             Knob("top_k", [("off", None), (str(int(top_k)), int(top_k))], "top-k", style="toggle")]
    return frame_explorer(render, knobs, free=free, dpi=75,
                          note="τ = 0 is greedy (all the mass on one character); top-k keeps only the k "
                               "most likely characters and renormalises.")


def context_length_figure(losses: dict, train_len: int) -> Figure:
    """Validation loss against evaluation length, one line per position kind.

    Parameters
    ----------
    losses : dict
        ``{name: {length: loss}}`` from :func:`attnlib.experiments.gpt.context_length_losses` (NaN: cannot run).
    train_len : int
        The training context, marked with a dashed line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    for name, by_len in losses.items():
        lengths = sorted(by_len)
        values = [by_len[L] for L in lengths]
        line, = ax.plot(lengths, values, marker="o", label=name)
        for L, v in zip(lengths, values):
            if math.isnan(v):
                ax.annotate("cannot run", (L, np.nanmax(values)), color=line.get_color(), fontsize=8,
                            ha="center", va="bottom")
    ax.axvline(train_len, ls="--", color="grey", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({L for d in losses.values() for L in d}))
    ax.get_xaxis().set_major_formatter(plt.ScalarFormatter())
    ax.set_xlabel("evaluation context length (dashed: training length)")
    ax.set_ylabel("validation loss (nats/char)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def causal_attention_figure(weights: torch.Tensor, text: str, layer: int = 0) -> Figure:
    """Heat maps of every head's causal attention for one text (upper triangle empty).

    Parameters
    ----------
    weights : torch.Tensor, shape (H, T, T)
        One layer's weights for one sequence.
    text : str
        The ``T`` characters, for the axis labels.
    layer : int
        Only for the title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    w = weights.detach().cpu().numpy()
    H, T = w.shape[0], w.shape[-1]
    fig, axes = plt.subplots(1, H, figsize=(2.4 * H, 2.6))
    labels = [_label(c) for c in text]
    for h, ax in enumerate(np.atleast_1d(axes)):
        ax.imshow(w[h], cmap="Blues", vmin=0, vmax=1)
        ax.set_title(f"layer {layer}, head {h}", fontsize=9)
        ax.set_xticks(range(T), labels, fontsize=6)
        ax.set_yticks(range(T), labels, fontsize=6)
    fig.supxlabel("key (earlier characters)", fontsize=9)
    fig.tight_layout()
    return fig


def _baseline_lines(ax, baselines):
    for i, (name, value) in enumerate((baselines or {}).items()):
        ax.axhline(value, ls="--", lw=0.8, color=plt.cm.Greys(0.35 + 0.5 * i / max(len(baselines), 1)))
        ax.annotate(name, (1.0, value), xycoords=("axes fraction", "data"), fontsize=7, ha="right", va="bottom",
                    color="0.35")


def loss_curve_figure(history, smooth: int = 20, baselines: dict | None = None) -> Figure:
    """The training loss per step (and a moving average) of :func:`attnlib.torch.train`'s History.

    Parameters
    ----------
    history : attnlib.torch.History
    smooth : int
        Window of the moving average.
    baselines : dict, optional
        ``{label: loss}`` drawn as dashed horizontal lines (e.g. the n-gram losses).

    Returns
    -------
    matplotlib.figure.Figure
    """
    y = np.asarray(history.losses)
    fig, ax = plt.subplots(figsize=(5.0, 2.6))
    ax.plot(history.steps, y, color="#9db8d9", lw=1, label="loss per step")
    if len(y) >= smooth:
        avg = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
        ax.plot(history.steps[smooth - 1:], avg, color="#1f5fa8", label=f"mean of {smooth} steps")
    ax.axhline(math.log(27), ls=":", color="grey", lw=1)
    _baseline_lines(ax, baselines)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/char)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def checkpoint_log_figure(log: dict, baselines: dict | None = None) -> Figure:
    """Training and validation loss of a logged run (the shipped checkpoint's ``log``).

    Parameters
    ----------
    log : dict
        ``{"step": [...], "train": [...], "val": [...]}`` as stored by sweep ``ch15_gpt_checkpoint``.
    baselines : dict, optional
        ``{label: loss}`` drawn as dashed horizontal lines.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(5.4, 2.8))
    ax.plot(log["step"], log["train"], marker=".", color="#9db8d9", label="training (mean of the interval)")
    ax.plot(log["step"], log["val"], marker=".", color="#1f5fa8", label="validation")
    _baseline_lines(ax, baselines)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/char)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def extrapolation_figure(summary: dict, train_len: int, baselines: dict | None = None) -> Figure:
    """Mean loss over seeds (error bars: one std) against evaluation context length, per position kind.

    Parameters
    ----------
    summary : dict
        ``{kind: {length (str or int): {"mean", "std"} or None}}`` (None: the model cannot run).
    train_len : int
        Marked with a dotted vertical line.
    baselines : dict, optional
        ``{label: loss}`` on the same characters, dashed horizontal lines.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(5.4, 3.0))
    for i, (kind, by_len) in enumerate(summary.items()):
        pts = sorted((int(L), v) for L, v in by_len.items() if v is not None)
        x = np.array([L for L, _ in pts]) * (1 + 0.04 * (i - 1))   # a small offset keeps the bars apart
        ax.errorbar(x, [v["mean"] for _, v in pts], yerr=[v["std"] for _, v in pts], marker="o", capsize=3,
                    label=kind)
    _baseline_lines(ax, baselines)
    ax.axvline(train_len, ls=":", color="grey", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({int(L) for d in summary.values() for L in d}))
    ax.get_xaxis().set_major_formatter(plt.ScalarFormatter())
    ax.set_xlabel("context length at evaluation (dotted: training length)")
    ax.set_ylabel("loss on the same characters")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
