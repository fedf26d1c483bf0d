"""Frame explorers: every combination of knob values is rendered once, and each knob is linked
in the browser (jslink) to the stacks that hold its frames."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pytest
from matplotlib.figure import Figure

from attnlib.viz.frames import FRAME_CLASS, MAX_FRAMES, FreeKnob, Knob, frame_explorer


def render(a, b=0, c=0):
    fig = Figure(figsize=(1.5, 1))
    fig.text(0.1, 0.5, f"{a} {b} {c}")
    return fig


def leaves(widget):
    if FRAME_CLASS in getattr(widget, "_dom_classes", ()):  # a frame: an <img> with alt text
        return [widget]
    return [leaf for child in getattr(widget, "children", ()) for leaf in leaves(child)]


def stacks(widget, depth=0):
    if isinstance(widget, widgets.Stack):
        yield depth, widget
        for child in widget.children:
            yield from stacks(child, depth + 1)
    else:
        for child in getattr(widget, "children", ()):
            yield from stacks(child, depth)


def test_every_combination_is_rendered_once_and_in_order():
    calls = []

    def spy(a, b):
        calls.append((a, b))
        return render(a, b)

    box = frame_explorer(spy, [Knob("a", [1, 2, 3]), Knob("b", ["x", "y"], style="toggle")])
    assert calls == [(a, b) for a in (1, 2, 3) for b in ("x", "y")]
    images = leaves(box)
    assert box.frames == 6 and len(images) == 6
    assert len({img.png for img in images}) == 6, "two frames have the same picture"


def test_each_knob_is_linked_to_every_stack_of_its_depth():
    box = frame_explorer(render, [Knob("a", [1, 2]), Knob("b", [5, 6, 7], style="dropdown")])
    knobs = [c for c in box.children if isinstance(c, (widgets.SelectionSlider, widgets.Dropdown))]
    by_depth = {}
    for depth, stack in stacks(box):
        by_depth.setdefault(depth, []).append(stack)
    assert [len(by_depth[d]) for d in sorted(by_depth)] == [1, 2]
    linked = {(id(link.source[0]), id(link.target[0])) for link in box.links}
    for depth, knob in enumerate(knobs):
        for stack in by_depth[depth]:
            assert (id(knob), id(stack)) in linked
    assert all(link.source[1] == "index" and link.target[1] == "selected_index" for link in box.links)


def test_knobs_are_not_inside_an_hbox():
    # With the book's widget manager, a jslink source inside an HBox leaves the Stack unrendered.
    box = frame_explorer(render, [Knob("a", [1, 2]), Knob("b", [1, 2])])
    assert not any(isinstance(c, widgets.HBox) and any(isinstance(g, widgets.SelectionSlider) for g in c.children)
                   for c in box.children)


def test_initial_value_selects_its_frame():
    box = frame_explorer(render, [Knob("a", [0.1, 1.0, 10.0], value=1.0)])
    (_, stack), = stacks(box)
    assert stack.selected_index == 1 and box.children[0].index == 1


def test_free_knobs_recompute_only_in_the_live_part():
    free = widgets.FloatSlider(value=0.5, min=0, max=1)
    box = frame_explorer(render, [Knob("a", [1, 2])], free=[FreeKnob("c", free)])
    live = box.children[-1]
    assert "attnlib-live-only" in live._dom_classes
    out = live.children[2]
    assert isinstance(out, widgets.Output) and out.outputs == ()  # nothing stored until it moves
    assert box.frames == 2


@pytest.mark.parametrize("kwargs,message", [
    (dict(knobs=[]), "at least one knob"),
    (dict(knobs=[Knob("a", list(range(MAX_FRAMES + 1)))]), "more than"),
    (dict(knobs=[Knob("a", [1]), Knob("a", [2])]), "share a name"),
])
def test_bad_explorers_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        frame_explorer(render, **kwargs)


@pytest.mark.parametrize("kwargs,message", [
    (dict(name="not a name", options=[1]), "identifier"),
    (dict(name="a", options=[]), "at least one option"),
    (dict(name="a", options=[("x", 1), ("x", 2)]), "repeated labels"),
    (dict(name="a", options=[1], style="knob"), "style"),
    (dict(name="a", options=[1, 2], value=3), "not one of its options"),
])
def test_bad_knobs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Knob(**kwargs)


def test_labels_default_to_the_values():
    knob = Knob("t", [0.1, 1.0, np.float64(2.5)])
    assert knob.labels == ("0.1", "1", "2.5")
