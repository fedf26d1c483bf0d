"""Figures for the multi-head chapter: one heatmap per head, an explorer of two hand-built heads,
and the cost of attention on log-log axes."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from attnlib.numpy import causal_mask, loglog_slope, multi_head_attention, two_head_example
from attnlib.viz.frames import FreeKnob, Knob, frame_explorer
from attnlib.viz.heatmap import attention_heatmap


def head_heatmaps(weights, keys: Sequence[str], queries: Sequence[str] | None = None, *,
                  mask=None, titles: Sequence[str] | None = None, fig=None):
    """One heatmap per head, side by side.

    Parameters
    ----------
    weights : array_like, shape (H, L_q, L_k)
        The weights of one batch element.
    keys : sequence of str, length L_k
    queries : sequence of str, length L_q, optional
        Defaults to ``keys`` (self-attention).
    mask : array_like of bool, broadcastable to (L_q, L_k), optional
        Masked cells are hatched.
    titles : sequence of str, optional
        One per head; "head 0", "head 1", ... by default.
    fig : matplotlib.figure.Figure, optional
        Draw into this figure instead of a new pyplot figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 3:
        raise ValueError(f"weights must have shape (H, L_q, L_k), got shape {w.shape}")
    H, L_q, L_k = w.shape
    titles = list(titles) if titles is not None else [f"head {h}" for h in range(H)]
    size = (0.9 + 0.5 * L_k) * H + 0.3, 0.9 + 0.45 * L_q
    if fig is None:
        fig = plt.figure(figsize=size, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, H))
    m = None if mask is None else np.broadcast_to(np.asarray(mask, bool), (L_q, L_k))
    for h, ax in enumerate(axes):
        attention_heatmap(w[h], keys, queries, ax=ax, mask=m, colorbar=False,
                          annotate=L_k <= 8, decimals=1, title=titles[h])
        if h:
            ax.set_ylabel("")
    return fig


def _two_head_weights(tokens, sharpness, causal):
    x, Ws = two_head_example(tokens, sharpness)
    mask = causal_mask(len(tokens)) if causal else None
    _, w = multi_head_attention(x, x, *Ws, 2, mask=mask)
    return w, mask


TITLES = ("head 0: previous token", "head 1: same word")


def two_head_frame(tokens: Sequence[str], sharpness: float = 20.0, causal: bool = True) -> Figure:
    """The weights of both heads of :func:`attnlib.numpy.two_head_example` (not a pyplot figure).

    Parameters
    ----------
    tokens : sequence of str
    sharpness : float
    causal : bool
        Apply a causal mask.

    Returns
    -------
    matplotlib.figure.Figure
    """
    w, mask = _two_head_weights(tokens, sharpness, causal)
    L = len(tokens)
    fig = Figure(figsize=(min(1.8 + 1.0 * L, 10.0), 0.9 + 0.42 * L), layout="constrained")
    return head_heatmaps(w, list(tokens), mask=mask, titles=TITLES, fig=fig)



