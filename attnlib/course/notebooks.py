"""Conventions every chapter notebook shares, applied by the course tools.

- The first cell installs attnlib in Colab. It is written from the repository URL in
  ``_config.yml`` (set there once), tagged so nbval, nbclient and the book skip or hide it.
- The cell after the title states the notebook's measured runtime on a 2-core CPU.
- Cells tagged ``solution`` hold exercise solutions; learner copies drop them.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
COLAB_TAGS = ["colab-install", "skip-execution", "nbval-skip", "remove-cell"]
RUNTIME_TAG = "runtime"
SOLUTION_TAG = "solution"


def repository_url(config: Path = ROOT / "_config.yml") -> str:
    """Read ``repository.url`` from the book's ``_config.yml``."""
    match = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)", config.read_text(), re.M)
    if not match:
        raise ValueError(f"{config} has no repository.url")
    return match.group(1)


def tags(cell) -> list[str]:
    """The tags of a notebook cell (an empty list when it has none)."""
    return cell.get("metadata", {}).get("tags", [])


def colab_cell_source(url: str) -> str:
    """Source of the first cell: installs attnlib when, and only when, run in Colab."""
    return ("# Colab only: install attnlib, the course's library. Skipped locally, by nbval and by the book.\n"
            "import sys\n"
            "if \"google.colab\" in sys.modules:\n"
            f"    %pip install -q \"attnlib[torch] @ git+{url}\"")


def sync_colab_cell(nb, url: str | None = None) -> None:
    """Make the notebook's first cell the Colab install cell for ``url`` (inserting it if absent)."""
    cell = nbformat.v4.new_code_cell(colab_cell_source(url or repository_url()))
    cell.metadata["tags"] = list(COLAB_TAGS)
    cells = nb.cells
    if cells and "colab-install" in tags(cells[0]):
        cells[0] = cell
    else:
        cells.insert(0, cell)


def round_runtime(seconds: float) -> int:
    """Round a runtime up to a stable figure: 5 s steps below a minute, 15 s steps above."""
    step = 5 if seconds < 60 else 15
    return int(max(step, math.ceil(seconds / step) * step))


def runtime_text(seconds: float) -> str:
    """Human wording of a runtime: 'about 20 s' or 'about 1 min 15 s'."""
    s = round_runtime(seconds)
    return f"about {s} s" if s < 60 else f"about {s // 60} min" + (f" {s % 60} s" if s % 60 else "")


def set_runtime_cell(nb, seconds: float) -> None:
    """Write (or refresh) the runtime note just after the notebook's title cell."""
    text = (":::{admonition} Runtime\n:class: tip\n"
            f"This notebook runs top to bottom in **{runtime_text(seconds)}** on a 2-core laptop CPU, "
            "with no GPU and no downloads (measured by `make execute`).\n:::")
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = [RUNTIME_TAG]
    for i, c in enumerate(nb.cells):
        if RUNTIME_TAG in tags(c):
            nb.cells[i] = cell
            return
    title = next((i for i, c in enumerate(nb.cells)
                  if c.cell_type == "markdown" and c.source.lstrip().startswith("# ")), None)
    nb.cells.insert(0 if title is None else title + 1, cell)


def runtime_seconds(nb) -> int | None:
    """The runtime a notebook states, in seconds, or None when it states none."""
    for c in nb.cells:
        if RUNTIME_TAG in tags(c):
            m = re.search(r"about (?:(\d+) min)?\s*(?:(\d+) s)?", c.source)
            if m and (m.group(1) or m.group(2)):
                return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)
    return None


def learner_copy(nb):
    """A copy of ``nb`` for learners: solution cells removed, outputs and widget state cleared."""
    out = nbformat.from_dict(nb)
    out.cells = [c for c in out.cells if SOLUTION_TAG not in tags(c)]
    for c in out.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    out.metadata.pop("widgets", None)
    return out


def chapter_notebooks(root: Path = ROOT) -> list[Path]:
    """Every chapter notebook, in order."""
    return sorted(p for p in (root / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
