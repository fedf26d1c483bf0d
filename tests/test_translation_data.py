"""The toy translation tasks: seeded, disjoint splits, held-out formats and years, batches."""
import datetime

import pytest
import torch

from attnlib.data import date_task, format_date, reverse_pairs, reverse_task
from attnlib.data.translation import (
    BOS_ID,
    DATE_FORMATS,
    DEFAULT_TEST_FORMATS,
    DEFAULT_TEST_YEARS,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    Vocab,
)


@pytest.fixture(scope="module")
def dates():
    return date_task(n_train=1500, n_val=200, n_test=400, seed=3)


@pytest.fixture(scope="module")
def rev():
    return reverse_task(n_train=800, n_val=100, n_test=200, min_len=5, max_len=25, seed=4)


def test_same_seed_same_task_other_seed_other_task():
    a, b = date_task(300, 50, 80, seed=7), date_task(300, 50, 80, seed=7)
    c = date_task(300, 50, 80, seed=8)
    assert a.train == b.train and a.val == b.val and a.test == b.test
    assert a.train != c.train
    r1, r2 = reverse_task(200, 20, 40, seed=1), reverse_task(200, 20, 40, seed=1)
    assert r1.train == r2.train and r1.test == r2.test
    assert reverse_pairs(5, seed=2) == reverse_pairs(5, seed=2)


def test_targets_are_the_iso_dates_of_the_sources(dates):
    for p in dates.train[:300] + dates.test[:100]:
        d = datetime.date.fromisoformat(p.target)
        assert format_date(d, p.kind) == p.source


def test_some_formats_read_as_a_person_would():
    d = datetime.date(2021, 3, 3)
    assert format_date(d, "the_ordinal_of") == "the 3rd of March, 2021"
    assert format_date(d, "us_slash_short") == "3/3/21"
    assert format_date(d, "eu_dots") == "03.03.2021"
    assert format_date(d, "weekday_month_day_year") == "Wednesday March 3 2021"
    assert format_date(d, "year_month_day_lower") == "2021 march 3"
    assert format_date(datetime.date(2011, 11, 12), "month_ordinal") == "November 12th, 2011"
    with pytest.raises(ValueError, match="unknown date format"):
        format_date(d, "nope")


def test_date_splits_are_disjoint_and_test_holds_only_unseen_years_or_formats(dates):
    train_src = {p.source for p in dates.train + dates.val}
    assert not train_src & {p.source for p in dates.test}
    assert len(train_src) == len(dates.train) + len(dates.val)
    held_years, held_formats = set(DEFAULT_TEST_YEARS), set(DEFAULT_TEST_FORMATS)
    for p in dates.train + dates.val:
        assert int(p.target[:4]) not in held_years and p.kind not in held_formats
    for p in dates.test:
        assert int(p.target[:4]) in held_years or p.kind in held_formats
    # both kinds of novelty are there, and the seen formats all occur in training
    assert any(p.kind in held_formats for p in dates.test)
    assert any(int(p.target[:4]) in held_years and p.kind not in held_formats for p in dates.test)
    assert {p.kind for p in dates.train} == set(DATE_FORMATS) - held_formats


def test_date_task_can_hold_out_years_only():
    t = date_task(300, 30, 60, seed=0, test_formats=())
    assert {p.kind for p in t.test} <= {p.kind for p in t.train} | set(DATE_FORMATS)
    assert all(int(p.target[:4]) in DEFAULT_TEST_YEARS for p in t.test)
    with pytest.raises(ValueError, match="unknown test formats"):
        date_task(10, 1, 1, test_formats=("bogus",))


