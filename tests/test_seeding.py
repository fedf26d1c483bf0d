"""attnlib.seed makes runs repeatable, for NumPy and for PyTorch imported before or after it."""
import subprocess
import sys

import numpy as np

import attnlib


def test_seed_repeats_numpy_draws():
    a = attnlib.seed(3).normal(size=4), np.random.rand(2)
    b = attnlib.seed(3).normal(size=4), np.random.rand(2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def _torch_draw_after_late_import(seed: int) -> str:
    code = ("import attnlib, sys; attnlib.seed(%d); assert 'torch' not in sys.modules; "
            "import attnlib.torch, torch; print(torch.rand(3).tolist())" % seed)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_torch_imported_after_seed_is_seeded_on_import():
    import torch
    torch.manual_seed(5)
    expected = str(torch.rand(3).tolist())
    assert _torch_draw_after_late_import(5).strip() == expected
    assert _torch_draw_after_late_import(6).strip() != expected
