"""Attention weights as a heatmap: one row per query, one column per key, tokens as labels."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np


def attention_heatmap(weights, keys: Sequence[str], queries: Sequence[str] | None = None, *,
                      mask=None, ax=None, title: str | None = None, annotate: bool = True,
                      decimals: int = 2, cmap: str = "Blues", colorbar: bool = True):
    """Draw a matrix of attention weights with token labels and (optionally) the numbers.

    Parameters
    ----------
    weights : array_like, shape (L_q, L_k)
        The weights of one head for one example; each row normally sums to one.
    keys : sequence of str, length L_k
        Labels of the columns (the tokens attended to).
    queries : sequence of str, length L_q, optional
        Labels of the rows (the tokens attending); defaults to ``keys`` (self-attention).
    mask : array_like of bool, shape (L_q, L_k), optional
        True = may attend. Masked cells are drawn hatched in grey instead of coloured.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure of modest size is made when omitted.
    title : str, optional
        Axes title.
    annotate : bool
        Write each weight in its cell.
    decimals : int
        Decimals of the annotations.
    cmap : str
        Matplotlib colour map; the colour scale runs from 0 to 1.
    colorbar : bool
        Add a colour bar.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the heatmap.

    Raises
    ------
    ValueError
        When ``weights`` is not 2-D or the labels or mask do not match its shape.
    """
    w = np.asarray(weights, dtype=float)
    queries = list(keys) if queries is None else list(queries)
    keys = list(keys)
    if w.ndim != 2:
        raise ValueError(f"weights must have shape (L_q, L_k), got shape {w.shape}")
    if w.shape != (len(queries), len(keys)):
        raise ValueError(f"weights have shape {w.shape} but there are {len(queries)} query labels "
                         f"and {len(keys)} key labels")
    if mask is not None:
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), w.shape)
    if ax is None:
        L_q, L_k = w.shape
        _, ax = plt.subplots(figsize=(1.0 + 0.75 * L_k + (0.8 if colorbar else 0.0),
                                      0.6 + 0.6 * L_q), layout="constrained")
    fig = ax.figure
    shown = w if mask is None else np.ma.masked_where(~mask, w)
    image = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    if mask is not None and not mask.all():
        # Hatch the masked cells so "not allowed" reads differently from "weight 0".
        for i, j in zip(*np.nonzero(~mask)):
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="0.93",
                                       edgecolor="0.75", hatch="///", linewidth=0))
    ax.set_xticks(range(len(keys)), keys)
    ax.set_yticks(range(len(queries)), queries)
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    ax.set_xlabel("key (attended to)")
    ax.xaxis.set_label_position("top")
    ax.set_ylabel("query (attending)")
    for spine in ax.spines.values():
        spine.set_visible(False)
    if annotate:
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                if mask is not None and not mask[i, j]:
                    continue
                ax.text(j, i, f"{w[i, j]:.{decimals}f}", ha="center", va="center", fontsize=9,
                        color="white" if w[i, j] > 0.6 else "black")
    if title:
        ax.set_title(title, fontsize=10)
    if colorbar:
        fig.colorbar(image, ax=ax, shrink=0.85, label="weight")
    return fig
