r"""Figures for the masking chapter: the shapes of batched attention, and a mask explorer.

The explorer attends within a small batch of sequences of unequal lengths, padded to the longest.
Its knobs (pre-rendered frames, so they work in the static book) are the lengths, the causal mask, whether padded *query* rows are masked too, and the
batch element to show. Each frame draws the combined mask of that element and the weights it gives:

.. math:: M_{bij} = [\,j < n_b\,] \wedge [\,j \le i\,]\ (\text{if causal}) \wedge [\,i < n_b\,]\ (\text{if queries are masked})

:func:`mask_snapshots` draws a few settings side by side for the static book.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from attnlib.numpy import causal_mask, combine_masks, key_padding_mask, padding_mask, scaled_dot_product_attention
from attnlib.viz.frames import FreeKnob, Knob, frame_explorer
from attnlib.viz.heatmap import attention_heatmap

_MAX_LEN = 8
_D_K = 4


def _box(ax, x, y, w, h, depth, colour, label, dims):
    """A stack of ``depth`` offset rectangles (a batch of matrices) with a label and its shape."""
    for b in range(depth - 1, -1, -1):
        ax.add_patch(Rectangle((x + 0.18 * b, y + 0.18 * b), w, h, facecolor=colour,
                               edgecolor="0.25", linewidth=1.0, alpha=1.0 if b == 0 else 0.55))
    ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", fontsize=12)
    ax.text(x + w / 2, y - 0.35, dims, ha="center", va="top", fontsize=9, color="0.2")


def attention_shapes_figure(B: int = 3, L_q: int = 4, L_k: int = 6, d_k: int = 3, d_v: int = 2):
    """Diagram of batched scaled dot-product attention: every array drawn to scale, with its shape.

    Queries (B, L_q, d_k) times transposed keys (B, d_k, L_k) give scores (B, L_q, L_k); a mask
    broadcastable to that shape blocks some of them; the softmax over the last axis and the values
    (B, L_k, d_v) give the output (B, L_q, d_v). Each batch element is one sheet of the stack.

    Parameters
    ----------
    B, L_q, L_k, d_k, d_v : int
        The sizes to draw (small ones read best).

    Returns
    -------
    matplotlib.figure.Figure
    """
    s = 0.42  # drawing units per element
    fig, ax = plt.subplots(figsize=(9.0, 2.9), layout="constrained")
    x = 0.0
    items = [("Q", d_k, L_q, "#c6dbef", "(B, L_q, d_k)"), ("@", 0, 0, None, ""),
             ("Kᵀ", L_k, d_k, "#fdd0a2", "(B, d_k, L_k)"), ("→", 0, 0, None, ""),
             ("scores\n+ mask", L_k, L_q, "#dadaeb", "(B, L_q, L_k)"), ("softmax →", 0, 0, None, ""),
             ("A", L_k, L_q, "#c7e9c0", "(B, L_q, L_k)"), ("@", 0, 0, None, ""),
             ("V", d_v, L_k, "#fcbba1", "(B, L_k, d_v)"), ("=", 0, 0, None, ""),
             ("out", d_v, L_q, "#c6dbef", "(B, L_q, d_v)")]
    for label, w, h, colour, dims in items:
        if colour is None:
            gap = 0.7 if len(label) < 3 else 1.7
            ax.text(x + gap / 2, 1.8, label, ha="center", va="center", fontsize=12)
            x += gap
            continue
        _box(ax, x, 1.8 - h * s / 2, w * s, h * s, B, colour, label, dims)
        x += w * s + 0.18 * B + 0.25
    ax.set_xlim(-0.3, x + 0.2)
    ax.set_ylim(0.0, 3.7)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"Batched attention with B = {B} sheets, L_q = {L_q}, L_k = {L_k}, "
                 f"d_k = {d_k}, d_v = {d_v}", fontsize=10)
    return fig


def explorer_batch(lengths: Sequence[int], seed: int = 0):
    """The explorer's batch: token labels and seeded queries, keys and values, padded.

    Each token's vectors depend only on its batch row and position (not on the padded length),
    so changing one sequence's length or the padding changes nothing else.

    Parameters
    ----------
    lengths : sequence of int
        Length of each sequence, each between 0 and 8.
    seed : int
        Seed of the vectors.

    Returns
    -------
    labels : list of list of str
        ``labels[b]`` has ``max(lengths)`` entries, ``"pad"`` on padding.
    q, k, v : numpy.ndarray, shapes (B, L, 4), (B, L, 4), (B, L, 4)
        With ``L = max(lengths)``; padded positions hold (irrelevant) random numbers too.
    """
    lengths = [int(n) for n in lengths]
    if any(not 0 <= n <= _MAX_LEN for n in lengths):
        raise ValueError(f"lengths must lie in [0, {_MAX_LEN}], got {lengths}")
    L = max(lengths, default=0)
    rng = np.random.default_rng(seed)
    full = rng.normal(scale=1.2, size=(3, len(lengths), _MAX_LEN, _D_K))
    q, k, v = (a[:, :L] for a in full)
    labels = [[f"t{i + 1}" if i < n else "pad" for i in range(L)] for n in lengths]
    return labels, q, k, v


def explorer_mask(lengths: Sequence[int], causal: bool = True, mask_queries: bool = False):
    """The combined mask the explorer uses, shape (B, L, L) with ``L = max(lengths)``.

    Parameters
    ----------
    lengths : sequence of int
    causal : bool
        AND a causal mask.
    mask_queries : bool
        AND a query padding mask too (padded query rows then allow no key at all).

    Returns
    -------
    numpy.ndarray of bool, shape (B, L, L)
    """
    lengths = np.asarray(lengths, dtype=int)
    L = int(lengths.max(initial=0))
    return combine_masks(key_padding_mask(lengths, L, L),
                         causal_mask(L) if causal else None,
                         padding_mask(lengths, L)[:, :, None] if mask_queries else None)


def _draw(ax_m, ax_w, lengths, causal, mask_queries, element, compact=False):
    labels, q, k, v = explorer_batch(lengths)
    mask = explorer_mask(lengths, causal, mask_queries)
    _, w = scaled_dot_product_attention(q, k, v, mask=mask)
    words = labels[element]
    m = mask[element]
    ax_m.imshow(m, cmap="Greys", vmin=-0.3, vmax=1.3, aspect="auto")
    for (i, j), allowed in np.ndenumerate(m):
        ax_m.text(j, i, "T" if allowed else "·", ha="center", va="center", fontsize=8,
                  color="white" if allowed else "0.45")
    ax_m.set_xticks(range(len(words)), words, fontsize=8)
    ax_m.set_yticks(range(len(words)), words, fontsize=8)
    ax_m.xaxis.tick_top()
    ax_m.tick_params(length=0)
    what = " & ".join(["keys"] + (["causal"] if causal else []) + (["queries"] if mask_queries else []))
    ax_m.set_title(f"mask of element {element} (lengths {list(lengths)})\n{what}", fontsize=9)
    attention_heatmap(w[element], words, ax=ax_w, mask=m, colorbar=False,
                      annotate=not compact or len(words) <= 6, decimals=2)
    ax_w.set_title("weights (hatched = blocked)", fontsize=9)
    for t in ax_w.get_xticklabels() + ax_w.get_yticklabels():
        t.set_fontsize(8)
    if compact:
        ax_w.set_xlabel("")
        ax_w.set_ylabel("")


def mask_frame(lengths: Sequence[int], causal: bool = True, mask_queries: bool = False,
               element: int = 0, figsize=(8.0, 3.6)) -> Figure:
    """One frame of the explorer: the combined mask of one batch element and its weights.

    The figure is not registered with pyplot.

    Parameters
    ----------
    lengths : sequence of int
        Length of each sequence in the batch (0 to 8).
    causal : bool
        AND a causal mask.
    mask_queries : bool
        Mask padded query rows too.
    element : int
        Batch element to draw.
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not 0 <= element < len(lengths):
        raise ValueError(f"element must lie in [0, {len(lengths)}), got {element}")
    fig = Figure(figsize=figsize, layout="constrained")
    ax_m, ax_w = fig.subplots(1, 2)
    if max(lengths) == 0:
        ax_m.set_title("every sequence is empty")
        ax_m.axis("off"), ax_w.axis("off")
        return fig
    _draw(ax_m, ax_w, lengths, causal, mask_queries, element)
    return fig


