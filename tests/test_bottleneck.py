"""The bottleneck chapter's library code: model pair, accuracy by length, figures and checkers."""
import matplotlib
import pytest
import torch
import torch.nn.functional as F

from attnlib.data import reverse_task
from attnlib.exercises import bottleneck as ex
from attnlib.experiments.bottleneck import accuracy_by_length, bottleneck_models, length_bins
from attnlib.torch import count_parameters, predict

matplotlib.use("Agg")


def test_length_bins_cover_the_range():
    assert length_bins(3, 10, 3) == [(3, 5), (6, 8), (9, 10)]
    with pytest.raises(ValueError):
        length_bins(5, 4, 1)


def test_models_have_matched_budgets_and_accuracy_by_length_counts_right():
    plain, attentive = bottleneck_models(14, 14)
    n1, n2 = count_parameters(plain), count_parameters(attentive)
    assert (n1, n2) == (66510, 67924) and abs(n1 - n2) / n1 < 0.1
    task = reverse_task(50, 10, 40, min_len=3, max_len=8, alphabet="abcdefghij", seed=0)
    torch.manual_seed(0)
    rows = accuracy_by_length(attentive, task, task.test, length_bins(3, 8, 3))
    texts = predict(attentive, task, task.test)
    for r in rows:
        sel = [(t, p) for t, p in zip(texts, task.test) if r["lo"] <= len(p.source) <= r["hi"]]
        assert r["n"] == len(sel)
        assert r["accuracy"] == pytest.approx(sum(t == p.target for t, p in sel) / len(sel))
    from attnlib.viz.bottleneck import accuracy_vs_length_figure, bottleneck_frame, bottleneck_snapshots
    accuracy_vs_length_figure({"attention": rows})
    bottleneck_frame(task, plain, attentive, task.test, 5)
    bottleneck_snapshots(task, plain, attentive, task.test, (3, 8))


def _exact(p, t, pad_id):
    w = max(p.shape[1], t.shape[1])
    p, t = F.pad(p, (0, w - p.shape[1]), value=pad_id), F.pad(t, (0, w - t.shape[1]), value=pad_id)
    return (p == t).all(dim=1).float().mean()


def _context(s, v, m):
    w = torch.nan_to_num(torch.softmax(s.masked_fill(~m, float("-inf")), -1), nan=0.0)
    return torch.einsum("bl,blh->bh", w, v)


def test_checkers_pass_right_answers_and_name_the_mistakes():
    ex.reset()
    assert ex.check_exact_match(_exact).passed
    assert ex.check_exact_match(lambda p, t, pad: _exact(p, t, pad).item()).passed  # a float is fine
    tok = ex.check_exact_match(lambda p, t, pad: (F.pad(p, (0, 9 - p.shape[1]), value=pad)
                                                  == F.pad(t, (0, 9 - t.shape[1]), value=pad))
                               [F.pad(t, (0, 9 - t.shape[1]), value=pad) != pad].float().mean())
    assert tok.mistake == "token_accuracy"
    assert ex.check_context(_context).passed
    assert ex.check_context(lambda s, v, m: torch.einsum("bl,blh->bh", torch.softmax(s, -1), v)).mistake == "no_mask"
    assert ex.check_context(lambda s, v, m: _context(s, v, ~m)).mistake == "inverted_mask"
    assert ex.check_context(lambda s, v, m: torch.einsum("bl,blh->bh", torch.softmax(s, -1) * m, v)).mistake \
        == "masked_after_softmax"
    nan = ex.check_context(lambda s, v, m: torch.einsum(
        "bl,blh->bh", torch.softmax(s.masked_fill(~m, float("-inf")), -1), v))
    assert not nan.passed and "NaN" in nan.message
    stub = ex.check_context(lambda s, v, m: (_ for _ in ()).throw(NotImplementedError))
    assert stub.status == "unsolved"
