"""How every explorer shows a recomputed frame: as a PNG image with alt text, redrawn in its output widget."""
from __future__ import annotations

from matplotlib.figure import Figure


def show_png(fig: Figure, dpi: int = 80, alt: str | None = None) -> None:
    """Display ``fig`` as a PNG image with alt text (in an explorer's output widget, on every change).

    The picture is an HTML ``<img>`` (:func:`attnlib.viz.frames.png_html`), not an image output:
    the book's widget manager and JupyterLab drop an image output's alt, a screen reader then has
    nothing to read. ``alt`` defaults to the figure's titles. The figure is closed afterwards, so
    moving a slider a hundred times does not leave a hundred figures open in pyplot. The PNG comes
    from :func:`attnlib.viz.frames.figure_png`, which also draws a frame explorer's frames.
    """
    from IPython.display import HTML, display  # imported here: only explorers need IPython

    from attnlib.viz.frames import figure_png, figure_titles, png_html

    if alt is None:
        alt = "Figure: " + ("; ".join(figure_titles(fig)) or "an explorer's picture")
    display(HTML(png_html(figure_png(fig, dpi=dpi), alt)))