def mask_snapshots(settings: Sequence[dict]):
    """The explorer's key settings side by side, one column per setting (mask above, weights below).

    Parameters
    ----------
    settings : sequence of dict
        Keyword arguments of :func:`mask_frame` (``lengths``, ``causal``, ``mask_queries``,
        ``element``), one dict per column.

    Returns
    -------
    matplotlib.figure.Figure
        A pyplot figure.
    """
    n = len(settings)
    fig, axes = plt.subplots(2, n, figsize=(2.9 * n, 5.6), layout="constrained", squeeze=False)
    for c, s in enumerate(settings):
        _draw(axes[0, c], axes[1, c], s["lengths"], s.get("causal", True),
              s.get("mask_queries", False), s.get("element", 0), compact=True)
    return fig



# The batches the mask explorer offers in the book besides the caller's (the first that differs).
MASK_BATCHES = ((2, 8, 4), (5, 3, 7))


def mask_explorer(lengths: Sequence[int] = (5, 3, 7), causal: bool = True,
                  mask_queries: bool = False, element: int = 1):
    """An explorer of padding and causal masks on a batch of three sequences.

    A menu picks the batch's lengths (``lengths`` or the first other batch of :data:`MASK_BATCHES`; the
    batch is padded to the longest), toggles switch the causal mask and the query padding mask on
    and off, and a menu picks the batch element whose mask and weights are drawn. The frames are
    pre-rendered when the notebook runs, so the knobs work in the static book with no kernel (see
    :mod:`attnlib.viz.frames`); in a live kernel folded "any value" sliders set each length (0 to 8).

    Parameters
    ----------
    lengths : sequence of int, length 3
        Initial lengths.
    causal : bool
        Initial state of the causal mask.
    mask_queries : bool
        Initial state of the query mask.
    element : int
        Batch element shown at first.

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets

    if len(lengths) != 3:
        raise ValueError(f"the explorer shows a batch of 3 sequences, got lengths {list(lengths)}")
    lengths = tuple(int(n) for n in lengths)
    if not all(0 <= n <= _MAX_LEN for n in lengths):
        raise ValueError(f"lengths must lie in [0, {_MAX_LEN}], got {list(lengths)}")
    if not 0 <= int(element) < 3:
        raise ValueError(f"element must lie in [0, 3), got {element}")
    batches = [lengths] + [b for b in MASK_BATCHES if b != lengths][:1]
    style = {"description_width": "initial"}
    free = [FreeKnob(f"n{b}", widgets.IntSlider(value=n, min=0, max=_MAX_LEN, description=f"length of {b}",
                                                style=style, layout=widgets.Layout(width="230px")))
            for b, n in enumerate(lengths)]

    def render(batch, causal, mask_queries, element, n0=None, n1=None, n2=None):
        if n0 is not None:
            batch = (n0, n1, n2)
        return mask_frame(batch, causal, mask_queries, element)

    knobs = [Knob("batch", [(", ".join(map(str, b)), b) for b in batches], "lengths", style="dropdown"),
             Knob("causal", [("off", False), ("on", True)], "causal", style="toggle", value=bool(causal)),
             Knob("mask_queries", [("off", False), ("on", True)], "mask padded queries", style="toggle",
                  value=bool(mask_queries)),
             Knob("element", [0, 1, 2], "batch element", style="toggle", value=int(element))]
    return frame_explorer(render, knobs, free=free, dpi=75,
                          note="Dark cells (T) may attend. Padded keys never get weight; with "
                               "'mask padded queries', padded rows allow no key and give all-zero weights.")
