"""Figures and the explorer of the chapter "A real pretrained Transformer": all-MiniLM-L6-v2's attention.

The explorer only looks up attention computed once (:func:`attnlib.pretrained.attention_records`),
so it answers instantly and its pictures can be stored in the book.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from attnlib.checks import check_text
from attnlib.viz.frames import FreeKnob, Knob, frame_explorer

__all__ = ["head_grid_figure", "pronoun_layers_figure", "rollout_figure", "similarity_figure",
           "minilm_frame", "minilm_snapshots", "minilm_explorer", "winograd_heads_figure", "probe_layers_figure"]


def _token_index(tokens: Sequence[str], query) -> int:
    """Position of the token ``query`` in ``tokens`` (its first occurrence)."""
    tokens = list(tokens)
    check_text(query, "query")
    if query not in tokens:
        raise ValueError(f"query {query!r} is not one of the {len(tokens)} tokens {tokens}")
    return tokens.index(query)


def head_grid_figure(attentions, tokens: Sequence[str], query: str | None = None, size: float = 0.95):
    """All heads of all layers at once: a grid of small attention maps (rows layers, columns heads).

    Parameters
    ----------
    attentions : array_like, shape (num_layers, H, L, L)
    tokens : sequence of str, length L
    query : str, optional
        A token: draw only its row (its attention over the sentence) as bars in each cell.
    size : float
        Inches per cell.

    Returns
    -------
    matplotlib.figure.Figure
    """
    A = np.asarray(attentions, dtype=float)
    n_layers, H, L, _ = A.shape
    fig, axes = plt.subplots(n_layers, H, figsize=(size * H + 0.6, size * n_layers + 0.5),
                             layout="constrained", squeeze=False)
    q = _token_index(tokens, query) if query is not None else None
    for l in range(n_layers):
        for h in range(H):
            ax = axes[l, h]
            if q is None:
                ax.imshow(A[l, h], cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.bar(np.arange(L), A[l, h, q], color="#1f5fa8", width=0.9)
                ax.set_ylim(0, 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if l == 0:
                ax.set_title(f"head {h + 1}", fontsize=7)
            if h == 0:
                ax.set_ylabel(f"layer {l + 1}", fontsize=7)
    what = f"attention of '{query}' over the sentence" if q is not None else "attention maps (rows: queries)"
    fig.suptitle(f"all {n_layers * H} heads: {what}", fontsize=9)
    return fig


def pronoun_layers_figure(results: Mapping[str, dict], pronouns: Sequence[str], heads: Sequence[tuple] = ()):
    """Where each pronoun attends, layer by layer: the weight on each candidate referent.

    Parameters
    ----------
    results : mapping of str to dict
        Label -> the dict of :func:`attnlib.pretrained.pronoun_attention`.
    pronouns : sequence of str
        The pronoun of each result, for the titles.
    heads : sequence of (layer, head)
        0-based heads to draw as well (dashed), besides the mean over heads (solid).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = plt.subplots(1, len(results), figsize=(4.0 * len(results), 3.0), layout="constrained",
                             sharey=True, squeeze=False)
    colours = ["#c4572a", "#1f5fa8", "#2a8c4a", "#7a4cb0"]
    for ax, (label, r), pron in zip(axes[0], results.items(), pronouns):
        w = np.asarray(r["weights"], dtype=float)  # (layers, H, C)
        layers = np.arange(1, w.shape[0] + 1)
        for c, cand in enumerate(r["candidates"]):
            ax.plot(layers, w[:, :, c].mean(1), "o-", color=colours[c], label=f"→ {cand} (mean of heads)")
            for (l, h) in heads:
                ax.plot([l + 1], [w[l, h, c]], "s", color=colours[c], markersize=7, markerfacecolor="none",
                        label=f"→ {cand}, layer {l + 1} head {h + 1}")
        ax.set_xlabel("layer")
        ax.set_title(f"where '{pron}' attends: {label}", fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[0, 0].set_ylabel("attention weight")
    axes[0, -1].legend(fontsize=6)
    return fig


def rollout_figure(raw, rolled, tokens: Sequence[str], query: str):
    """One token's raw attention (mean of heads) and its rollout, layer by layer, as two heatmaps.

    Parameters
    ----------
    raw : array_like, shape (num_layers, H, L, L)
        Every layer's attention weights.
    rolled : array_like, shape (num_layers, L, L)
        :func:`attnlib.pretrained.attention_rollout` with ``all_layers=True``.
    tokens : sequence of str, length L
    query : str
        The token whose row is drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    q = _token_index(tokens, query)
    raw = np.asarray(raw, dtype=float).mean(1)[:, q]       # (layers, L)
    rolled = np.asarray(rolled, dtype=float)[:, q]          # (layers, L)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 2.9), layout="constrained", sharey=True)
    for ax, M, title in ((axes[0], raw, f"raw attention of '{query}' (mean of heads)"),
                         (axes[1], rolled, f"rollout: '{query}' at layer l, from the input tokens")):
        im = ax.imshow(M, cmap="Blues", vmin=0, aspect="auto")
        ax.set_xticks(range(len(tokens)), tokens, rotation=60, fontsize=7)
        ax.set_yticks(range(M.shape[0]), [f"layer {l + 1}" for l in range(M.shape[0])], fontsize=7)
        ax.set_title(title, fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def similarity_figure(embeddings, labels: Sequence[str]):
    """Cosine similarities of unit-length sentence embeddings, as an annotated heatmap.

    Parameters
    ----------
    embeddings : array_like, shape (N, E)
        Rows of unit length.
    labels : sequence of str, length N

    Returns
    -------
    matplotlib.figure.Figure
    """
    E = np.asarray(embeddings, dtype=float)
    S = E @ E.T
    n = len(labels)
    fig, ax = plt.subplots(figsize=(2.2 + 0.55 * n, 1.2 + 0.45 * n), layout="constrained")
    ax.imshow(S, cmap="RdBu_r", vmin=-1, vmax=1)
    short = [s if len(s) <= 38 else s[:36] + "…" for s in labels]
    ax.set_xticks(range(n), range(1, n + 1), fontsize=7)
    ax.set_yticks(range(n), [f"{i + 1}. {s}" for i, s in enumerate(short)], fontsize=7)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{S[i, j]:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if abs(S[i, j]) > 0.6 else "black")
    ax.set_title("cosine similarity of sentence embeddings", fontsize=9)
    return fig


def _draw(ax, record: dict, layer: int, head: int | None, fontsize: float = 7, note: str = "") -> None:
    A = np.asarray(record["attentions"], dtype=float)[layer]
    W = A.mean(0) if head is None else A[head]
    tokens = record["tokens"]
    ax.imshow(W, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(len(tokens)), tokens, rotation=70, fontsize=fontsize)
    ax.set_yticks(range(len(tokens)), tokens, fontsize=fontsize)
    ax.set_xlabel("key (attended to)", fontsize=fontsize)
    ax.set_ylabel("query", fontsize=fontsize)
    which = "mean of heads" if head is None else f"head {head + 1}"
    ax.set_title(f"layer {layer + 1}, {which}{note}", fontsize=fontsize + 1)


def minilm_frame(records: Mapping[str, dict], sentence: str, layer: int, head: int | None,
                 figsize=(4.6, 4.2)) -> Figure:
    """One picture of the explorer: the attention map of one head (or the mean of a layer's heads).

    Parameters
    ----------
    records : mapping
        From :func:`attnlib.pretrained.attention_records`.
    sentence : str
        A key of ``records``.
    layer : int
        0-based.
    head : int or None
        0-based; None for the mean of the layer's heads.
    figsize : tuple

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=figsize, layout="constrained")
    _draw(fig.add_subplot(), records[sentence], layer, head)
    return fig


def minilm_snapshots(records: Mapping[str, dict], settings: Sequence[tuple]):
    """The explorer's key settings side by side, for the static book.

    Parameters
    ----------
    records : mapping
        From :func:`attnlib.pretrained.attention_records`.
    settings : sequence of (sentence, layer, head)
        0-based layer and head (head None: mean of heads).

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = len(settings)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.7), layout="constrained", squeeze=False)
    for ax, (sentence, layer, head) in zip(axes[0], settings):
        words = sentence.split()
        note = "\n'... " + " ".join(words[-4:]) + "'" if len(words) > 4 else f"\n'{sentence}'"
        _draw(ax, records[sentence], layer, head, fontsize=6, note=note)
    return fig



def minilm_explorer(records: Mapping[str, dict], layer: int = 0, head: int | None = None):
    """An explorer: pick a sentence, a layer and a head (or the mean of the heads).

    The book's frames are pre-rendered when the notebook runs: every sentence, the first, the
    ``layer``-th and the last layer, the mean of the heads and ``head``, so the knobs work in the
    static book with no kernel (see :mod:`attnlib.viz.frames`). In a live kernel a folded "any
    value" part reaches every layer and head.

    Parameters
    ----------
    records : mapping
        From :func:`attnlib.pretrained.attention_records`.
    layer : int
        Initial layer, 0-based.
    head : int or None
        Initial head, 0-based (None: mean of heads).

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets

    first = next(iter(records.values()))["attentions"]
    n_layers, H = first.shape[:2]
    if not 0 <= int(layer) < n_layers or (head is not None and not 0 <= int(head) < H):
        raise ValueError(f"layer must lie in [0, {n_layers}) and head in [0, {H}) or be None, "
                         f"got {layer!r}, {head!r}")
    style = {"description_width": "initial"}
    sentences = list(records)[: max(1, 40 // 6)]
    layers = sorted({0, int(layer), n_layers - 1})
    heads = [("mean of heads", -1)] + ([(str(int(head) + 1), int(head))] if head is not None else
                                       [(str(h + 1), h) for h in (0,)])
    free = [FreeKnob("any_layer", widgets.IntSlider(value=layer + 1, min=1, max=n_layers,
                                                    description="any layer", style=style)),
            FreeKnob("any_head", widgets.Dropdown(options=[("mean of heads", -1)] + [(str(h + 1), h) for h in range(H)],
                                                  value=-1 if head is None else head, description="any head",
                                                  style=style, layout=widgets.Layout(width="200px")))]

    def render(sentence, layer, head, any_layer=None, any_head=None):
        if any_layer is not None:
            layer, head = any_layer - 1, any_head
        return minilm_frame(records, sentence, layer, None if head < 0 else head)

    knobs = [Knob("sentence", sentences, "sentence", style="dropdown"),
             Knob("layer", [(str(n + 1), n) for n in layers], "layer", value=int(layer)),
             Knob("head", heads, "head", style="toggle", value=-1 if head is None else int(head))]
    return frame_explorer(render, knobs, free=free, dpi=75,
                          note="Rows are queries, columns the tokens they attend to; each row sums to 1. "
                               "Many heads park their weight on [CLS]; a few follow the next or previous token.")


def winograd_heads_figure(report: Mapping, repeated: Mapping | None = None):
    """Every head's accuracy on the selection pairs against the held-out pairs; the chosen heads marked.

    Parameters
    ----------
    report : mapping
        From :func:`attnlib.experiments.pretrained_encoder.winograd_report`.
    repeated : mapping, optional
        From :func:`attnlib.experiments.pretrained_encoder.repeated_selection`: a second panel shows,
        over many random splits, the best head's accuracy on its own selection pairs and on the
        held-out ones.

    Returns
    -------
    matplotlib.figure.Figure
    """
    sel = np.asarray(report["selection_accuracy"], dtype=float)
    held = np.asarray(report["heldout_accuracy"], dtype=float)
    n = 1 if repeated is None else 2
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 3.6), layout="constrained", squeeze=False)
    ax = axes[0, 0]
    rng = np.random.default_rng(0)  # a little jitter, so that equal accuracies do not hide each other
    jit = lambda a: a + rng.uniform(-0.006, 0.006, a.shape)  # noqa: E731
    ax.scatter(jit(sel.ravel()), jit(held.ravel()), s=14, color="#888888", alpha=0.7, label="one head")
    for i, h in enumerate(report["heads"]):
        ax.scatter([h["selection"]], [h["heldout"]["accuracy"]], s=60, facecolor="none",
                   edgecolor="#c4572a", linewidth=1.5, label="chosen on the selection pairs" if i == 0 else None)
        ax.annotate(f"L{h['layer'] + 1} H{h['head'] + 1}", (h["selection"], h["heldout"]["accuracy"]),
                    xytext=(4, 4), textcoords="offset points", fontsize=7, color="#c4572a")
    for f in (ax.axhline, ax.axvline):
        f(report["chance"], color="black", lw=0.8, ls=":")
    ax.margins(0.12)
    ax.set_xlabel("accuracy on the selection pairs")
    ax.set_ylabel("accuracy on the held-out pairs")
    ax.set_title("each head: right noun gets more weight (chance 0.5)", fontsize=8)
    ax.legend(fontsize=6, loc="lower right")
    ax.grid(True, alpha=0.3)
    if repeated is not None:
        ax = axes[0, 1]
        bins = np.linspace(0.3, 0.8, 26)
        ax.hist(repeated["selection"], bins=bins, color="#c4572a", alpha=0.5, label="on its selection pairs")
        ax.hist(repeated["heldout"], bins=bins, color="#1f5fa8", alpha=0.5, label="on the held-out pairs")
        ax.axvline(report["chance"], color="black", lw=0.8, ls=":")
        ax.set_xlabel("accuracy of the best head of the split")
        ax.set_ylabel("random splits")
        ax.set_title(f"choose, then confirm: {len(repeated['heldout'])} random splits", fontsize=8)
        ax.legend(fontsize=6)
    return fig


def probe_layers_figure(test: Mapping[str, Sequence[float]], order: Sequence[str],
                        controls: Mapping[str, str] = (), chance: float | None = None):
    """Probe accuracy on unseen words, feature set by feature set: mean and spread over the splits.

    Parameters
    ----------
    test : mapping of str to sequence of float
        Feature name -> test accuracy of each split (``probe_by_layer(...)["test"]``).
    order : sequence of str
        The names drawn along the x axis (e.g. the word table, the embeddings, layer 1 .. 6).
    controls : mapping of str to str
        Names drawn as horizontal bands (mean ± std) instead, and their legend labels.
    chance : float, optional
        Drawn as a dotted line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(6.6, 3.2), layout="constrained")
    x = np.arange(len(order))
    for i, name in enumerate(order):
        a = np.asarray(test[name], dtype=float)
        ax.scatter(np.full(len(a), i) + np.linspace(-0.12, 0.12, len(a)), a, s=10, color="#1f5fa8", alpha=0.5)
    means = [np.mean(test[n]) for n in order]
    stds = [np.std(test[n], ddof=1) if len(test[n]) > 1 else 0.0 for n in order]
    ax.errorbar(x, means, yerr=stds, fmt="o-", color="#1f5fa8", capsize=3, label="pretrained (mean ± std over splits)")
    colours = ["#c4572a", "#2a8c4a", "#7a4cb0"]
    for c, (name, label) in zip(colours, dict(controls).items()):
        a = np.asarray(test[name], dtype=float)
        ax.axhspan(a.mean() - a.std(ddof=1), a.mean() + a.std(ddof=1), color=c, alpha=0.15)
        ax.axhline(a.mean(), color=c, lw=1, label=label)
    if chance is not None:
        ax.axhline(chance, color="black", lw=0.8, ls=":", label=f"chance {chance:g}")
    ax.set_xticks(x, order, fontsize=7)
    ax.set_ylabel("test accuracy (unseen words)")
    ax.set_ylim(0, 1.05)
    ax.set_title("a linear probe on each layer's mean-pooled output", fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    ax.grid(True, alpha=0.3)
    return fig
