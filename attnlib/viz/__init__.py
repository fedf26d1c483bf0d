"""Figures and interactive explorers the chapters use, one module per concept.

- :mod:`attnlib.viz.heatmap`  attention weights as a labelled heatmap
- :mod:`attnlib.viz.explorer` an ipywidgets explorer of one query's attention (query word,
  temperature, causal mask) and the static figure of its key settings for the book
- :mod:`attnlib.viz.source`   ``show_source``: attnlib's own code, shown on the page
- :mod:`attnlib.viz.frames`   explorers whose frames are rendered ahead and switched in the browser
- :mod:`attnlib.viz.paths`    path length between two tokens: recurrent network vs self-attention
- :mod:`attnlib.viz.embeddings`, :mod:`attnlib.viz.attention_pooling`, :mod:`attnlib.viz.scores`,
  :mod:`attnlib.viz.masking`, :mod:`attnlib.viz.multi_head`: the figures and explorers of Part I,
  imported from their modules

Functions that draw return a :class:`matplotlib.figure.Figure`; explorers return a widget to display.
"""
from attnlib.viz.explorer import attend_one, attention_explorer, explorer_frame, explorer_snapshots
from attnlib.viz.heatmap import attention_heatmap
from attnlib.viz.paths import path_length_figure
from attnlib.viz.source import show_source

__all__ = ["attention_heatmap", "attend_one", "attention_explorer", "explorer_frame",
           "explorer_snapshots", "path_length_figure", "show_source"]
