"""Alignment matrices of trained seq2seq models: source characters across, output characters down.

The records come from :func:`attnlib.torch.alignments` (one dict per example with ``source``,
``target``, ``prediction``, ``correct`` and ``weights`` of shape (T_out, L_src)).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from attnlib.viz.frames import FreeKnob, Knob, frame_explorer
from attnlib.viz.heatmap import attention_heatmap

__all__ = ["draw_alignment", "alignment_figure", "alignment_comparison", "alignment_frame",
           "alignment_explorer"]


def _out_labels(record) -> list:
    labels = list(record["prediction"]) + ["<eos>"]
    return labels[:record["weights"].shape[0]]


def draw_alignment(ax, record, title: str | None = None, fontsize: float = 7) -> None:
    """Draw one record's alignment matrix on ``ax``, the prediction (and ✓ or ✗) under it.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    record : dict
        From :func:`attnlib.torch.alignments`; ``weights`` of shape (T_out, L_src).
    title : str, optional
        Default: the source string.
    fontsize : float
        Of the tick labels.
    """
    w = record["weights"]
    src = [c if c != " " else "␣" for c in record["source"]]
    attention_heatmap(w, src, _out_labels(record), ax=ax, annotate=False, colorbar=False,
                      title=title if title is not None else record["source"])
    verdict = "✓" if record["correct"] else f"✗\nwant   {record['target']}"
    ax.set_xlabel(f"output {record['prediction']} {verdict}", fontsize=8, family="monospace")
    ax.xaxis.set_label_position("bottom")
    ax.set_ylabel("")
    ax.tick_params(labelsize=fontsize)


def alignment_figure(records: Sequence[dict], ncols: int = 3, size: float = 3.0):
    """A grid of alignment matrices, one per record.

    Parameters
    ----------
    records : sequence of dict
        From :func:`attnlib.torch.alignments`.
    ncols : int
    size : float
        Width of one panel in inches.

    Returns
    -------
    matplotlib.figure.Figure
        A pyplot figure.
    """
    if not records:
        raise ValueError("no records to draw")
    nrows = -(-len(records) // ncols)
    ncols = min(ncols, len(records))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, 0.95 * size * nrows),
                             layout="constrained", squeeze=False)
    for ax in axes.flat[len(records):]:
        ax.axis("off")
    for ax, rec in zip(axes.flat, records):
        draw_alignment(ax, rec)
    return fig


def alignment_comparison(records: Mapping[str, dict], ncols: int | None = None, size: float = 2.6):
    """The same example under several models, side by side.

    Parameters
    ----------
    records : mapping of str to dict
        Model name -> that model's record of one example (same source in every record).
    ncols : int, optional
        Default: all in one row.
    size : float
        Width of one panel in inches.

    Returns
    -------
    matplotlib.figure.Figure
        A pyplot figure.
    """
    if not records:
        raise ValueError("no records to draw")
    ncols = ncols or len(records)
    nrows = -(-len(records) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, 1.05 * size * nrows),
                             layout="constrained", squeeze=False)
    for ax in axes.flat[len(records):]:
        ax.axis("off")
    for ax, (name, rec) in zip(axes.flat, records.items()):
        draw_alignment(ax, rec, title=name, fontsize=6)
    return fig


def alignment_frame(record: dict, figsize=(5.0, 3.6)) -> Figure:
    """One record's alignment matrix as a figure not registered with pyplot (for explorers).

    Parameters
    ----------
    record : dict
        From :func:`attnlib.torch.alignments`.
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    draw_alignment(ax, record, title=f"{record['source']}   ({record['kind']})", fontsize=8)
    return fig



def alignment_explorer(records: Mapping[str, Sequence[dict]] | Sequence[dict], index: int = 0):
    """An explorer: pick an example (and a model), see its alignment and prediction.

    The book's frames are pre-rendered when the notebook runs, so the menus work in the static
    book with no kernel (see :mod:`attnlib.viz.frames`). To keep them few, the menu offers at
    most ``24 // models`` examples: ``index``, then the examples some model gets wrong, then the
    first ones; in a live kernel a folded "any value" menu reaches every example.

    Parameters
    ----------
    records : sequence of dict, or mapping of str to sequence of dict
        From :func:`attnlib.torch.alignments`; a mapping (model name -> records of the same
        examples) adds a model selector.
    index : int
        The example shown first.

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets

    by_model = dict(records) if isinstance(records, Mapping) else {"model": list(records)}
    first = next(iter(by_model.values()))
    if not first:
        raise ValueError("no records to explore")
    if not 0 <= int(index) < len(first):
        raise ValueError(f"index must lie in [0, {len(first)}), got {index!r}")
    room = max(2, 24 // len(by_model))
    wrong = [i for i in range(len(first)) if any(not recs[i].get("correct", True) for recs in by_model.values())]
    chosen = list(dict.fromkeys([int(index)] + wrong + list(range(len(first)))))[:room]
    label = lambda i: f"{i}: {first[i]['source']}"  # noqa: E731
    free = widgets.Dropdown(options=[(label(i), i) for i in range(len(first))], value=int(index),
                            description="any example", style={"description_width": "initial"},
                            layout={"width": "380px"})

    def render(i, name=next(iter(by_model)), any_i=None):
        return alignment_frame(by_model[name][i if any_i is None else any_i])

    knobs = [Knob("i", [(label(i), i) for i in sorted(chosen)], "example", style="dropdown", value=int(index))]
    if len(by_model) > 1:
        knobs.append(Knob("name", list(by_model), "model", style="toggle"))
    return frame_explorer(render, knobs, free=[FreeKnob("any_i", free)], dpi=75,
                          note="Rows: the characters the model wrote (greedy decoding), columns: the "
                               "source characters (␣ is a space). Dark = large weight.")
