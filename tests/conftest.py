"""pytest hooks for the unit tests: tests marked ``cuda`` skip where there is no CUDA GPU.

At import, before any test or kernel starts, ``ATTNLIB_PROGRESS_FILE`` is pointed at a file in a
temporary folder (removed at exit): the checkers that tests (and the notebook kernels they start,
which inherit the environment) run then never write the user's progress file.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

from attnlib.exercises.progress import ENV, TEMPORARY_PREFIX

_PROGRESS_DIR = tempfile.mkdtemp(prefix=TEMPORARY_PREFIX)
os.environ[ENV] = os.path.join(_PROGRESS_DIR, "progress.json")
atexit.register(shutil.rmtree, _PROGRESS_DIR, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    cuda_items = [item for item in items if item.get_closest_marker("cuda")]
    if not cuda_items:
        return
    import torch  # only when a cuda test was collected: importing torch takes a moment

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in cuda_items:
        item.add_marker(skip)
