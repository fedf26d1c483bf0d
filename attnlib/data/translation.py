"""Toy translation tasks whose alignments can be checked by eye, generated from a seed.

Two tasks, character-level, both returned as a :class:`TranslationTask`:

- :func:`date_task`: dates written many human ways to their ISO form,
  ``"the 3rd of March, 2021"`` -> ``"2021-03-03"``. The alignment is readable: the year digits
  of the output look at the year of the input, the month digits at the month name, and so on.
  The **test split holds what training never saw**: every date of the years 2025-2029 (in any
  format) and every date written in the formats ``month_ordinal`` (``"March 3rd, 2021"``) and
  ``day_month_abbr`` (``"3 Mar 2021"``), which recombine pieces seen in training (ordinals,
  abbreviated months, day-first order) in new ways. Training and validation hold neither.
- :func:`reverse_task`: a random letter string and its reverse, ``"abcde"`` -> ``"edcba"``,
  of lengths ``min_len``-``max_len`` (5-40 by default). The alignment is the anti-diagonal. The
  splits are disjoint by content (each string belongs to one split, chosen by a hash of the
  string), and ``max_train_len`` can keep the longest strings out of training altogether.

Tokens are characters. Both vocabularies (:class:`Vocab`) start with the four specials
``<pad>=0, <bos>=1, <eos>=2, <unk>=3``. :meth:`TranslationTask.batches` yields :class:`Batch`
objects of padded ``LongTensor`` s, lengths and boolean padding masks (True = real token, the
course's "may attend" convention) on a chosen device.

Example
-------
>>> task = date_task(n_train=2000, seed=0)
>>> task.train[0].source, task.train[0].target            # doctest: +SKIP
('Tuesday June 5 1979', '1979-06-05')
>>> batch = next(task.batches("train", batch_size=32))
>>> batch.src.shape[0], batch.tgt_in[0, 0].item() == task.target_vocab.bos_id
(32, True)
"""
from __future__ import annotations

import calendar
import datetime
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from attnlib.checks import check_device, check_positive_count, check_text, check_texts, check_token_ids
from attnlib.shapes import check_count

__all__ = ["SPECIALS", "PAD_ID", "BOS_ID", "EOS_ID", "UNK_ID", "Vocab", "Pair", "Batch",
           "TranslationTask", "DATE_FORMATS", "DEFAULT_TEST_FORMATS", "DEFAULT_TEST_YEARS",
           "format_date", "date_task", "reverse_task", "reverse_pairs"]

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3


# ----------------------------------------------------------------------------- vocabulary