def two_head_explorer(sentence: str = "the cat saw the dog saw the cat", sharpness: float = 20.0,
                      causal: bool = True):
    """An explorer of the two hand-built heads: pick a sentence, step the sharpness, switch the mask.

    Its frames are pre-rendered when the notebook runs, for ``sentence`` and one more (whose
    words all repeat), the sharpnesses 1, 3, 10 and 100 (and ``sharpness``) and
    the causal mask off and on, so the knobs work in the static book with no kernel (see
    :mod:`attnlib.viz.frames`). In a live kernel a folded "any value" part takes any sentence
    and any sharpness from 1 to 100.

    Parameters
    ----------
    sentence : str
        Initial sentence (words separated by spaces, at most 15).
    sharpness : float
        Initial sharpness.
    causal : bool
        Initial state of the causal mask.

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets

    tokens = sentence.split()[:15]
    if not tokens:
        raise ValueError("the sentence needs at least one word")
    _two_head_weights(tokens, float(sharpness), bool(causal))  # a bad setting raises here, not in a frame
    style = {"description_width": "initial"}
    sentences = [" ".join(tokens)] + [s for s in ("a b a b a b a b", "a cat sat on my mat")
                                      if s != " ".join(tokens)][:1]
    sharps = sorted({1.0, 3.0, 10.0, 100.0, float(sharpness)})
    free = [FreeKnob("any_sentence", widgets.Text(value=sentence, description="any sentence", style=style,
                                                  continuous_update=False, layout=widgets.Layout(width="420px"))),
            FreeKnob("any_sharpness", widgets.FloatLogSlider(value=float(sharpness), base=10, min=0, max=2,
                                                             step=0.05, description="any sharpness",
                                                             style=style, readout_format=".1f"))]

    def render(sentence, sharpness, causal, any_sentence=None, any_sharpness=None):
        if any_sentence is not None:
            sentence, sharpness = (any_sentence.strip() or sentence), any_sharpness
        return two_head_frame(sentence.split()[:15], sharpness, causal)

    knobs = [Knob("sentence", sentences, "sentence", style="dropdown"),
             Knob("sharpness", sharps, "sharpness", value=float(sharpness)),
             Knob("causal", [("off", False), ("on", True)], "causal", style="toggle", value=bool(causal))]
    return frame_explorer(render, knobs, free=free, dpi=75,
                          note="Head 0 looks one position back; head 1 looks for the same word. "
                               "A repeated word makes head 1 split its weight.")


def cost_figure(cost: dict, fit_from: int = 0):
    """Time and weights memory of attention against sequence length, on log-log axes.

    Parameters
    ----------
    cost : dict
        As returned by :func:`attnlib.numpy.attention_cost` (``L``, ``seconds``, ``weights_bytes``).
    fit_from : int
        Index of the first length used for the fitted slopes (small L is dominated by overheads).

    Returns
    -------
    matplotlib.figure.Figure
    """
    L = np.asarray(cost["L"], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.2), layout="constrained")
    for ax, key, label, unit in ((axes[0], "seconds", "time", 1e3),
                                 (axes[1], "weights_bytes", "size of the weights", 1 / 2**20)):
        y = np.asarray(cost[key], dtype=float) * unit
        slope = loglog_slope(L[fit_from:], y[fit_from:])
        ax.loglog(L, y, "o-", color="#1f5fa8", label=f"measured (slope {slope:.2f})")
        ref = y[-1] * (L / L[-1]) ** 2
        ax.loglog(L, ref, "--", color="0.55", label="∝ L² (slope 2)")
        ax.set_xticks(L, [str(int(n)) for n in L])
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xlabel("sequence length L")
        ax.set_ylabel("milliseconds" if key == "seconds" else "MiB")
        ax.set_title(label, fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    return fig


def cost_ratio_figure(cost: dict):
    r"""The weights' memory against L, and the exponent of time measured as interleaved ratios.

    Left: the size of the weights array on log-log axes, with the line :math:`\propto L^2`.
    Right: for each pair of consecutive lengths, the local exponent
    :math:`\log(t_2/t_1)/\log(L_2/L_1)` from the median time ratio (error bars: the interquartile
    range of the ratio), against the exponents 1 (linear) and 2 (quadratic). No absolute time is
    drawn.

    Parameters
    ----------
    cost : dict
        As returned by :func:`attnlib.experiments.multi_head.doubling_ratios` (``L``,
        ``weights_bytes``, ``ratio``, ``q25``, ``q75``, ``exponent``, ``rounds``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [k for k in ("L", "weights_bytes", "ratio", "q25", "q75", "exponent") if k not in cost]
    if missing:
        raise ValueError(f"cost lacks {missing}: pass the dict of doubling_ratios")
    L = np.asarray(cost["L"], dtype=float)
    fig, (a, b) = plt.subplots(1, 2, figsize=(8.0, 3.2), layout="constrained")
    mib = np.asarray(cost["weights_bytes"], dtype=float) / 2**20
    a.loglog(L, mib, "o-", color="#1f5fa8", label=f"measured (slope {loglog_slope(L, mib):.2f})")
    a.loglog(L, mib[-1] * (L / L[-1]) ** 2, "--", color="0.55", label="∝ L² (slope 2)")
    a.set_xticks(L, [str(int(n)) for n in L])
    a.xaxis.set_minor_formatter(plt.NullFormatter())
    a.set(xlabel="sequence length L", ylabel="MiB", title="size of the weights")
    a.legend(fontsize=8)
    a.grid(True, which="both", alpha=0.3)
    step = np.log(L[1:] / L[:-1])
    exp, lo, hi = (np.log(np.asarray(cost[k], dtype=float)) / step for k in ("ratio", "q25", "q75"))
    x = np.arange(len(exp))
    b.errorbar(x, exp, yerr=[exp - lo, hi - exp], fmt="o", color="#c4572a", capsize=3,
               label="measured (median, IQR)")
    b.axhline(2, color="0.3", linestyle="--", linewidth=1, label="2: time ∝ L²")
    b.axhline(1, color="0.6", linestyle=":", linewidth=1, label="1: time ∝ L")
    b.set_xticks(x, [f"{int(p)}→{int(q)}" for p, q in zip(L[:-1], L[1:])], fontsize=8)
    b.set(xlabel="lengths compared", ylabel="local exponent of time",
          title=f"time ratios, {cost.get('rounds', '?')} interleaved rounds each")
    b.set_ylim(0, max(3.0, float(np.nanmax(hi)) * 1.1))
    b.legend(fontsize=7)
    b.grid(True, alpha=0.3)
    return fig
