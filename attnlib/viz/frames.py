"""Explorers that work without a kernel: frames rendered ahead, switched in the browser.

A reader of the static book has no kernel, so a knob cannot recompute its picture there. A
frame explorer therefore gives every knob a small set of values, renders the picture for every
combination when the notebook runs, and stacks the pictures in ipywidgets ``Stack`` widgets
whose ``selected_index`` is linked in the browser (``jslink``) to the knob's ``index``: moving a
knob in the book switches the frame with no kernel behind it. Two knobs nest two stacks.

In a live kernel the same explorer also offers, folded under "any value", controls that
recompute the picture for values outside the rendered set (:class:`FreeKnob`); that part is
tagged with the CSS class ``attnlib-live-only`` and hidden in the book, where it cannot work.

Every frame carries alt text (the explorer, the knob values and the figure's titles) for screen
readers. ipywidgets' ``Image`` has no alt, and giving it a ``tooltip`` stops the book's widget
manager from drawing it (tried in Chromium), so a frame is an ``HTML`` widget holding an ``<img>``
with the PNG inline and its ``alt``; the PNG's bytes stay on the widget as ``.png``.

Build one with :func:`frame_explorer`; every chapter's explorer uses it.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from matplotlib.figure import Figure

__all__ = ["show_png", "Knob", "FreeKnob", "MAX_FRAMES", "LIVE_ONLY_CLASS", "FRAME_CLASS", "frame_explorer", "figure_png",
           "figure_titles", "frame_alt", "png_html"]

# Frames are stored in the notebook: keep them few (the design asks for tens, not hundreds).
MAX_FRAMES = 40
# The class of the live-only part; the book's stylesheet hides it.
LIVE_ONLY_CLASS = "attnlib-live-only"
# The class of every pre-rendered frame (an HTML widget holding one <img> with alt text).
FRAME_CLASS = "attnlib-frame"


@dataclass(frozen=True)
class Knob:
    """A knob with a few values, each of which gets a pre-rendered frame.

    Parameters
    ----------
    name : str
        The keyword the value is passed to ``render`` under.
    options : sequence of (label, value) pairs, or of values
        The values the knob takes in the book (labels default to ``str(value)``).
    description : str
        The knob's label on the page.
    style : {"slider", "dropdown", "toggle"}
        ``SelectionSlider``, ``Dropdown`` or ``ToggleButtons``.
    value : object, optional
        The value selected at first (default the first option).
    """

    name: str
    options: Sequence
    description: str = ""
    style: str = "slider"
    value: object = None
    labels: tuple[str, ...] = field(init=False, repr=False)
    values: tuple = field(init=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"a knob's name must be a Python identifier (it names render's argument), got {self.name!r}")
        pairs = [o if isinstance(o, tuple) and len(o) == 2 else (_label(o), o) for o in self.options]
        if not pairs:
            raise ValueError(f"knob {self.name!r} needs at least one option")
        labels = tuple(str(label) for label, _ in pairs)
        if len(set(labels)) != len(labels):
            raise ValueError(f"knob {self.name!r} has repeated labels: {list(labels)}")
        if self.style not in ("slider", "dropdown", "toggle"):
            raise ValueError(f"knob {self.name!r}: style must be 'slider', 'dropdown' or 'toggle', got {self.style!r}")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "values", tuple(v for _, v in pairs))
        if self.value is not None and not any(_same(self.value, v) for v in self.values):
            raise ValueError(f"knob {self.name!r}: initial value {self.value!r} is not one of its options {list(self.values)}")

    @property
    def index(self) -> int:
        """Index of the initial value."""
        if self.value is None:
            return 0
        return next(i for i, v in enumerate(self.values) if _same(self.value, v))


@dataclass(frozen=True)
class FreeKnob:
    """A live-kernel control that recomputes for any value (hidden in the static book).

    ``widget`` is any ipywidgets value widget (e.g. a ``FloatLogSlider``); its value is passed to
    ``render`` under ``name``, the other arguments coming from the frame knobs.
    """

    name: str
    widget: object


def _label(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b


def figure_png(fig: Figure, dpi: int = 80, colors: int | None = 256) -> bytes:
    """The PNG bytes of ``fig`` (closed afterwards if pyplot holds it).

    With ``colors`` (default 256) the picture is stored with a palette of that many colours,
    about a third of the bytes of a full-colour PNG for a plot: an explorer's tens of frames
    then fit in the notebook at a readable resolution. ``colors=None`` keeps full colour.
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    if plt.fignum_exists(getattr(fig, "number", -1)):
        plt.close(fig)
    if colors is None:
        return buf.getvalue()
    from PIL import Image  # matplotlib's own dependency

    buf.seek(0)
    out = io.BytesIO()
    Image.open(buf).convert("RGB").quantize(colors=int(colors)).save(out, format="png", optimize=True)
    return out.getvalue()


