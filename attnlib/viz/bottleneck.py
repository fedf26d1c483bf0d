"""Figures of the bottleneck chapter: accuracy against source length, and an explorer of predictions
and alignments at a chosen length (with its static snapshots for the book)."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from attnlib.viz.frames import FreeKnob, Knob, frame_explorer
from attnlib.viz.heatmap import attention_heatmap

__all__ = ["accuracy_vs_length_figure", "accuracy_spread_figure", "examples_at_length", "bottleneck_frame",
           "bottleneck_snapshots", "bottleneck_explorer"]

_COLOURS = {"no attention": "#b5523b", "attention": "#1f5fa8"}


def accuracy_vs_length_figure(results: dict, title: str = "Exact match against source length"):
    """Accuracy per length bin, one line per model.

    Parameters
    ----------
    results : dict of str to list of dict
        Model name -> the output of :func:`attnlib.torch.accuracy_by_length`.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
        A pyplot figure.
    """
    fig, ax = plt.subplots(figsize=(6.0, 3.2), layout="constrained")
    for name, rows in results.items():
        x = [(r["lo"] + r["hi"]) / 2 for r in rows]
        y = [100 * r["accuracy"] for r in rows]
        ax.plot(x, y, marker="o", label=name, color=_COLOURS.get(name))
    ax.set_xlabel("source length (characters)")
    ax.set_ylabel("exact match (%)")
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def accuracy_spread_figure(curves: dict, lengths: Sequence, title: str = "Exact match over seeds"):
    """Mean exact match against source length with a band of one standard deviation over seeds.

    Parameters
    ----------
    curves : dict of str to array-like, shape (n_seeds, n_lengths)
        Label -> exact match (a fraction) per seed and per length.
    lengths : sequence of int
        The source lengths, ``n_lengths`` of them.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    lengths = list(lengths)
    fig, ax = plt.subplots(figsize=(6.4, 3.3), layout="constrained")
    for label, values in curves.items():
        a = 100 * np.asarray(values, dtype=float)
        if a.ndim != 2 or a.shape[1] != len(lengths):
            raise ValueError(f"curves[{label!r}] must have shape (n_seeds, {len(lengths)}), got {a.shape}")
        mean, std = a.mean(0), a.std(0)
        colour = next((c for name, c in _COLOURS.items() if label.startswith(name + ",")), None)
        line, = ax.plot(lengths, mean, marker="o", ms=3, label=label, color=colour,
                        linestyle="--" if "steps" in label and not label.endswith(" 300 steps") else "-")
        ax.fill_between(lengths, mean - std, mean + std, color=line.get_color(), alpha=0.18, lw=0)
    ax.set_xlabel("source length (characters)")
    ax.set_ylabel("exact match (%)")
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def examples_at_length(pairs: Sequence, length: int, n: int = 3) -> list:
    """The first ``n`` pairs whose source has exactly ``length`` characters (the nearest length if none).

    Parameters
    ----------
    pairs : sequence of attnlib.data.Pair
    length : int
    n : int

    Returns
    -------
    list of attnlib.data.Pair
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("no pairs to choose from")
    nearest = min({len(p.source) for p in pairs}, key=lambda k: (abs(k - length), k))
    return [p for p in pairs if len(p.source) == nearest][:n]


def _draw(ax_text, ax_map, task, plain, attentive, examples):
    from attnlib.torch import predict

    plain_out = predict(plain, task, examples)
    attn_out, weights = predict(attentive, task, examples, need_weights=True)
    lines = []
    for p, a, b in zip(examples, plain_out, attn_out):
        lines += [f"source        {p.source}", f"target        {p.target}",
                  f"no attention  {a}  {'✓' if a == p.target else '✗'}",
                  f"attention     {b}  {'✓' if b == p.target else '✗'}", ""]
    ax_text.axis("off")
    ax_text.text(0, 1, "\n".join(lines), family="monospace", fontsize=8, va="top")
    w = weights[0].numpy()
    ex = examples[0]
    out_tokens = list(attn_out[0]) + ["<eos>"]
    attention_heatmap(w, list(ex.source), out_tokens[:w.shape[0]], ax=ax_map, annotate=False,
                      colorbar=False, title=f"attention of example 1 (length {len(ex.source)})")
    ax_map.set_xlabel("source")
    ax_map.set_ylabel("output")


def bottleneck_frame(task, plain, attentive, pairs: Sequence, length: int, n: int = 3,
                     figsize=(9.0, 3.6)) -> Figure:
    """Predictions of both models at one source length, and the attention model's alignment.

    Parameters
    ----------
    task : attnlib.data.TranslationTask
    plain, attentive : attnlib.torch.Seq2Seq
        Without and with attention.
    pairs : sequence of attnlib.data.Pair
        Where examples are taken from (e.g. ``task.test``).
    length : int
        Source length of the examples shown.
    n : int
        Number of examples.
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
        Not registered with pyplot.
    """
    examples = examples_at_length(pairs, length, n)
    fig = Figure(figsize=figsize, layout="constrained")
    ax_text, ax_map = fig.subplots(1, 2, width_ratios=[1.3, 1])
    _draw(ax_text, ax_map, task, plain, attentive, examples)
    return fig


def bottleneck_snapshots(task, plain, attentive, pairs: Sequence, lengths: Sequence[int] = (5, 12, 19)):
    """The explorer's key settings: one column per length, the first example's alignment and predictions.

    Parameters
    ----------
    task : attnlib.data.TranslationTask
    plain, attentive : attnlib.torch.Seq2Seq
    pairs : sequence of attnlib.data.Pair
    lengths : sequence of int

    Returns
    -------
    matplotlib.figure.Figure
        A pyplot figure.
    """
    from attnlib.torch import predict

    fig, axes = plt.subplots(1, len(lengths), figsize=(3.3 * len(lengths), 3.9), layout="constrained",
                             squeeze=False)
    for ax, length in zip(axes[0], lengths):
        ex = examples_at_length(pairs, length, 1)
        a = predict(plain, task, ex)[0]
        b, w = predict(attentive, task, ex, need_weights=True)
        w = w[0].numpy()
        out_tokens = (list(b[0]) + ["<eos>"])[:w.shape[0]]
        attention_heatmap(w, list(ex[0].source), out_tokens, ax=ax, annotate=False, colorbar=False,
                          title=f"length {len(ex[0].source)}")
        ax.set_xlabel(f"no attention: {a} {'✓' if a == ex[0].target else '✗'}\n"
                      f"attention:    {b[0]} {'✓' if b[0] == ex[0].target else '✗'}",
                      family="monospace", fontsize=7, loc="left")
        ax.tick_params(labelsize=6)
    return fig


def bottleneck_explorer(task, plain, attentive, pairs: Sequence, length: int = 10,
                        lengths: tuple = (3, 20)):
    """An explorer: pick a source length, see both models' predictions and the alignment.

    Its frames are pre-rendered when the notebook runs, for six lengths spread over ``lengths``
    (and ``length``), so the slider works in the static book with no kernel (see
    :mod:`attnlib.viz.frames`). In a live kernel a folded "any value" slider takes every length
    in the range.

    Parameters
    ----------
    task : attnlib.data.TranslationTask
    plain, attentive : attnlib.torch.Seq2Seq
    pairs : sequence of attnlib.data.Pair
    length : int
        Initial length.
    lengths : (int, int)
        The range of lengths.

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets

    lo, hi = int(lengths[0]), int(lengths[1])
    if not lo <= int(length) <= hi:
        raise ValueError(f"length must lie in [{lo}, {hi}], got {length!r}")
    steps = sorted({int(round(lo + (hi - lo) * f)) for f in (0, 0.2, 0.4, 0.6, 0.8, 1)} | {int(length)})
    free = widgets.IntSlider(value=int(length), min=lo, max=hi, step=1, description="any length",
                             continuous_update=False, style={"description_width": "initial"})

    def render(length, any_length=None):
        return bottleneck_frame(task, plain, attentive, pairs, length if any_length is None else any_length)

    return frame_explorer(render, [Knob("length", steps, "source length", value=int(length))],
                          free=[FreeKnob("any_length", free)], dpi=70,
                          note="Left: three test strings of this length and both models' greedy "
                               "outputs. Right: the attention weights of the first one (rows: output "
                               "characters, columns: source characters).")
