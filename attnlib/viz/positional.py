"""Pictures of positional encodings: a heatmap, and an explorer over position and dimension.

:func:`position_explorer` has two sliders: a position :math:`p` and a column pair :math:`i`. The
left panel draws the sine and cosine of pair :math:`i` over all positions, with :math:`p`
marked; the right panel the whole encoding vector of position :math:`p`, with pair :math:`i`
highlighted. Low pairs turn fast (neighbouring positions differ), high pairs slowly (they tell
far-apart positions apart). :func:`position_snapshots` draws a few settings for the static book.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from attnlib.checks import check_index
from attnlib.numpy.positional import sinusoidal_frequencies, sinusoidal_positional_encoding
from attnlib.viz._display import show_png

_SIN, _COS = "#1f5fa8", "#d1495b"


def encoding_heatmap(table, title: str = "", ax=None, symmetric: bool = True, xlabel: str = "column",
                     ylabel: str = "position"):
    """Draw a table of position vectors (or any matrix) as a heatmap.

    Parameters
    ----------
    table : array_like, shape (num_positions, d)
    title : str
    ax : matplotlib.axes.Axes, optional
    symmetric : bool
        Centre the colour scale on zero (red positive, blue negative).
    xlabel, ylabel : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = np.asarray(table, dtype=float)
    if table.ndim != 2:
        raise ValueError(f"table must be 2-D, got shape {table.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.4), layout="constrained")
    lim = float(np.max(np.abs(table))) or 1.0
    kw = dict(cmap="RdBu_r", vmin=-lim, vmax=lim) if symmetric else dict(cmap="viridis")
    image = ax.imshow(table, aspect="auto", interpolation="nearest", **kw)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.figure.colorbar(image, ax=ax, shrink=0.85)
    return ax.figure


def _draw(ax_wave, ax_vec, pe, position, pair, compact=False):
    P, d = pe.shape
    omega = sinusoidal_frequencies(d)[pair]
    grid = np.linspace(0, P - 1, 400)
    ax_wave.plot(grid, np.sin(omega * grid), color=_SIN, lw=1.2, label=f"column {2 * pair} (sin)")
    if 2 * pair + 1 < d:
        ax_wave.plot(grid, np.cos(omega * grid), color=_COS, lw=1.2, label=f"column {2 * pair + 1} (cos)")
    ax_wave.axvline(position, color="0.4", lw=0.8, ls="--")
    ax_wave.plot([position] * 2, pe[position, 2 * pair: 2 * pair + 2], "o", color="black", ms=4)
    ax_wave.set_ylim(-1.15, 1.15)
    ax_wave.set_xlabel("position")
    wavelength = 2 * np.pi / omega
    ax_wave.set_title(f"pair i = {pair}: wavelength {wavelength:.3g} positions", fontsize=9)
    if not compact:
        ax_wave.legend(fontsize=7, loc="upper right", framealpha=0.9)
    colours = ["0.75"] * d
    colours[2 * pair] = _SIN
    if 2 * pair + 1 < d:
        colours[2 * pair + 1] = _COS
    ax_vec.bar(range(d), pe[position], color=colours, width=0.85)
    ax_vec.set_ylim(-1.15, 1.15)
    ax_vec.set_xlabel("column")
    ax_vec.set_title(f"PE[{position}], the vector of position {position}", fontsize=9)
    for a in (ax_wave, ax_vec):
        a.spines[["top", "right"]].set_visible(False)


def _check_setting(pe, position, pair) -> None:
    num_positions, d_model = pe.shape
    check_index(position, num_positions, "position", "positions")
    check_index(pair, (d_model + 1) // 2, "pair", f"column pairs for d_model={d_model}")


def position_frame(num_positions: int, d_model: int, position: int, pair: int, figsize=(8.0, 2.6)) -> Figure:
    """One frame of the explorer: pair ``pair`` over positions (left), ``PE[position]`` (right).

    Parameters
    ----------
    num_positions, d_model : int
    position : int
        Row of the encoding to show.
    pair : int
        Column pair ``(2 * pair, 2 * pair + 1)`` to follow.
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
        Not registered with pyplot.
    """
    pe = sinusoidal_positional_encoding(num_positions, d_model)
    _check_setting(pe, position, pair)
    fig = Figure(figsize=figsize, layout="constrained")
    _draw(*fig.subplots(1, 2, width_ratios=[1.2, 1]), pe, position, pair)
    return fig


def position_snapshots(num_positions: int, d_model: int, settings: Sequence[tuple[int, int]]):
    """The explorer at a few ``(position, pair)`` settings, one row each.

    Parameters
    ----------
    num_positions, d_model : int
    settings : sequence of (int, int)
        ``(position, pair)`` per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    pe = sinusoidal_positional_encoding(num_positions, d_model)
    settings = list(settings)
    for setting in settings:
        if np.ndim(setting) != 1 or len(setting) != 2:
            raise ValueError(f"settings must be (position, pair) pairs, got {setting!r}")
        _check_setting(pe, *setting)
    fig, axes = plt.subplots(len(settings), 2, figsize=(8.0, 2.1 * len(settings)),
                             layout="constrained", width_ratios=[1.2, 1], squeeze=False)
    for r, (position, pair) in enumerate(settings):
        _draw(axes[r, 0], axes[r, 1], pe, position, pair, compact=r > 0)
    return fig


def position_explorer(num_positions: int = 64, d_model: int = 32, position: int = 5, pair: int = 0):
    """An ipywidgets explorer of the sinusoidal encoding: slide the position and the column pair.

    Parameters
    ----------
    num_positions, d_model : int
        Size of the encoding table.
    position : int
        Initial position.
    pair : int
        Initial column pair.

    Returns
    -------
    ipywidgets.VBox
        Display it (make it the last expression of a cell).
    """
    import ipywidgets as widgets

    pos = widgets.IntSlider(value=position, min=0, max=num_positions - 1, description="position p",
                            continuous_update=False, style={"description_width": "initial"})
    pr = widgets.IntSlider(value=pair, min=0, max=(d_model + 1) // 2 - 1, description="pair i",
                           continuous_update=False, style={"description_width": "initial"})

    def show(position, pair):
        fig = position_frame(num_positions, d_model, position, pair)
        show_png(fig, dpi=90)

    out = widgets.interactive_output(show, {"position": pos, "pair": pr})
    note = widgets.HTML("<small>Low pairs turn fast (they tell neighbours apart), high pairs "
                        "slowly (they tell far-apart positions apart).</small>")
    return widgets.VBox([widgets.HBox([pos, pr]), note, out])
