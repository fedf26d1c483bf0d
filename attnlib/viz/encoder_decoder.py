"""Figures and the attention-map explorer of the chapter "The encoder-decoder Transformer".

- :func:`architecture_figure`: the model as boxes and arrows;
- :func:`masks_figure`: the three attention masks of one example;
- :func:`label_smoothing_figure` and :func:`noam_figure`: the target distribution and the schedule;
- :func:`attention_maps_explorer` (example and kind; every layer and head in a frame) and
  :func:`attention_maps_figure` (every layer and head of one kind, for the static book), both on
  the dictionaries of :func:`attnlib.torch.encoder_decoder.attention_maps`;
- :func:`token_probability_figure`: the probability of each reference token against the
  label-smoothing ceiling;
- :func:`exposure_figure`: error rate per output position, teacher-forced against free-running,
  and with or without scheduled sampling over seeds.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from attnlib.viz.frames import FreeKnob, Knob, frame_explorer

__all__ = ["architecture_figure", "masks_figure", "label_smoothing_figure", "noam_figure",
           "attention_map_frame", "attention_maps_frame", "attention_maps_figure",
           "attention_maps_explorer",
           "token_probability_figure", "exposure_figure"]

KINDS = {"encoder": "encoder self-attention", "decoder": "decoder self-attention (causal)",
         "cross": "cross-attention (decoder -> encoder)"}


def architecture_figure(num_layers: int = 2):
    """The encoder-decoder Transformer as a block diagram.

    Parameters
    ----------
    num_layers : int
        Shown as "x N" next to each stack.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(7.6, 4.6), layout="constrained")
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10.4)
    ax.axis("off")

    def box(x, y, w, h, text, color):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color, ec="#333",
                                    lw=0.8))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)

    def arrow(x0, y0, x1, y1):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=9,
                                     color="#333", lw=0.8))

    # encoder (left)
    box(0.6, 0.2, 3.2, 0.7, "source tokens  \"Mar 3 2021\"", "#eeeeee")
    box(0.6, 1.4, 3.2, 0.8, "embedding x sqrt(d) + sinusoidal positions", "#fde9c9")
    ax.add_patch(FancyBboxPatch((0.4, 2.7), 3.6, 3.0, boxstyle="round,pad=0.05", fc="none",
                                ec="#888", ls="--"))
    box(0.6, 3.0, 3.2, 0.9, "self-attention (padding mask)\n+ residual, LayerNorm", "#cfe2f3")
    box(0.6, 4.4, 3.2, 0.9, "feed-forward\n+ residual, LayerNorm", "#d9ead3")
    ax.text(4.1, 4.2, f"x {num_layers}", fontsize=9)
    box(0.6, 6.3, 3.2, 0.7, "memory (one vector per source token)", "#eeeeee")
    for y0, y1 in ((0.9, 1.4), (2.2, 3.0), (3.9, 4.4), (5.3, 6.3)):
        arrow(2.2, y0, 2.2, y1)
    # decoder (right)
    box(5.6, 0.2, 3.8, 0.7, "<bos> + target so far  \"<bos>2021-0\"", "#eeeeee")
    box(5.6, 1.4, 3.8, 0.8, "embedding x sqrt(d) + sinusoidal positions", "#fde9c9")
    ax.add_patch(FancyBboxPatch((5.4, 2.7), 4.2, 4.5, boxstyle="round,pad=0.05", fc="none",
                                ec="#888", ls="--"))
    box(5.6, 3.0, 3.8, 0.9, "causal self-attention\n+ residual, LayerNorm", "#cfe2f3")
    box(5.6, 4.4, 3.8, 0.9, "cross-attention to the memory\n+ residual, LayerNorm", "#f4cccc")
    box(5.6, 5.8, 3.8, 0.9, "feed-forward\n+ residual, LayerNorm", "#d9ead3")
    ax.text(9.65, 5.0, f"x {num_layers}", fontsize=9)
    box(5.6, 7.7, 3.8, 0.8, "linear (the shared embedding matrix)", "#fde9c9")
    box(5.6, 9.0, 3.8, 0.8, "softmax: p(next token)", "#eeeeee")
    for y0, y1 in ((0.9, 1.4), (2.2, 3.0), (3.9, 4.4), (5.3, 5.8), (6.7, 7.7), (8.5, 9.0)):
        arrow(7.5, y0, 7.5, y1)
    arrow(3.8, 6.65, 5.6, 4.85)
    ax.text(4.75, 6.0, "keys,\nvalues", fontsize=7, ha="center")
    ax.set_title("The encoder-decoder Transformer", fontsize=10)
    return fig


