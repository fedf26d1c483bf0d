"""How every explorer shows a recomputed frame: :func:`attnlib.viz.frames.show_png`, named here too.

The function lives in :mod:`attnlib.viz.frames` beside the frames it draws like (one module, no
import cycle); the chapters' viz modules import it from here or from there.
"""
from attnlib.viz.frames import show_png

__all__ = ["show_png"]
