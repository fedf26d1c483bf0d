"""How every explorer shows its frame: as a PNG image, redrawn in its output widget."""
from __future__ import annotations

import io

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def show_png(fig: Figure, dpi: int = 80) -> None:
    """Display ``fig`` as a PNG image (in an explorer's output widget, on every change).

    The figure is closed afterwards, so moving a slider a hundred times does not leave a
    hundred figures open in pyplot.
    """
    from IPython.display import Image, display  # imported here: only explorers need IPython

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="png"))
