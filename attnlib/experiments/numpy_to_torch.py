"""Checking and timing the PyTorch code: finite-difference gradients and the two attention paths.

- :func:`numerical_gradient`: central finite differences of a NumPy function, the independent
  reference for PyTorch's autograd.
- :func:`best_time`: the least disturbed of several runs of a function.
- :func:`attention_path_ratios`: the time of :func:`attnlib.torch.scaled_dot_product_attention`
  with and without the weights, as a ratio to PyTorch's own fused kernel, measured interleaved
  (:func:`attnlib.experiments.multi_head.interleaved_ratios`) as the sequence grows;
  :func:`path_ratios_table` prints them. The chapter shows only these ratios: absolute times on a
  shared machine are mostly a measure of its load.
- :func:`loop_batch_ratio`: how many times longer a Python loop over examples takes than one
  batched call, measured interleaved.
- :func:`attention_path_times` and :func:`best_time`: absolute times (best of runs), for a quiet
  machine of your own.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from attnlib.checks import check_positive_count, check_real
from attnlib.experiments.multi_head import interleaved_ratios
from attnlib.torch import scaled_dot_product_attention

__all__ = ["numerical_gradient", "best_time", "attention_path_times", "attention_path_ratios",
           "path_ratios_table", "loop_batch_ratio"]


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


def _sync_fn(device: torch.device):
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None


def attention_path_ratios(lengths: Sequence[int], batch: int = 1, num_heads: int = 8,
                          head_dim: int = 64, rounds: int = 15, device=None,
                          dtype=torch.float32, seed: int = 0, progress: bool = True) -> dict:
    """Time ratios of the two attnlib paths to torch's SDPA on (batch, H, L, head_dim) inputs.

    For each length L, three calls are timed in alternation for ``rounds`` rounds
    (:func:`attnlib.experiments.multi_head.interleaved_ratios`), under ``torch.inference_mode()``:
    ``"weights"`` is :func:`attnlib.torch.scaled_dot_product_attention` with ``need_weights=True``
    (scores and weights materialised), ``"fused"`` the same with ``need_weights=False``, and the
    reference ``torch.nn.functional.scaled_dot_product_attention``. No absolute time is returned.
    Short lengths are timed in blocks of several calls (``(max(lengths) // L)**2 // 4`` of
    them), so that their ratios are not made of sub-millisecond readings.

    Parameters
    ----------
    lengths : sequence of int
        Sequence lengths L (queries and keys).
    batch, num_heads, head_dim : int
    rounds : int
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
        ``"L"`` (int array); ``"weights"`` and ``"fused"`` (median time ratio to torch's SDPA,
        float arrays), ``"weights_q25"``, ``"weights_q75"``, ``"fused_q25"``, ``"fused_q75"``
        (interquartile range over the rounds); ``"weights_bytes"`` (int array: size of one
        (batch, H, L, L) weights array; the weights path holds the scores and the weights, the
        fused path neither); ``"rounds"``, ``"threads"`` (int), ``"shape"``, ``"device"``,
        ``"dtype"`` (str).
    """
    from tqdm.auto import tqdm

    lengths = [check_positive_count(L, "each of lengths") for L in lengths]
    for name, n in (("batch", batch), ("num_heads", num_heads), ("head_dim", head_dim), ("rounds", rounds)):
        check_positive_count(n, name)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    device = torch.device(device or "cpu")
    gen = torch.Generator().manual_seed(seed)
    out = {k: [] for k in ("weights", "fused", "weights_q25", "weights_q75", "fused_q25", "fused_q75")}
    itemsize = torch.empty((), dtype=dtype).element_size()
    with torch.inference_mode():
        for L in tqdm(list(lengths), desc="sequence lengths", disable=not progress):
            q, k, v = (torch.randn(batch, num_heads, int(L), head_dim, generator=gen)
                       .to(device=device, dtype=dtype) for _ in range(3))
            r = interleaved_ratios({
                "weights": lambda: scaled_dot_product_attention(q, k, v),
                "fused": lambda: scaled_dot_product_attention(q, k, v, need_weights=False),
                "torch": lambda: F.scaled_dot_product_attention(q, k, v),
            }, reference="torch", rounds=rounds, sync=_sync_fn(device),
                number=max(1, (max(lengths) // int(L)) ** 2 // 4))
            for p in ("weights", "fused"):
                out[p].append(r["median"][p])
                out[f"{p}_q25"].append(r["q25"][p])
                out[f"{p}_q75"].append(r["q75"][p])
    L = np.asarray(lengths, dtype=int)
    return {"L": L, **{k: np.asarray(v) for k, v in out.items()},
            "weights_bytes": batch * num_heads * L.astype(np.int64) ** 2 * itemsize,
            "rounds": int(rounds), "threads": torch.get_num_threads(),
            "shape": f"({batch}, {num_heads}, L, {head_dim})", "device": str(device),
            "dtype": str(dtype).replace("torch.", "")}


def path_ratios_table(ratios: dict) -> str:
    """The ratios of :func:`attention_path_ratios` as a text table.

    Parameters
    ----------
    ratios : dict
        As returned by :func:`attention_path_ratios`.

    Returns
    -------
    str
        One row per length: the median ratio of each attnlib path to torch's SDPA, with its
        interquartile range over the rounds, and the size of the weights array in MiB.
    """
    missing = [k for k in ("L", "weights", "fused", "weights_q25", "weights_q75", "fused_q25",
                           "fused_q75", "weights_bytes") if k not in ratios]
    if missing:
        raise ValueError(f"ratios lacks {missing}: pass the dict of attention_path_ratios")
    lines = [f"{'L':>6}  {'weights / torch (IQR)':>22}  {'fused / torch (IQR)':>22}  {'weights MiB':>11}"]
    for i, L in enumerate(ratios["L"]):
        cells = [f"{ratios[p][i]:.2f} ({ratios[p + '_q25'][i]:.2f}-{ratios[p + '_q75'][i]:.2f})"
                 for p in ("weights", "fused")]
        lines.append(f"{int(L):>6}  {cells[0]:>22}  {cells[1]:>22}  "
                     f"{ratios['weights_bytes'][i] / 2**20:>11.3g}")
    return "\n".join(lines)


def loop_batch_ratio(module: torch.nn.Module, x: torch.Tensor, rounds: int = 15) -> dict:
    """How many times longer a loop over the examples of ``x`` takes than one batched call.

    ``module(x_i, x_i, x_i)`` for each example ``x[i:i+1]`` against ``module(x, x, x)``, timed in
    alternation (:func:`attnlib.experiments.multi_head.interleaved_ratios`) under
    ``torch.inference_mode()``.

    Parameters
    ----------
    module : torch.nn.Module
        Self-attention called as ``module(query, key, value)``.
    x : torch.Tensor, shape (B, L, E)
    rounds : int

    Returns
    -------
    dict
        ``"median"``, ``"q25"``, ``"q75"`` (float: time of the loop / time of the batched call),
        ``"rounds"`` (int) and ``"batch"`` (B).
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError(f"x must be a (B, L, E) tensor, got {getattr(x, 'shape', type(x).__name__)}")
    rounds = check_positive_count(rounds, "rounds")
    with torch.inference_mode():
        r = interleaved_ratios({"loop": lambda: [module(x[i:i + 1], x[i:i + 1], x[i:i + 1])
                                                 for i in range(len(x))],
                                "batch": lambda: module(x, x, x)}, reference="batch", rounds=rounds)
    return {"median": r["median"]["loop"], "q25": r["q25"]["loop"], "q75": r["q75"]["loop"],
            "rounds": rounds, "batch": len(x)}
