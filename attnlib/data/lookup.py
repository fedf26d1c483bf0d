"""Two seeded classification toys for hard and structured attention.

- :func:`lookup_data`: a key-value *lookup*. Each example is a list of distinct keys, each with a
  value, and a query key; the answer is the value stored under the query. One position holds the
  answer, so attending to exactly one position (hard attention) is enough.
- :func:`segment_data`: a digit string with one *bracketed segment*, ``3 1 ( 2 4 0 ) 1 3``; the
  answer is the sum of the digits inside the brackets. Here a whole contiguous segment matters.

Both return a :class:`ToyData`: a dict of equally long tensors (padded with 0, with a boolean
``mask`` that is True on real positions), batches and a train/test split. Same seed, same data.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch

from attnlib.checks import check_device, check_positive_count
from attnlib.shapes import check_count

__all__ = ["ToyData", "lookup_data", "segment_data", "SEGMENT_OPEN", "SEGMENT_CLOSE",
           "SEGMENT_DIGIT0", "segment_tokens_to_text"]

# Token ids of the segment task: 0 is padding.
SEGMENT_OPEN, SEGMENT_CLOSE, SEGMENT_DIGIT0 = 1, 2, 3


@dataclass
class ToyData:
    """A toy data set: named tensors with one row per example.

    Attributes
    ----------
    name : str
    tensors : dict of str to torch.Tensor
        Every tensor has the number of examples as its first axis; ``mask`` (N, L) is True on real
        positions, ``target`` (N,) holds the class to predict.
    n_classes : int
        Number of target classes.
    vocab_size : int
        Number of token ids (0 = padding included).
    description : str
    """
    name: str
    tensors: dict
    n_classes: int
    vocab_size: int
    description: str = ""

    def __len__(self) -> int:
        return len(self.tensors["target"])

    def __getattr__(self, key):
        tensors = self.__dict__.get("tensors", {})
        if key in tensors:
            return tensors[key]
        raise AttributeError(key)

    def subset(self, index) -> "ToyData":
        """The examples at ``index`` (a slice, a list or a tensor of indices), as a new ToyData."""
        return ToyData(self.name, {k: v[index] for k, v in self.tensors.items()}, self.n_classes,
                       self.vocab_size, self.description)

    def split(self, n_train: int) -> tuple["ToyData", "ToyData"]:
        """The first ``n_train`` examples and the rest."""
        n_train = check_count(n_train, "n_train")
        if not 0 < n_train < len(self):
            raise ValueError(f"n_train must be between 1 and {len(self) - 1}, got {n_train}")
        return self.subset(slice(0, n_train)), self.subset(slice(n_train, None))

    def batch(self, index=None, device=None) -> SimpleNamespace:
        """One batch: a namespace with one attribute per tensor (``batch.mask``, ``batch.target``...).

        Parameters
        ----------
        index : slice, list or torch.Tensor, optional
            Which examples (default: all).
        device : torch.device or str, optional
        """
        index = slice(None) if index is None else index
        return SimpleNamespace(**{k: v[index].to(device) if device is not None else v[index]
                                  for k, v in self.tensors.items()})

    def batches(self, batch_size: int = 128, shuffle: bool = True, seed: int = 0, device=None) -> list:
        """One epoch of batches (shuffled with ``seed``), a list of namespaces."""
        batch_size = check_positive_count(batch_size, "batch_size")
        seed = check_count(seed, "seed")
        check_device(device)
        n = len(self)
        order = (torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if shuffle
                 else torch.arange(n))
        return [self.batch(order[i:i + batch_size], device) for i in range(0, n, batch_size)]

    def batch_stream(self, batch_size: int = 128, seed: int = 0, device=None):
        """A callable for :func:`attnlib.torch.train`: each call gives a freshly shuffled epoch."""
        batch_size = check_positive_count(batch_size, "batch_size")
        seed = check_count(seed, "seed")
        check_device(device)
        epoch = [seed]

        def stream():
            epoch[0] += 1
            return self.batches(batch_size, True, epoch[0] * 1000 + seed, device)
        return stream


def _pad(rows, width):
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def lookup_data(n: int = 4000, min_len: int = 6, max_len: int = 10, n_keys: int = 16,
                n_values: int = 10, seed: int = 0) -> ToyData:
    """Key-value lookup: find the query among the keys, answer the value stored there.

    Keys are distinct ids in ``1..n_keys`` (0 is padding); values are classes ``0..n_values-1``.

    Parameters
    ----------
    n : int
        Number of examples.
    min_len, max_len : int
        Range of the number of key-value pairs per example (uniform).
    n_keys : int
        Number of distinct keys; must be at least ``max_len``.
    n_values : int
        Number of values (classes).
    seed : int

    Returns
    -------
    ToyData
        Tensors ``keys`` (N, L) int64, ``values`` (N, L) int64, ``mask`` (N, L) bool,
        ``query`` (N,) int64 (a key id), ``position`` (N,) the index of the query among the keys,
        ``target`` (N,) the value at that position; ``L = max_len``.
    """
    n, seed = check_count(n, "n"), check_count(seed, "seed")
    min_len, max_len = check_positive_count(min_len, "min_len"), check_positive_count(max_len, "max_len")
    n_keys, n_values = check_positive_count(n_keys, "n_keys"), check_positive_count(n_values, "n_values")
    if not 1 <= min_len <= max_len <= n_keys:
        raise ValueError(f"need 1 <= min_len <= max_len <= n_keys, got {min_len}, {max_len}, {n_keys}")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n)
    keys, values = [], []
    query, position, target = (np.zeros(n, dtype=np.int64) for _ in range(3))
    for i, m in enumerate(lengths):
        k = rng.permutation(n_keys)[:m] + 1
        v = rng.integers(0, n_values, size=m)
        j = rng.integers(0, m)
        keys.append(k)
        values.append(v)
        query[i], position[i], target[i] = k[j], j, v[j]
    mask = np.arange(max_len)[None, :] < lengths[:, None]
    tensors = {"keys": torch.from_numpy(_pad(keys, max_len)),
               "values": torch.from_numpy(_pad(values, max_len)),
               "mask": torch.from_numpy(mask), "query": torch.from_numpy(query),
               "position": torch.from_numpy(position), "target": torch.from_numpy(target)}
    return ToyData("lookup", tensors, n_values, n_keys + 1,
                   f"key-value lookup: {min_len}-{max_len} pairs, {n_keys} keys, {n_values} values")


def segment_data(n: int = 4000, min_len: int = 8, max_len: int = 14, min_segment: int = 1,
                 max_segment: int = 4, max_digit: int = 4, seed: int = 0) -> ToyData:
    """Digits with one bracketed segment; the answer is the sum of the digits inside the brackets.

    Token ids: 0 padding, 1 ``(``, 2 ``)``, ``3 + d`` the digit ``d`` (``0 <= d <= max_digit``).
    A sequence has ``min_len..max_len`` tokens in total, brackets included; the segment holds
    ``min_segment..max_segment`` digits and sits at a uniformly random place.

    Parameters
    ----------
    n : int
    min_len, max_len : int
        Total length range (brackets included).
    min_segment, max_segment : int
        Range of the number of digits inside the brackets.
    max_digit : int
        Digits are ``0..max_digit``.
    seed : int

    Returns
    -------
    ToyData
        Tensors ``tokens`` (N, L) int64, ``mask`` (N, L) bool, ``span`` (N, L) bool (True on the
        brackets and the digits between them), ``target`` (N,) the sum (``n_classes =
        max_segment * max_digit + 1``); ``L = max_len``.
    """
    n, seed, max_digit = check_count(n, "n"), check_count(seed, "seed"), check_count(max_digit, "max_digit")
    min_len, max_len = check_positive_count(min_len, "min_len"), check_positive_count(max_len, "max_len")
    min_segment = check_positive_count(min_segment, "min_segment")
    max_segment = check_positive_count(max_segment, "max_segment")
    if not (1 <= min_segment <= max_segment and max_segment + 2 <= min_len <= max_len):
        raise ValueError("need 1 <= min_segment <= max_segment and max_segment + 2 <= min_len <= max_len, "
                         f"got {min_segment}, {max_segment}, {min_len}, {max_len}")
    rng = np.random.default_rng(seed)
    rows, spans = [], []
    target = np.zeros(n, dtype=np.int64)
    for i in range(n):
        m = int(rng.integers(min_len, max_len + 1))
        s = int(rng.integers(min_segment, max_segment + 1))
        digits = rng.integers(0, max_digit + 1, size=m - 2)
        start = int(rng.integers(0, m - 2 - s + 1))            # first digit inside
        row = list(digits[:start] + SEGMENT_DIGIT0) + [SEGMENT_OPEN] + \
            list(digits[start:start + s] + SEGMENT_DIGIT0) + [SEGMENT_CLOSE] + \
            list(digits[start + s:] + SEGMENT_DIGIT0)
        span = np.zeros(m, dtype=bool)
        span[start:start + s + 2] = True
        rows.append(row)
        spans.append(span)
        target[i] = digits[start:start + s].sum()
    lengths = np.array([len(r) for r in rows])
    mask = np.arange(max_len)[None, :] < lengths[:, None]
    span = np.zeros((n, max_len), dtype=bool)
    for i, sp in enumerate(spans):
        span[i, :len(sp)] = sp
    tensors = {"tokens": torch.from_numpy(_pad(rows, max_len)), "mask": torch.from_numpy(mask),
               "span": torch.from_numpy(span), "target": torch.from_numpy(target)}
    return ToyData("segment", tensors, max_segment * max_digit + 1, SEGMENT_DIGIT0 + max_digit + 1,
                   f"sum of the {min_segment}-{max_segment} digits (0-{max_digit}) inside the brackets, "
                   f"{min_len}-{max_len} tokens")


def segment_tokens_to_text(tokens) -> list[str]:
    """Token ids of the segment task -> list of symbols (``"("``, ``")"``, digits), padding dropped.

    Raises ValueError for ids that are not one sequence of non-negative integers.
    """
    if tokens is None or isinstance(tokens, (str, bytes, int, float)):
        raise TypeError(f"tokens must be a sequence of int or a 1-D tensor, got {type(tokens).__name__}")
    arr = np.asarray(tokens.cpu() if isinstance(tokens, torch.Tensor) else tokens)
    if arr.ndim != 1 or (arr.size and (arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer))):
        raise ValueError(f"tokens must be one sequence (1-D) of integer token ids, got shape {arr.shape} and "
                         f"dtype {arr.dtype}")
    if arr.size and int(arr.min()) < 0:
        raise ValueError(f"tokens must be non-negative token ids (0 is padding), got {int(arr.min())}")
    out = []
    for t in (int(x) for x in tokens):
        if t == SEGMENT_OPEN:
            out.append("(")
        elif t == SEGMENT_CLOSE:
            out.append(")")
        elif t >= SEGMENT_DIGIT0:
            out.append(str(t - SEGMENT_DIGIT0))
    return out
