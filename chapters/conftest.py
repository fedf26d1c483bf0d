"""pytest settings for nbval over the chapter notebooks (`make nbval`), and their measured runtimes.

nbval runs each notebook once. The wall time of every notebook in this run (kernel start, every
cell, shutdown: the durations of all its items' setup, call and teardown) is written to
``_build/nbval_times.json`` and printed as a table at the end, next to the runtime the notebook
states (`make execute`). A notebook over ``RUNTIME_SLACK`` (2) x the design's 2-minute budget
fails the run; over the budget alone is only marked in the table (see attnlib.course.notebooks).
Only notebooks that ran are measured, so running some of them works the same way.

The checkers record a learner's progress in a file; this run points them at a temporary one (the
kernels inherit the environment), so nbval never writes the progress of whoever runs it.
"""
import atexit
import json
import os
import shutil
import tempfile
from collections import defaultdict

import nbformat
import pytest

from attnlib.course import notebooks as cn
from attnlib.exercises.progress import ENV, TEMPORARY_PREFIX

_PROGRESS_DIR = tempfile.mkdtemp(prefix=TEMPORARY_PREFIX)
os.environ[ENV] = os.path.join(_PROGRESS_DIR, "progress.json")
atexit.register(shutil.rmtree, _PROGRESS_DIR, ignore_errors=True)

_SECONDS: dict[str, float] = defaultdict(float)  # notebook (path relative to the rootdir) -> seconds
_CELLS: dict[str, int] = defaultdict(int)  # notebook -> cells nbval ran (not skipped)
_STATED: dict[str, int | None] = {}  # notebook -> the runtime it states, in seconds
_FAILURES: list[str] = []


def pytest_collection_modifyitems(items):
    # nbval waits a fixed 5 s for a cell's outputs once the kernel reports the cell done; on a
    # busy 2-core machine the progress-bar messages of a training cell can arrive later than that.
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = 60


def pytest_runtest_logreport(report):
    notebook = report.nodeid.split("::")[0]
    if notebook.endswith(".ipynb"):
        _SECONDS[notebook] += report.duration
        if report.when == "call" and not report.skipped:
            _CELLS[notebook] += 1


def pytest_sessionfinish(session, exitstatus):
    if not _SECONDS:
        return
    root = session.config.rootpath
    for name in _SECONDS:
        try:
            _STATED[name] = cn.runtime_seconds(nbformat.read(root / name, as_version=4))
        except (OSError, ValueError):
            _STATED[name] = None
    out = root / "_build" / "nbval_times.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "budget_s": cn.RUNTIME_BUDGET_S, "total_budget_s": cn.TOTAL_RUNTIME_BUDGET_S,
        "slack": cn.RUNTIME_SLACK,
        "notebooks": {name: {"seconds": round(s, 2), "cells": _CELLS[name], "stated_s": _STATED[name]}
                      for name, s in _SECONDS.items()},
    }, indent=1) + "\n")
    _FAILURES[:] = cn.runtime_failures(dict(_SECONDS))
    if _FAILURES and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    if not _SECONDS:
        return
    tr = terminalreporter
    tr.write_sep("=", "notebook runtimes, measured by nbval in this run")
    tr.write_line(cn.runtime_table(dict(_SECONDS), dict(_CELLS), _STATED))
    tr.write_line(f"(written to {config.rootpath / '_build' / 'nbval_times.json'})")
    for failure in _FAILURES:
        tr.write_line(f"FAILED runtime: {failure}", red=True, bold=True)
