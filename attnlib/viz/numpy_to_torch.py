"""Figures for the chapter "From NumPy to PyTorch": the time of attention with and without weights.

All of them draw a dict returned by :func:`attnlib.torch.attention_path_times` (measured once, so
the explorer's slider only picks among stored numbers and answers instantly).
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from attnlib.viz._display import show_png

PATHS = ("weights", "fused", "torch")
LABELS = {"weights": "attnlib, need_weights=True", "fused": "attnlib, need_weights=False",
          "torch": "torch SDPA"}
COLOURS = {"weights": "#c4572a", "fused": "#1f5fa8", "torch": "0.45"}


def _check(times: dict) -> np.ndarray:
    missing = [k for k in ("L", *PATHS, "weights_bytes") if k not in times]
    if missing:
        raise ValueError(f"times lacks {missing}: pass the dict of attention_path_times")
    return np.asarray(times["L"], dtype=float)


def _curves(ax, times: dict, L_mark=None) -> None:
    L = _check(times)
    for p in PATHS:
        ax.loglog(L, np.asarray(times[p]) * 1e3, "o-", color=COLOURS[p], label=LABELS[p],
                  markersize=4)
    if L_mark is not None:
        ax.axvline(L_mark, color="0.3", linestyle=":", linewidth=1)
    ax.set_xticks(L, [str(int(n)) for n in L])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("sequence length L")
    ax.set_ylabel("milliseconds (best of runs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def _bars(ax, times: dict, i: int, compact: bool = False) -> None:
    L = _check(times)
    secs = [float(times[p][i]) * 1e3 for p in PATHS]
    ref = secs[-1]
    ax.bar(range(3), secs, color=[COLOURS[p] for p in PATHS], width=0.65)
    for j, s in enumerate(secs):
        ms = f"{s:.0f}" if s >= 10 else f"{s:.2g}"
        ax.text(j, s, f"{ms} ms\n{s / ref:.2f}x", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(3), ["weights", "fused", "torch"], fontsize=8)
    ax.set_ylim(0, max(secs) * 1.35)
    ax.spines[["top", "right"]].set_visible(False)
    mib = float(times["weights_bytes"][i]) / 2**20
    ax.set_title(f"L = {int(L[i])}: weights array {mib:.3g} MiB" if compact else
                 f"L = {int(L[i])}: the weights path stores\n{mib:.3g} MiB of weights "
                 f"(and as much of scores)", fontsize=9)
    if not compact:
        ax.set_ylabel("milliseconds")


def path_times_figure(times: dict):
    """Time of the three paths against L (log-log) and their ratio to torch's SDPA.

    Parameters
    ----------
    times : dict
        As returned by :func:`attnlib.torch.attention_path_times`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    L = _check(times)
    fig, (a, b) = plt.subplots(1, 2, figsize=(8.4, 3.1), layout="constrained")
    _curves(a, times)
    a.set_title(f"time, inputs {times.get('shape', '')}", fontsize=9)
    ref = np.asarray(times["torch"])
    for p in ("weights", "fused"):
        b.semilogx(L, np.asarray(times[p]) / ref, "o-", color=COLOURS[p], label=LABELS[p],
                   markersize=4)
    b.axhline(1.0, color=COLOURS["torch"], linestyle="--", linewidth=1, label="torch SDPA = 1")
    b.set_xticks(L, [str(int(n)) for n in L])
    b.xaxis.set_minor_formatter(plt.NullFormatter())
    b.set_xlabel("sequence length L")
    b.set_ylabel("time / time of torch SDPA")
    b.set_ylim(bottom=0)
    b.grid(True, alpha=0.3)
    b.legend(fontsize=7)
    b.set_title("ratio to torch SDPA", fontsize=9)
    return fig


def path_times_frame(times: dict, index: int, figsize=(8.4, 3.0)) -> Figure:
    """One frame of the explorer: all curves with L marked, and bars of the three times at L.

    The figure is not registered with pyplot.

    Parameters
    ----------
    times : dict
        As returned by :func:`attnlib.torch.attention_path_times`.
    index : int
        Which of the measured lengths to show.
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
    """
    L = _check(times)
    fig = Figure(figsize=figsize, layout="constrained")
    a, b = fig.subplots(1, 2, width_ratios=[1.2, 1])
    _curves(a, times, L_mark=L[index])
    _bars(b, times, index)
    return fig


def path_times_snapshots(times: dict, indices: Sequence[int] | None = None):
    """The explorer's key settings side by side: bars of the three paths at a few lengths.

    The static companion of :func:`path_times_explorer` for the book.

    Parameters
    ----------
    times : dict
        As returned by :func:`attnlib.torch.attention_path_times`.
    indices : sequence of int, optional
        Which lengths; by default the shortest, a middle one and the longest.

    Returns
    -------
    matplotlib.figure.Figure
    """
    L = _check(times)
    indices = list(indices) if indices is not None else [0, len(L) // 2, len(L) - 1]
    fig, axes = plt.subplots(1, len(indices), figsize=(2.8 * len(indices), 2.8),
                             layout="constrained", squeeze=False)
    for ax, i in zip(axes[0], indices):
        _bars(ax, times, i, compact=True)
    axes[0, 0].set_ylabel("milliseconds")
    return fig



def path_times_explorer(times: dict, index: int | None = None):
    """An ipywidgets explorer: slide the sequence length, see the time of each path and the memory.

    Every frame is drawn from the stored measurements, so the slider answers at once.

    Parameters
    ----------
    times : dict
        As returned by :func:`attnlib.torch.attention_path_times`.
    index : int, optional
        Length selected at first (default: the longest).

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets

    L = _check(times)
    index = len(L) - 1 if index is None else int(index)
    slider = widgets.SelectionSlider(options=[(str(int(n)), i) for i, n in enumerate(L)],
                                     value=index, description="sequence length L",
                                     style={"description_width": "initial"},
                                     layout=widgets.Layout(width="420px"))

    def show(index):
        show_png(path_times_frame(times, index))

    out = widgets.interactive_output(show, {"index": slider})
    note = widgets.HTML("<small>Times measured once when the notebook ran, on its machine; the "
                        "slider only looks them up.</small>")
    return widgets.VBox([slider, note, out])