def masks_figure(src_len: int, S: int, tgt_len: int, T: int):
    """The three masks of one padded example (True = may attend, dark).

    Parameters
    ----------
    src_len, S : int
        Real and padded source length.
    tgt_len, T : int
        Real and padded target length (``<bos>`` + target).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not (1 <= src_len <= S and 1 <= tgt_len <= T):
        raise ValueError(f"need 1 <= src_len <= S and 1 <= tgt_len <= T, got {src_len}, {S}, "
                         f"{tgt_len}, {T}")
    src_keys = np.arange(S) < src_len
    tgt_keys = np.arange(T) < tgt_len
    enc = np.broadcast_to(src_keys, (S, S))
    dec = np.tril(np.ones((T, T), bool)) & tgt_keys
    cross = np.broadcast_to(src_keys, (T, S))
    fig, axes = plt.subplots(1, 3, figsize=(9.0, 3.0), layout="constrained",
                             gridspec_kw={"width_ratios": [S, T, S]})
    for ax, m, title, (ql, kl) in zip(
            axes, (enc, dec, cross),
            ("encoder self: padding", "decoder self: causal & padding", "cross: source padding"),
            (("source query", "source key"), ("target query", "target key"),
             ("target query", "source key"))):
        ax.imshow(m, cmap="Blues", vmin=-0.3, vmax=1.0)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(kl, fontsize=8)
        ax.set_ylabel(ql, fontsize=8)
        ax.tick_params(labelsize=7)
    return fig


def label_smoothing_figure(targets: dict, labels):
    """Bar charts of target distributions over a small vocabulary (e.g. one-hot vs smoothed).

    Parameters
    ----------
    targets : dict of str to array_like of shape (V,)
        One distribution per panel.
    labels : sequence of str
        The V token names.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = plt.subplots(1, len(targets), figsize=(3.3 * len(targets), 2.6),
                             layout="constrained", sharey=True)
    for ax, (title, q) in zip(np.atleast_1d(axes), targets.items()):
        q = np.asarray(q, float)
        ax.bar(range(len(q)), q, color=["#1f5fa8" if v == q.max() else "#9db8d9" for v in q])
        ax.set_xticks(range(len(q)), list(labels), fontsize=7, rotation=90)
        ax.set_title(title, fontsize=9)
        ax.set_ylim(0, 1.05)
    np.atleast_1d(axes)[0].set_ylabel("target probability", fontsize=8)
    return fig


