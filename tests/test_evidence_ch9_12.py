"""Evidence of chapters 9-12 (issue 11): Luong's location score, the new measurements and the
checker's new diagnosis, each against an independent reference (the formula written with torch ops,
hand-counted small cases, parameter counts from the layer shapes)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnlib.torch import InputFeedingDecoder, LocationAttention


def _mask(lengths, L):
    return torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]


# ----------------------------------------------------------------------------- the location score

def test_location_weights_are_softmax_of_W_a_s_over_the_real_positions():
    torch.manual_seed(0)
    att = LocationAttention(4, 3, max_length=7).double()
    s = torch.randn(2, 4, dtype=torch.float64)
    h = torch.randn(2, 5, 3, dtype=torch.float64)
    mask = _mask([5, 2], 5)
    context, weights = att(s, h, mask)
    W_a = att.W.weight.detach()                                         # (max_length, H_dec)
    for b, L in enumerate([5, 2]):
        # Luong et al. (2015), eq. 8: a_t = softmax(W_a h_t), here cut to the L real positions.
        scores = [float(sum(W_a[j, i] * s[b, i] for i in range(4))) for j in range(L)]
        top = max(scores)
        e = [np.exp(x - top) for x in scores]
        expected = [x / sum(e) for x in e] + [0.0] * (5 - L)
        assert weights[b].tolist() == pytest.approx(expected, abs=1e-12)
        assert context[b].tolist() == pytest.approx(
            [sum(expected[j] * float(h[b, j, k]) for j in range(5)) for k in range(3)], abs=1e-12)


def test_location_weights_ignore_the_encoder_states():
    torch.manual_seed(1)
    att = LocationAttention(4, 3, max_length=6)
    s = torch.randn(3, 4)
    _, w1 = att(s, torch.randn(3, 6, 3))
    _, w2 = att(s, torch.randn(3, 6, 3) * 100)
    assert torch.equal(w1, w2)
    assert torch.allclose(w1, torch.softmax(F.linear(s, att.W.weight), -1))
    assert att.W.weight.shape == (6, 4) and att.W.bias is None


def test_location_refuses_a_source_longer_than_max_length():
    att = LocationAttention(4, 3, max_length=4)
    with pytest.raises(ValueError, match="max_length=4"):
        att(torch.randn(1, 4), torch.randn(1, 5, 3))
    for bad in (0, -1, 2.5):
        with pytest.raises((ValueError, TypeError), match="max_length"):
            LocationAttention(4, 3, max_length=bad)


def test_location_gradcheck_and_trains_in_a_decoder():
    torch.manual_seed(2)
    att = LocationAttention(3, 4, 6).double()
    s = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    mask = _mask([5, 3], 5)
    assert torch.autograd.gradcheck(lambda a, b: att(a, b, mask), (s, h))
    dec = InputFeedingDecoder(7, 5, 8, 4, LocationAttention(8, 4, 6))
    logits, weights = dec(torch.tensor([[1, 3, 4, 2]]), torch.randn(1, 5, 4), torch.randn(1, 4),
                          torch.ones(1, 5, dtype=torch.bool))
    assert logits.shape == (1, 4, 7) and weights.shape == (1, 4, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(1, 4))


# ----------------------------------------------------------------------------- chapter 11 measurements

def test_parameter_parts_match_the_layer_shapes():
    from attnlib.experiments.luong import attention_variants, component_parameters

    models = {n: b() for n, b in attention_variants(20, 15, embed_dim=16, hidden_size=32).items()}
    H = 64
    parts = {n: component_parameters(m) for n, m in models.items()}
    assert parts["Bahdanau"]["scorer"] == H * H + H * H + H             # W_a, U_a, v_a
    assert parts["dot"]["scorer"] == 0
    assert parts["general"]["scorer"] == H * H
    assert parts["location"]["scorer"] == 32 * H                        # max_source_length x H
    assert parts["Bahdanau"]["total"] - parts["dot"]["total"] == H * H * 2 + H
    # the GRU cells read 16 + 64 inputs in both designs: 3 gates x (in x H + H x H + 2 H)
    assert {p["GRU cell"] for p in parts.values()} == {3 * ((16 + H) * H + H * H + 2 * H)}
    for n, m in models.items():
        assert parts[n]["total"] == sum(p.numel() for p in m.parameters())


def test_argmax_agreement_sees_a_shift_by_one_row():
    from attnlib.experiments.luong import argmax_agreement

    eye = np.eye(5)
    shifted = np.roll(eye, 1, axis=0)        # row t + 1 of `shifted` is row t of `eye`
    agree = argmax_agreement([eye], [shifted])
    assert agree[1] == 1.0 and agree[0] == 0.0 and agree[-1] == 0.0
    assert argmax_agreement([eye], [eye]) == {-1: 0.0, 0: 1.0, 1: 0.0}
    with pytest.raises(ValueError, match="same 2-d shape"):
        argmax_agreement([eye], [np.eye(4)])


# ----------------------------------------------------------------------------- chapter 9 measurements

def test_pooled_accuracy_weights_by_the_counts():
    from attnlib.experiments.bottleneck import pooled_accuracy

    acc = np.array([[1.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
    got = pooled_accuracy(acc, [2, 2, 4], [3, 4, 5], 4, 5)
    assert got.tolist() == pytest.approx([(0.5 * 2 + 0) / 6, (0 + 4) / 6])
    with pytest.raises(ValueError, match="no length"):
        pooled_accuracy(acc, [2, 2, 4], [3, 4, 5], 9, 9)


def test_interleaved_step_times_leave_the_models_untouched():
    from attnlib.experiments.bottleneck import interleaved_step_times

    torch.manual_seed(3)
    models = {"a": torch.nn.Linear(3, 1), "b": torch.nn.Linear(3, 1)}
    before = {n: m.weight.detach().clone() for n, m in models.items()}
    x = torch.randn(8, 3)
    times = interleaved_step_times(models, x, lambda m, b: m(b).pow(2).mean(), repeats=3)
    assert set(times) == {"a", "b"} and all(t > 0 for t in times.values())
    assert all(torch.equal(models[n].weight, before[n]) for n in models)


def test_exact_match_checker_names_a_count():
    from attnlib.exercises import bottleneck as ex

    def count(p, t, pad_id):
        w = max(p.shape[1], t.shape[1])
        p, t = F.pad(p, (0, w - p.shape[1]), value=pad_id), F.pad(t, (0, w - t.shape[1]), value=pad_id)
        return (p == t).all(dim=1).sum()

    ex.reset()
    result = ex.check_exact_match(count)
    assert result.mistake == "count" and "fraction" in result.message
    ex.reset()


# ----------------------------------------------------------------------------- chapter 12 measurements

def test_interior_selection_leaves_the_brackets_out():
    from attnlib.experiments.hard_structured import interior_selection

    # tokens: 3 + digit, 1 "(", 2 ")"; row: 0 ( 1 1 ) 2 -> inside digits at positions 2, 3
    tokens = torch.tensor([[3, 1, 4, 4, 2, 5]])
    span = torch.tensor([[False, True, True, True, True, False]])
    mask = torch.ones(1, 6, dtype=torch.bool)
    brackets_only = torch.tensor([[0.0, 1.0, 0.0, 0.0, 1.0, 0.0]])
    got = interior_selection(brackets_only, tokens, span, mask)
    assert got["iou"] == 0.0 and got["chance"] == pytest.approx(2 / 4)
    weights = torch.tensor([[0.1, 0.9, 0.8, 0.6, 0.9, 0.3]])
    got = interior_selection(weights, tokens, span, mask)
    assert got["mass_inside"] == pytest.approx((0.8 + 0.6) / (0.1 + 0.8 + 0.6 + 0.3))
    assert got["weight_inside"] == pytest.approx(0.7) and got["weight_outside"] == pytest.approx(0.2)
    assert got["iou"] == 1.0


def test_segment_selection_counts_the_selected_tokens():
    from attnlib.experiments.hard_structured import segment_selection

    w = torch.tensor([[0.9, 0.1, 0.2, 0.1], [0.9, 0.8, 0.1, 0.7]])
    got = segment_selection(w, torch.tensor([[True, True, False, False]] * 2), torch.ones(2, 4, dtype=torch.bool))
    assert got["selected"] == pytest.approx(2.0)           # 1 and 3 tokens
    assert got["one_run"] == pytest.approx(0.5)            # a single token is one contiguous run


def test_majority_class_accuracy_by_hand():
    from attnlib.experiments.hard_structured import majority_class_accuracy

    assert majority_class_accuracy(torch.tensor([2, 2, 1, 0]), torch.tensor([2, 1, 2, 2, 0])) == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="test_targets"):
        majority_class_accuracy(torch.tensor([1]), torch.tensor([0.5]))
