"""``make execute``: re-run chapter notebooks in place, storing outputs, widget state and runtime.

Usage: ``python -m attnlib.course.execute [NOTEBOOK ...]`` (all chapters when none is given).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from tqdm.auto import tqdm

from attnlib.course.notebooks import chapter_notebooks, runtime_text, set_runtime_cell, sync_colab_cell


def execute(path: Path, timeout: int = 600) -> float:
    """Execute one notebook in its own folder and write it back; return its runtime in seconds."""
    nb = nbformat.read(path, as_version=4)
    sync_colab_cell(nb)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            store_widget_state=True, skip_cells_with_tag="skip-execution",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    set_runtime_cell(nb, seconds)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or chapter_notebooks()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    total = 0.0
    for path in tqdm(paths, desc="executing notebooks", unit="nb"):
        seconds = execute(path)
        total += seconds
        tqdm.write(f"{path}: {seconds:.1f} s ({runtime_text(seconds)})")
    print(f"{len(paths)} notebooks executed in {total:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
