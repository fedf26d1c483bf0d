r"""A WordPiece tokenizer (Wu et al., 2016; Devlin et al., 2019) written from ``vocab.txt``.

BERT-style models read text in two stages:

1. **Basic tokenisation** splits the text into words: drop control characters and turn every
   kind of white space into a space; put spaces around Chinese/Japanese/Korean ideographs (each
   becomes its own word); strip accents (Unicode NFD, then drop the combining marks, category
   ``Mn``) and lower-case; split on white space, and make every punctuation character a word.
2. **WordPiece** splits each word into vocabulary pieces, greedily, *longest match first*: take
   the longest prefix of the word that is in the vocabulary, then the longest piece of the rest
   that is in the vocabulary *with the prefix* ``##`` (a piece inside a word), and so on. A word
   that cannot be covered this way, or is longer than 100 characters, becomes ``[UNK]``.

``"Unaffable!"`` becomes ``["[CLS]", "una", "##ffa", "##ble", "!", "[SEP]"]``; the ids are the
pieces' line numbers in ``vocab.txt``. This is what ``transformers``' ``BertTokenizer`` (and the
Rust ``tokenizers`` backend) do for all-MiniLM-L6-v2; the tests check the ids are equal.
"""
from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from attnlib.checks import check_device, check_path, check_text, check_texts, check_token_ids
from attnlib.shapes import check_count

__all__ = ["WordPieceTokenizer", "basic_tokenize", "wordpiece", "is_punctuation", "is_cjk"]

MAX_CHARS_PER_WORD = 100


def is_punctuation(ch: str) -> bool:
    """True for ASCII symbols (``$``, ``+``, ``^`` ... count) and every Unicode punctuation character.

    Parameters
    ----------
    ch : str
        One character.

    Returns
    -------
    bool
    """
    return _is_punctuation(_check_char(ch))


def _check_char(ch) -> str:
    if len(check_text(ch, "ch")) != 1:
        raise ValueError(f"ch must be one character, got a str of length {len(ch)}: {ch[:20]!r}")
    return ch


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(ch: str) -> bool:
    """True for a CJK ideograph (the Unicode blocks BERT treats as one word per character).

    Parameters
    ----------
    ch : str
        One character.

    Returns
    -------
    bool
    """
    return _is_cjk(_check_char(ch))


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    # Control, format, private-use and surrogate characters; unassigned code points (Cn) are kept,
    # as the Rust ``tokenizers`` normaliser does (they then become [UNK]).
    return ch not in "\t\n\r" and unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")


def _normalise(text: str, lowercase: bool = True) -> str:
    """Clean the text, isolate CJK characters, strip accents and lower-case (the normaliser's order)."""
    out = []
    for ch in text:
        if ch in ("\x00", "\ufffd") or _is_control(ch):
            continue
        if _is_whitespace(ch):
            out.append(" ")
        elif _is_cjk(ch):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    text = "".join(out)
    if lowercase:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        text = text.lower()
    return text


