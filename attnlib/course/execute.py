"""``make execute``: re-run chapter notebooks in place, storing outputs, widget state and runtime.

Usage: ``python -m attnlib.course.execute [NOTEBOOK ...]`` (all chapters when none is given).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from tqdm.auto import tqdm

from attnlib.course.dependencies import (
    attnlib_imports,
    direct_imports,
    distributions_of_modules,
    required_extras,
    split_incidental,
)
from attnlib.course.notebooks import chapter_notebooks, runtime_text, set_runtime_cell, sync_colab_cell
from attnlib.exercises.progress import temporary_progress_file

# Printed by a last, temporary cell: the top-level modules the kernel holds after the notebook.
MODULES_PROBE = "import json, sys\nprint(json.dumps(sorted({m.partition('.')[0] for m in sys.modules})))"


def _client(nb, path: Path, timeout: int) -> NotebookClient:
    return NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                          store_widget_state=True, skip_cells_with_tag="skip-execution",
                          resources={"metadata": {"path": str(path.parent)}})


def kernel_baseline(path: Path) -> set[str]:
    """The top-level modules a fresh kernel holds after running one cell (what every notebook has)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(MODULES_PROBE)])
    _client(nb, path, 60).execute()
    return set(json.loads(nb.cells[0].outputs[0]["text"]))


def execute(path: Path, timeout: int = 600, baseline: set[str] | None = None) -> float:
    """Execute one notebook in its own folder and write it back; return its runtime in seconds.

    Its checkers record into a temporary progress file, not the user's (see attnlib.exercises.progress).
    Also records in ``metadata.attnlib`` the third-party distributions the run imported and the
    extras of attnlib that install them; the Colab cell is then written to install those extras.
    """
    nb = nbformat.read(path, as_version=4)
    baseline = kernel_baseline(path) if baseline is None else baseline
    nb.cells.append(nbformat.v4.new_code_cell(MODULES_PROBE))
    client = _client(nb, path, timeout)
    # The kernel inherits the environment: its checkers record into a throwaway progress file,
    # never the user's, and every notebook starts from an empty record (so its output is the same).
    with temporary_progress_file():
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    probe = nb.cells.pop()
    imported = distributions_of_modules(set(json.loads(probe.outputs[0]["text"])) - baseline)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    needed, incidental = split_incidental(imported, direct_imports(code) | attnlib_imports())
    nb.metadata["attnlib"] = {"distributions": needed, "incidental": incidental, "extras": required_extras(needed)}
    sync_colab_cell(nb)
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
    baseline = kernel_baseline(paths[0]) if paths else set()
    for path in tqdm(paths, desc="executing notebooks", unit="nb"):
        seconds = execute(path, baseline=baseline)
        total += seconds
        tqdm.write(f"{path}: {seconds:.1f} s ({runtime_text(seconds)})")
    print(f"{len(paths)} notebooks executed in {total:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
