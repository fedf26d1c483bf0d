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

import json
import os
from pathlib import Path

import numpy as np

from attnlib.shapes import check_count

__all__ = ["check_count", "check_positive_count", "check_probability", "check_text", "check_texts",
           "check_token_ids", "check_torch_tensor", "check_same_dtype_and_device", "check_torch_bool_mask",
           "check_safetensors_file"]
__all__ += ["check_real", "check_generator", "check_index"]
__all__ += ["check_torch_01_mask", "check_path", "check_device"]


def check_positive_count(n, name: str) -> int:
    """Check that ``n`` is a positive integer (a size that cannot be 0); return it as an int.

    Every refusal (0, -1, 2.5, None) says "positive integer".
    """
    try:
        count = check_count(n, name)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return count


def check_probability(p, name: str, allow_one: bool = False) -> float:
    """Check that ``p`` is a real number in [0, 1) (or [0, 1] with ``allow_one``); return a float.

    For dropout rates, smoothing factors and fractions: ``dropout_p=-0.5`` is an error, not "no
    dropout".
    """
    try:
        ok = not isinstance(p, (bool, str, bytes)) and (0.0 <= float(p) <= 1.0 if allow_one else 0.0 <= float(p) < 1.0)
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
        raise TorchTypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}{hint}")
    if floating and not x.is_floating_point():
        raise ValueError(f"{name} must be floating point, got dtype {x.dtype}: use {name}.float()")
    return x


_TORCH_DTYPE_METHODS = {"torch.float32": "float", "torch.float64": "double", "torch.float16": "half",
                        "torch.bfloat16": "bfloat16"}


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
            fix = f"{n}.to({ref.dtype})"
            if module:  # name the short method too: x.float(), and model.double() the other way
                short = _TORCH_DTYPE_METHODS.get(str(ref.dtype))
                fix += (f", i.e. {n}.{short}()" if short else "") + (
                    f" (or convert the module, e.g. model.{_TORCH_DTYPE_METHODS.get(str(t.dtype), 'to')}"
                    f"{'()' if str(t.dtype) in _TORCH_DTYPE_METHODS else f'({t.dtype})'})")
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
        raise TorchTypeError(f"{name} must be a torch.Tensor, got a NumPy array of dtype {mask.dtype}: use "
                        f"torch.from_numpy({name})")
    if not _is_torch(mask) or not hasattr(mask, "dtype"):
        raise TorchTypeError(f"{name} must be a boolean torch.Tensor (True = may attend), got {type(mask).__name__}")
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
    header_len = int.from_bytes(head[:8], "little")
    # The safetensors layout comes first: a valid header length can start with the byte 0x80 (128).
    if header_len > size - 8 or head[8:9] != b"{":
        if (head[:2] == b"PK" or head[:1] == b"\x80") and head[8:9] != b"{":
            raise ValueError(f"{what} {p} looks like a torch.save pickle (zip or pickle bytes), not safetensors: "
                             f"attnlib never loads pickles; save with attnlib.torch.save_checkpoint (safetensors)")
        raise ValueError(f"{what} {p} is not a safetensors file, or it is truncated: its header says "
                         f"{header_len} bytes but the file has {size}")
    with open(p, "rb") as f:
        f.seek(8)
        raw = f.read(header_len)
    try:
        header = json.loads(raw)
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise ValueError(f"{what} {p} is not a safetensors file: its header is not the JSON table of "
                         f"tensors safetensors writes") from None
    if end > size - 8 - header_len:
        raise ValueError(f"{what} {p} is truncated: its header lists {end} bytes of tensor data but "
                         f"{size - 8 - header_len} follow it")
    return p


def check_real(x, name: str, *, positive: bool = False, non_negative: bool = False,
               finite: bool = True) -> float:
    """Check that ``x`` is one real number (not a bool, str, None or array); return it as a float.

    NaN is always refused, infinities unless ``finite=False``; ``positive`` asks for ``x > 0``
    and ``non_negative`` for ``x >= 0`` (a learning rate, a temperature, a bandwidth, a scale).
    """
    value = None
    if x is not None and not isinstance(x, (bool, np.bool_, str, bytes)) and np.ndim(x) == 0:
        try:
            value = float(x)
        except (TypeError, ValueError):
            value = None
    if value is None or value != value or (finite and value in (float("inf"), float("-inf"))):
        kind = "a finite real number" if finite else "a real number"
        raise ValueError(f"{name} must be {kind}, got {x!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be positive, got {x!r}")
    if non_negative and not value >= 0:
        raise ValueError(f"{name} must be non-negative, got {x!r}")
    return value


