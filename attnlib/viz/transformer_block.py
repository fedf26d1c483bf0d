"""Figures for the chapter "The Transformer block": gradient norms by depth, the parameter
gradients of post-LN and pre-LN stacks at initialisation, and post-/pre-LN loss curves over seeds.

The loss-curve explorer only looks up the runs of
:func:`attnlib.experiments.transformer_block.norm_warmup_runs` (trained once when the notebook
runs), so it answers instantly.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from attnlib.viz.frames import FreeKnob, Knob, frame_explorer

COLOURS = {("post-LN", False): "#c4572a", ("post-LN", True): "#e8a33c",
           ("pre-LN", False): "#1f5fa8", ("pre-LN", True): "#6bb0d8"}
NORM_COLOURS = {"post-LN": "#c4572a", "pre-LN": "#1f5fa8"}

__all__ = ["gradient_norms_figure", "init_gradient_figure", "loss_curves_figure",
           "loss_curves_frame", "loss_curves_snapshots", "loss_curves_explorer", "warmup_sweep_figure"]


def _smooth(y, k: int = 10) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    k = max(1, min(k, len(y)))
    c = np.cumsum(np.insert(y, 0, 0.0))
    out = (c[k:] - c[:-k]) / k
    return np.concatenate([np.cumsum(y[:k - 1]) / np.arange(1, k), out])


def gradient_norms_figure(curves: dict):
    """Gradient norm at each layer's input against depth, relative to the output's (log scale).

    Parameters
    ----------
    curves : dict of str to array_like
        Label -> norms of shape (num_layers + 1,), as from
        :func:`attnlib.experiments.transformer_block.gradient_norms_by_depth`, or (n_seeds,
        num_layers + 1) for several seeds: the line is then the mean of the per-seed ratios and
        the band their mean ± one standard deviation.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(6.0, 3.2), layout="constrained")
    for label, g in curves.items():
        g = np.atleast_2d(np.asarray(g, dtype=float))
        r = g / g[:, -1:]
        x = np.arange(r.shape[1])
        line, = ax.semilogy(x, r.mean(0), "o-", markersize=3,
                            label=label + (f" ({len(r)} seeds)" if len(r) > 1 else ""))
        if len(r) > 1:
            ax.fill_between(x, r.mean(0) - r.std(0), r.mean(0) + r.std(0), color=line.get_color(),
                            alpha=0.2, linewidth=0)
    ax.set_xlabel("layer (0 = input of the stack, last = output)")
    ax.set_ylabel("‖∂loss/∂x_layer‖ / ‖∂loss/∂output‖")
    ax.set_title("gradient reaching each depth, at initialisation (mean ± std over seeds)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def init_gradient_figure(norms: dict, profile_depth: int, name: str = "ffn.linear2.weight"):
    r"""Xiong et al.'s quantity: the parameter gradients of post-LN and pre-LN stacks at initialisation.

    Left: the gradient norm of ``name`` in every layer of a ``profile_depth``-layer stack, mean ±
    std over seeds. Right: the same norm in the *last* layer (next to the output) against the
    number of layers, log-log, with a dotted :math:`1/\sqrt{L}` line through pre-LN's first point
    (the pre-LN rate of Xiong et al.'s Theorem 1; post-LN's bound does not depend on L).

    Parameters
    ----------
    norms : dict
        From :func:`attnlib.experiments.transformer_block.init_gradient_norms`:
        ``{(norm, depth): {name: array (n_seeds, depth)}}``.
    profile_depth : int
        The depth whose per-layer profile is drawn (must be in ``norms``).
    name : str
        The parameter to draw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    depths = sorted({d for _, d in norms})
    if profile_depth not in depths:
        raise ValueError(f"profile_depth must be one of the measured depths {depths}, got {profile_depth}")
    fig, (a, b) = plt.subplots(1, 2, figsize=(8.8, 3.2), layout="constrained")
    for norm in ("post-LN", "pre-LN"):
        c = NORM_COLOURS[norm]
        g = np.asarray(norms[(norm, profile_depth)][name], dtype=float)
        x = np.arange(1, g.shape[1] + 1)
        a.plot(x, g.mean(0), "o-", color=c, markersize=3, label=f"{norm} ({len(g)} seeds)")
        a.fill_between(x, g.mean(0) - g.std(0), g.mean(0) + g.std(0), color=c, alpha=0.2, linewidth=0)
        last = np.array([np.asarray(norms[(norm, d)][name], dtype=float)[:, -1] for d in depths])
        b.errorbar(depths, last.mean(1), yerr=last.std(1), fmt="o-", color=c, capsize=3, label=norm)
        if norm == "pre-LN":
            ref = last.mean(1)[0] * np.sqrt(depths[0] / np.asarray(depths, dtype=float))
            b.plot(depths, ref, ":", color=c, label="∝ 1/√L (Xiong et al., pre-LN)")
    a.set_xlabel(f"layer (1 = next to the embeddings, {profile_depth} = next to the output)")
    a.set_ylabel(f"‖∂loss/∂{name.split('.')[-2]}.{name.split('.')[-1]}‖")
    a.set_title(f"{name} in each layer, {profile_depth}-layer stacks", fontsize=9)
    b.set_xscale("log")
    b.set_yscale("log")
    b.set_xticks(depths, [str(d) for d in depths])
    b.minorticks_off()
    b.set_xlabel("number of layers L")
    b.set_ylabel("gradient norm, last layer")
    b.set_title(f"{name} of the last layer against depth (mean ± std)", fontsize=9)
    for ax in (a, b):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def _label(key, r, seed: int | None = None) -> str:
    norm, warm = key
    acc = np.asarray(r["accuracy"], dtype=float)
    if seed is not None:
        return f"{norm}, {'with' if warm else 'no'} warm-up (acc {acc[seed]:.2f})"
    spread = f" ± {acc.std():.2f}" if acc.size > 1 else ""
    return f"{norm}, {'with' if warm else 'no'} warm-up (acc {acc.mean():.2f}{spread})"


def _curves(ax, runs: dict, keys, seed: int | None = None, smooth: int = 10) -> None:
    """Draw the loss curves of ``keys``: every seed thin and their mean thick, or one seed alone.

    ``seed`` is an index into each run's seeds (None: all of them); ``smooth`` the running-mean window.
    """
    for key in keys:
        r = runs[key]
        losses = np.atleast_2d(np.asarray(r["losses"], dtype=float))
        colour = COLOURS.get(key)
        if seed is not None:
            row = losses[seed]
            ax.plot(_smooth(row[np.isfinite(row)], smooth), color=colour, linewidth=1.8,
                    label=_label(key, r, seed))
            continue
        for row in losses:      # every seed, thin
            ax.plot(_smooth(row[np.isfinite(row)], smooth), color=colour, linewidth=0.6, alpha=0.5)
        ax.plot(_smooth(np.nanmean(losses, axis=0), smooth), color=colour, linewidth=1.8,
                label=_label(key, r))
    ax.set_xlabel("training step")
    ax.set_ylabel(f"loss (running mean of {smooth})" if smooth > 1 else "loss")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def loss_curves_figure(runs: dict, title: str = "same model, same data, same steps: where the norm "
                       "sits, and warm-up"):
    """The runs of :func:`attnlib.experiments.transformer_block.norm_warmup_runs` on one log-scale plot.

    Each seed is a thin line, the mean over seeds a thick one; the legend gives the final
    validation token accuracy, mean ± std over seeds.

    Parameters
    ----------
    runs : dict
        Keyed by ``(norm, warmup)``, values with ``"losses"`` ((n_seeds, steps) or (steps,)) and
        ``"accuracy"``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(6.4, 3.4), layout="constrained")
    _curves(ax, runs, list(runs))
    ax.set_title(title, fontsize=9)
    return fig


