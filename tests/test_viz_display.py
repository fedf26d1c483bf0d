"""The one way explorers show a frame: `attnlib.viz._display.show_png`."""
import base64
import html
import re
from pathlib import Path

import IPython.display
import matplotlib.pyplot as plt

from attnlib.viz._display import show_png

VIZ = Path(__file__).resolve().parents[1] / "attnlib" / "viz"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _shown_img(shown):
    """The alt text and the PNG bytes of the one <img> that was displayed."""
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.HTML)
    tag = re.fullmatch(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)" [^>]*>', shown[0].data)
    assert tag, shown[0].data[:200]
    return html.unescape(tag.group(2)), base64.b64decode(tag.group(1))


def test_show_png_displays_one_png_of_the_figure_at_its_dpi_and_closes_it(monkeypatch):
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs: shown.extend(objs))
    fig, ax = plt.subplots(figsize=(2.0, 1.0))
    ax.plot([0, 1], [1, 0])
    show_png(fig, dpi=50, alt='weights of "sat" <T = 1>')
    alt, png = _shown_img(shown)
    assert alt == 'weights of "sat" <T = 1>'  # quotes and brackets survive the HTML
    assert png.startswith(PNG_MAGIC)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (100, 50)  # 2 x 1 inches at 50 dpi
    assert fig.number not in plt.get_fignums(), "the figure should be closed after display"


def test_show_png_alt_defaults_to_the_figures_titles(monkeypatch):
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs: shown.extend(objs))
    fig, axes = plt.subplots(1, 2, figsize=(2.0, 1.0))
    fig.suptitle("loss curves")
    axes[0].set_title("post-LN")
    axes[1].set_title("pre-LN")
    show_png(fig, dpi=20)
    assert _shown_img(shown)[0] == "Figure: loss curves; post-LN; pre-LN"


def test_no_viz_module_writes_its_own_png():
    """A concept is coded once: every PNG comes from frames.figure_png (show_png uses it too)."""
    own = [p.name for p in VIZ.glob("*.py")
           if p.name not in ("_display.py", "frames.py") and ("io.BytesIO" in p.read_text() or "Image(" in p.read_text())]
    assert not own, f"use attnlib.viz.frames.figure_png (or _display.show_png) in {own}"