class Vocab:
    """A character vocabulary: ``<pad>=0, <bos>=1, <eos>=2, <unk>=3``, then the symbols, sorted.

    Parameters
    ----------
    symbols : iterable of str
        The characters (one-character strings) the vocabulary knows; duplicates are ignored.

    Attributes
    ----------
    itos : list of str
        Token id -> symbol.
    stoi : dict
        Symbol -> token id.
    pad_id, bos_id, eos_id, unk_id : int
        0, 1, 2, 3.
    """

    pad_id, bos_id, eos_id, unk_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID

    def __init__(self, symbols):
        if isinstance(symbols, (bytes, bytearray)) or not hasattr(symbols, "__iter__"):
            raise TypeError(f"symbols must be a str or an iterable of one-character str, got {type(symbols).__name__}")
        if not isinstance(symbols, str):
            symbols = check_texts(list(symbols), "symbols")
        chars = sorted(set(symbols) - set(SPECIALS))
        bad = [c for c in chars if len(c) != 1]
        if bad:
            raise ValueError(f"a character vocabulary takes one-character symbols, got {bad[:3]}")
        self.itos = list(SPECIALS) + chars
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens: {''.join(self.itos[len(SPECIALS):])!r} + specials)"

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        """Token ids of ``text`` (one per character; unknown characters become ``<unk>``).

        Parameters
        ----------
        text : str
        bos, eos : bool
            Prepend ``<bos>`` / append ``<eos>``.

        Returns
        -------
        list of int
        """
        check_text(text, "text")
        for name, flag in (("bos", bos), ("eos", eos)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        bos, eos = bool(bos), bool(eos)
        ids = [self.stoi.get(c, UNK_ID) for c in text]
        return [BOS_ID] * bos + ids + [EOS_ID] * eos

    def decode(self, ids) -> str:
        """The text of a sequence of ids: stops at the first ``<eos>``, drops ``<pad>`` and ``<bos>``.

        ``<unk>`` is written as ``"?"``.

        Parameters
        ----------
        ids : sequence of int or 1-D tensor/array

        Returns
        -------
        str

        Raises
        ------
        ValueError
            For an id outside ``[0, len(vocab))`` (a -1 would silently read the last symbol),
            float ids, or more than one dimension (decode each row).
        """
        if ids is None or isinstance(ids, (str, bytes, int, float)):
            raise TypeError(f"ids must be a sequence of int or a 1-D tensor/array, got {type(ids).__name__}")
        check_token_ids(ids, len(self.itos), "ids")
        if np.ndim(ids) != 1:
            raise ValueError(f"ids must be one sequence (1-D), got {np.ndim(ids)} dimensions: decode each row")
        out = []
        for i in (ids.tolist() if hasattr(ids, "tolist") else ids):
            i = int(i)
            if i == EOS_ID:
                break
            if i in (PAD_ID, BOS_ID):
                continue
            out.append("?" if i == UNK_ID else self.itos[i])
        return "".join(out)


# ----------------------------------------------------------------------------- examples and batches

@dataclass(frozen=True)
class Pair:
    """One example: ``source`` text, ``target`` text and ``kind`` (the date format, or ``"reverse"``)."""
    source: str
    target: str
    kind: str


@dataclass
class Batch:
    """A padded batch (all tensors on one device).

    Attributes
    ----------
    src : torch.LongTensor, shape (B, L)
        Source ids, padded with ``<pad>`` = 0 (no ``<bos>``/``<eos>``).
    src_lengths : torch.LongTensor, shape (B,)
        Real length of each source.
    src_mask : torch.BoolTensor, shape (B, L)
        True on real source tokens (the keys a decoder may attend to).
    tgt_in : torch.LongTensor, shape (B, T)
        Decoder input: ``<bos>`` followed by the target, padded.
    tgt_out : torch.LongTensor, shape (B, T)
        What the decoder must predict: the target followed by ``<eos>``, padded.
    tgt_lengths : torch.LongTensor, shape (B,)
        Length of each target including ``<eos>``.
    tgt_mask : torch.BoolTensor, shape (B, T)
        True on real positions of ``tgt_out``.
    pairs : list of Pair
        The examples, in batch order.
    """
    src: "torch.Tensor"
    src_lengths: "torch.Tensor"
    src_mask: "torch.Tensor"
    tgt_in: "torch.Tensor"
    tgt_out: "torch.Tensor"
    tgt_lengths: "torch.Tensor"
    tgt_mask: "torch.Tensor"
    pairs: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pairs)

    def to(self, device) -> "Batch":
        """The same batch with every tensor moved to ``device``."""
        check_device(device)
        moved = {k: getattr(self, k).to(device) for k in
                 ("src", "src_lengths", "src_mask", "tgt_in", "tgt_out", "tgt_lengths", "tgt_mask")}
        return Batch(**moved, pairs=self.pairs)