def loss_curves_frame(runs: dict, norms, warmups, seed: int | None = None, smooth: int = 10,
                      ylim=None, figsize=(6.4, 3.2)) -> Figure:
    """One frame of the explorer: the chosen runs only (not registered with pyplot).

    Parameters
    ----------
    runs : dict
    norms : sequence of str
        Subset of ``("post-LN", "pre-LN")``.
    warmups : sequence of bool
    seed : int, optional
        Index of the one seed to draw (default: every seed thin, their mean thick).
    smooth : int
        Window of the running mean (1: raw losses).
    ylim : (float, float), optional
        Fixed limits of the loss axis, so that frames compare at a glance.
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
    """
    keys = [k for k in runs if k[0] in norms and k[1] in warmups]
    return _runs_frame(runs, keys, seed, smooth, ylim, figsize)


def _runs_frame(runs: dict, keys, seed=None, smooth: int = 10, ylim=None, figsize=(6.4, 3.2),
                title: str = "") -> Figure:
    """A figure (not registered with pyplot) of the runs ``keys`` of ``runs``, as :func:`_curves` draws them."""
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    if keys:
        _curves(ax, runs, keys, seed=seed, smooth=max(1, int(smooth)))
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def loss_curves_snapshots(runs: dict):
    """The explorer's key settings side by side: post-LN (left) and pre-LN (right), each with and
    without warm-up, on shared axes.

    Parameters
    ----------
    runs : dict

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.0), layout="constrained", sharey=True)
    for ax, norm in zip(axes, ("post-LN", "pre-LN")):
        _curves(ax, runs, [k for k in runs if k[0] == norm])
        ax.set_title(norm, fontsize=9)
    return fig



def _comparisons(keys) -> list:
    """The explorer's run menu: every run together, then each pair that differs in one setting.

    A pair that differs only in warm-up shows warm-up's effect; one that differs only in the norm's
    place shows the norm's. Keys are ``(norm, warmup)``; returns ``(label, keys)`` pairs.
    """
    options = [("all runs", tuple(keys))] if len(keys) > 1 else []
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if a[0] == b[0] and a[1] != b[1]:
                options.append((f"warm-up's effect: {a[0]} with and without", (a, b)))
            elif a[1] == b[1] and a[0] != b[0]:
                options.append((f"the norm's place: post- vs pre-LN, {'with' if a[1] else 'no'} warm-up", (a, b)))
    return options or [(f"{keys[0][0]}, {'with' if keys[0][1] else 'no'} warm-up", tuple(keys))]


def loss_curves_explorer(runs: dict):
    """An explorer of the stored loss curves: pick which runs to compare and which seed to see.

    The book's frames are pre-rendered when the notebook runs (see :mod:`attnlib.viz.frames`):
    a menu offers every run together and each pair of runs that differs in one setting (warm-up,
    or the norm's place), and a slider shows every seed with their mean, or one seed alone; the
    loss axis is the same in every frame. In a live kernel a folded "any value" slider also sets
    the running-mean window (1 = the raw losses).

    Parameters
    ----------
    runs : dict
        From :func:`attnlib.experiments.transformer_block.norm_warmup_runs`.

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets

    if not runs:
        raise ValueError("no runs to explore")
    keys = list(runs)
    n_seeds = {np.atleast_2d(np.asarray(r["losses"])).shape[0] for r in runs.values()}
    if len(n_seeds) != 1:
        raise ValueError(f"every run needs the same number of seeds, got {sorted(n_seeds)}")
    seeds = list(runs[keys[0]].get("seeds", range(n_seeds.pop())))
    finite = np.concatenate([np.asarray(r["losses"], dtype=float).ravel() for r in runs.values()])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    ylim = (finite.min() / 1.3, finite.max() * 1.3) if finite.size else None

    def render(shown, seed=None, any_smooth=10):
        which = "every seed (thin) and their mean (thick)" if seed is None else f"seed {seeds[seed]} alone"
        return _runs_frame(runs, list(shown), seed, any_smooth, ylim, title=which)

    seed_options = [("every seed + mean", None)] + [(f"seed {s}", i) for i, s in enumerate(seeds)]
    knobs = [Knob("shown", _comparisons(keys), "runs", style="dropdown")]
    if len(seeds) > 1:
        knobs.append(Knob("seed", seed_options, "seeds", style="toggle"))
    free = [FreeKnob("any_smooth", widgets.IntSlider(value=10, min=1, max=30, description="running mean over",
                                                     style={"description_width": "initial"}))]
    return frame_explorer(render, knobs, free=free, dpi=75,
                          note="Runs trained once when the notebook ran (above); the loss axis is the "
                               "same in every frame. The legend gives each run's final validation accuracy.")


def warmup_sweep_figure(result: dict):
    """The maintainer sweep of warm-up against depth and clipping: final accuracy of every run.

    One panel per clipping setting; for each depth and configuration, every seed's final validation
    token accuracy is a dot and the mean a bar; the dashed line is the majority-class baseline.

    Parameters
    ----------
    result : dict
        ``load_result("ch13_warmup_sweep")["full"]``, from
        :func:`attnlib.experiments.transformer_block.warmup_sweep`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    configs = [(n, bool(w)) for n, w in result["configs"]]
    clips, depths = result["clips"], result["depths"]
    cells = {(c["norm"], bool(c["warmup"]), c["layers"], c["clip"]): c for c in result["cells"]}
    fig, axes = plt.subplots(1, len(clips), figsize=(4.4 * len(clips), 3.2), layout="constrained",
                             sharey=True, squeeze=False)
    width = 0.8 / len(configs)
    for ax, clip in zip(axes[0], clips):
        for j, (norm, warm) in enumerate(configs):
            for i, depth in enumerate(depths):
                acc = np.asarray(cells[(norm, warm, depth, clip)]["accuracy"], dtype=float)
                x = i + (j - (len(configs) - 1) / 2) * width
                ax.bar(x, acc.mean(), width * 0.9, color=COLOURS[(norm, warm)], alpha=0.6,
                       label=f"{norm}, {'with' if warm else 'no'} warm-up" if i == 0 else None)
                ax.plot(np.full(acc.shape, x), acc, "k.", markersize=3)
        ax.axhline(result["majority_baseline"], color="k", linestyle="--", linewidth=1,
                   label="majority class")
        ax.set_xticks(range(len(depths)), [f"{d} layers" for d in depths])
        ax.set_title(f"gradient clipping at {clip}" if clip else "no gradient clipping", fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0][0].set_ylabel("final validation token accuracy")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig
