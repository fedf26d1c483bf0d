"""Checkpoints in safetensors: a model's tensors and string metadata, never a pickle."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from attnlib.checks import check_safetensors_file

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(model: torch.nn.Module, path, metadata: dict | None = None) -> None:
    """Save ``model.state_dict()`` to a safetensors file, with string metadata.

    Tensors are copied to the CPU and made contiguous; tensors shared between parameters (tied
    weights) are stored once per name.

    Parameters
    ----------
    model : torch.nn.Module
    path : str or os.PathLike
    metadata : dict of str to str, optional
        E.g. ``{"task": "reverse", "hidden": "64"}``; anything but strings raises ``ValueError``.
    """
    from safetensors.torch import save_file

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    if Path(path).is_dir():
        raise ValueError(f"path {path} is a directory: give a file name, e.g. {Path(path) / 'model.safetensors'}")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict of str to str, got {type(metadata).__name__}")
    metadata = dict(metadata or {})
    bad = {k: type(v).__name__ for k, v in metadata.items()
           if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise ValueError(f"metadata must map str to str (safetensors stores text); not strings: {bad}. "
                         "Convert with str(...) or json.dumps(...).")
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata=metadata)


def load_checkpoint(model: torch.nn.Module, path, strict: bool = True) -> dict:
    """Load a safetensors checkpoint into ``model`` (on the model's device); return its metadata.

    Parameters
    ----------
    model : torch.nn.Module
    path : str or os.PathLike
    strict : bool
        Require the file and the model to have exactly the same tensor names.

    Returns
    -------
    dict of str to str
        The metadata stored by :func:`save_checkpoint`.

    Raises
    ------
    ValueError
        Naming every missing, unexpected or mis-shaped tensor
        (``"decoder.out.weight: file (20, 64), model (18, 64)"``); nothing is loaded then. Also for
        a path that is not a safetensors file (a ``torch.save`` pickle, an empty or truncated file,
        a directory), saying what it is not.
    """
    from safetensors import SafetensorError, safe_open

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    try:
        check_safetensors_file(path, "checkpoint")
    except ValueError as e:
        if "save_checkpoint" in str(e):
            raise
        raise ValueError(f"{e}: load_checkpoint reads the files attnlib.torch.save_checkpoint writes") from None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:  # what the file check above cannot see
        raise ValueError(f"checkpoint {path} is not a readable safetensors file ({e}): write it with "
                         f"attnlib.torch.save_checkpoint") from e
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    shapes = [f"{k}: file {tuple(tensors[k].shape)}, model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(tensors)) if tensors[k].shape != own[k].shape]
    problems = []
    if shapes:
        problems.append("mis-shaped tensors: " + "; ".join(shapes))
    if strict and missing:
        problems.append("missing in the file: " + ", ".join(missing))
    if strict and unexpected:
        problems.append("not in the model: " + ", ".join(unexpected))
    if problems:
        raise ValueError(f"checkpoint {path} does not fit the model: " + " | ".join(problems))
    model.load_state_dict({k: v for k, v in tensors.items() if k in own}, strict=strict)
    return metadata