def _pad(seqs: list[list[int]]):
    import torch
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    width = max(1, int(lengths.max())) if len(seqs) else 1
    out = torch.full((len(seqs), width), PAD_ID, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.tensor(s, dtype=torch.long)
    mask = torch.arange(width)[None, :] < lengths[:, None]
    return out, lengths, mask


@dataclass
class TranslationTask:
    """Splits and vocabularies of a toy translation task (made by :func:`date_task` or :func:`reverse_task`).

    Attributes
    ----------
    name : str
    train, val, test : list of Pair
    source_vocab, target_vocab : Vocab
    description : str
        What the test split holds that training does not.
    """
    name: str
    train: list
    val: list
    test: list
    source_vocab: Vocab
    target_vocab: Vocab
    description: str = ""

    def split(self, name: str) -> list:
        """The list of pairs of split ``"train"``, ``"val"`` or ``"test"``."""
        if not isinstance(name, str) or name not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {name!r}")
        return getattr(self, name)

    @staticmethod
    def _check_pairs(pairs, name: str) -> list:
        if isinstance(pairs, (str, bytes, Pair)) or not hasattr(pairs, "__iter__"):
            raise TypeError(f"{name} must be a list of Pair (or 'train', 'val', 'test'), got {type(pairs).__name__}")
        pairs = list(pairs)
        for i, p in enumerate(pairs):
            if not (isinstance(getattr(p, "source", None), str) and isinstance(getattr(p, "target", None), str)):
                raise TypeError(f"{name} must be a list of Pair (with str source and target), but item {i} is "
                                f"{type(p).__name__}")
        return pairs

    def encode_batch(self, pairs: Sequence[Pair], device=None) -> Batch:
        """Encode and pad a list of pairs into a :class:`Batch` on ``device`` (default: CPU).

        Parameters
        ----------
        pairs : sequence of Pair
        device : torch.device or str, optional

        Returns
        -------
        Batch
        """
        pairs = self._check_pairs(pairs, "pairs")
        check_device(device)
        src, src_len, src_mask = _pad([self.source_vocab.encode(p.source) for p in pairs])
        tgt = [self.target_vocab.encode(p.target) for p in pairs]
        tgt_in, _, _ = _pad([[BOS_ID] + t for t in tgt])
        tgt_out, tgt_len, tgt_mask = _pad([t + [EOS_ID] for t in tgt])
        batch = Batch(src, src_len, src_mask, tgt_in, tgt_out, tgt_len, tgt_mask, list(pairs))
        return batch if device is None else batch.to(device)

    def batches(self, split="train", batch_size: int = 64, shuffle: bool = True, seed: int = 0,
                device=None, bucket: bool = True) -> Iterator[Batch]:
        """One epoch of batches over a split (or over a given list of pairs).

        Parameters
        ----------
        split : str or sequence of Pair
            ``"train"``, ``"val"``, ``"test"``, or the pairs themselves.
        batch_size : int
        shuffle : bool
            Shuffle with ``seed`` (same seed, same order).
        seed : int
        device : torch.device or str, optional
        bucket : bool
            Group examples of similar source length into a batch (less padding, faster), then
            shuffle the order of the batches. Only when ``shuffle`` is True.

        Returns
        -------
        iterator of Batch
        """
        pairs = self.split(split) if isinstance(split, str) else self._check_pairs(split, "split")
        batch_size = check_positive_count(batch_size, "batch_size")
        seed = check_count(seed, "seed")
        check_device(device)
        order = np.arange(len(pairs))
        rng = np.random.default_rng(seed)
        if shuffle:
            order = rng.permutation(len(pairs))
            if bucket:
                chunk = batch_size * 20
                order = np.concatenate([sorted(order[i:i + chunk], key=lambda j: len(pairs[j].source))
                                        for i in range(0, len(order), chunk)] or [order]).astype(int)
        groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        if shuffle and bucket:
            groups = [groups[i] for i in rng.permutation(len(groups))]
        # Arguments are checked above when batches() is called, not at the first next().
        return (self.encode_batch([pairs[int(j)] for j in g], device) for g in groups)

    def batch_stream(self, split="train", batch_size: int = 64, seed: int = 0, device=None):
        """A callable for :func:`attnlib.torch.train`: each call returns a fresh, reshuffled epoch.

        Epoch ``e`` (counting calls from 0) is shuffled with seed ``seed + e``.

        Returns
        -------
        callable
            ``factory() -> iterator of Batch``.
        """
        if not isinstance(split, str):
            split = self._check_pairs(split, "split")
        else:
            self.split(split)
        batch_size = check_positive_count(batch_size, "batch_size")
        seed = check_count(seed, "seed")
        check_device(device)
        epoch = [0]

        def factory():
            it = self.batches(split, batch_size, shuffle=True, seed=seed + epoch[0], device=device)
            epoch[0] += 1
            return it
        return factory

    def by_length(self, split="test", lo: int = 0, hi: int | None = None) -> list:
        """The pairs of a split whose source has ``lo <= len(source) <= hi`` characters.

        Parameters
        ----------
        split : str or sequence of Pair
        lo, hi : int
            Inclusive bounds; ``hi=None`` means no upper bound.

        Returns
        -------
        list of Pair
        """
        pairs = self.split(split) if isinstance(split, str) else self._check_pairs(split, "split")
        lo = check_count(lo, "lo")
        if hi is not None and check_count(hi, "hi") < lo:
            raise ValueError(f"hi={hi} is below lo={lo}: no length lies in between")
        return [p for p in pairs if len(p.source) >= lo and (hi is None or len(p.source) <= hi)]


# ----------------------------------------------------------------------------- dates

# Written out, not taken from `calendar.month_name` / `calendar.day_name`: those follow the
# LC_TIME locale (strftime), so a program that called locale.setlocale() before this module was
# imported would get "März" or "lundi" and a different task.
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# name -> function(date) -> text. Separators carry the convention: "/" is US month/day/year,
# "." is European day.month.year, words are unambiguous.
DATE_FORMATS = {
    "the_ordinal_of": lambda d: f"the {_ordinal(d.day)} of {MONTHS[d.month - 1]}, {d.year}",
    "on_the_ordinal_of": lambda d: f"on the {_ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",
    "month_day_year": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    "day_month_year": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    "weekday_month_day_year": lambda d: f"{WEEKDAYS[d.weekday()]} {MONTHS[d.month - 1]} {d.day} {d.year}",
    "weekday_abbr": lambda d: f"{WEEKDAYS[d.weekday()][:3]}, {MONTHS[d.month - 1][:3]} {d.day} {d.year}",
    "month_abbr_day_year": lambda d: f"{MONTHS[d.month - 1][:3]} {d.day} {d.year}",
    "year_month_day_lower": lambda d: f"{d.year} {MONTHS[d.month - 1].lower()} {d.day}",
    "us_slash": lambda d: f"{d.month}/{d.day}/{d.year}",
    "us_slash_short": lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}",
    "eu_dots": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "upper_day_month_year": lambda d: f"{d.day} {MONTHS[d.month - 1].upper()} {d.year}",
    # held out by default (test only): new combinations of pieces seen in training
    "month_ordinal": lambda d: f"{MONTHS[d.month - 1]} {_ordinal(d.day)}, {d.year}",
    "day_month_abbr": lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",
}
DEFAULT_TEST_FORMATS = ("month_ordinal", "day_month_abbr")
DEFAULT_TEST_YEARS = tuple(range(2025, 2030))
_YEARS = (1950, 2049)  # two-digit years: 50-99 -> 19xx, 00-49 -> 20xx


