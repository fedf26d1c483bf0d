"""pytest hooks for the unit tests: tests marked ``cuda`` skip where there is no CUDA GPU."""
from __future__ import annotations

import pytest


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
