"""`make exercises`: learner notebooks drop the solutions, still run top to bottom, and every
checker then reports "not solved yet"; the solved notebooks' stored checks all pass."""
from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient

from attnlib.course import notebooks as cn
from attnlib.course.learner import write_learner_notebooks

WITH_EXERCISES = [p for p in cn.chapter_notebooks()
                  if any(cn.SOLUTION_TAG in cn.tags(c) for c in nbformat.read(p, as_version=4).cells)]
IDS = [p.name for p in WITH_EXERCISES]
CHECK = re.compile(r"\bcheck_\w+\(")


def checker_outputs(nb) -> list[str]:
    """The text each checker cell displayed, one entry per checker cell."""
    out = []
    for c in nb.cells:
        if c.cell_type == "code" and CHECK.search(c.source):
            out.append("".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                               for o in c.outputs))
    return out


def test_some_chapter_has_exercises():
    assert WITH_EXERCISES


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=IDS)
def test_solved_notebook_passes_every_checker(path):
    outputs = checker_outputs(nbformat.read(path, as_version=4))
    assert outputs
    assert all(o.startswith("✅") for o in outputs), outputs


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=IDS)
def test_learner_notebook_runs_and_reports_unsolved(path, tmp_path):
    [target] = write_learner_notebooks([path], tmp_path)
    nb = nbformat.read(target, as_version=4)
    assert not any(cn.SOLUTION_TAG in cn.tags(c) for c in nb.cells)
    assert not any(c.outputs for c in nb.cells if c.cell_type == "code")
    NotebookClient(nb, timeout=300, kernel_name="python3", skip_cells_with_tag="skip-execution",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    outputs = checker_outputs(nb)
    assert outputs and all(o.startswith("⏳ Not solved yet") for o in outputs), outputs
    report = [c for c in nb.cells if c.cell_type == "code" and "report()" in c.source]
    if report:
        assert re.search(r"\b0 of \d+", "".join(o.get("text", "") for o in report[-1].outputs))