def format_date(date: datetime.date, fmt: str) -> str:
    """Write ``date`` in the named format (a key of :data:`DATE_FORMATS`).

    Parameters
    ----------
    date : datetime.date
    fmt : str
        e.g. ``"the_ordinal_of"`` -> ``"the 3rd of March, 2021"``, ``"eu_dots"`` -> ``"03.03.2021"``.

    Returns
    -------
    str
    """
    if not isinstance(date, datetime.date):
        raise TypeError(f"date must be a datetime.date, got {type(date).__name__}"
                        + (": parse it first, e.g. datetime.date.fromisoformat(date)" if isinstance(date, str) else ""))
    check_text(fmt, "fmt")
    if fmt not in DATE_FORMATS:
        raise ValueError(f"unknown date format {fmt!r}; known: {sorted(DATE_FORMATS)}")
    return DATE_FORMATS[fmt](date)


def _random_date(rng, years) -> datetime.date:
    year = int(rng.choice(years))
    start = datetime.date(year, 1, 1).toordinal()
    days = 366 if calendar.isleap(year) else 365
    return datetime.date.fromordinal(start + int(rng.integers(days)))


def _date_vocab() -> Vocab:
    chars = set("0123456789 ,./'-")
    for name in MONTHS + WEEKDAYS + ["st", "nd", "rd", "th", "the", "of", "on"]:
        chars |= set(name) | set(name.lower()) | set(name.upper())
    return Vocab(chars)


def _unique_pairs(n, make, seen, rng, what):
    out, tries = [], 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ValueError(f"could not draw {n} distinct {what} examples; ask for fewer")
        p = make(rng)
        if p is None or p.source in seen:
            continue
        seen.add(p.source)
        out.append(p)
    return out


