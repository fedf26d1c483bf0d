"""``make exercises``: write learner notebooks, with the cells tagged ``solution`` removed.

Usage: ``python -m attnlib.course.learner --out DIR [NOTEBOOK ...]``. Each learner notebook runs
top to bottom; its checkers report "Not solved yet" until the learner fills in the answers.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from attnlib.course.notebooks import ROOT, chapter_notebooks, learner_copy


def write_learner_notebooks(paths: list[Path], out: Path) -> list[Path]:
    """Write a learner copy of each notebook under ``out``, mirroring the chapters/ layout."""
    written = []
    for path in paths:
        path = path.resolve()
        try:
            rel = path.relative_to(ROOT / "chapters")
        except ValueError:
            rel = Path(path.name)
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(learner_copy(nbformat.read(path, as_version=4)), target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "exercises")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    for target in write_learner_notebooks(args.notebooks or chapter_notebooks(), args.out):
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
