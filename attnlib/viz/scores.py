r"""Figures for alignment scores: the growth of :math:`\mathrm{Var}(q \cdot k)` with :math:`d_k`,
softmax saturation, a temperature explorer (weights and their entropy), and an explorer of
:math:`d_k` with and without the :math:`1/\sqrt{d_k}` scaling (the softmax of random dot products
saturating without it).
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from attnlib.numpy.scores import entropy
from attnlib.numpy.softmax import softmax
from attnlib.viz._display import show_png
from attnlib.viz.frames import Knob, frame_explorer

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


# ----------------------------------------------------------------------------- d_k and the scaling

SCALING_D_KS = (4, 16, 64, 256, 1024)


def _scaling_draw(d_k: int, n_keys: int, n_queries: int, seed: int):
    """Weights of ``n_queries`` random queries over ``n_keys`` random keys, unscaled and scaled."""
    rng = np.random.default_rng([seed, d_k])  # the same draw for a d_k, whatever was drawn before
    q = rng.standard_normal((n_queries, 1, d_k))
    k = rng.standard_normal((n_queries, n_keys, d_k))
    s = (q @ np.swapaxes(k, -1, -2))[:, 0, :]
    return {"unscaled": softmax(s), "scaled": softmax(s / np.sqrt(d_k))}


def _scaling_panel(ax_bar, ax_hist, weights: np.ndarray, d_k: int, scaled: bool, compact=False):
    """Bars of query 0's sorted weights; histogram of every query's largest weight."""
    colour = _SCALED if scaled else _DOT
    w0 = np.sort(weights[0])[::-1]
    ax_bar.bar(range(len(w0)), w0, color=colour)
    ax_bar.set_ylim(0, 1.05)
    ax_bar.set_xticks([])
    ax_bar.set_xlabel("keys, sorted by weight", fontsize=8)
    ax_bar.spines[["top", "right"]].set_visible(False)
    name = r"$q \cdot k / \sqrt{d_k}$" if scaled else r"$q \cdot k$"
    ax_bar.set_title(f"{name}, $d_k$ = {d_k}: one query's weights\nentropy "
                     f"{float(entropy(w0)):.2f} of max {np.log(len(w0)):.2f}", fontsize=8 if compact else 9)
    top = weights.max(-1)
    ax_hist.hist(top, bins=np.linspace(0, 1, 21), color=colour, alpha=0.85)
    ax_hist.axvline(top.mean(), color="0.2", linestyle="--", linewidth=1)
    ax_hist.set_xlim(0, 1)
    ax_hist.set_xlabel("largest weight of a query", fontsize=8)
    ax_hist.spines[["top", "right"]].set_visible(False)
    ax_hist.set_title(f"{len(top)} queries: mean largest weight {top.mean():.2f}",
                      fontsize=8 if compact else 9)


def _check_scaling_args(d_k, n_keys, n_queries, seed) -> tuple[int, int, int, int]:
    from attnlib.checks import check_positive_count

    d_k = check_positive_count(d_k, "d_k")
    n_keys = check_positive_count(n_keys, "n_keys")
    n_queries = check_positive_count(n_queries, "n_queries")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return d_k, n_keys, n_queries, int(seed)


def scaling_frame(d_k: int, scaled: bool, n_keys: int = 16, n_queries: int = 300, seed: int = 0,
                  figsize=(7.0, 2.8)) -> Figure:
    r"""One frame of :func:`scaling_explorer`: random queries over random keys at one :math:`d_k`.

    Queries and keys have standard-normal entries; the scores are :math:`q \cdot k`, divided by
    :math:`\sqrt{d_k}` when ``scaled``. Left: query 0's weights, sorted. Right: the histogram of
    every query's largest weight (1 = one-hot, :math:`1/n` = uniform). The figure is not
    registered with pyplot.

    Parameters
    ----------
    d_k : int
        Dimension of queries and keys.
    scaled : bool
        Divide the scores by :math:`\sqrt{d_k}`.
    n_keys : int
        Keys per query (the softmax length).
    n_queries : int
        Random queries in the histogram.
    seed : int
        With ``d_k``, fixes the draw (the same inputs for the scaled and the unscaled frame).
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
    """
    d_k, n_keys, n_queries, seed = _check_scaling_args(d_k, n_keys, n_queries, seed)
    w = _scaling_draw(d_k, n_keys, n_queries, seed)["scaled" if scaled else "unscaled"]
    fig = Figure(figsize=figsize, layout="constrained")
    ax_bar, ax_hist = fig.subplots(1, 2)
    _scaling_panel(ax_bar, ax_hist, w, d_k, bool(scaled))
    return fig


def scaling_snapshots(d_ks: Sequence[int] = (4, 64, 1024), n_keys: int = 16, n_queries: int = 300,
                      seed: int = 0):
    r"""The scaling explorer's key settings: one column per :math:`d_k`, unscaled above, scaled below.

    Each cell is the histogram of the largest weight of ``n_queries`` random queries over
    ``n_keys`` random keys (the right panel of :func:`scaling_frame`).

    Parameters
    ----------
    d_ks : sequence of int
    n_keys, n_queries, seed : int
        As in :func:`scaling_frame`.

    Returns
    -------
    matplotlib.figure.Figure
        A pyplot figure.
    """
    d_ks = [_check_scaling_args(d, n_keys, n_queries, seed)[0] for d in d_ks]
    if not d_ks:
        raise ValueError("d_ks must name at least one dimension")
    fig, axes = plt.subplots(2, len(d_ks), figsize=(2.9 * len(d_ks), 4.6), layout="constrained",
                             squeeze=False, sharex=True)
    for j, d in enumerate(d_ks):
        draws = _scaling_draw(d, n_keys, n_queries, seed)
        for i, (key, scaled) in enumerate((("unscaled", False), ("scaled", True))):
            ax = axes[i, j]
            top = draws[key].max(-1)
            ax.hist(top, bins=np.linspace(0, 1, 21), color=_SCALED if scaled else _DOT, alpha=0.85)
            ax.axvline(top.mean(), color="0.2", linestyle="--", linewidth=1)
            ax.set_xlim(0, 1)
            ax.spines[["top", "right"]].set_visible(False)
            name = r"$q \cdot k / \sqrt{d_k}$" if scaled else r"$q \cdot k$"
            ax.set_title(f"{name}, $d_k$ = {d}: mean {top.mean():.2f}", fontsize=9)
            if i == 1:
                ax.set_xlabel("largest weight of a query", fontsize=8)
    axes[0, 0].set_ylabel("queries")
    axes[1, 0].set_ylabel("queries")
    return fig


def scaling_explorer(d_k: int = 64, scaled: bool = False, d_ks: Sequence[int] = SCALING_D_KS,
                     n_keys: int = 16, n_queries: int = 300, seed: int = 0):
    r"""An explorer: pick :math:`d_k` and switch the :math:`1/\sqrt{d_k}` on and off.

    A few dimensions only (a selection slider) and two scalings (toggle buttons); each frame is
    :func:`scaling_frame`, pre-rendered when the notebook runs, so the knobs work in the static
    book with no kernel (see :mod:`attnlib.viz.frames`).

    Parameters
    ----------
    d_k : int
        Initial dimension, one of ``d_ks``.
    scaled : bool
        Initial setting of the scaling.
    d_ks : sequence of int
        The dimensions the slider offers.
    n_keys, n_queries, seed : int
        As in :func:`scaling_frame`.

    Returns
    -------
    ipywidgets.VBox
    """
    d_ks = [_check_scaling_args(d, n_keys, n_queries, seed)[0] for d in d_ks]
    if int(d_k) not in d_ks:
        raise ValueError(f"d_k must be one of d_ks = {d_ks}, got {d_k!r}")

    def render(d_k, scaled):
        return scaling_frame(d_k, scaled, n_keys, n_queries, seed)

    knobs = [Knob("d_k", d_ks, "d_k", value=int(d_k)),
             Knob("scaled", [("q.k (unscaled)", False), ("q.k / sqrt(d_k)", True)], "scores",
                  style="toggle", value=bool(scaled))]
    return frame_explorer(render, knobs, dpi=75,
                          note=f"{n_queries} random queries, each over {n_keys} random keys, entries "
                               "N(0, 1). A largest weight near 1 is a saturated (one-hot) softmax; "
                               f"1/{n_keys} = {1 / n_keys:.3f} is uniform.")
