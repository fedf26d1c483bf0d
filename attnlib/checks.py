"""Argument checks shared by every package: counts, rates, text, token ids, tensors and files.

:mod:`attnlib.shapes` holds the shape rules of attention; this module holds everything else a
public function checks at its entrance, once, so that a learner's mistake is named in the error
("max_len must be a non-negative integer, got 4.5") instead of surfacing deep inside NumPy or
PyTorch. Each check raises ``ValueError`` (or ``TypeError`` for a value of the wrong kind) that
names the parameter; most return the value, normalised.

The tensor checks work on torch tensors without importing torch at module level (the NumPy
chapters never load it).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from attnlib.shapes import check_count

__all__ = ["check_count", "check_positive_count", "check_probability", "check_text", "check_texts",
           "check_token_ids", "check_torch_tensor", "check_same_dtype_and_device", "check_torch_bool_mask",
           "check_safetensors_file"]


def check_positive_count(n, name: str) -> int:
    """Check that ``n`` is a positive integer (a size that cannot be 0); return it as an int."""
    n = check_count(n, name)
    if n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return n


def check_probability(p, name: str, allow_one: bool = False) -> float:
    """Check that ``p`` is a real number in [0, 1) (or [0, 1] with ``allow_one``); return a float.

    For dropout rates, smoothing factors and fractions: ``dropout_p=-0.5`` is an error, not "no
    dropout".
    """
    try:
        ok = not isinstance(p, bool) and (0.0 <= float(p) <= 1.0 if allow_one else 0.0 <= float(p) < 1.0)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must be a number in {interval}, got {p!r}")
    return float(p)


def check_text(text, name: str = "text") -> str:
    """Check that ``text`` is a ``str`` (not None, bytes or a number); return it."""
    if not isinstance(text, str):
        hint = " (decode bytes first: text.decode('utf-8'))" if isinstance(text, (bytes, bytearray)) else ""
        raise TypeError(f"{name} must be a str, got {type(text).__name__}{hint}")
    return text


def check_texts(texts, name: str = "texts") -> list[str]:
    """Check that ``texts`` is a list (or tuple) of ``str``; return it as a list.

    A single string is refused too: iterating over it would give its characters.
    """
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of str, got a single str: wrap it as [{texts[:20]!r}]")
    if not isinstance(texts, (list, tuple)):
        raise TypeError(f"{name} must be a list of str, got {type(texts).__name__}")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{name} must be a list of str, but item {i} is {type(t).__name__}")
    return list(texts)


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def check_token_ids(ids, vocab_size: int, name: str = "ids"):
    """Check that ``ids`` holds integer token ids in ``[0, vocab_size)``; return it unchanged.

    Works on torch tensors, NumPy arrays and (nested) lists. Refuses float and boolean ids and
    names the smallest and largest offending id, so that a -1 never silently reads the last
    embedding row.
    """
    if _is_torch(ids):
        if ids.dtype.is_floating_point or ids.dtype.is_complex or str(ids.dtype) == "torch.bool":
            raise ValueError(f"{name} must hold integer token ids (torch.long), got dtype {ids.dtype}: "
                             f"use {name}.long() if the values are whole numbers")
        if ids.numel():
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= vocab_size:
                raise ValueError(f"{name} must be token ids in [0, {vocab_size}), got ids from {lo} to {hi}")
        return ids
    arr = np.asarray(ids)
    if arr.size and (arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= vocab_size):
        raise ValueError(f"{name} must be token ids in [0, {vocab_size}), got ids from {int(arr.min())} "
                         f"to {int(arr.max())}")
    return ids


def check_torch_tensor(x, name: str, floating: bool = False):
    """Check that ``x`` is a torch tensor (floating point with ``floating``); return it.

    A NumPy array gets the call that converts it (``torch.from_numpy``).
    """
    if not _is_torch(x) or not hasattr(x, "dtype"):
        hint = f": convert it with torch.from_numpy({name})" if isinstance(x, np.ndarray) else ""
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}{hint}")
    if floating and not x.is_floating_point():
        raise ValueError(f"{name} must be floating point, got dtype {x.dtype}: use {name}.float()")
    return x


def check_same_dtype_and_device(tensors: dict, like=None) -> None:
    """Check that the named tensors share one dtype and one device (and those of ``like``, if given).

    Parameters
    ----------
    tensors : dict of str to torch.Tensor or None
        Name -> tensor; None entries are skipped.
    like : torch.Tensor or torch.nn.Module, optional
        A module's first parameter (or a tensor) the inputs must match, e.g. the model's weights.
    """
    items = [(n, t) for n, t in tensors.items() if t is not None]
    module = like is not None and not hasattr(like, "dtype")
    if module:  # a module: compare with its first parameter
        like = next(iter(like.parameters()), None)
    if like is not None:
        items = [("the module's weights" if module else "the reference", like)] + items
    if not items:
        return
    ref_name, ref = items[0]
    for n, t in items[1:]:
        if t.dtype != ref.dtype and t.is_floating_point() and ref.is_floating_point():
            fix = f"{n}.to({ref.dtype})" + (" (or convert the module, e.g. model.double())" if module else "")
            raise ValueError(f"{n} is {t.dtype} but {ref_name} {ref.dtype}: convert one, e.g. {fix}")
        if t.device != ref.device:
            raise ValueError(f"{n} is on {t.device} but {ref_name} on {ref.device}: move it with "
                             f"{n}.to('{ref.device}')")


def check_torch_bool_mask(mask, name: str = "mask", device=None):
    """Check that ``mask`` is a boolean torch tensor (True = may attend), on ``device`` if given.

    A NumPy mask, a float (additive, ``0`` / ``-inf``) mask and an integer mask each get a message
    that says what to do.
    """
    if isinstance(mask, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor, got a NumPy array of dtype {mask.dtype}: use "
                        f"torch.from_numpy({name})")
    if not _is_torch(mask) or not hasattr(mask, "dtype"):
        raise TypeError(f"{name} must be a boolean torch.Tensor (True = may attend), got {type(mask).__name__}")
    if str(mask.dtype) != "torch.bool":
        if mask.is_floating_point():
            raise ValueError(f"{name} must be boolean with True = may attend, got dtype {mask.dtype}; an "
                             f"additive float mask (0 keep, -inf or -1e4 drop) is not accepted: pass "
                             f"{name} == 0 instead")
        raise ValueError(f"{name} must be boolean with True = may attend, got dtype {mask.dtype}: use "
                         f"{name}.bool() if 1 means may attend")
    if device is not None and mask.device != device:
        raise ValueError(f"{name} is on {mask.device} but the inputs on {device}: use {name}.to({device!s})")
    return mask


def check_safetensors_file(path, what: str = "file") -> Path:
    """Check that ``path`` names a readable, non-empty safetensors file; return it as a Path.

    A directory, a missing or empty file, a truncated file or a ``torch.save`` pickle each get a
    message that says what the file is not and what to use instead.
    """
    p = Path(os.fspath(path))
    if p.is_dir():
        raise ValueError(f"{what} {p} is a directory, not a safetensors file")
    if not p.exists():
        raise ValueError(f"{what} {p} does not exist")
    size = p.stat().st_size
    if size < 8:
        raise ValueError(f"{what} {p} is {'empty' if size == 0 else 'truncated'} ({size} bytes), not a "
                         f"safetensors file")
    with open(p, "rb") as f:
        head = f.read(9)
    if head[:2] in (b"PK", b"\x80\x02") or head[:1] == b"\x80":
        raise ValueError(f"{what} {p} looks like a torch.save pickle (zip or pickle bytes), not safetensors: "
                         f"attnlib never loads pickles; save with attnlib.torch.save_checkpoint (safetensors)")
    header_len = int.from_bytes(head[:8], "little")
    if header_len > size - 8 or head[8:9] != b"{":
        raise ValueError(f"{what} {p} is not a safetensors file, or it is truncated: its header says "
                         f"{header_len} bytes but the file has {size}")
    return p