def _check_years(years) -> list:
    if isinstance(years, (str, bytes)) or not hasattr(years, "__iter__"):
        raise TypeError(f"test_years must be a sequence of int years (a tuple, list or range), got {type(years).__name__}")
    years = list(years)
    for y in years:
        if isinstance(y, (bool, np.bool_)) or not isinstance(y, (int, np.integer)) or not _YEARS[0] <= y <= _YEARS[1]:
            raise ValueError(f"test_years must hold int years in {_YEARS[0]}-{_YEARS[1]} (the years dates are "
                             f"drawn from), got {y!r}")
    return [int(y) for y in years]


def date_task(n_train: int = 6000, n_val: int = 500, n_test: int = 1000, seed: int = 0,
              test_years: Sequence[int] = DEFAULT_TEST_YEARS,
              test_formats: Sequence[str] = DEFAULT_TEST_FORMATS) -> TranslationTask:
    """Human-written dates -> ISO dates, with a test split of unseen years and formats.

    Dates are drawn uniformly from the years 1950-2049 and the formats of :data:`DATE_FORMATS`.
    An example is a *test* example when its year is in ``test_years`` **or** its format is in
    ``test_formats`` (half of the test split is drawn each way); train and validation examples
    have neither, so the splits are disjoint by
    construction (and no source string appears twice anywhere).

    Parameters
    ----------
    n_train, n_val, n_test : int
        Number of examples per split.
    seed : int
        Same seed, same task.
    test_years : sequence of int
        Years seen only at test time (default 2025-2029), within 1950-2049. Empty: hold out none.
    test_formats : sequence of str
        Formats seen only at test time (default ``month_ordinal``, ``day_month_abbr``). Empty:
        hold out none (then the test split differs from training only by year).

    Returns
    -------
    TranslationTask
        Sources are dates like ``"Wed, Mar 3 2021"``; targets ``"2021-03-03"``.
    """
    n_train, n_val, n_test = check_count(n_train, "n_train"), check_count(n_val, "n_val"), check_count(n_test, "n_test")
    seed = check_count(seed, "seed")
    test_years = _check_years(test_years)
    if isinstance(test_formats, (str, bytes)) or not hasattr(test_formats, "__iter__"):
        raise TypeError(f"test_formats must be a sequence of format names (a tuple or list of str), got "
                        f"{type(test_formats).__name__}" + (f": wrap it as ({test_formats!r},)" if isinstance(test_formats, str) else ""))
    test_formats = check_texts(list(test_formats), "test_formats")
    bad = [f for f in test_formats if f not in DATE_FORMATS]
    if bad:
        raise ValueError(f"unknown test formats {bad}; known: {sorted(DATE_FORMATS)}")
    all_years = list(range(_YEARS[0], _YEARS[1] + 1))
    held_years, held_formats = set(test_years), set(test_formats)
    train_years = [y for y in all_years if y not in held_years]
    train_formats = [f for f in DATE_FORMATS if f not in held_formats]
    if not train_years or not train_formats:
        raise ValueError("nothing is left for training: hold out fewer years or formats")
    if n_test and not (held_years or held_formats):
        raise ValueError("the test split needs held-out years or formats")
    rng = np.random.default_rng(seed)

    def make_train(rng):
        d, f = _random_date(rng, train_years), train_formats[int(rng.integers(len(train_formats)))]
        return Pair(format_date(d, f), d.isoformat(), f)

    formats = list(DATE_FORMATS)

    years_list, formats_list = sorted(held_years), sorted(held_formats)

    def make_test(rng):
        # Half the test examples have a held-out year, half a held-out format (when both exist).
        by_year = bool(years_list) and (not formats_list or rng.random() < 0.5)
        d = _random_date(rng, years_list if by_year else all_years)
        f = formats[int(rng.integers(len(formats)))] if by_year else \
            formats_list[int(rng.integers(len(formats_list)))]
        return Pair(format_date(d, f), d.isoformat(), f)

    seen: set = set()
    train = _unique_pairs(n_train, make_train, seen, rng, "training")
    val = _unique_pairs(n_val, make_train, seen, rng, "validation")
    test = _unique_pairs(n_test, make_test, seen, rng, "test")
    desc = (f"test split: years {sorted(held_years)} (any format) and formats {sorted(held_formats)} "
            "(any year), none of them in training or validation")
    return TranslationTask("dates", train, val, test, _date_vocab(), Vocab("0123456789-"), desc)


