r"""Figures for alignment scores: the growth of :math:`\mathrm{Var}(q \cdot k)` with :math:`d_k`,
softmax saturation, and a temperature explorer (weights and their entropy).
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from attnlib.numpy.scores import entropy
from attnlib.numpy.softmax import softmax
from attnlib.viz._display import show_png

_DOT = "#d1495b"
_SCALED = "#1f5fa8"


def variance_figure(d_ks, var_dot, var_scaled):
    r"""Measured variance of :math:`q \cdot k` against :math:`d_k`, with the line :math:`\mathrm{Var} = d_k`.

    Parameters
    ----------
    d_ks : array_like, shape (n,)
    var_dot : array_like, shape (n,)
        Variance of the raw dot products.
    var_scaled : array_like, shape (n,)
        Variance after dividing by :math:`\sqrt{d_k}`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    d_ks = np.asarray(d_ks, dtype=float)
    fig, ax = plt.subplots(figsize=(5.0, 3.4), layout="constrained")
    ax.plot(d_ks, d_ks, color="0.3", linestyle="--", linewidth=1, label=r"$d_k$ (theory)")
    ax.plot(d_ks, var_dot, "o", color=_DOT, label=r"Var$(q \cdot k)$, measured")
    ax.plot(d_ks, var_scaled, "s", color=_SCALED, label=r"Var$(q \cdot k / \sqrt{d_k})$")
    ax.axhline(1.0, color=_SCALED, linewidth=0.8, alpha=0.5)
    ax.set(xscale="log", yscale="log", xlabel=r"$d_k$", ylabel="variance",
           title="Dot products spread out as $d_k$ grows")
    ax.set_xticks(d_ks, [str(int(d)) for d in d_ks])
    ax.minorticks_off()
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def saturation_figure(x, result: dict, xlabel: str = r"$d_k$", log_x: bool = True):
    r"""Largest softmax weight and softmax-Jacobian norm, without and with :math:`1/\sqrt{d_k}`.

    Parameters
    ----------
    x : array_like, shape (n,)
        The horizontal axis (dimensions or scales).
    result : dict
        As returned by :func:`attnlib.numpy.softmax_saturation`: ``result["max_weight"]`` and
        ``result["jacobian_norm"]``, each with ``"dot"`` and ``"scaled"`` arrays of shape (n,).
    xlabel : str
    log_x : bool
        Logarithmic horizontal axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    x = np.asarray(x, dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.0), layout="constrained")
    titles = {"max_weight": "largest weight (1 = one-hot)",
              "jacobian_norm": "softmax Jacobian norm (gradient to scores)"}
    for ax, key in zip(axes, ("max_weight", "jacobian_norm")):
        ax.plot(x, result[key]["dot"], "o-", color=_DOT, label=r"$q \cdot k$")
        ax.plot(x, result[key]["scaled"], "s-", color=_SCALED, label=r"$q \cdot k / \sqrt{d_k}$")
        if log_x:
            ax.set_xscale("log")
            ax.set_xticks(x, [f"{v:g}" for v in x])
            ax.minorticks_off()
        ax.set(xlabel=xlabel, title=titles[key], ylim=(0, None))
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].legend(fontsize=8, frameon=False)
    return fig


def _draw_temperature(ax, scores, labels, temperature, compact=False):
    w = softmax(np.asarray(scores, dtype=float) / temperature)
    h = float(entropy(w))
    top = int(np.argmax(w))
    ax.bar(range(len(w)), w, color=[_SCALED if i == top else "#9db8d9" for i in range(len(w))])
    for i, wi in enumerate(w):
        ax.text(i, wi + 0.02, f"{wi:.2f}", ha="center", va="bottom", fontsize=7 if compact else 8)
    ax.set_xticks(range(len(w)), labels, fontsize=8)
    ax.set_ylim(0, 1.12)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(f"T = {temperature:.3g}: entropy {h:.2f} of max {np.log(len(w)):.2f}", fontsize=9)
    return w, h


def temperature_frame(scores, labels: Sequence[str], temperature: float, figsize=(6.0, 2.8)) -> Figure:
    """One frame of the temperature explorer: the weights ``softmax(scores / T)`` as bars.

    The figure is not registered with pyplot.

    Parameters
    ----------
    scores : array_like, shape (n,)
        One query's scores.
    labels : sequence of str, length n
    temperature : float
        Positive; the scores are divided by it.
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    fig = Figure(figsize=figsize, layout="constrained")
    _draw_temperature(fig.subplots(), scores, labels, temperature)
    return fig


def temperature_snapshots(scores, labels: Sequence[str], temperatures: Sequence[float] = (0.1, 1.0, 10.0)):
    """The temperature explorer's key settings side by side.

    Parameters
    ----------
    scores : array_like, shape (n,)
    labels : sequence of str, length n
    temperatures : sequence of float

    Returns
    -------
    matplotlib.figure.Figure
        A pyplot figure.
    """
    n = len(temperatures)
    fig, axes = plt.subplots(1, n, figsize=(2.9 * n, 2.6), layout="constrained", squeeze=False)
    for ax, t in zip(axes[0], temperatures):
        _draw_temperature(ax, scores, labels, t, compact=True)
    axes[0, 0].set_ylabel("weight")
    return fig


def temperature_explorer(scores, labels: Sequence[str], temperature: float = 1.0):
    """An ipywidgets explorer: slide the temperature, watch the weights and their entropy.

    Parameters
    ----------
    scores : array_like, shape (n,)
        One query's scores.
    labels : sequence of str, length n
    temperature : float
        Initial temperature, between 0.01 and 100 (log slider).

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets

    slider = widgets.FloatLogSlider(value=float(temperature), base=10, min=-2, max=2, step=0.05,
                                    description="temperature T", readout_format=".3f",
                                    style={"description_width": "initial"},
                                    continuous_update=False, layout=widgets.Layout(width="380px"))

    def show(temperature):
        fig = temperature_frame(scores, labels, temperature)
        show_png(fig, dpi=90)

    out = widgets.interactive_output(show, {"temperature": slider})
    note = widgets.HTML("<small>Entropy 0 is a one-hot (hard) lookup; log n is uniform weights. "
                        "Dividing by sqrt(d_k) is a temperature T = sqrt(d_k).</small>")
    return widgets.VBox([slider, note, out])