def figure_titles(fig: Figure) -> list[str]:
    """The figure's suptitle, then each axes' title, whitespace collapsed, empty ones and repeats dropped."""
    titles = []
    for title in [fig.get_suptitle(), *(ax.get_title() for ax in fig.axes)]:
        title = " ".join(title.split())
        if title and title not in titles:
            titles.append(title)
    return titles


def frame_alt(explorer: str, settings: Sequence[tuple[str, str]], fig: Figure | None = None) -> str:
    """The alt text of one frame: what the explorer is, the knobs' settings, the figure's titles.

    ``settings`` holds (knob description, value label) pairs; the titles (:func:`figure_titles`)
    say what the panels show.
    """
    text = f"{explorer}, frame for " + ", ".join(f"{name} = {label}" for name, label in settings)
    titles = figure_titles(fig) if fig is not None else []
    return text + (": " + "; ".join(titles) if titles else "")


def png_html(png: bytes, alt: str) -> str:
    """An ``<img>`` tag showing ``png`` inline (a data URI), with ``alt``, shrinking to fit its column."""
    import base64
    import html

    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return (f'<img src="{src}" alt="{html.escape(alt, quote=True)}" '
            'style="display:block;max-width:100%;height:auto">')


def _frame(png: bytes, alt: str):
    """A frame: an HTML widget holding :func:`png_html` (``.png`` keeps the bytes)."""
    import ipywidgets as widgets

    frame = widgets.HTML(png_html(png, alt))
    frame.add_class(FRAME_CLASS)
    frame.png = png
    return frame


def _explorer_name(render) -> str:
    """The function that defines ``render`` ("attention_explorer.<locals>.render"), in words."""
    scopes = getattr(render, "__qualname__", "").split(".<locals>.")
    return scopes[-2].split(".")[-1].replace("_", " ") if len(scopes) > 1 else "explorer"


def _knob_widget(knob: Knob):
    import ipywidgets as widgets

    options = list(zip(knob.labels, range(len(knob.labels))))
    common = dict(options=options, value=knob.index, description=knob.description or knob.name,
                  style={"description_width": "initial"})
    if knob.style == "slider":
        return widgets.SelectionSlider(continuous_update=True, layout=widgets.Layout(width="360px"), **common)
    if knob.style == "dropdown":
        return widgets.Dropdown(layout=widgets.Layout(width="260px"), **common)
    return widgets.ToggleButtons(**common)


