r"""An interactive explorer of one query's attention, and the static figure of its key settings.

The knob that teaches: a *temperature* :math:`T` that divides the scaled scores,

.. math:: w = \mathrm{softmax}\!\left(\frac{q K^\top}{T\sqrt{d_k}}\right),

so :math:`T = 1` is ordinary scaled dot-product attention, a small :math:`T` sharpens the weights
towards a one-hot, dictionary-like lookup, and a large :math:`T` flattens them towards a plain
average of the values. Dividing the scores by :math:`T` is the same as dividing the query by
:math:`T`, so the explorer simply calls :func:`attnlib.numpy.scaled_dot_product_attention` on
``q / T``.

The explorer's frames are rendered when the notebook runs and switched by its knobs in the
browser, so it works in the static book; :func:`explorer_snapshots` draws the same panels for a
few temperatures side by side, as a figure.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from attnlib.checks import check_index, check_real
from attnlib.numpy import causal_mask, scaled_dot_product_attention
from attnlib.viz.frames import MAX_FRAMES, FreeKnob, Knob, frame_explorer

# The bar of the key that gets the most weight is drawn in this colour, the others in grey-blue.
_TOP = "#1f5fa8"
_REST = "#9db8d9"


def _check(Q, K, V, words) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    Q, K, V = (np.asarray(a, dtype=float) for a in (Q, K, V))
    for name, a in (("queries", Q), ("keys", K), ("values", V)):
        if a.ndim != 2:
            raise ValueError(f"{name} must be 2-D (one row per token), got shape {a.shape}")
    words = list(words)
    if not (len(Q) == len(K) == len(V) == len(words)):
        raise ValueError(f"need one row per word: {len(words)} words, queries {Q.shape}, "
                         f"keys {K.shape}, values {V.shape}")
    return Q, K, V, words


def attend_one(Q, K, V, query: int, temperature: float = 1.0, causal: bool = False):
    """Weights and output of one query at a given temperature.

    Parameters
    ----------
    Q : array_like, shape (L, d_k)
        Queries of all tokens (self-attention: one per token).
    K : array_like, shape (L, d_k)
        Keys.
    V : array_like, shape (L, d_v)
        Values.
    query : int
        Index of the token that asks.
    temperature : float
        Divides the scaled scores; 1 is standard attention. Must be positive.
    causal : bool
        Let the query see only tokens at or before its own position.

    Returns
    -------
    weights : numpy.ndarray, shape (L,)
    output : numpy.ndarray, shape (d_v,)

    Raises
    ------
    ValueError
        When ``query`` is not an index of a token, or ``temperature`` is not a positive number.
    """
    check_real(temperature, "temperature", positive=True)
    Q, K, V = (np.asarray(a, dtype=float) for a in (Q, K, V))
    if Q.ndim != 2:
        raise ValueError(f"queries must be 2-D (one row per token), got shape {Q.shape}")
    query = check_index(query, len(Q), "query", "tokens")
    mask = causal_mask(len(Q), len(K))[query : query + 1] if causal else None
    out, w = scaled_dot_product_attention(Q[query : query + 1] / temperature, K, V, mask=mask)
    return w[0], out[0]


def _draw(ax_w, ax_v, V, words, query, weights, output, temperature, causal, compact=False):
    """Draw the weights bar chart on ``ax_w`` and the values-plus-output table on ``ax_v``."""
    L = len(words)
    allowed = np.arange(L) <= query if causal else np.ones(L, dtype=bool)
    colours = [_TOP if i == int(np.argmax(weights)) else _REST for i in range(L)]
    ax_w.bar(range(L), weights, color=colours, width=0.7)
    for i in range(L):
        label = f"{weights[i]:.2f}" if allowed[i] else "masked"
        ax_w.text(i, weights[i] + 0.03, label, ha="center", va="bottom", fontsize=8,
                  color="0.2" if allowed[i] else "0.5")
    ax_w.set_xticks(range(L), words)
    ax_w.get_xticklabels()[query].set_fontweight("bold")
    ax_w.set_ylim(0, 1.15)
    ax_w.set_yticks([0, 0.5, 1])
    ax_w.spines[["top", "right"]].set_visible(False)
    if not compact:
        ax_w.set_ylabel("weight")
    ax_w.set_title(f"weights of '{words[query]}'  (T = {temperature:.2g})", fontsize=10)

    table = np.vstack([V, output[None, :]])
    lim = float(np.max(np.abs(table))) or 1.0
    ax_v.imshow(table, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax_v.axhline(L - 0.5, color="black", linewidth=2)
    for (i, j), x in np.ndenumerate(table):
        ax_v.text(j, i, f"{x:.2f}", ha="center", va="center", fontsize=7 if compact else 8,
                  color="white" if abs(x) > 0.6 * lim else "black")
    ax_v.set_yticks(range(L + 1), [f"v({w})" for w in words] + ["output"])
    ax_v.get_yticklabels()[-1].set_fontweight("bold")
    ax_v.set_xticks([])
    ax_v.tick_params(length=0)
    title = "output = weighted sum of values"
    if causal:
        title += " (causal)"
    ax_v.set_title(title, fontsize=10)


def explorer_frame(Q, K, V, words: Sequence[str], query: int, temperature: float = 1.0,
                   causal: bool = False, figsize=(8.0, 2.8)) -> Figure:
    """One frame of the explorer: the query's weights (left) and the output it gets (right).

    The figure is not registered with pyplot (nothing is shown or kept open behind your back).

    Parameters
    ----------
    Q, K, V : array_like, shapes (L, d_k), (L, d_k), (L, d_v)
    words : sequence of str, length L
    query : int
        Index of the asking token.
    temperature : float
        Divides the scaled scores (1 = standard attention).
    causal : bool
        Apply a causal mask.
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
    """
    Q, K, V, words = _check(Q, K, V, words)
    w, out = attend_one(Q, K, V, query, temperature, causal)
    fig = Figure(figsize=figsize, layout="constrained")
    ax_w, ax_v = fig.subplots(1, 2, width_ratios=[1.1, 1])
    _draw(ax_w, ax_v, V, words, query, w, out, temperature, causal)
    return fig


def explorer_snapshots(Q, K, V, words: Sequence[str], query: int,
                       temperatures: Sequence[float] = (0.1, 1.0, 10.0), causal: bool = False):
    """The explorer's key settings side by side: one column per temperature.

    The explorer's key settings as one figure, beside :func:`attention_explorer` (whose frames
    switch without a kernel but show one setting at a time).

    Parameters
    ----------
    Q, K, V : array_like, shapes (L, d_k), (L, d_k), (L, d_v)
    words : sequence of str, length L
    query : int
        Index of the asking token.
    temperatures : sequence of float
        One column per temperature.
    causal : bool
        Apply a causal mask.

    Returns
    -------
    matplotlib.figure.Figure
        A pyplot figure (shown by the notebook like any other).
    """
    Q, K, V, words = _check(Q, K, V, words)
    n = len(temperatures)
    fig, axes = plt.subplots(2, n, figsize=(2.55 * n, 4.4), layout="constrained",
                             height_ratios=[1, 1.15], squeeze=False)
    for c, t in enumerate(temperatures):
        w, out = attend_one(Q, K, V, query, t, causal)
        _draw(axes[0, c], axes[1, c], V, words, query, w, out, t, causal, compact=True)
        if c:
            axes[1, c].set_yticklabels([])
        axes[1, c].set_title("values and output", fontsize=9)
    return fig



def attention_explorer(Q, K, V, words: Sequence[str], query: int = 0, temperature: float = 1.0,
                       causal: bool = False):
    """An explorer: pick the query word, step the temperature, switch a causal mask on and off.

    Its frames are pre-rendered when the notebook runs, for every query word, the temperatures
    0.1, 0.3, 1, 3 and 10 and the mask off and on, so the knobs work in the static book with no
    kernel (see :mod:`attnlib.viz.frames`). In a live kernel a folded "any value" slider
    recomputes the picture for any temperature between 0.03 and 30.

    Parameters
    ----------
    Q, K, V : array_like, shapes (L, d_k), (L, d_k), (L, d_v)
        Queries, keys and values of the tokens (self-attention).
    words : sequence of str, length L
        The tokens, for the labels and the query menu.
    query : int
        Index of the token selected at first.
    temperature : float
        Initial temperature; it joins the pre-rendered ones if it is not among them.
    causal : bool
        Initial state of the causal mask.

    Returns
    -------
    ipywidgets.VBox
        Display it (make it the last expression of a cell).
    """
    import ipywidgets as widgets

    Q, K, V, words = _check(Q, K, V, words)
    query = check_index(query, len(words), "query", "tokens")
    check_real(temperature, "temperature", positive=True)
    temps = sorted({0.1, 0.3, 1.0, 3.0, 10.0, float(temperature)})
    knobs = [Knob("query", list(zip(words, range(len(words)))), "query word", style="toggle",
                  value=int(query)),
             Knob("temperature", temps, "temperature T", value=float(temperature)),
             Knob("causal", [("off", False), ("on", True)], "causal mask", style="toggle",
                  value=bool(causal))]
    if len(words) * len(temps) * 2 > MAX_FRAMES:  # long sentences: fewer temperatures
        temps = sorted({0.1, 1.0, 10.0, float(temperature)})
        knobs[1] = Knob("temperature", temps, "temperature T", value=float(temperature))
    free = widgets.FloatLogSlider(value=float(temperature), base=10, min=-1.5, max=1.5, step=0.05,
                                  description="any temperature", readout_format=".2f",
                                  style={"description_width": "initial"},
                                  layout=widgets.Layout(width="340px"))

    def render(query, temperature, causal, any_temperature=None):
        t = temperature if any_temperature is None else any_temperature
        return explorer_frame(Q, K, V, words, query, t, causal)

    return frame_explorer(render, knobs, free=[FreeKnob("any_temperature", free)], dpi=75,
                          note="T = 1 is standard scaled dot-product attention; small T gives a "
                               "near one-hot lookup, large T a plain average of the values.")
