r"""Measuring what attention costs, the way that survives a busy machine: interleaved ratios.

An absolute time measured on a shared CPU says more about the other jobs than about the code: the
same call can take 0.3 ms or 60 ms. A *ratio* of two calls made in alternation, a few
microseconds to milliseconds apart, sees the same load on both sides and cancels most of it. So
the chapters time only ratios, the way ``make bench`` does: alternate the variants, repeat many
rounds, report the median ratio and its interquartile range.

- :func:`interleaved_ratios`: the ratio of each of several functions to a reference, measured
  in alternation.
- :func:`doubling_ratios`: how much longer :func:`attnlib.numpy.multi_head_attention` takes when
  the sequence grows from one length to the next, and the local exponent
  :math:`\log(t_2/t_1) / \log(L_2/L_1)` (2 for a cost that grows like :math:`L^2`).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from attnlib.checks import check_count, check_positive_count
from attnlib.numpy import multi_head_attention
from attnlib.shapes import check_num_heads

__all__ = ["interleaved_ratios", "doubling_ratios"]


def interleaved_ratios(fns: Mapping[str, Callable[[], object]], reference: str, rounds: int = 15,
                       sync: Callable[[], object] | None = None, number: int = 1) -> dict:
    """Time several functions in alternation and give each one's time as a ratio to ``reference``.

    Every function is called once to warm up. Then, ``rounds`` times, each is called once, in an
    order that rotates from round to round (so none always runs first), and the ratio of its time
    to the reference's time *in the same round* is recorded. Slow moments of a shared machine hit
    both sides of a ratio alike; the median over rounds ignores the rounds they hit unevenly.

    Parameters
    ----------
    fns : mapping of str to callable
        Functions of no argument, by name; ``reference`` must be one of the names.
    reference : str
    rounds : int
    sync : callable, optional
        Called before and after each timed call (``torch.cuda.synchronize`` on a GPU).
    number : int
        Calls per timed unit (the same for every function): more for calls of well under a
        millisecond, so that the clock and brief interruptions weigh less.

    Returns
    -------
    dict
        ``"median"``, ``"q25"``, ``"q75"``: dicts from each name but ``reference`` to the median,
        25th and 75th percentile of its per-round ratio; ``"rounds"``: int.
    """
    if not isinstance(fns, Mapping) or not fns:
        raise TypeError(f"fns must be a non-empty dict of name -> function, got {type(fns).__name__}")
    for name, fn in fns.items():
        if not callable(fn):
            raise TypeError(f"fns[{name!r}] must be a function of no argument, got {type(fn).__name__}")
    if reference not in fns:
        raise ValueError(f"reference must be one of {list(fns)}, got {reference!r}")
    rounds = check_positive_count(rounds, "rounds")
    number = check_positive_count(number, "number")
    sync = sync or (lambda: None)
    names = list(fns)
    for fn in fns.values():  # warm-up: first calls pay for allocation and caches
        fn()
    ratios = {n: [] for n in names if n != reference}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        took = {}
        for n in order:
            sync()
            start = time.perf_counter()
            for _ in range(number):
                fns[n]()
            sync()
            took[n] = time.perf_counter() - start
        for n in ratios:
            ratios[n].append(took[n] / took[reference])
    stat = lambda q: {n: float(np.percentile(v, q)) for n, v in ratios.items()}  # noqa: E731
    return {"median": stat(50), "q25": stat(25), "q75": stat(75), "rounds": rounds}


def doubling_ratios(lengths: Sequence[int], d_model: int = 64, num_heads: int = 4, rounds: int = 11,
                    seed: int = 0, dtype=np.float32, progress: bool = True) -> dict:
    r"""Time ratios of self-attention at consecutive lengths, measured interleaved, and the weights' size.

    For each pair of consecutive lengths :math:`(L_1, L_2)`,
    :func:`attnlib.numpy.multi_head_attention` on one sequence of length :math:`L_1` and one of
    length :math:`L_2` (random inputs, ``d_model`` features, ``num_heads`` heads) are timed in
    alternation (:func:`interleaved_ratios`), and the median of :math:`t(L_2)/t(L_1)` gives the
    local exponent :math:`p = \log(t_2/t_1)/\log(L_2/L_1)`, the slope of time against length on a
    log-log plot: 2 where the :math:`L^2` scores dominate, 1 where the linear projections do.

    Parameters
    ----------
    lengths : sequence of int
        At least two increasing sequence lengths.
    d_model, num_heads : int
    rounds : int
        Interleaved rounds per pair.
    seed : int
        Seeds a private generator for the inputs and weights.
    dtype : numpy dtype
        Of the inputs (float32 keeps it fast).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        ``"L"`` (int array, n), ``"weights_bytes"`` (int array, n: ``weights.nbytes``, H * L**2 *
        itemsize), and per pair (arrays of n - 1): ``"ratio"`` (median of t(L_2)/t(L_1)),
        ``"q25"``, ``"q75"`` and ``"exponent"``; ``"rounds"`` (int).
    """
    from tqdm.auto import tqdm

    if isinstance(lengths, (str, bytes)) or np.ndim(lengths) != 1 or len(lengths) < 2:
        raise ValueError(f"lengths must be a sequence of at least two positive integers, got {lengths!r}")
    lengths = [check_positive_count(L, "each of lengths") for L in lengths]
    if any(b <= a for a, b in zip(lengths, lengths[1:])):
        raise ValueError(f"lengths must increase, got {lengths}")
    d_model = check_positive_count(d_model, "d_model")
    check_num_heads(d_model, check_positive_count(num_heads, "num_heads"))
    rounds = check_positive_count(rounds, "rounds")
    seed = check_count(seed, "seed")
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise ValueError(f"dtype must be a floating-point dtype (float32 or float64), got {dtype!r}")
    rng = np.random.default_rng(seed)
    Ws = [(rng.normal(size=(d_model, d_model)) / math.sqrt(d_model)).astype(dtype) for _ in range(4)]
    xs = {L: rng.normal(size=(1, L, d_model)).astype(dtype) for L in lengths}
    sizes = [multi_head_attention(xs[L], xs[L], *Ws, num_heads)[1].nbytes for L in lengths]
    ratio, q25, q75 = [], [], []
    for a, b in tqdm(list(zip(lengths, lengths[1:])), desc="pairs of lengths", disable=not progress):
        number = max(1, int((lengths[-1] / b) ** 2 // 4))
        r = interleaved_ratios({"short": lambda a=a: multi_head_attention(xs[a], xs[a], *Ws, num_heads),
                                "long": lambda b=b: multi_head_attention(xs[b], xs[b], *Ws, num_heads)},
                               reference="short", rounds=rounds, number=number)
        ratio.append(r["median"]["long"])
        q25.append(r["q25"]["long"])
        q75.append(r["q75"]["long"])
    L = np.asarray(lengths, dtype=int)
    ratio = np.asarray(ratio)
    return {"L": L, "weights_bytes": np.asarray(sizes, dtype=np.int64), "ratio": ratio,
            "q25": np.asarray(q25), "q75": np.asarray(q75),
            "exponent": np.log(ratio) / np.log(L[1:] / L[:-1]), "rounds": rounds}