def frame_explorer(render: Callable[..., Figure], knobs: Sequence[Knob], free: Sequence[FreeKnob] = (),
                   fixed: dict | None = None, note: str = "", dpi: int = 80, alt: str | None = None):
    """An explorer whose frames are rendered now and switched by its knobs in the browser.

    Parameters
    ----------
    render : callable
        ``render(**values) -> matplotlib.figure.Figure``, called with one value per knob (and
        ``fixed``); it should build a ``Figure`` directly (not through pyplot).
    knobs : sequence of Knob
        One or more knobs; the product of their options is rendered (at most :data:`MAX_FRAMES`).
    free : sequence of FreeKnob
        Live-kernel controls that recompute for any value (hidden in the book).
    fixed : dict, optional
        Keyword arguments passed to every ``render`` call.
    note : str
        A line of HTML under the knobs.
    dpi : int
        Resolution of the stored frames.
    alt : str, optional
        What the explorer shows, the start of every frame's alt text (default: the name of the
        function that defines ``render``, e.g. "attention explorer"); :func:`frame_alt` adds the
        knob values and the figure's titles.

    Returns
    -------
    ipywidgets.VBox
        Display it (the last expression of a cell). ``.frames`` holds the frames' count.

    Raises
    ------
    ValueError
        When there are no knobs, two share a name, or the frames would exceed :data:`MAX_FRAMES`.
    """
    import ipywidgets as widgets

    knobs = list(knobs)
    if not knobs:
        raise ValueError("a frame explorer needs at least one knob")
    names = [k.name for k in knobs] + [f.name for f in free]
    if len(set(names)) != len(names):
        raise ValueError(f"two knobs share a name: {names}")
    count = 1
    for k in knobs:
        count *= len(k.values)
    if count > MAX_FRAMES:
        raise ValueError(f"{count} frames ({' x '.join(str(len(k.values)) for k in knobs)}) is more than "
                         f"{MAX_FRAMES}: give the knobs fewer values (the frames are stored in the notebook)")
    fixed = dict(fixed or {})
    controls = [_knob_widget(k) for k in knobs]
    explorer = alt or _explorer_name(render)

    def build(depth: int, chosen: dict, settings: tuple):
        # A stack over this knob's values; its children are the next knob's stacks, or the frames.
        children = []
        knob = knobs[depth]
        for label, value in zip(knob.labels, knob.values):
            here = {**chosen, knob.name: value}
            said = (*settings, (knob.description or knob.name, label))
            if depth + 1 == len(knobs):
                fig = render(**fixed, **here)
                text = frame_alt(explorer, said, fig)
                children.append(_frame(figure_png(fig, dpi=dpi), text))
            else:
                children.append(build(depth + 1, here, said))
        stack = widgets.Stack(children, selected_index=knobs[depth].index)
        links.append(widgets.jslink((controls[depth], "index"), (stack, "selected_index")))
        return stack

    links: list = []
    frames = build(0, {}, ())
    # The knobs sit directly in the VBox: with the book's widget manager (html-manager 1.0.15), a
    # jslink whose source is inside an HBox leaves the linked Stack without a view (tried in Chromium).
    parts = list(controls)
    if note:
        parts.append(widgets.HTML(f"<small>{note}</small>"))
    parts.append(frames)
    if free:
        parts.append(_live_part(render, knobs, controls, free, fixed, dpi, explorer))
    box = widgets.VBox(parts)
    box.add_class("attnlib-frame-explorer")
    box.frames = count
    box.links = links
    return box


def _live_part(render, knobs, controls, free, fixed, dpi, explorer):
    """The folded live-kernel part: free controls that recompute into an Output widget.

    Nothing is drawn until a control moves, so the notebook stores no extra picture.
    """
    import ipywidgets as widgets

    out = widgets.Output()

    def redraw(_change=None):
        chosen = {k.name: k.values[c.index] for k, c in zip(knobs, controls)}
        chosen.update({f.name: f.widget.value for f in free})
        settings = [(k.description or k.name, k.labels[c.index]) for k, c in zip(knobs, controls)]
        settings += [(f.widget.description or f.name, _label(f.widget.value)) for f in free]
        fig = render(**fixed, **chosen)
        with out:
            out.clear_output(wait=True)
            show_png(fig, dpi=dpi, alt=frame_alt(explorer, settings, fig))

    for f in free:
        f.widget.observe(redraw, names="value")
    # A plain VBox, not an Accordion: the Accordion's icons make the book's widget manager ask for
    # FontAwesome files at a path the book does not serve (404s in Chromium).
    title = widgets.HTML("<small><b>Any value</b> (recomputes; needs a running kernel)</small>")
    part = widgets.VBox([title, widgets.HBox([f.widget for f in free]), out])
    part.add_class(LIVE_ONLY_CLASS)
    return part


def show_png(fig: Figure, dpi: int = 80, alt: str | None = None) -> None:
    """Display ``fig`` as a PNG image with alt text (in an explorer's output widget, on every change).

    The picture is an HTML ``<img>`` (:func:`png_html`), not an image output:
    the book's widget manager and JupyterLab drop an image output's alt, a screen reader then has
    nothing to read. ``alt`` defaults to the figure's titles. The figure is closed afterwards, so
    moving a slider a hundred times does not leave a hundred figures open in pyplot. The PNG comes
    from :func:`figure_png`, which also draws a frame explorer's frames.
    """
    from IPython.display import HTML, display  # imported here: only explorers need IPython

    if alt is None:
        alt = "Figure: " + ("; ".join(figure_titles(fig)) or "an explorer's picture")
    display(HTML(png_html(figure_png(fig, dpi=dpi), alt)))