def check_generator(rng, name: str = "rng") -> np.random.Generator:
    """Check that ``rng`` is a ``numpy.random.Generator``; return it.

    A seed (an int) or the legacy ``RandomState`` gets the call that makes a generator.
    """
    if not isinstance(rng, np.random.Generator):
        if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
            hint = f": pass np.random.default_rng({rng}) (or attnlib.seed({rng})), not the seed itself"
        elif isinstance(rng, np.random.RandomState):
            hint = ": the legacy RandomState is not accepted, use np.random.default_rng(seed)"
        else:
            hint = " (np.random.default_rng(seed) or attnlib.seed(seed) gives one)"
        raise TypeError(f"{name} must be a numpy.random.Generator, got {type(rng).__name__}{hint}")
    return rng


def check_torch_01_mask(mask, name: str = "attention_mask", shape=None):
    """Check a padding mask in the tokenizer's convention (1 / True = real token); return it as bool.

    Accepted: a boolean tensor, or an integer or float tensor that holds only 0 and 1 (what
    ``tokenizer(...)["attention_mask"]`` returns). Refused, with the conversion to use: an additive
    float mask (0 keep, -1e4 or -inf pad, what ``transformers`` builds inside its models), which
    ``.bool()`` would silently invert; any other values; a NumPy array or a list.

    Parameters
    ----------
    mask : torch.Tensor
    name : str
        The parameter's name, for the messages.
    shape : tuple of int, optional
        The shape the mask must have (e.g. that of ``input_ids``).

    Returns
    -------
    torch.Tensor of bool
        True on real tokens.
    """
    if isinstance(mask, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor, got a NumPy array of dtype {mask.dtype}: use "
                        f"torch.from_numpy({name})")
    if not _is_torch(mask) or not hasattr(mask, "dtype"):
        raise TypeError(f"{name} must be a torch.Tensor of 1/True on real tokens and 0/False on padding, got "
                        f"{type(mask).__name__}")
    if shape is not None and tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(mask.shape)}")
    if str(mask.dtype) == "torch.bool":
        return mask
    if mask.is_complex():
        raise ValueError(f"{name} must be boolean or hold 0 and 1, got dtype {mask.dtype}")
    if mask.numel() and not bool(((mask == 0) | (mask == 1)).all()):
        lo, hi = float(mask.min()), float(mask.max())
        if mask.is_floating_point() and hi <= 0:
            raise ValueError(f"{name} looks like an additive mask (0 keep, -1e4 or -inf pad; values from {lo} "
                             f"to {hi}), but attnlib's convention is 1/True = real token, 0/False = padding "
                             f"(the tokenizer's attention_mask): pass {name} == 0 instead")
        raise ValueError(f"{name} must be boolean or hold only 0 and 1 (attnlib's convention: 1/True = real "
                         f"token, 0/False = padding), got values from {lo} to {hi}; for an additive mask "
                         f"(0 keep, negative pad) pass {name} == 0")
    return mask != 0


