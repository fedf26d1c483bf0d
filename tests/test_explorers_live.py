"""Every chapter explorer is a frame explorer: each knob switches between distinct pre-rendered
frames (so it works in the static book), and the frames stay few and small."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pytest

from attnlib.viz.frames import FRAME_CLASS, MAX_FRAMES

KNOBS = (widgets.SelectionSlider, widgets.Dropdown, widgets.ToggleButtons)


def _attention():
    from attnlib.viz.explorer import attention_explorer
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 3))
    return attention_explorer(X, X, X, ["the", "cat", "sat", "down"], query=2, temperature=1.0)


def _neighbours():
    from attnlib.viz.embeddings import neighbour_explorer
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(20)]
    tables = {"a": (words, rng.normal(size=(20, 5)), None), "b": (words, rng.normal(size=(20, 5)), None)}
    return neighbour_explorer(tables, ["w0", "w1", "w2"], k=4)


def _positions():
    from attnlib.viz.positional import position_explorer
    return position_explorer(num_positions=16, d_model=8, position=5, pair=0)


def _pooling():
    from attnlib.viz.attention_pooling import pooling_explorer
    x = np.linspace(0, 5, 12)
    return pooling_explorer(x, np.sin(x), np.linspace(0, 5, 6), bandwidth=0.3)


def _scaling():
    from attnlib.viz.scores import scaling_explorer
    return scaling_explorer(d_k=16, d_ks=(4, 16, 64), n_queries=30)


def _masks():
    from attnlib.viz.masking import mask_explorer
    return mask_explorer(lengths=(5, 3, 7), causal=True, element=1)


def _two_heads():
    from attnlib.viz.multi_head import two_head_explorer
    return two_head_explorer("the cat saw the dog", sharpness=20.0, causal=True)


def _path_ratios():
    from attnlib.viz.numpy_to_torch import path_ratios_explorer
    paths = ("weights", "fused", "numpy")
    ratios = {"L": np.array([16, 32, 64]), "weights_bytes": np.array([1, 4, 16]) * 1024,
              "device": "cpu", "threads": 1, "dtype": "float32", "rounds": 3}
    for k, p in enumerate(paths):
        ratios[p] = np.array([1.5, 2.0, 2.5]) + k
        ratios[f"{p}_q25"], ratios[f"{p}_q75"] = ratios[p] - 0.1, ratios[p] + 0.1
    return path_ratios_explorer(ratios)


def _records(seed, n=5):
    rng = np.random.default_rng(seed)
    return [dict(source=f"src{i}", target=f"t{i}", prediction=f"t{i}" if i % 2 else "xx",
                 correct=bool(i % 2), kind="val", weights=rng.dirichlet(np.ones(4), size=3))
            for i in range(n)]


def _alignments():
    from attnlib.viz.alignment import alignment_explorer
    return alignment_explorer({"dot": _records(0), "general": _records(1)}, index=0)


def _minilm():
    from attnlib.viz.pretrained import minilm_explorer
    rng = np.random.default_rng(2)
    tokens = ["[CLS]", "it", "was", "[SEP]"]
    records = {s: {"tokens": tokens, "attentions": rng.dirichlet(np.ones(4), size=(3, 2, 4))}
               for s in ("one sentence", "another")}
    return minilm_explorer(records, layer=1, head=1)


EXPLORERS = [_attention, _neighbours, _positions, _pooling, _scaling, _masks, _two_heads,
             _path_ratios, _alignments, _minilm]


def _images(widget):
    if FRAME_CLASS in getattr(widget, "_dom_classes", ()):  # a frame: an <img> with alt text
        return [widget]
    return [img for child in getattr(widget, "children", ()) for img in _images(child)]


def _visible(box, knobs, indices):
    """The frame the browser shows when the knobs sit at ``indices`` (following the stacks)."""
    node = next(c for c in box.children if isinstance(c, widgets.Stack))
    for i in indices:
        node = node.children[i]
    return node.png


@pytest.mark.parametrize("make", EXPLORERS, ids=lambda f: f.__name__.strip("_"))
def test_each_knob_switches_between_distinct_frames(make):
    box = make()
    assert "attnlib-frame-explorer" in box._dom_classes
    knobs = [c for c in box.children if isinstance(c, KNOBS)]
    assert knobs and 2 <= box.frames <= MAX_FRAMES
    frames = _images(box)
    assert len(frames) == box.frames
    assert sum(len(f.png) for f in frames) < 400_000, "the frames are too heavy for the notebook"
    start = [k.index for k in knobs]
    for n, knob in enumerate(knobs):
        if len(knob.options) < 2:
            continue
        seen = {_visible(box, knobs, start[:n] + [i] + start[n + 1:]) for i in range(len(knob.options))}
        assert len(seen) >= 2, f"knob {knob.description!r} does not change the picture"
    # links: each knob drives the stacks of its depth, in the browser
    assert {id(link.source[0]) for link in box.links} == {id(k) for k in knobs}
