"""Figures and the attention-map explorer of the chapter "The encoder-decoder Transformer".

- :func:`architecture_figure`: the model as boxes and arrows;
- :func:`masks_figure`: the three attention masks of one example;
- :func:`label_smoothing_figure` and :func:`noam_figure`: the target distribution and the schedule;
- :func:`attention_maps_explorer` (ipywidgets: example, kind, layer, head) and
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

from attnlib.viz._display import show_png

__all__ = ["architecture_figure", "masks_figure", "label_smoothing_figure", "noam_figure",
           "attention_map_frame", "attention_maps_figure", "attention_maps_explorer",
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
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    layers, heads = maps[kind].shape[:2]
    fig, axes = plt.subplots(layers, heads, figsize=(2.2 * heads, 2.1 * layers + 0.4),
                             layout="constrained", squeeze=False)
    for l in range(layers):
        for h in range(heads):
            _panel(axes[l, h], maps, kind, l, h, labels=(kind != "encoder" or heads <= 2))
            axes[l, h].set_title(f"layer {l + 1}, head {h + 1}", fontsize=8)
    fig.suptitle(f"{KINDS[kind]}: \"{''.join(maps['source'])}\"", fontsize=9)
    return fig



def attention_maps_explorer(all_maps: list):
    """An ipywidgets explorer: pick the example, the kind of attention, the layer and the head.

    Parameters
    ----------
    all_maps : list of dict
        One :func:`attnlib.torch.encoder_decoder.attention_maps` dictionary per example
        (computed once: the explorer only draws).

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets

    if not all_maps:
        raise ValueError("need at least one example's attention maps")
    layers, heads = all_maps[0]["cross"].shape[:2]
    example = widgets.Dropdown(options=[("".join(m["source"]), i) for i, m in enumerate(all_maps)],
                               value=0, description="example")
    kind = widgets.Dropdown(options=[(v, k) for k, v in KINDS.items()], value="cross",
                            description="kind")
    layer = widgets.IntSlider(1, 1, layers, description="layer")
    head = widgets.IntSlider(1, 1, heads, description="head")

    def show(example, kind, layer, head):
        show_png(attention_map_frame(all_maps[example], kind, layer - 1, head - 1))

    out = widgets.interactive_output(show, {"example": example, "kind": kind, "layer": layer,
                                            "head": head})
    return widgets.VBox([widgets.HBox([example, kind]), widgets.HBox([layer, head]), out])