# ----------------------------------------------------------------------------- reversal

def _split_of(text: str, val_fraction: float, test_fraction: float) -> str:
    """Assign a string to a split by a hash of its content (stable across runs and machines)."""
    u = (zlib.crc32(text.encode()) % 100_000) / 100_000
    return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"


def _random_string(rng, alphabet: str, lo: int, hi: int) -> str:
    idx = rng.integers(len(alphabet), size=int(rng.integers(lo, hi + 1)))
    return "".join(alphabet[i] for i in idx.tolist())


def _check_lengths(min_len, max_len) -> tuple:
    min_len, max_len = check_positive_count(min_len, "min_len"), check_positive_count(max_len, "max_len")
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
    return min_len, max_len


def _check_alphabet(alphabet) -> None:
    check_text(alphabet, "alphabet")
    if not alphabet:
        raise ValueError("alphabet is empty: give the letters strings are drawn from, e.g. 'abcdefghijklmnop'")


def reverse_pairs(n: int, min_len: int = 5, max_len: int = 40, alphabet: str = "abcdefghijklmnop",
                  seed: int = 0) -> list:
    """``n`` random strings (lengths uniform in ``[min_len, max_len]``) with their reverses.

    No split is applied: use :func:`reverse_task` for disjoint splits.

    Parameters
    ----------
    n, min_len, max_len : int
    alphabet : str
    seed : int

    Returns
    -------
    list of Pair
        ``kind`` is ``"reverse"``.
    """
    n, seed = check_count(n, "n"), check_count(seed, "seed")
    min_len, max_len = _check_lengths(min_len, max_len)
    _check_alphabet(alphabet)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = _random_string(rng, alphabet, min_len, max_len)
        out.append(Pair(s, s[::-1], "reverse"))
    return out


def reverse_task(n_train: int = 6000, n_val: int = 500, n_test: int = 1000, min_len: int = 5,
                 max_len: int = 40, alphabet: str = "abcdefghijklmnop", seed: int = 0,
                 max_train_len: int | None = None) -> TranslationTask:
    """Reverse a random letter string: ``"kdoab"`` -> ``"baodk"``, lengths ``min_len``-``max_len``.

    Each string belongs to one split by a hash of its content (5 % validation, 10 % test), so
    the splits are disjoint by construction and the same string always lands in the same split.

    Parameters
    ----------
    n_train, n_val, n_test : int
    min_len, max_len : int
        Source lengths are uniform in ``[min_len, max_len]``, in every split.
    alphabet : str
        The letters (16 by default).
    seed : int
    max_train_len : int, optional
        If given, training and validation strings are at most this long while the test split
        still covers up to ``max_len``: a test of length generalisation.

    Returns
    -------
    TranslationTask
    """
    n_train, n_val, n_test = check_count(n_train, "n_train"), check_count(n_val, "n_val"), check_count(n_test, "n_test")
    seed = check_count(seed, "seed")
    min_len, max_len = _check_lengths(min_len, max_len)
    _check_alphabet(alphabet)
    if max_train_len is not None:
        max_train_len = check_positive_count(max_train_len, "max_train_len")
    train_max = max_len if max_train_len is None else max_train_len
    if not min_len <= train_max <= max_len:
        raise ValueError(f"max_train_len must lie in [min_len, max_len], got {max_train_len}")
    rng = np.random.default_rng(seed)

    def maker(split, hi):
        def make(rng):
            s = _random_string(rng, alphabet, min_len, hi)
            return Pair(s, s[::-1], "reverse") if _split_of(s, 0.05, 0.10) == split else None
        return make

    seen: set = set()
    train = _unique_pairs(n_train, maker("train", train_max), seen, rng, "training")
    val = _unique_pairs(n_val, maker("val", train_max), seen, rng, "validation")
    test = _unique_pairs(n_test, maker("test", max_len), seen, rng, "test")
    desc = (f"test split: strings of length {min_len}-{max_len} never seen in training "
            f"(split by a hash of the string); training lengths {min_len}-{train_max}")
    return TranslationTask("reverse", train, val, test, Vocab(alphabet), Vocab(alphabet), desc)
