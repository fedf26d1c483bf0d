"""How far apart two tokens are for a recurrent network and for self-attention: a diagram."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch

from attnlib.checks import check_index, check_texts

_HIGHLIGHT = "#d1495b"
_FAINT = "0.82"


def _arrow(ax, a, b, colour, width, rad=0.0, z=1, head=True):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>" if head else "-", mutation_scale=11,
                                 color=colour, linewidth=width, connectionstyle=f"arc3,rad={rad}",
                                 shrinkA=0, shrinkB=0, zorder=z))


def path_length_figure(words: Sequence[str], source: int, target: int):
    """Two panels: the path from ``words[source]`` to ``words[target]`` in an RNN and in self-attention.

    Top: a recurrent network reads left to right; information from the source reaches the target
    only through every hidden state in between (``target - source`` steps, each waiting for the
    previous one). Bottom: one self-attention layer connects every pair of positions directly
    (grey arcs, which carry information both ways), so the path has length one and all positions
    are computed at once.

    Parameters
    ----------
    words : sequence of str
        The sentence, one token per position.
    source, target : int
        Positions whose connection is highlighted, ``source < target``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    words = check_texts(words, "words")
    n = len(words)
    source = check_index(source, n, "source", "words")
    target = check_index(target, n, "target", "words")
    if not 0 <= source < target < n:
        raise ValueError(f"need 0 <= source < target < {n}, got source={source}, target={target}")
    fig, (ax_r, ax_a) = plt.subplots(2, 1, figsize=(min(0.85 * n + 0.6, 7.5), 4.2),
                                     layout="constrained")
    steps = target - source

    # Recurrent network: words below, hidden states above, a chain of arrows between states.
    for i, w in enumerate(words):
        on_path = source <= i <= target
        ax_r.text(i, 0, w, ha="center", va="center", fontsize=10,
                  fontweight="bold" if i in (source, target) else "normal")
        ax_r.add_patch(plt.Circle((i, 1), 0.22, facecolor="#fbe3e6" if on_path else "white",
                                  edgecolor=_HIGHLIGHT if on_path else "0.5", zorder=2))
        ax_r.text(i, 1, f"$h_{{{i + 1}}}$", ha="center", va="center", fontsize=9, zorder=3)
        _arrow(ax_r, (i, 0.2), (i, 0.76), _FAINT, 1.0)
        if i:
            hot = source < i <= target
            _arrow(ax_r, (i - 0.76, 1), (i - 0.24, 1), _HIGHLIGHT if hot else "0.6",
                   2.0 if hot else 1.0)
    ax_r.set_title(f"Recurrent network: '{words[source]}' reaches '{words[target]}' after "
                   f"{steps} steps, each waiting for the one before", fontsize=10)

    # Self-attention: every position looks at every other one directly, all at once.
    for i, w in enumerate(words):
        ax_a.text(i, 0, w, ha="center", va="center", fontsize=10,
                  fontweight="bold" if i in (source, target) else "normal")
    for i in range(n):
        for j in range(i + 1, n):
            if (i, j) != (source, target):
                _arrow(ax_a, (i, 0.25), (j, 0.25), _FAINT, 0.8, rad=-0.35, z=1, head=False)
    _arrow(ax_a, (source, 0.25), (target, 0.25), _HIGHLIGHT, 2.2, rad=-0.35, z=3)
    ax_a.set_title(f"Self-attention: every pair is linked directly, so '{words[source]}' reaches "
                   f"'{words[target]}' in one step;\nall {n} positions are computed in one matrix product",
                   fontsize=10)

    for ax, top in ((ax_r, 1.4), (ax_a, 0.35 + 0.18 * (n - 1))):
        ax.set_xlim(-0.6, n - 0.4)
        ax.set_ylim(-0.35, top)
        ax.set_aspect("equal")
        ax.axis("off")
    return fig
