"""How every explorer shows a recomputed frame: as a PNG image, redrawn in its output widget."""
from __future__ import annotations

from matplotlib.figure import Figure


def show_png(fig: Figure, dpi: int = 80) -> None:
    """Display ``fig`` as a PNG image (in an explorer's output widget, on every change).

    The figure is closed afterwards, so moving a slider a hundred times does not leave a
    hundred figures open in pyplot. The PNG comes from :func:`attnlib.viz.frames.figure_png`,
    which also draws a frame explorer's pre-rendered frames.
    """
    from IPython.display import Image, display  # imported here: only explorers need IPython

    from attnlib.viz.frames import figure_png

    display(Image(data=figure_png(fig, dpi=dpi), format="png"))
