"""Figures of the hard and structured attention chapter: accuracy curves, gradient variance, and the
attention of softmax, sigmoid and CRF models on a bracketed segment (explorer and static snapshots)."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from attnlib.viz.frames import FreeKnob, Knob, frame_explorer

__all__ = ["accuracy_curves_figure", "gradient_variance_figure", "segment_weights",
           "segment_frame", "segment_snapshots", "segment_explorer"]

_COLOURS = {"soft": "#1f5fa8", "hard, no baseline": "#b5523b", "hard + baseline": "#e39b3a",
            "softmax": "#1f5fa8", "sigmoid": "#8a8a8a", "crf": "#2c8c5a"}


def accuracy_curves_figure(histories: dict, metric: str = "accuracy", title: str = "Test accuracy"):
    """Evaluated accuracy against training step, one line per run.

    Parameters
    ----------
    histories : dict of str to attnlib.torch.History
    metric : str
        Name of the evaluated metric.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
        A pyplot figure.
    """
    fig, ax = plt.subplots(figsize=(5.6, 3.0), layout="constrained")
    for name, h in histories.items():
        steps = [e["step"] for e in h.evals if metric in e]
        ax.plot(steps, [100 * v for v in h.metric(metric)], marker="o", ms=3, label=name,
                color=_COLOURS.get(name))
    ax.set_xlabel("training step")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def gradient_variance_figure(variances: dict, title: str = "Variance of the attention gradient"):
    """A bar plot, log scale: total variance of each gradient estimator.

    Parameters
    ----------
    variances : dict of str to float
        Estimator name -> total variance (e.g. ``gradient_variance(g)["variance"]``).
    title : str

    Returns
    -------
    matplotlib.figure.Figure
        A pyplot figure.
    """
    fig, ax = plt.subplots(figsize=(4.8, 3.0), layout="constrained")
    names = list(variances)
    vals = [variances[n] for n in names]
    bars = ax.bar(names, vals, color=[_COLOURS.get(n, "#888888") for n in names], width=0.6)
    ax.set_yscale("log")
    for b, v in zip(bars, vals):
        ax.text(b.get_x() + b.get_width() / 2, v * 1.15, f"{v:.3g}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(min(vals) / 3, max(vals) * 5)
    ax.set_ylabel("total variance (log scale)")
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


@torch.no_grad()
def segment_weights(models: dict, data, index: int, device=None) -> dict:
    """Attention weights of each :class:`~attnlib.torch.SegmentModel` on one example, and its prediction.

    Parameters
    ----------
    models : dict of str to SegmentModel
    data : attnlib.data.lookup.ToyData
        A segment data set.
    index : int
    device : optional

    Returns
    -------
    dict of str to (numpy.ndarray of shape (n,), int)
        Weights on the ``n`` real tokens, and the predicted class.
    """
    b = data.batch([index], device)
    n = int(b.mask.sum())
    out = {}
    for name, m in models.items():
        was = m.training
        m.eval()
        logits, w = m(b.tokens, b.mask)
        m.train(was)
        out[name] = (w[0, :n].cpu().numpy(), int(logits.argmax(-1)[0]))
    return out


def _draw(axes, models, data, index, compact=False):
    from attnlib.data.lookup import segment_tokens_to_text

    symbols = segment_tokens_to_text(data.tokens[index])
    n = len(symbols)
    span = data.span[index, :n].numpy()
    target = int(data.target[index])
    weights = segment_weights(models, data, index)
    for ax, (name, (w, pred)) in zip(axes, weights.items()):
        ax.bar(range(n), w, color=[_COLOURS.get(name, "#888888") if s else "#c9c9c9" for s in span],
               width=0.75)
        lo, hi = np.flatnonzero(span)[[0, -1]]
        ax.axvspan(lo - 0.5, hi + 0.5, color="#2c8c5a", alpha=0.08, lw=0)
        ax.set_xticks(range(n), symbols, fontsize=8 if compact else 9)
        ax.set_ylim(0, 1.05)
        ax.set_yticks([0, 0.5, 1])
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
        mark = "✓" if pred == target else "✗"
        ax.set_title(f"{name}: predicts {pred} {mark} (sum {target})", fontsize=8 if compact else 9)


def segment_frame(models: dict, data, index: int, figsize=(8.0, 2.4)) -> Figure:
    """One example: each model's attention weights over the tokens (the bracketed span shaded).

    Parameters
    ----------
    models : dict of str to SegmentModel
    data : ToyData
    index : int
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
        Not registered with pyplot.
    """
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    _draw(axes, models, data, index)
    axes[0].set_ylabel("weight")
    return fig


def segment_snapshots(models: dict, data, indices: Sequence[int] = (0, 1, 2)):
    """The explorer's key settings: one row per example, one column per model.

    Parameters
    ----------
    models : dict of str to SegmentModel
    data : ToyData
    indices : sequence of int

    Returns
    -------
    matplotlib.figure.Figure
        A pyplot figure.
    """
    fig, axes = plt.subplots(len(indices), len(models), figsize=(2.7 * len(models), 1.75 * len(indices)),
                             layout="constrained", squeeze=False)
    for row, i in zip(axes, indices):
        _draw(row, models, data, i, compact=True)
        row[0].set_ylabel(f"example {i}", fontsize=8)
    return fig


def segment_explorer(models: dict, data, index: int = 0, n_examples: int = 50):
    """An explorer: pick a test example, see where each model attends and what it predicts.

    The book's frames are pre-rendered when the notebook runs for twelve examples (``index`` and
    the first ones of the ``n_examples``), so the slider works in the static book with no kernel
    (see :mod:`attnlib.viz.frames`); in a live kernel a folded "any value" slider reaches every
    one of the first ``n_examples`` examples.

    Parameters
    ----------
    models : dict of str to SegmentModel
    data : ToyData
    index : int
        Initial example.
    n_examples : int
        The examples offered.

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets

    n = min(int(n_examples), len(data))
    if not 0 <= int(index) < n:
        raise ValueError(f"index must lie in [0, {n}), got {index!r}")
    shown = sorted(set(list(range(n))[:11]) | {int(index)})
    free = widgets.IntSlider(value=int(index), min=0, max=n - 1, description="any example",
                             continuous_update=False)

    def render(index, any_index=None):
        return segment_frame(models, data, index if any_index is None else any_index)

    return frame_explorer(render, [Knob("index", shown, "example", value=int(index))],
                          free=[FreeKnob("any_index", free)], dpi=60,
                          note="Bars: attention weight of each token (coloured inside the brackets, "
                               "grey outside). Softmax weights sum to 1; sigmoid and CRF weights are "
                               "independent probabilities of selecting each token.")
