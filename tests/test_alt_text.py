"""Every figure of the book has alt text that says what it shows, so a screen reader conveys it.

* A notebook figure (a code cell's stored image output) gets its alt from the cell's MyST-NB
  metadata, ``{"mystnb": {"image": {"alt": "..."}}}``; without it Sphinx writes the image's file
  name into the ``alt`` attribute. The checker below asks every figure cell of every chapter for a
  real description: present, not a placeholder, a sentence long, not another cell's.
* A frame explorer's pre-rendered frames (:mod:`attnlib.viz.frames`) are ``<img>`` tags whose alt
  names the explorer, the knob values of the frame and the figure's titles.

The browser test (``tests/test_browser_a11y.py``) checks the built pages themselves.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat
import pytest
from matplotlib.figure import Figure

from attnlib.viz.frames import FRAME_CLASS, Knob, frame_alt, frame_explorer, png_html

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*/*.ipynb"))
IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
MIN_WORDS = 12  # "Heatmap of the attention weights" is a label, not a description
PLACEHOLDERS = re.compile(r"^\s*(an?\s+)?(figure|plot|image|picture|chart|graph|output)\s*\d*\.?\s*$", re.I)


def figure_cells(nb) -> list:
    """The code cells of ``nb`` whose stored outputs hold an image (what the book shows as a figure)."""
    return [c for c in nb.cells if c.cell_type == "code"
            and any(m in o.get("data", {}) for o in c.get("outputs", []) for m in IMAGE_MIMES)]


def alt_problems(nb) -> list[str]:
    """What is wrong with the alt text of ``nb``'s figure cells (empty when nothing is)."""
    problems, seen = [], {}
    for cell in figure_cells(nb):
        where = f"cell {cell.get('id', '?')} ({cell.source.splitlines()[0][:50] if cell.source else 'empty'!r})"
        alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt")
        if not isinstance(alt, str) or not alt.strip():
            problems.append(f"{where}: no mystnb.image.alt in its metadata")
        elif PLACEHOLDERS.match(alt):
            problems.append(f"{where}: alt {alt!r} is a placeholder, not a description")
        elif len(alt.split()) < MIN_WORDS:
            problems.append(f"{where}: alt {alt!r} is too short to say what the figure shows")
        elif alt in seen:
            problems.append(f"{where}: same alt as cell {seen[alt]}")
        else:
            seen[alt] = cell.get("id", "?")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_cell_has_alt_text(path):
    nb = nbformat.read(path, as_version=4)
    problems = alt_problems(nb)
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


def test_the_chapters_have_figures_to_check():
    """The checker above looks at stored outputs: it must find figures (else it checks nothing)."""
    counts = {p.stem: len(figure_cells(nbformat.read(p, as_version=4))) for p in NOTEBOOKS}
    assert sum(counts.values()) >= 60, counts


_PNG_OUTPUT = {"output_type": "display_data", "metadata": {},
               "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}}


def test_the_alt_checker_flags_missing_placeholder_short_and_copied_alt():
    good = "Heatmap of the 4 by 4 attention weights: each word attends mostly to the next one."
    nb, png = nbformat.v4.new_notebook(), _PNG_OUTPUT
    text = {"output_type": "stream", "name": "stdout", "text": "no figure here"}
    for alt, outputs in [(None, [png]), ("Figure 2", [png]), ("attention weights heatmap", [png]),
                         (good, [png]), (good, [png]), (None, [text])]:
        cell = nbformat.v4.new_code_cell("fig = plot()", outputs=outputs)
        if alt is not None:
            cell.metadata["mystnb"] = {"image": {"alt": alt}}
        nb.cells.append(cell)
    problems = alt_problems(nb)
    assert len(problems) == 4, problems
    for found, expected in zip(problems, ["no mystnb.image.alt", "is a placeholder", "too short", "same alt as"]):
        assert expected in found, (expected, found)
    assert alt_problems(nbformat.v4.new_notebook()) == []


# --------------------------------------------------------------------------- explorer frames

_IMG = re.compile(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="([^"]*)"')


def _render(a, b):
    fig = Figure(figsize=(1.5, 1))
    fig.suptitle(f"weights of 'x{a}'")
    fig.add_subplot(1, 2, 1).set_title("values & output")
    fig.add_subplot(1, 2, 2).set_title(f"b is {b}")
    return fig


def _frames(widget):
    if FRAME_CLASS in getattr(widget, "_dom_classes", ()):
        return [widget]
    return [f for child in getattr(widget, "children", ()) for f in _frames(child)]


def test_every_explorer_frame_is_an_img_whose_alt_names_its_knob_values_and_titles():
    box = frame_explorer(_render, [Knob("a", [1, 2], "query"), Knob("b", [("off", 0), ("on", 1)], "mask", style="toggle")],
                         alt="toy explorer")
    alts = []
    for frame in _frames(box):
        tag = _IMG.match(frame.value)
        assert tag, frame.value[:120]
        alts.append(html.unescape(tag.group(1)))
        assert frame.png.startswith(b"\x89PNG")
    assert alts == [f"toy explorer, frame for query = {a}, mask = {m}: weights of 'x{a}'; values & output; b is {b}"
                    for a in (1, 2) for m, b in (("off", 0), ("on", 1))]


def test_the_default_alt_names_the_explorer_function():
    def pooling_explorer():
        def render(h):
            return Figure(figsize=(1, 1))
        return frame_explorer(render, [Knob("h", [0.1, 1.0], "bandwidth h")])

    tag = _IMG.match(_frames(pooling_explorer())[1].value)
    assert html.unescape(tag.group(1)) == "pooling explorer, frame for bandwidth h = 1"


def test_frame_alt_and_png_html_escape_and_join():
    assert frame_alt("e", [("k", "1"), ("m", "on")]) == "e, frame for k = 1, m = on"
    tag = png_html(b"\x89PNG", 'say "hi" <b>')
    assert 'alt="say &quot;hi&quot; &lt;b&gt;"' in tag and tag.startswith('<img src="data:image/png;base64,')