def check_path(path, name: str = "path") -> Path:
    """Check that ``path`` is a ``str`` or ``os.PathLike`` (not None, bytes or a number); return a Path."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or pathlib.Path), got {type(path).__name__}")
    return Path(path)


def check_device(device, name: str = "device"):
    """Check that ``device`` names a torch device this machine has; return it as a ``torch.device``.

    None is returned unchanged (the caller's default). ``"cuda"`` without a CUDA GPU, an unknown
    name or a number of the wrong kind get a message naming ``name``.
    """
    if device is None:
        return None
    import torch

    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise TypeError(f"{name} must be a torch.device or a name such as 'cpu' or 'cuda', got "
                        f"{type(device).__name__}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"{name}={device!r} is not a torch device: use 'cpu', 'cuda' or "
                         f"attnlib.torch.default_device()") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}={device!r} but CUDA is not available here: use 'cpu' or "
                         f"attnlib.torch.default_device()")
    return dev


def check_index(i, size: int, name: str, what: str = "items") -> int:
    """Check that ``i`` is an integer index in ``[0, size)``; return it as an int.

    Negative indices are refused (a -1 would silently pick the last item); the message names
    ``name``, the value and how many ``what`` there are ("query=7 is out of range: there are 5
    tokens").
    """
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
        raise ValueError(f"{name} must be an integer index in [0, {size}) ({size} {what}), got {i!r}")
    if not 0 <= i < size:
        raise ValueError(f"{name}={int(i)} is out of range: there are {size} {what} (valid: 0 to {size - 1})")
    return int(i)


# ------------------------------------------------------------------ the entrance of attnlib.torch

__all__ += ["TorchTypeError", "check_torch_inputs", "check_torch_token_ids", "check_torch_lengths"]


class TorchTypeError(TypeError, ValueError):
    """A value of the wrong kind where a torch tensor is needed (a NumPy array, a list, None).

    A ``TypeError`` by kind, and a ``ValueError`` too: that is what ``attnlib.torch`` raised for
    these before the shared checks, so code that catches either keeps working.
    """


def check_torch_inputs(tensors: dict, module=None) -> None:
    """Check floating-point torch tensors that meet in one computation: one dtype, one device.

    The cheap check at the entrance of every torch module (attribute comparisons only): a float64
    batch into a float32 module says ``x.float()`` or ``model.double()``, a tensor on another
    device says ``.to(...)``, a NumPy array says ``torch.from_numpy``.

    Parameters
    ----------
    tensors : dict of str to torch.Tensor or None
        Name -> tensor; None entries are skipped.
    module : torch.nn.Module, optional
        The module they go into: they must match its (first) parameter's dtype and device. A
        module without parameters compares nothing.
    """
    for name, t in tensors.items():
        if t is not None:
            check_torch_tensor(t, name, floating=True)
    if module is not None and next(iter(module.parameters()), None) is None:
        module = None
    check_same_dtype_and_device(tensors, like=module)


def check_torch_token_ids(ids, vocab_size: int, name: str = "ids", module=None, ndim: int | None = None,
                          dims: str = "(B, L)"):
    """Check token ids for an embedding: a torch.long (or int32) tensor of ids in ``[0, vocab_size)``.

    Parameters
    ----------
    ids : torch.Tensor
    vocab_size : int
    name : str
        The parameter's name, for the messages.
    module : torch.nn.Module, optional
        The ids must be on the device of its weights.
    ndim : int, optional
        The number of axes the ids must have (``dims`` names them in the message).

    Returns
    -------
    torch.Tensor
        ``ids``, unchanged.
    """
    check_torch_tensor(ids, name)
    if str(ids.dtype) not in ("torch.int64", "torch.int32"):  # what torch.nn.Embedding reads
        hint = " if the values are whole numbers" if ids.is_floating_point() else ""
        raise ValueError(f"{name} must hold integer token ids (torch.long), got dtype {ids.dtype}: "
                         f"use {name}.long(){hint}")
    if ndim is not None and ids.dim() != ndim:
        raise ValueError(f"{name} must have shape {dims}, got shape {tuple(ids.shape)}")
    if module is not None:
        check_same_dtype_and_device({name: ids}, like=module)
    return check_token_ids(ids, vocab_size, name)


def check_torch_lengths(lengths, name: str = "lengths", batch: int | None = None):
    """Check sequence lengths: a 1-D integer torch tensor (B,), with ``B == batch`` if given; return it."""
    if not _is_torch(lengths) or not hasattr(lengths, "dtype"):
        hint = f": convert it with torch.from_numpy({name})" if isinstance(lengths, np.ndarray) else ""
        raise TorchTypeError(f"{name} must be a 1-D integer tensor (B,), got {type(lengths).__name__}{hint}")
    if lengths.dim() != 1 or lengths.is_floating_point() or lengths.is_complex() or str(lengths.dtype) == "torch.bool":
        raise ValueError(f"{name} must be a 1-D integer tensor (B,), got dtype {lengths.dtype} of shape "
                         f"{tuple(lengths.shape)}")
    if batch is not None and lengths.shape[0] != batch:
        raise ValueError(f"{name} must have shape (B,) = ({batch},), got {tuple(lengths.shape)}")
    return lengths
