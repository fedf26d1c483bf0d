"""The one way explorers show a frame: `attnlib.viz._display.show_png`."""
from pathlib import Path

import IPython.display
import matplotlib.pyplot as plt

from attnlib.viz._display import show_png

VIZ = Path(__file__).resolve().parents[1] / "attnlib" / "viz"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_show_png_displays_one_png_of_the_figure_at_its_dpi_and_closes_it(monkeypatch):
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs: shown.extend(objs))
    fig, ax = plt.subplots(figsize=(2.0, 1.0))
    ax.plot([0, 1], [1, 0])
    show_png(fig, dpi=50)
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.Image)
    assert shown[0].format == "png"
    png = shown[0].data
    assert png.startswith(PNG_MAGIC)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (100, 50)  # 2 x 1 inches at 50 dpi
    assert fig.number not in plt.get_fignums(), "the figure should be closed after display"


def test_no_viz_module_writes_its_own_png():
    """A concept is coded once: every PNG comes from frames.figure_png (show_png uses it too)."""
    own = [p.name for p in VIZ.glob("*.py")
           if p.name not in ("_display.py", "frames.py") and ("io.BytesIO" in p.read_text() or "Image(" in p.read_text())]
    assert not own, f"use attnlib.viz.frames.figure_png (or _display.show_png) in {own}"