def noam_figure(d_model: int, warmups, steps: int = 4000):
    """The Noam learning rate against the step, one curve per warm-up length.

    Parameters
    ----------
    d_model : int
    warmups : sequence of int
    steps : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    from attnlib.torch import noam_rate

    s = np.arange(1, steps + 1)
    fig, ax = plt.subplots(figsize=(5.6, 2.8), layout="constrained")
    for w in warmups:
        ax.plot(s, noam_rate(s, d_model, w), label=f"warm-up {w}")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title(f"Noam schedule, d_model = {d_model}", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def token_probability_figure(gold, ceiling: float, labels=None):
    """The teacher-forced probability of every reference token, per output position.

    Parameters
    ----------
    gold : array_like, shape (N, T)
        :math:`p(y_t \\mid y_{<t}, x)` of the reference token (NaN past an example's end), e.g.
        ``token_probabilities(...)["gold"]``.
    ceiling : float
        Where label smoothing puts the optimum, :math:`1 - \\varepsilon + \\varepsilon / V`.
    labels : sequence of str, optional
        A name for each of the T positions.

    Returns
    -------
    matplotlib.figure.Figure
    """
    gold = np.asarray(gold, float)
    T = gold.shape[1]
    fig, ax = plt.subplots(figsize=(6.4, 2.9), layout="constrained")
    cols = [g[~np.isnan(g)] for g in gold.T]
    ax.boxplot(cols, positions=range(T), widths=0.6, whis=(1, 99), showfliers=True,
               flierprops={"markersize": 2, "alpha": 0.4})
    ax.axhline(ceiling, color="#c0392b", lw=1, ls="--", label=f"label-smoothing optimum {ceiling:.3f}")
    ax.axhline(1.0, color="#888", lw=0.8, ls=":", label="1 (one-hot)")
    ax.set_xticks(range(T), list(labels) if labels is not None else [str(t) for t in range(T)], fontsize=8)
    ax.set_xlabel("output position (the reference token there)")
    ax.set_ylabel("p(reference token)")
    ax.set_title("Teacher-forced probability of the reference token (boxes: quartiles; whiskers: 1-99%)",
                 fontsize=8.5)
    ax.legend(fontsize=7, loc="lower left")
    return fig


def exposure_figure(live: dict, sweep: dict | None = None, labels=None):
    """Error rate per output position: teacher-forced against free-running (greedy).

    Parameters
    ----------
    live : dict
        :func:`attnlib.experiments.encoder_decoder.exposure_accuracy` of one model.
    sweep : dict, optional
        ``{name: [exposure dict per seed]}``, e.g. the baseline and scheduled sampling of the
        ``ch14_seeds`` sweep: a second panel shows the free-running error per position, mean
        and standard deviation over seeds.
    labels : sequence of str, optional
        A name for each position.

    Returns
    -------
    matplotlib.figure.Figure
    """
    T = len(live["teacher_forced"])
    x = np.arange(T)
    names = list(labels) if labels is not None else [str(t) for t in range(T)]
    fig, axes = plt.subplots(1, 2 if sweep else 1, figsize=(10.5 if sweep else 5.6, 3.0),
                             layout="constrained", squeeze=False)
    ax = axes[0, 0]
    for key, label, color in (("teacher_forced", "teacher-forced (reads the reference)", "#1f5fa8"),
                              ("free_running", "free-running (reads its own output)", "#c0392b")):
        ax.plot(x, 100 * (1 - np.asarray(live[key])), "o-", ms=3, color=color, label=label)
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("token error rate (%)")
    ax.set_title("One model (this notebook's)", fontsize=9)
    ax.legend(fontsize=7)
    if sweep:
        ax = axes[0, 1]
        width = 0.8 / len(sweep)
        for i, (name, runs) in enumerate(sweep.items()):
            err = 100 * (1 - np.array([r["free_running"] for r in runs], float))
            ax.bar(x + (i - (len(sweep) - 1) / 2) * width, err.mean(0), width,
                   yerr=err.std(0, ddof=1) if len(runs) > 1 else None, capsize=2,
                   label=f"{name} ({len(runs)} seeds)")
        ax.set_xticks(x, names, fontsize=8)
        ax.set_ylabel("free-running token error rate (%)")
        ax.set_title("Over seeds: mean and standard deviation", fontsize=9)
        ax.legend(fontsize=7)
    for a in axes[0]:
        a.set_xlabel("output position")
    return fig


def _panel(ax, maps: dict, kind: str, layer: int, head: int, labels: bool = True) -> None:
    w = maps[kind][layer, head]
    if kind == "encoder":
        rows, cols = maps["source"], maps["source"]
    elif kind == "decoder":
        rows, cols = maps["target"], maps["input"]
    else:
        rows, cols = maps["target"], maps["source"]
    ax.imshow(w, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    if labels:
        ax.set_xticks(range(len(cols)), [c.replace(" ", "_") for c in cols], fontsize=6, rotation=90)
        ax.set_yticks(range(len(rows)), [r.replace(" ", "_") for r in rows], fontsize=6)
    else:
        ax.set_xticks([])
        ax.set_yticks([])


def attention_map_frame(maps: dict, kind: str, layer: int, head: int, figsize=(5.0, 4.0)) -> Figure:
    """One attention map, labelled: rows are queries (outputs), columns keys.

    Parameters
    ----------
    maps : dict
        From :func:`attnlib.torch.encoder_decoder.attention_maps`.
    kind : {"encoder", "decoder", "cross"}
    layer, head : int
    figsize : tuple

    Returns
    -------
    matplotlib.figure.Figure
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    _panel(ax, maps, kind, layer, head)
    ax.set_title(f"{KINDS[kind]}, layer {layer + 1}, head {head + 1}", fontsize=9)
    return fig


def _axes_labels(maps: dict, kind: str):
    """The query (row) and key (column) tokens of one kind of map."""
    if kind == "encoder":
        return maps["source"], maps["source"]
    if kind == "decoder":
        return maps["target"], maps["input"]
    return maps["target"], maps["source"]


def _mosaic(ax, maps: dict, kind: str, fontsize: float = 6.5, gap: int = 1) -> None:
    """Every layer (rows) and head (columns) of one kind of map, tiled into one image on ``ax``.

    The maps sit side by side in one axes with a blank row or column between them, so the tick
    labels are drawn once per row and column of the tiling: much cheaper to render than one
    axes per map (the explorer renders a dozen such frames).
    """
    w = np.asarray(maps[kind])
    layers, heads, R, C = w.shape
    rows, cols = _axes_labels(maps, kind)
    tiled = np.full((layers * (R + gap) - gap, heads * (C + gap) - gap), np.nan)
    for l in range(layers):
        for h in range(heads):
            tiled[l * (R + gap):l * (R + gap) + R, h * (C + gap):h * (C + gap) + C] = w[l, h]
    ax.imshow(np.ma.masked_invalid(tiled), cmap="viridis", vmin=0, vmax=1, aspect="auto",
              interpolation="nearest")
    ax.set_xticks([h * (C + gap) + j for h in range(heads) for j in range(C)],
                  [c.replace(" ", "_") for _ in range(heads) for c in cols], fontsize=fontsize, rotation=90)
    ax.set_yticks([l * (R + gap) + i for l in range(layers) for i in range(R)],
                  [r.replace(" ", "_") for _ in range(layers) for r in rows], fontsize=fontsize)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for l in range(layers):
        for h in range(heads):
            ax.text(h * (C + gap) + (C - 1) / 2, l * (R + gap) - 0.6, f"layer {l + 1}, head {h + 1}",
                    ha="center", va="bottom", fontsize=fontsize + 1)


def attention_maps_figure(maps: dict, kind: str = "cross"):
    """Every layer (rows) and head (columns) of one kind of attention, for one example.

    Parameters
    ----------
    maps : dict
        From :func:`attnlib.torch.encoder_decoder.attention_maps`.
    kind : {"encoder", "decoder", "cross"}

    Returns
    -------
    matplotlib.figure.Figure
        A pyplot figure.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    layers, heads = maps[kind].shape[:2]
    fig, ax = plt.subplots(figsize=(2.2 * heads, 2.1 * layers + 0.4), layout="constrained")
    _mosaic(ax, maps, kind)
    fig.suptitle(f"{KINDS[kind]}: \"{''.join(maps['source'])}\"", fontsize=9)
    return fig


def attention_maps_frame(maps: dict, kind: str) -> Figure:
    """One frame of the explorer: every layer and head of one kind of attention, for one example.

    The picture of :func:`attention_maps_figure` on a figure not registered with pyplot, titled
    with the source and the model's output.

    Parameters
    ----------
    maps : dict
        From :func:`attnlib.torch.encoder_decoder.attention_maps`.
    kind : {"encoder", "decoder", "cross"}

    Returns
    -------
    matplotlib.figure.Figure
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    layers, heads = maps[kind].shape[:2]
    fig = Figure(figsize=(2.0 * heads + 0.6, 1.75 * layers + 0.9))
    ax = fig.add_axes((0.08, 0.14, 0.91, 0.74))
    _mosaic(ax, maps, kind, fontsize=7)
    fig.suptitle(f"{KINDS[kind]}: \"{''.join(maps['source'])}\" -> {''.join(maps['target'][:-1])}",
                 fontsize=9)
    return fig


def attention_maps_explorer(all_maps: list, model=None, task=None, examples: int = 4):
    """An explorer of a trained model's attention: pick the example and the kind of attention.

    Each frame shows every layer and head of one kind of attention for one example. The book's
    frames are pre-rendered when the notebook runs (see :mod:`attnlib.viz.frames`): the first
    ``examples`` examples of ``all_maps`` (give examples of different formats first: the source
    positions an output token reads then move) and the three kinds. In a live kernel a folded
    "any value" part reaches every example of ``all_maps`` and, given ``model`` and ``task``,
    translates any source typed in and draws its maps.

    Parameters
    ----------
    all_maps : list of dict
        One :func:`attnlib.torch.encoder_decoder.attention_maps` dictionary per example
        (computed once: the frames only draw them).
    model : attnlib.torch.Transformer, optional
    task : attnlib.data.TranslationTask, optional
        Both or neither: with them, the live part takes a typed source.
    examples : int
        How many examples get frames (``examples`` x 3 frames).

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets

    if not all_maps:
        raise ValueError("need at least one example's attention maps")
    if (model is None) != (task is None):
        raise ValueError("pass both model and task (to translate typed sources), or neither")
    if int(examples) < 1:
        raise ValueError(f"examples must be at least 1, got {examples!r}")
    label = lambda i: f"{i}: {''.join(all_maps[i]['source'])}"  # noqa: E731
    style = {"description_width": "initial"}
    free = [FreeKnob("any_example", widgets.Dropdown(options=[(label(i), i) for i in range(len(all_maps))],
                                                     value=0, description="any example", style=style))]
    if model is not None:
        free.append(FreeKnob("any_source", widgets.Text(value="", placeholder="e.g. Mon, Jan 2 2023",
                                                        description="or type a source", style=style,
                                                        continuous_update=False)))

    def render(example, kind, any_example=None, any_source=""):
        maps = all_maps[example if any_example is None else any_example]
        if any_source and any_source.strip():
            from attnlib.data import Pair
            from attnlib.experiments.encoder_decoder import attention_maps

            maps = attention_maps(model, task, Pair(any_source.strip(), "", "typed"))
        return attention_maps_frame(maps, kind)

    shown = range(min(int(examples), len(all_maps)))
    knobs = [Knob("example", [(label(i), i) for i in shown], "example", style="dropdown"),
             Knob("kind", [(v.split(" (")[0], k) for k, v in KINDS.items()], "attention", style="toggle",
                  value="cross")]
    return frame_explorer(render, knobs, free=free, dpi=75,
                          note="Rows are queries (for the decoder: the token being produced), columns "
                               "the keys they read; every row sums to 1 (bright = large weight). "
                               "The maps were computed once, above; the pictures only draw them.")
