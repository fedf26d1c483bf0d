r"""Attention pooling on a 1-D regression problem: the fit and the weights, with a bandwidth knob.

Each panel pair shows, for one bandwidth :math:`h`, the Nadaraya–Watson prediction over the
training points (left) and the attention weights as a heatmap (right): one row per query
position, one column per training input, both sorted along :math:`x`. A small :math:`h` gives
a thin bright diagonal (each query looks only at its nearest keys, and the fit is jagged); a
large :math:`h` smears the weights across the whole row (and the fit flattens to the mean).
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from attnlib.numpy.attention_pooling import nadaraya_watson, toy_target
from attnlib.viz.frames import FreeKnob, Knob, frame_explorer


def _check(x_train, y_train, x_test):
    x_train, y_train, x_test = (np.asarray(a, dtype=float) for a in (x_train, y_train, x_test))
    if x_train.ndim != 1 or x_train.shape != y_train.shape or x_test.ndim != 1:
        raise ValueError(f"need 1-D x_train and y_train of equal length and 1-D x_test, got shapes "
                         f"{x_train.shape}, {y_train.shape}, {x_test.shape}")
    return x_train, y_train, x_test


def _draw(ax_fit, ax_w, x_train, y_train, x_test, bandwidth, truth=True, compact=False):
    pred, w = nadaraya_watson(x_test, x_train, y_train, bandwidth)
    ax_fit.scatter(x_train, y_train, s=10, color="0.55", label="training data (keys, values)")
    if truth:
        ax_fit.plot(x_test, toy_target(x_test), color="0.2", linestyle="--", linewidth=1,
                    label="true function")
    ax_fit.plot(x_test, pred, color="#d1495b", linewidth=2, label="prediction")
    ax_fit.set_title(f"fit, h = {bandwidth:.3g}", fontsize=10)
    ax_fit.set_xlabel("x")
    ax_fit.spines[["top", "right"]].set_visible(False)
    if not compact:
        ax_fit.legend(fontsize=8, loc="lower right", frameon=False)
    ax_w.imshow(w, cmap="Blues", aspect="auto", vmin=0.0, interpolation="nearest",
                extent=(-0.5, len(x_train) - 0.5, x_test[-1], x_test[0]))
    ax_w.set_title(f"weights, h = {bandwidth:.3g}", fontsize=10)
    ax_w.set_xlabel("training point (sorted by x)")
    ax_w.set_ylabel("query x")
    return pred, w


def pooling_frame(x_train, y_train, x_test, bandwidth: float, truth: bool = True,
                  figsize=(8.0, 3.0)) -> Figure:
    """One frame of the explorer: the fit (left) and the attention weights (right).

    The figure is not registered with pyplot.

    Parameters
    ----------
    x_train, y_train : array_like, shape (n,)
        Keys and values, sorted by ``x_train``.
    x_test : array_like, shape (m,)
        Query positions, sorted.
    bandwidth : float
        Kernel width :math:`h > 0`.
    truth : bool
        Also draw :func:`attnlib.numpy.toy_target`, the noise-free function.
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
    """
    x_train, y_train, x_test = _check(x_train, y_train, x_test)
    fig = Figure(figsize=figsize, layout="constrained")
    ax_fit, ax_w = fig.subplots(1, 2, width_ratios=[1.25, 1])
    _draw(ax_fit, ax_w, x_train, y_train, x_test, bandwidth, truth)
    return fig


def pooling_snapshots(x_train, y_train, x_test, bandwidths: Sequence[float] = (0.05, 0.3, 2.0),
                      truth: bool = True):
    """The explorer's key settings side by side: one column per bandwidth, fit above weights.

    The static companion of :func:`pooling_explorer` for readers of the book.

    Parameters
    ----------
    x_train, y_train : array_like, shape (n,)
        Keys and values, sorted by ``x_train``.
    x_test : array_like, shape (m,)
        Query positions, sorted.
    bandwidths : sequence of float
        One column per bandwidth.
    truth : bool
        Also draw the noise-free function.

    Returns
    -------
    matplotlib.figure.Figure
        A pyplot figure.
    """
    x_train, y_train, x_test = _check(x_train, y_train, x_test)
    n = len(bandwidths)
    fig, axes = plt.subplots(2, n, figsize=(2.7 * n, 5.0), layout="constrained", squeeze=False)
    for c, h in enumerate(bandwidths):
        _draw(axes[0, c], axes[1, c], x_train, y_train, x_test, h, truth, compact=True)
        if c:
            axes[1, c].set_ylabel("")
    axes[0, 0].legend(fontsize=7, loc="lower right", frameon=False)
    return fig



def pooling_explorer(x_train, y_train, x_test, bandwidth: float = 0.3, truth: bool = True):
    """An explorer: step the bandwidth, watch the fit and the weights change.

    Its frames are pre-rendered when the notebook runs, for the bandwidths 0.01, 0.03, 0.1, 0.3,
    1, 3 and 10 (and ``bandwidth``), so the slider works in the static book with no kernel (see
    :mod:`attnlib.viz.frames`). In a live kernel a folded "any value" slider recomputes the
    picture for any bandwidth between 0.01 and 10.

    Parameters
    ----------
    x_train, y_train : array_like, shape (n,)
        Keys and values, sorted by ``x_train``.
    x_test : array_like, shape (m,)
        Query positions, sorted.
    bandwidth : float
        Initial bandwidth.
    truth : bool
        Also draw the noise-free function.

    Returns
    -------
    ipywidgets.VBox
        Display it (make it the last expression of a cell).
    """
    import ipywidgets as widgets

    x_train, y_train, x_test = _check(x_train, y_train, x_test)
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth!r}")
    free = widgets.FloatLogSlider(value=float(bandwidth), base=10, min=-2, max=1, step=0.05,
                                  description="any bandwidth", readout_format=".3f",
                                  style={"description_width": "initial"},
                                  layout=widgets.Layout(width="380px"))

    def render(bandwidth, any_bandwidth=None):
        h = bandwidth if any_bandwidth is None else any_bandwidth
        return pooling_frame(x_train, y_train, x_test, h, truth)

    values = sorted({0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, float(bandwidth)})
    return frame_explorer(render, [Knob("bandwidth", values, "bandwidth h", value=float(bandwidth))],
                          free=[FreeKnob("any_bandwidth", free)], dpi=70,
                          note="Small h: each query copies its nearest training points (a near "
                               "hard lookup, a jagged fit). Large h: every weight row is flat and "
                               "the prediction is the mean of all values.")