def basic_tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split text into words: clean, isolate CJK, strip accents, lower-case, split on spaces and punctuation.

    Parameters
    ----------
    text : str
    lowercase : bool
        Lower-case and strip accents (all-MiniLM-L6-v2 is an *uncased* model: True).

    Returns
    -------
    list of str
        ``basic_tokenize("Héllo, world!")`` is ``["hello", ",", "world", "!"]``.

    Raises
    ------
    TypeError
        When ``text`` is not a str (None, bytes, a number, a list).
    """
    return _basic_tokenize(check_text(text, "text"), lowercase)


def _basic_tokenize(text: str, lowercase: bool) -> list[str]:
    words = []
    for chunk in _normalise(text, lowercase).split():
        current = []
        for ch in chunk:
            if _is_punctuation(ch):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(ch)
            else:
                current.append(ch)
        if current:
            words.append("".join(current))
    return words


def wordpiece(word: str, vocab, unk: str = "[UNK]", max_chars: int = MAX_CHARS_PER_WORD) -> list[str]:
    """Greedy longest-match-first split of one word into vocabulary pieces.

    Parameters
    ----------
    word : str
        One word from :func:`basic_tokenize` (no spaces).
    vocab : container of str
        The pieces; pieces that continue a word start with ``"##"``.
    unk : str
        Returned (alone) for a word that cannot be covered or is longer than ``max_chars``.
    max_chars : int

    Returns
    -------
    list of str
        ``wordpiece("unaffable", vocab)`` is ``["una", "##ffa", "##ble"]`` for BERT's vocabulary.

    Raises
    ------
    TypeError
        When ``word`` or ``unk`` is not a str, or ``vocab`` is a str or not a container.
    ValueError
        When ``max_chars`` is not a non-negative integer.
    """
    check_text(word, "word")
    check_text(unk, "unk")
    if isinstance(vocab, (str, bytes)) or not hasattr(vocab, "__contains__"):
        raise TypeError(f"vocab must be a container of pieces (a set, dict or list of str), got "
                        f"{type(vocab).__name__}" + (": a str would match any substring" if isinstance(vocab, str)
                                                     else ""))
    max_chars = check_count(max_chars, "max_chars")
    return _wordpiece(word, vocab, unk, max_chars)


def _wordpiece(word: str, vocab, unk: str, max_chars: int) -> list[str]:
    if len(word) > max_chars:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return [unk]
        pieces.append(piece)
        start = end
    return pieces


class WordPieceTokenizer:
    """BERT's uncased WordPiece tokenizer, from a ``vocab.txt`` (one piece per line; line i is id i).

    Parameters
    ----------
    vocab : str, pathlib.Path or sequence of str
        The path of ``vocab.txt`` or the list of pieces.
    lowercase : bool
        Lower-case and strip accents (True for uncased models such as all-MiniLM-L6-v2).
    model_max_length : int
        Longest input the model takes, ``[CLS]`` and ``[SEP]`` included (512 for BERT).

    Attributes
    ----------
    vocab : dict of str to int
    inv_vocab : list of str
    pad_id, unk_id, cls_id, sep_id, mask_id : int
    """

    def __init__(self, vocab, lowercase: bool = True, model_max_length: int = 512):
        if isinstance(vocab, (str, Path)):
            path = check_path(vocab, "vocab")
            if path.is_dir():
                raise ValueError(f"vocab {path} is a directory: pass the vocab.txt file inside it")
            vocab = path.read_text(encoding="utf-8").splitlines()
        elif isinstance(vocab, (bytes, bytearray)) or not hasattr(vocab, "__iter__"):
            raise TypeError(f"vocab must be the path of a vocab.txt or a list of str, got {type(vocab).__name__}")
        else:
            vocab = check_texts(list(vocab), "vocab")
        model_max_length = check_count(model_max_length, "model_max_length")
        if model_max_length < 2:
            raise ValueError(f"model_max_length must be >= 2 (room for [CLS] and [SEP]), got {model_max_length}")
        self.inv_vocab = list(vocab)
        self.vocab = {tok: i for i, tok in enumerate(self.inv_vocab)}
        self.lowercase, self.model_max_length = bool(lowercase), int(model_max_length)
        try:
            self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
                self.vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"))
        except KeyError as err:
            raise ValueError(f"the vocabulary lacks the special token {err.args[0]}") from None

    def __len__(self) -> int:
        return len(self.inv_vocab)

    def __repr__(self) -> str:
        return f"WordPieceTokenizer(vocab_size={len(self)}, lowercase={self.lowercase})"

    def tokenize(self, text: str) -> list[str]:
        """The pieces of ``text``, without ``[CLS]``/``[SEP]``.

        Parameters
        ----------
        text : str

        Returns
        -------
        list of str
        """
        check_text(text, "text")
        return [p for w in _basic_tokenize(text, self.lowercase)
                for p in _wordpiece(w, self.vocab, "[UNK]", MAX_CHARS_PER_WORD)]

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        """Ids of pieces (``[UNK]``'s id for a piece not in the vocabulary).

        Parameters
        ----------
        tokens : sequence of str

        Returns
        -------
        list of int
        """
        return [self.vocab.get(t, self.unk_id) for t in check_texts(tokens, "tokens")]

    def convert_ids_to_tokens(self, ids) -> list[str]:
        """Pieces of ids.

        Parameters
        ----------
        ids : sequence of int or torch.Tensor, shape (L,)

        Returns
        -------
        list of str

        Raises
        ------
        ValueError
            For an id outside ``[0, len(tokenizer))`` (a -1 would silently read the last piece),
            float ids, or ids that are not one sequence (1-D).
        """
        return [self.inv_vocab[int(i)] for i in self._check_ids(ids)]

    def _check_ids(self, ids):
        if ids is None or isinstance(ids, (str, bytes, int, float)):
            raise TypeError(f"ids must be a sequence of int or a 1-D tensor, got {type(ids).__name__}")
        check_token_ids(ids, len(self.inv_vocab), "ids")
        if np.ndim(ids) != 1:
            raise ValueError(f"ids must be one sequence (1-D), got {np.ndim(ids)} dimensions: decode each row")
        return ids

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        """``[CLS]`` + the ids of ``text`` + ``[SEP]``, truncated to ``max_length`` ids in all.

        Parameters
        ----------
        text : str
        max_length : int, optional
            Default: ``model_max_length``. At least 2.

        Returns
        -------
        list of int
        """
        check_text(text, "text")
        max_length = self.model_max_length if max_length is None else check_count(max_length, "max_length")
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 (room for [CLS] and [SEP]), got {max_length}")
        ids = self.convert_tokens_to_ids(self.tokenize(text))[:max_length - 2]
        return [self.cls_id, *ids, self.sep_id]

    def __call__(self, texts, max_length: int | None = None, device=None) -> dict:
        """Tokenise a batch, right-padded with ``[PAD]`` to its longest member.

        Parameters
        ----------
        texts : str or list of str
            One string counts as a batch of one.
        max_length : int, optional
            Truncate each input to this many ids, ``[CLS]``/``[SEP]`` included (default and
            maximum: ``model_max_length``).
        device : torch.device, optional

        Returns
        -------
        dict
            ``"input_ids"``: torch.LongTensor (B, L); ``"attention_mask"``: torch.LongTensor (B, L),
            1 on real tokens and 0 on padding; ``"token_type_ids"``: zeros (B, L).
        """
        texts = [texts] if isinstance(texts, str) else check_texts(texts, "texts")
        if max_length is not None:
            max_length = check_count(max_length, "max_length")
        device = check_device(device)
        if max_length is not None and max_length > self.model_max_length:
            raise ValueError(f"max_length={max_length} exceeds the model's limit of "
                             f"{self.model_max_length} positions")
        rows = [self.encode(t, max_length) for t in texts]
        L = max((len(r) for r in rows), default=0)
        ids = torch.full((len(rows), L), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), L), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, :len(r)] = 1
        out = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
        return {k: v.to(device) for k, v in out.items()} if device is not None else out

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """Text back from ids: pieces joined, ``##`` pieces glued to the previous one.

        Lower-casing and stripped accents cannot be undone, and spaces around punctuation are
        not restored (``"hello , world !"``).

        Parameters
        ----------
        ids : sequence of int or torch.Tensor, shape (L,)
        skip_special_tokens : bool
            Drop ``[PAD]``, ``[CLS]``, ``[SEP]`` (and ``[MASK]``).

        Returns
        -------
        str
        """
        special = {"[PAD]", "[CLS]", "[SEP]", "[MASK]"}
        words = []
        for tok in self.convert_ids_to_tokens(ids):
            if skip_special_tokens and tok in special:
                continue
            if tok.startswith("##") and words:
                words[-1] += tok[2:]
            else:
                words.append(tok)
        return " ".join(words)
