"""Figures for the chapter "From NumPy to PyTorch": attention with and without weights, as ratios.

All of them draw a dict returned by :func:`attnlib.experiments.numpy_to_torch.attention_path_ratios`:
the time of each attnlib path divided by the time of torch's SDPA, measured in alternation in one
run (median and interquartile range over the rounds). No absolute time is drawn: on a shared
machine it measures the load more than the code. The explorer's slider only picks among the
stored ratios.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from attnlib.viz.frames import Knob, frame_explorer

PATHS = ("weights", "fused")
LABELS = {"weights": "attnlib, need_weights=True", "fused": "attnlib, need_weights=False"}
COLOURS = {"weights": "#c4572a", "fused": "#1f5fa8"}
_KEYS = ("L", "weights", "fused", "weights_q25", "weights_q75", "fused_q25", "fused_q75", "weights_bytes")


def _check(ratios: dict) -> np.ndarray:
    if not isinstance(ratios, dict):
        raise TypeError(f"ratios must be the dict of attention_path_ratios, got {type(ratios).__name__}")
    missing = [k for k in _KEYS if k not in ratios]
    if missing:
        raise ValueError(f"ratios lacks {missing}: pass the dict of attention_path_ratios")
    return np.asarray(ratios["L"], dtype=float)


def _where(ratios: dict) -> str:
    return (f"inputs {ratios.get('shape', '')}, {ratios.get('dtype', '')} on {ratios.get('device', '')}, "
            f"median of {ratios.get('rounds', '?')} interleaved rounds")


def _curves(ax, ratios: dict, L_mark=None) -> None:
    L = _check(ratios)
    for p in PATHS:
        ax.semilogx(L, ratios[p], "o-", color=COLOURS[p], label=LABELS[p], markersize=4)
        ax.fill_between(L, ratios[f"{p}_q25"], ratios[f"{p}_q75"], color=COLOURS[p], alpha=0.18,
                        linewidth=0)
    ax.axhline(1.0, color="0.45", linestyle="--", linewidth=1, label="torch SDPA = 1")
    if L_mark is not None:
        ax.axvline(L_mark, color="0.3", linestyle=":", linewidth=1)
    ax.set_xticks(L, [str(int(n)) for n in L])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("sequence length L")
    ax.set_ylabel("time / time of torch SDPA")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)


def _bars(ax, ratios: dict, i: int, compact: bool = False) -> None:
    L = _check(ratios)
    vals = [float(ratios[p][i]) for p in PATHS] + [1.0]
    lo = [float(ratios[f"{p}_q25"][i]) for p in PATHS] + [1.0]
    hi = [float(ratios[f"{p}_q75"][i]) for p in PATHS] + [1.0]
    ax.bar(range(3), vals, color=[COLOURS[p] for p in PATHS] + ["0.45"], width=0.65,
           yerr=[np.subtract(vals, lo), np.subtract(hi, vals)], capsize=3)
    for j, r in enumerate(vals):
        ax.text(j, hi[j], f"{r:.2f}x", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(3), ["weights", "fused", "torch"], fontsize=8)
    ax.set_ylim(0, max(hi) * 1.3)
    ax.spines[["top", "right"]].set_visible(False)
    mib = float(ratios["weights_bytes"][i]) / 2**20
    ax.set_title(f"L = {int(L[i])}: weights array {mib:.3g} MiB" if compact else
                 f"L = {int(L[i])}: the weights path stores\n{mib:.3g} MiB of weights "
                 f"(and as much of scores)", fontsize=9)
    if not compact:
        ax.set_ylabel("time / time of torch SDPA")


def path_ratios_figure(ratios: dict):
    """The time of both attnlib paths as a ratio to torch's SDPA against L, with interquartile bands.

    Parameters
    ----------
    ratios : dict
        As returned by :func:`attnlib.experiments.numpy_to_torch.attention_path_ratios`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check(ratios)
    fig, ax = plt.subplots(figsize=(6.0, 3.2), layout="constrained")
    _curves(ax, ratios)
    ax.set_title(_where(ratios), fontsize=8)
    return fig


def path_ratios_frame(ratios: dict, index: int, figsize=(8.4, 3.0)) -> Figure:
    """One frame of the explorer: the ratio curves with L marked, and bars of the ratios at L.

    The figure is not registered with pyplot.

    Parameters
    ----------
    ratios : dict
        As returned by :func:`attnlib.experiments.numpy_to_torch.attention_path_ratios`.
    index : int
        Which of the measured lengths to show.
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
    """
    L = _check(ratios)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(L):
        raise ValueError(f"index must be an integer in [0, {len(L)}), got {index!r}")
    fig = Figure(figsize=figsize, layout="constrained")
    a, b = fig.subplots(1, 2, width_ratios=[1.2, 1])
    _curves(a, ratios, L_mark=L[index])
    _bars(b, ratios, int(index))
    return fig


def path_ratios_snapshots(ratios: dict, indices: Sequence[int] | None = None):
    """The explorer's key settings side by side: bars of the ratios at a few lengths.

    The static companion of :func:`path_ratios_explorer` for the book.

    Parameters
    ----------
    ratios : dict
        As returned by :func:`attnlib.experiments.numpy_to_torch.attention_path_ratios`.
    indices : sequence of int, optional
        Which lengths; by default the shortest, a middle one and the longest.

    Returns
    -------
    matplotlib.figure.Figure
    """
    L = _check(ratios)
    indices = list(indices) if indices is not None else [0, len(L) // 2, len(L) - 1]
    fig, axes = plt.subplots(1, len(indices), figsize=(2.8 * len(indices), 2.8),
                             layout="constrained", squeeze=False)
    for ax, i in zip(axes[0], indices):
        _bars(ax, ratios, i, compact=True)
    axes[0, 0].set_ylabel("time / time of torch SDPA")
    return fig


def path_ratios_explorer(ratios: dict, index: int | None = None):
    """An explorer: step the sequence length, see each path's time ratio and the memory.

    Every frame is drawn from the stored ratios when the notebook runs (one per measured length),
    so the slider works in the static book with no kernel (see :mod:`attnlib.viz.frames`).

    Parameters
    ----------
    ratios : dict
        As returned by :func:`attnlib.experiments.numpy_to_torch.attention_path_ratios`.
    index : int, optional
        Length selected at first (default: the longest).

    Returns
    -------
    ipywidgets.VBox
    """
    L = _check(ratios)
    index = len(L) - 1 if index is None else int(index)
    if not 0 <= index < len(L):
        raise ValueError(f"index must be an integer in [0, {len(L)}), got {index!r}")

    def render(index):
        return path_ratios_frame(ratios, index)

    knob = Knob("index", [(str(int(n)), i) for i, n in enumerate(L)], "sequence length L", value=index)
    return frame_explorer(render, [knob], dpi=75,
                          note=f"Time ratios to torch's SDPA ({_where(ratios)}), measured once when "
                               "the notebook ran; the slider only looks them up.")
