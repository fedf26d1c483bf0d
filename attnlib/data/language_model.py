"""A character-level language-modelling dataset made of the standard-library corpus.

:func:`char_corpus` joins the tokens of :func:`attnlib.data.stdlib_corpus` with spaces (about a
million characters: the 26 letters and the space), maps each character to an id, and splits the
text into a training part and a validation part (the last ``val_fraction`` of the text, so no
validation block overlaps a training block). :func:`random_blocks` cuts random windows out of
an id sequence: the inputs ``x`` and the targets ``y``, which are ``x`` shifted by one.

Everything is NumPy (int64 arrays); models convert the batches to tensors.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnlib.checks import check_generator, check_positive_count, check_probability, check_text, check_token_ids
from attnlib.data.corpus import stdlib_corpus
from attnlib.shapes import check_count

__all__ = ["CharCorpus", "char_corpus", "random_blocks"]


def random_blocks(ids: np.ndarray, batch_size: int, block_size: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random windows of a sequence, as inputs and next-token targets.

    Parameters
    ----------
    ids : numpy.ndarray of int, shape (N,)
    batch_size, block_size : int
    rng : numpy.random.Generator
        Picks the start of each window.

    Returns
    -------
    x : numpy.ndarray of int64, shape (batch_size, block_size)
        ``ids[s : s + block_size]`` for random starts ``s``.
    y : numpy.ndarray of int64, shape (batch_size, block_size)
        ``ids[s + 1 : s + block_size + 1]``: the token after each input token.

    Raises
    ------
    ValueError
        When ``batch_size`` or ``block_size`` is not a positive integer, or ``ids`` is not a 1-D
        sequence of integer ids longer than ``block_size``.
    TypeError
        When ``rng`` is not a ``numpy.random.Generator`` (a seed: ``np.random.default_rng(seed)``).
    """
    batch_size = check_positive_count(batch_size, "batch_size")
    block_size = check_positive_count(block_size, "block_size")
    check_generator(rng, "rng")
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) < block_size + 1:
        raise ValueError(f"ids must be 1-D and longer than block_size={block_size}, got shape {ids.shape}")
    if ids.dtype == bool or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must hold integer token ids, got dtype {ids.dtype}")
    starts = rng.integers(0, len(ids) - block_size, size=batch_size)
    window = starts[:, None] + np.arange(block_size + 1)[None, :]
    blocks = ids[window].astype(np.int64)
    return blocks[:, :-1], blocks[:, 1:]


@dataclass
class CharCorpus:
    """Character ids of a text, split into training and validation parts.

    Attributes
    ----------
    chars : str
        The vocabulary: character ``chars[i]`` has id ``i``.
    train_ids, val_ids : numpy.ndarray of int64, shape (N_train,), (N_val,)
    """
    chars: str
    train_ids: np.ndarray
    val_ids: np.ndarray

    @property
    def vocab_size(self) -> int:
        """Number of distinct characters."""
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Ids of the characters of ``text``, shape (len(text),); unknown characters raise ValueError."""
        check_text(text, "text")
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise ValueError(f"characters {unknown} are not in the vocabulary {self.chars!r}")
        return np.array([index[c] for c in text], dtype=np.int64)

    def decode(self, ids) -> str:
        """The text of a sequence of ids (a list, an array or a 1-D tensor).

        Raises ValueError for an id outside ``[0, vocab_size)`` (a -1 would silently read the last
        character), float ids, or more than one dimension (decode each row).
        """
        if ids is None or isinstance(ids, (str, bytes, int, float)):
            raise TypeError(f"ids must be a sequence of int or a 1-D array/tensor, got {type(ids).__name__}")
        check_token_ids(ids, self.vocab_size, "ids")
        if np.ndim(ids) != 1:
            raise ValueError(f"ids must be one sequence (1-D), got {np.ndim(ids)} dimensions: decode each row")
        return "".join(self.chars[int(i)] for i in ids)

    def split(self, name: str) -> np.ndarray:
        """The ids of ``"train"`` or ``"val"``."""
        if name not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {name!r}")
        return self.train_ids if name == "train" else self.val_ids

    def batch_stream(self, split: str, batch_size: int, block_size: int, seed: int = 0):
        """A callable for :func:`attnlib.torch.train`: each call returns an endless, seeded
        iterator of ``(x, y)`` batches from :func:`random_blocks` (shapes (batch_size, block_size))."""
        ids = self.split(split)
        batch_size = check_positive_count(batch_size, "batch_size")
        block_size = check_positive_count(block_size, "block_size")
        if len(ids) < block_size + 1:
            raise ValueError(f"the {split!r} split has {len(ids)} ids, fewer than block_size + 1 = {block_size + 1}")
        rng = np.random.default_rng(check_count(seed, "seed"))

        def stream():
            while True:
                yield random_blocks(ids, batch_size, block_size, rng)

        return stream


def char_corpus(val_fraction: float = 0.1, max_chars: int | None = None) -> CharCorpus:
    """The standard-library corpus as characters: letters a-z and the space.

    Parameters
    ----------
    val_fraction : float
        Share of the text, taken from its end, kept for validation.
    max_chars : int, optional
        Use only the first ``max_chars`` characters (for quick tests).

    Returns
    -------
    CharCorpus

    Raises
    ------
    ValueError
        When ``val_fraction`` is not in (0, 1), ``max_chars`` is not a positive integer, or the
        validation part would be empty (too little text for ``val_fraction``).
    """
    val_fraction = check_probability(val_fraction, "val_fraction")
    if val_fraction == 0.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if max_chars is not None:
        max_chars = check_positive_count(max_chars, "max_chars")
    text = " ".join(stdlib_corpus())
    if max_chars is not None:
        text = text[:max_chars]
    chars = "".join(sorted(set(text)))
    lookup = np.zeros(128, dtype=np.int64)
    lookup[[ord(c) for c in chars]] = np.arange(len(chars))
    ids = lookup[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
    n_val = int(len(ids) * val_fraction)
    if n_val == 0:  # ids[:-0] would be empty and ids[-0:] everything
        raise ValueError(f"val_fraction={val_fraction!r} of {len(ids)} characters leaves no validation "
                         f"characters: use more text (max_chars) or a larger val_fraction")
    return CharCorpus(chars, ids[:-n_val], ids[-n_val:])
