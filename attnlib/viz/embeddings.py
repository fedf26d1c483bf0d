"""Word embeddings as pictures: a 2-D map of words, and an explorer of nearest neighbours.

:func:`neighbour_explorer` lets a reader pick a word and an embedding table (ours, trained in the
chapter, or MiniLM's), from frames pre-rendered for the static book (in a live kernel, also how
many neighbours to list); :func:`neighbour_snapshots` draws the same bars for a few words side by
side.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from attnlib.numpy.embeddings import neighbour_table, pca_2d
from attnlib.viz.frames import FreeKnob, Knob, frame_explorer

_BAR = "#1f5fa8"


def embedding_map(embeddings, words: Sequence[str], groups: Mapping[str, Sequence[str]],
                  title: str = "", ax=None):
    """Scatter chosen words on the first two principal components of their embeddings.

    Parameters
    ----------
    embeddings : array_like, shape (V, d)
    words : sequence of str, length V
        The vocabulary (row ``i`` belongs to ``words[i]``).
    groups : mapping of str to sequence of str
        ``{group name: words}``; each group gets its own colour. Only these words are projected.
    title : str
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    index = {w: i for i, w in enumerate(words)}
    chosen = [(g, w) for g, ws in groups.items() for w in ws if w in index]
    if len(chosen) < 2:
        raise ValueError("need at least two of the groups' words in the vocabulary")
    points = pca_2d(np.asarray(embeddings)[[index[w] for _, w in chosen]])
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 4.4), layout="constrained")
    colours = dict(zip(groups, plt.get_cmap("tab10").colors))
    for g in groups:
        sel = [i for i, (gg, _) in enumerate(chosen) if gg == g]
        ax.scatter(points[sel, 0], points[sel, 1], s=22, color=colours[g], label=g)
    for (g, w), (x, y) in zip(chosen, points):
        ax.annotate(w, (x, y), xytext=(3, 2), textcoords="offset points", fontsize=8,
                    color=colours[g])
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.legend(fontsize=8, frameon=False, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def _bars(ax, word, pairs, table_name):
    names = [w for w, _ in pairs][::-1]
    sims = [s for _, s in pairs][::-1]
    ax.barh(range(len(pairs)), sims, color=_BAR, height=0.65)
    ax.set_yticks(range(len(pairs)), names, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.5, 1])
    ax.tick_params(axis="x", labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(f"'{word}' ({table_name})", fontsize=9)


def neighbour_snapshots(tables: Mapping[str, tuple], queries: Sequence[str], k: int = 6):
    """Nearest neighbours of a few words in several tables: one row per table, one column per word.

    Parameters
    ----------
    tables : mapping of str to tuple
        ``{name: (words, embeddings, allowed)}`` with ``words`` of length V, ``embeddings`` of
        shape (V, d) and ``allowed`` a bool array of shape (V,) or None (see
        :func:`attnlib.numpy.embeddings.nearest_neighbours`).
    queries : sequence of str
        Words present in every table.
    k : int
        Neighbours per word.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = plt.subplots(len(tables), len(queries), squeeze=False, layout="constrained",
                             figsize=(2.3 * len(queries), 0.28 * k * len(tables) + 0.6 * len(tables)))
    for r, (name, (words, E, allowed)) in enumerate(tables.items()):
        found = neighbour_table(words, E, queries, k, allowed)
        for c, q in enumerate(queries):
            _bars(axes[r, c], q, found[q], name)
            if r == len(tables) - 1:
                axes[r, c].set_xlabel("cosine", fontsize=8)
    return fig


def neighbour_explorer(tables: Mapping[str, tuple], queries: Sequence[str], k: int = 8):
    """An explorer: pick a word and a table, see the word's nearest neighbours in that table.

    The frames (every word in every table, ``k`` neighbours) are pre-rendered when the notebook
    runs, so the menus work in the static book with no kernel (see :mod:`attnlib.viz.frames`).
    In a live kernel a folded "any value" slider also sets how many neighbours to show (1 to 15).

    Parameters
    ----------
    tables : mapping of str to tuple
        As in :func:`neighbour_snapshots`.
    queries : sequence of str
        The words offered in the menu (present in every table).
    k : int
        Number of neighbours in the pre-rendered frames.

    Returns
    -------
    ipywidgets.VBox
        Display it (make it the last expression of a cell).
    """
    import ipywidgets as widgets

    free = widgets.IntSlider(value=int(k), min=1, max=15, description="neighbours",
                             continuous_update=False, layout=widgets.Layout(width="300px"))

    def render(word, table, count=None):
        count = int(k) if count is None else count
        words, E, allowed = tables[table]
        fig = Figure(figsize=(4.2, 0.3 * count + 0.8), layout="constrained")
        ax = fig.subplots()
        _bars(ax, word, neighbour_table(words, E, [word], count, allowed)[word], table)
        ax.set_xlabel("cosine similarity", fontsize=8)
        return fig

    knobs = [Knob("word", list(queries), "word", style="dropdown"),
             Knob("table", list(tables), "table", style="toggle")]
    return frame_explorer(render, knobs, free=[FreeKnob("count", free)], dpi=75)
