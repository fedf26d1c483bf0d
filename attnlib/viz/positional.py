r"""Pictures of positional encodings: a heatmap, and an explorer over encoding, position and pair.

:func:`position_explorer` has buttons for the encoding and two sliders: a position :math:`p`
and a column pair :math:`i` (for ALiBi, a head :math:`h`), over a few values whose frames are
pre-rendered for the static book (any value in a live kernel).

- *sinusoidal*: the left panel draws the sine and cosine of pair :math:`i` over all positions,
  with :math:`p` marked; the right panel the whole encoding vector of position :math:`p`, with pair
  :math:`i` highlighted. Low pairs turn fast (neighbouring positions differ), high pairs slowly
  (they tell far-apart positions apart).
- *RoPE*: with the same content at every position (:math:`q = k =` all ones), the left panel
  draws pair :math:`i`'s term of the score of the query at :math:`p` with the key at :math:`n`,
  :math:`2\cos(\theta_i (n - p))`, and the right panel the whole score, the sum over pairs.
- *ALiBi*: with :math:`d_\text{model}/2` heads, the left panel draws head :math:`h`'s bias
  :math:`-m_h \lvert p - n\rvert` for the query at :math:`p`, and the right panel the causal
  attention weights it gives over identical tokens.

:func:`position_snapshots` draws a few settings for the static book.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from attnlib.checks import check_index
from attnlib.numpy.positional import (
    alibi_bias,
    alibi_slopes,
    biased_attention,
    rope,
    sinusoidal_frequencies,
    sinusoidal_positional_encoding,
)
from attnlib.viz.frames import FreeKnob, Knob, frame_explorer

_SIN, _COS = "#1f5fa8", "#d1495b"

ENCODINGS = ("sinusoidal", "rope", "alibi")
_ENCODING_LABELS = {"sinusoidal": "sinusoidal (added to x)", "rope": "RoPE (rotates q and k)",
                    "alibi": "ALiBi (bias on the scores)"}


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


def _draw_rope(ax_pair, ax_sum, num_positions, d_model, position, pair, compact=False):
    n = np.arange(num_positions)
    ones = np.ones((num_positions, d_model))
    rotated = rope(ones)                                    # rope(1) at every position
    theta = sinusoidal_frequencies(d_model)[pair]
    grid = np.linspace(0, num_positions - 1, 400)
    ax_pair.plot(grid, 2 * np.cos(theta * (grid - position)), color=_SIN, lw=1.2)
    ax_pair.axvline(position, color="0.4", lw=0.8, ls="--")
    ax_pair.set_ylim(-2.3, 2.3)
    ax_pair.set_xlabel("key position n")
    ax_pair.set_title(f"pair i = {pair}: its term of the score, 2 cos(theta_i (n - {position}))",
                      fontsize=9)
    ax_sum.plot(n, rotated @ rotated[position], color=_COS, lw=1.2)
    ax_sum.axvline(position, color="0.4", lw=0.8, ls="--")
    ax_sum.set_xlabel("key position n")
    ax_sum.set_title(f"score of query {position} with key n: all pairs, q = k = 1",
                     fontsize=9)
    for a in (ax_pair, ax_sum):
        a.spines[["top", "right"]].set_visible(False)


def _draw_alibi(ax_bias, ax_w, num_positions, d_model, position, head, compact=False):
    heads = max(d_model // 2, 1)
    slope = alibi_slopes(heads)[head]
    n = np.arange(num_positions)
    bias = alibi_bias(heads, num_positions)                # (H, L, L)
    for h in range(heads):
        ax_bias.plot(n, bias[h, position], color="0.85", lw=0.8)
    ax_bias.plot(n, bias[head, position], color=_SIN, lw=1.5)
    ax_bias.axvline(position, color="0.4", lw=0.8, ls="--")
    ax_bias.set_xlabel("key position n")
    ax_bias.set_title(f"head {head} of {heads}: bias -m |{position} - n|, m = {slope:.3g}",
                      fontsize=9)
    x = np.ones((position + 1, 4))                          # identical tokens: only the bias decides
    causal = np.tril(np.ones((position + 1, position + 1), dtype=bool))
    _, w = biased_attention(x, x, x, alibi_bias(heads, position + 1)[head:head + 1], mask=causal)
    ax_w.bar(np.arange(position + 1), w[0, -1], color=_COS, width=0.85)
    ax_w.set_xlim(-1, num_positions)
    ax_w.set_ylim(0, 1.05)
    ax_w.set_xlabel("key position n (causal: n <= p)")
    ax_w.set_title(f"causal weights of query {position}, identical tokens", fontsize=9)
    for a in (ax_bias, ax_w):
        a.spines[["top", "right"]].set_visible(False)


def _check_setting(pe, position, pair, encoding="sinusoidal") -> None:
    num_positions, d_model = pe.shape
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    check_index(position, num_positions, "position", "positions")
    what = "heads" if encoding == "alibi" else "column pairs"
    check_index(pair, (d_model + 1) // 2, "pair", f"{what} for d_model={d_model}")
    if encoding != "sinusoidal" and d_model % 2:
        raise ValueError(f"{encoding} needs an even d_model, got {d_model}")


def _draw_any(ax_left, ax_right, pe, position, pair, encoding, compact=False):
    if encoding == "rope":
        _draw_rope(ax_left, ax_right, *pe.shape, position, pair, compact)
    elif encoding == "alibi":
        _draw_alibi(ax_left, ax_right, *pe.shape, position, pair, compact)
    else:
        _draw(ax_left, ax_right, pe, position, pair, compact)


def position_frame(num_positions: int, d_model: int, position: int, pair: int, figsize=(8.0, 2.6),
                   encoding: str = "sinusoidal") -> Figure:
    """One frame of the explorer (see the module docstring for what each encoding draws).

    Parameters
    ----------
    num_positions, d_model : int
    position : int
        Row of the encoding to show (the query's position for RoPE and ALiBi).
    pair : int
        Column pair ``(2 * pair, 2 * pair + 1)`` to follow; for ALiBi, the head (of ``d_model // 2``).
    figsize : tuple of float
    encoding : {"sinusoidal", "rope", "alibi"}

    Returns
    -------
    matplotlib.figure.Figure
        Not registered with pyplot.
    """
    pe = sinusoidal_positional_encoding(num_positions, d_model)
    _check_setting(pe, position, pair, encoding)
    fig = Figure(figsize=figsize, layout="constrained")
    _draw_any(*fig.subplots(1, 2, width_ratios=[1.2, 1]), pe, position, pair, encoding)
    return fig


def position_snapshots(num_positions: int, d_model: int, settings: Sequence[tuple]):
    """The explorer at a few settings, one row each.

    Parameters
    ----------
    num_positions, d_model : int
    settings : sequence of (int, int) or (str, int, int)
        ``(position, pair)`` per row (the sinusoidal encoding), or ``(encoding, position, pair)``
        with ``encoding`` one of ``"sinusoidal"``, ``"rope"``, ``"alibi"``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    pe = sinusoidal_positional_encoding(num_positions, d_model)
    rows = []
    for setting in settings:
        if isinstance(setting, (str, bytes)) or np.ndim(setting) > 1 or len(setting) not in (2, 3):
            raise ValueError(f"settings must be (position, pair) or (encoding, position, pair), "
                             f"got {setting!r}")
        setting = ("sinusoidal", *setting) if len(setting) == 2 else tuple(setting)
        _check_setting(pe, setting[1], setting[2], setting[0])
        rows.append(setting)
    fig, axes = plt.subplots(len(rows), 2, figsize=(8.0, 2.1 * len(rows)),
                             layout="constrained", width_ratios=[1.2, 1], squeeze=False)
    for r, (encoding, position, pair) in enumerate(rows):
        _draw_any(axes[r, 0], axes[r, 1], pe, position, pair, encoding, compact=r > 0)
    return fig


def position_explorer(num_positions: int = 64, d_model: int = 32, position: int = 5, pair: int = 0,
                      encoding: str = "sinusoidal"):
    """An explorer of positional encodings: pick the encoding, step the position and the pair.

    Its frames are pre-rendered when the notebook runs, for the three encodings, three positions
    (0, ``position``, the last) and three pairs (the fast first, ``pair`` or a low
    one, the slow last), so the knobs work in the static book with no kernel (see
    :mod:`attnlib.viz.frames`). In a live kernel folded "any value" sliders recompute the picture
    for any position and pair.

    Parameters
    ----------
    num_positions, d_model : int
        Size of the encoding table (``d_model`` even for RoPE and ALiBi).
    position : int
        Initial position.
    pair : int
        Initial column pair (for ALiBi, the head).
    encoding : {"sinusoidal", "rope", "alibi"}
        Initial encoding.

    Returns
    -------
    ipywidgets.VBox
        Display it (make it the last expression of a cell).
    """
    import ipywidgets as widgets

    pe = sinusoidal_positional_encoding(num_positions, d_model)
    _check_setting(pe, position, pair, encoding)
    last_pair = (d_model + 1) // 2 - 1
    positions = sorted({0, int(position), num_positions - 1})
    pairs = sorted({0, int(pair), last_pair} if pair not in (0, last_pair) else {0, min(3, last_pair), last_pair})
    style = {"description_width": "initial"}
    free = [FreeKnob("any_position", widgets.IntSlider(value=position, min=0, max=num_positions - 1,
                                                       description="any position", style=style)),
            FreeKnob("any_pair", widgets.IntSlider(value=pair, min=0, max=last_pair,
                                                   description="any pair / head", style=style))]

    def render(encoding, position, pair, any_position=None, any_pair=None):
        return position_frame(num_positions, d_model, position if any_position is None else any_position,
                              pair if any_pair is None else any_pair, encoding=encoding)

    knobs = [Knob("encoding", [(_ENCODING_LABELS[e], e) for e in ENCODINGS], "encoding",
                  style="toggle", value=encoding),
             Knob("position", positions, "position p", value=int(position)),
             Knob("pair", pairs, "pair i / head h", value=int(pair))]
    return frame_explorer(render, knobs, free=free, dpi=75,
                          note="Sinusoidal: low pairs turn fast (they tell neighbours apart), high "
                               "pairs slowly. RoPE: the same frequencies, now in the score of a query "
                               "with each key. ALiBi: the pair knob picks a head, from steep to gentle.")
