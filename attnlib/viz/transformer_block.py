"""Figures for the chapter "The Transformer block": gradient norms by depth and post-/pre-LN loss curves.

The loss-curve explorer only looks up the runs of :func:`attnlib.torch.block_experiments.norm_warmup_runs`
(trained once when the notebook runs), so it answers instantly.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from attnlib.viz._display import show_png

COLOURS = {("post-LN", False): "#c4572a", ("post-LN", True): "#f0a27a",
           ("pre-LN", False): "#1f5fa8", ("pre-LN", True): "#8fb3e0"}


def _smooth(y, k: int = 10) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    k = max(1, min(k, len(y)))
    c = np.cumsum(np.insert(y, 0, 0.0))
    out = (c[k:] - c[:-k]) / k
    return np.concatenate([np.cumsum(y[:k - 1]) / np.arange(1, k), out])


def gradient_norms_figure(curves: dict):
    """Gradient norm at each layer's input against depth, relative to the output's (log scale).

    Parameters
    ----------
    curves : dict of str to array_like
        Label -> norms of shape (num_layers + 1,), as from
        :func:`attnlib.torch.block_experiments.gradient_norms_by_depth`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(6.0, 3.2), layout="constrained")
    for label, g in curves.items():
        g = np.asarray(g, dtype=float)
        ax.semilogy(np.arange(len(g)), g / g[-1], "o-", markersize=3, label=label)
    ax.set_xlabel("layer (0 = input of the stack, last = output)")
    ax.set_ylabel("‖∂loss/∂x_layer‖ / ‖∂loss/∂output‖")
    ax.set_title("gradient reaching each depth, at initialisation", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def _curves(ax, runs: dict, keys) -> None:
    for key in keys:
        r = runs[key]
        norm, warm = key
        ax.plot(_smooth(r["losses"]), color=COLOURS.get(key), linewidth=1.6,
                label=f"{norm}, {'with' if warm else 'no'} warm-up (acc {r['accuracy']:.2f})")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (running mean of 10)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def loss_curves_figure(runs: dict):
    """All four runs of :func:`attnlib.torch.block_experiments.norm_warmup_runs` on one log-scale plot.

    Parameters
    ----------
    runs : dict
        Keyed by ``(norm, warmup)``, values with ``"losses"`` and ``"accuracy"``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(6.4, 3.4), layout="constrained")
    _curves(ax, runs, list(runs))
    ax.set_title("same model, same data, same steps: where the norm sits, and warm-up", fontsize=9)
    return fig


def loss_curves_frame(runs: dict, norms, warmups, figsize=(6.4, 3.2)) -> Figure:
    """One frame of the explorer: the chosen runs only (not registered with pyplot).

    Parameters
    ----------
    runs : dict
    norms : sequence of str
        Subset of ``("post-LN", "pre-LN")``.
    warmups : sequence of bool
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    keys = [k for k in runs if k[0] in norms and k[1] in warmups]
    if keys:
        _curves(ax, runs, keys)
    return fig


def loss_curves_snapshots(runs: dict):
    """The explorer's key settings side by side: post-LN (left) and pre-LN (right), each with and
    without warm-up, on shared axes.

    Parameters
    ----------
    runs : dict

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.0), layout="constrained", sharey=True)
    for ax, norm in zip(axes, ("post-LN", "pre-LN")):
        _curves(ax, runs, [k for k in runs if k[0] == norm])
        ax.set_title(norm, fontsize=9)
    return fig



def loss_curves_explorer(runs: dict):
    """An ipywidgets explorer: pick the norm placement(s) and warm-up, see the stored loss curves.

    Parameters
    ----------
    runs : dict
        From :func:`attnlib.torch.block_experiments.norm_warmup_runs`.

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets

    norm = widgets.SelectMultiple(options=["post-LN", "pre-LN"], value=["post-LN", "pre-LN"],
                                  description="norm")
    warm = widgets.SelectMultiple(options=[("no warm-up", False), ("warm-up", True)],
                                  value=[False], description="warm-up")

    def show(norms, warmups):
        show_png(loss_curves_frame(runs, norms, warmups))

    out = widgets.interactive_output(show, {"norms": norm, "warmups": warm})
    note = widgets.HTML("<small>Runs trained once when the notebook ran; ctrl/shift-click to pick "
                        "several.</small>")
    return widgets.VBox([widgets.HBox([norm, warm]), note, out])