def test_reverse_splits_are_disjoint_and_cover_the_lengths(rev):
    srcs = [{p.source for p in s} for s in (rev.train, rev.val, rev.test)]
    assert not (srcs[0] & srcs[1] or srcs[0] & srcs[2] or srcs[1] & srcs[2])
    assert all(p.target == p.source[::-1] for p in rev.train + rev.test)
    lengths = {len(p.source) for p in rev.test}
    assert min(lengths) == 5 and max(lengths) == 25
    longer = reverse_task(200, 20, 100, min_len=5, max_len=30, max_train_len=15, seed=0)
    assert max(len(p.source) for p in longer.train) <= 15
    assert max(len(p.source) for p in longer.test) > 15


def test_by_length_selects_inclusive_ranges(rev):
    sel = rev.by_length("test", 10, 12)
    assert sel and all(10 <= len(p.source) <= 12 for p in sel)
    assert len(sel) == sum(10 <= len(p.source) <= 12 for p in rev.test)


def test_vocab_specials_and_round_trip(dates):
    v = dates.source_vocab
    assert v.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert (PAD_ID, BOS_ID, EOS_ID, UNK_ID) == (0, 1, 2, 3)
    for p in dates.train[:200] + dates.test[:50]:
        assert v.decode(v.encode(p.source)) == p.source
        assert dates.target_vocab.decode(dates.target_vocab.encode(p.target, bos=True, eos=True)) == p.target
    ids = v.encode("March~", eos=True)
    assert ids[-2] == UNK_ID and ids[-1] == EOS_ID
    assert v.decode(ids + [5, 6]) == "March?"  # stops at <eos>
    assert v.decode(torch.tensor([PAD_ID, BOS_ID] + v.encode("Ma") + [PAD_ID])) == "Ma"
    with pytest.raises(ValueError):
        Vocab(["ab"])


def test_batches_are_padded_with_a_true_on_real_tokens_mask(dates):
    pairs = dates.train[:5]
    b = dates.encode_batch(pairs)
    L = max(len(p.source) for p in pairs)
    T = max(len(p.target) for p in pairs) + 1
    assert b.src.shape == (5, L) and b.src.dtype == torch.long
    assert b.tgt_in.shape == b.tgt_out.shape == (5, T)
    for i, p in enumerate(pairs):
        n = len(p.source)
        assert b.src_lengths[i] == n
        assert b.src_mask[i].tolist() == [True] * n + [False] * (L - n)
        assert (b.src[i, n:] == PAD_ID).all() and (b.src[i, :n] != PAD_ID).all()
        assert dates.source_vocab.decode(b.src[i]) == p.source
        m = len(p.target) + 1
        assert b.tgt_in[i, 0] == BOS_ID and b.tgt_out[i, m - 1] == EOS_ID
        assert (b.tgt_in[i, 1:m] == b.tgt_out[i, :m - 1]).all()
        assert b.tgt_mask[i].tolist() == [True] * m + [False] * (T - m)
        assert b.tgt_lengths[i] == m
    assert b.src_mask.dtype == torch.bool


def test_an_epoch_of_batches_covers_each_example_once_and_is_seeded(rev):
    epoch = list(rev.batches("train", batch_size=64, seed=1))
    seen = [p.source for b in epoch for p in b.pairs]
    assert sorted(seen) == sorted(p.source for p in rev.train)
    again = [p.source for b in rev.batches("train", batch_size=64, seed=1) for p in b.pairs]
    other = [p.source for b in rev.batches("train", batch_size=64, seed=2) for p in b.pairs]
    assert seen == again and seen != other
    plain = [p.source for b in rev.batches("val", 32, shuffle=False) for p in b.pairs]
    assert plain == [p.source for p in rev.val]
    stream = rev.batch_stream("train", 64, seed=5)
    first, second = [b.pairs[0] for b in stream()], [b.pairs[0] for b in stream()]
    assert first != second  # reshuffled every epoch


def test_batches_land_on_the_requested_device(rev):
    b = next(rev.batches("train", 8, device="cpu"))
    assert all(t.device.type == "cpu" for t in (b.src, b.src_mask, b.tgt_in, b.tgt_out))
    assert b.to(torch.device("cpu")).src.equal(b.src)
