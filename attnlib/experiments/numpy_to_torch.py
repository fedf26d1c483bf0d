"""Checking and timing the PyTorch code: finite-difference gradients and the two attention paths.

- :func:`numerical_gradient`: central finite differences of a NumPy function, the independent
  reference for PyTorch's autograd.
- :func:`best_time`: the least disturbed of several runs of a function.
- :func:`attention_path_times`: time of :func:`attnlib.torch.scaled_dot_product_attention` with
  and without the weights, and of PyTorch's own fused kernel, as the sequence grows;
  :func:`path_times_table` prints them with their ratios.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from attnlib.checks import check_positive_count, check_real
from attnlib.torch import scaled_dot_product_attention

__all__ = ["numerical_gradient", "best_time", "attention_path_times", "path_times_table"]


def numerical_gradient(f: Callable[[np.ndarray], float], x, eps: float = 1e-6) -> np.ndarray:
    r"""Gradient of a scalar function by central differences, one entry at a time.

    .. math:: \frac{\partial f}{\partial x_i} \approx \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2\epsilon}

    The error is :math:`O(\epsilon^2)` plus rounding of order :math:`10^{-16}/\epsilon`: with
    float64 and ``eps=1e-6`` about 1e-9. It costs two calls of ``f`` per entry of ``x``.

    Parameters
    ----------
    f : callable
        ``f(x) -> float`` for an array of ``x``'s shape.
    x : array_like, any shape
        The point; converted to float64 (and never modified).
    eps : float
        Step size.

    Returns
    -------
    numpy.ndarray, same shape as ``x``, float64
    """
    if not callable(f):
        raise TypeError(f"f must be a function of an array returning a float, got {type(f).__name__}")
    check_real(eps, "eps", positive=True)
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    flat, g = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = float(f(x))
        flat[i] = old - eps
        down = float(f(x))
        flat[i] = old
        g[i] = (up - down) / (2 * eps)
    return grad


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _once(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def best_time(fn: Callable[[], object], repeats: int = 5, device=None) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn()``, after one warm-up call.

    The minimum is the run least disturbed by other work on the machine. On CUDA the device is
    synchronised before and after each call (kernels run asynchronously).

    Parameters
    ----------
    fn : callable
        Called with no arguments.
    repeats : int
    device : torch.device, optional
        Synchronised around each call when it is a CUDA device.

    Returns
    -------
    float
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function of no argument, got {type(fn).__name__}")
    repeats = check_positive_count(repeats, "repeats")
    device = torch.device(device or "cpu")
    fn()
    return min(_once(fn, device) for _ in range(repeats))


def attention_path_times(lengths: Sequence[int], batch: int = 1, num_heads: int = 8,
                         head_dim: int = 64, repeats: int = 5, device=None,
                         dtype=torch.float32, seed: int = 0, progress: bool = True) -> dict:
    """Time the three ways to compute attention on (batch, H, L, head_dim) self-attention inputs.

    For each length L: ``"weights"`` is :func:`attnlib.torch.scaled_dot_product_attention` with
    ``need_weights=True`` (scores and weights materialised), ``"fused"`` the same function with
    ``need_weights=False`` (PyTorch's fused kernel), ``"torch"`` a direct call of
    ``torch.nn.functional.scaled_dot_product_attention``. The three are timed interleaved, best of
    ``repeats``, under ``torch.inference_mode()``.

    Parameters
    ----------
    lengths : sequence of int
        Sequence lengths L (queries and keys).
    batch, num_heads, head_dim : int
    repeats : int
    device : torch.device, optional
        Defaults to the CPU.
    dtype : torch.dtype
    seed : int
        Seeds a private generator for the inputs (the global RNG is left alone).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        ``"L"`` (int array), ``"weights"``, ``"fused"``, ``"torch"`` (float arrays of seconds) and
        ``"weights_bytes"`` (int array: size of one (batch, H, L, L) weights array; the weights
        path holds the scores and the weights, the fused path neither), plus ``"shape"``,
        ``"device"`` and ``"dtype"`` (str).
    """
    from tqdm.auto import tqdm

    lengths = [check_positive_count(L, "each of lengths") for L in lengths]
    for name, n in (("batch", batch), ("num_heads", num_heads), ("head_dim", head_dim), ("repeats", repeats)):
        check_positive_count(n, name)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    device = torch.device(device or "cpu")
    gen = torch.Generator().manual_seed(seed)
    paths = {
        "weights": lambda q, k, v: scaled_dot_product_attention(q, k, v),
        "fused": lambda q, k, v: scaled_dot_product_attention(q, k, v, need_weights=False),
        "torch": lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
    }
    times = {name: [] for name in paths}
    itemsize = torch.empty((), dtype=dtype).element_size()
    with torch.inference_mode():
        for L in tqdm(list(lengths), desc="sequence lengths", disable=not progress):
            q, k, v = (torch.randn(batch, num_heads, int(L), head_dim, generator=gen)
                       .to(device=device, dtype=dtype) for _ in range(3))
            best = {name: math.inf for name in paths}
            for fn in paths.values():  # warm-up
                fn(q, k, v)
            for _ in range(max(1, int(repeats))):
                for name, fn in paths.items():
                    best[name] = min(best[name], _once(lambda: fn(q, k, v), device))
            for name in paths:
                times[name].append(best[name])
    L = np.asarray(lengths, dtype=int)
    return {"L": L, **{name: np.asarray(t) for name, t in times.items()},
            "weights_bytes": batch * num_heads * L.astype(np.int64) ** 2 * itemsize,
            "shape": f"({batch}, {num_heads}, L, {head_dim})", "device": str(device),
            "dtype": str(dtype).replace("torch.", "")}


def path_times_table(times: dict) -> str:
    """The times of :func:`attention_path_times` as a text table, with ratios to torch's SDPA.

    Parameters
    ----------
    times : dict
        As returned by :func:`attention_path_times`.

    Returns
    -------
    str
        One row per length: milliseconds of each path, then ``weights / torch`` and
        ``fused / torch``.
    """
    lines = [f"{'L':>6}  {'weights ms':>10}  {'fused ms':>9}  {'torch ms':>9}  "
             f"{'weights/torch':>13}  {'fused/torch':>11}"]
    for i, L in enumerate(times["L"]):
        w, f, t = (float(times[p][i]) * 1e3 for p in ("weights", "fused", "torch"))
        lines.append(f"{int(L):>6}  {w:>10.2f}  {f:>9.2f}  {t:>9.2f}  {w / t:>13.2f}  {f / t:>11.2f}")
    return "\n".join(lines)
