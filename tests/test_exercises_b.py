"""The third exercises of chapters 7-10, proved both ways.

For each: a correct answer written here independently (plain Python loops, or, for the prediction,
the weights derived by hand) passes; every catalogued mistake, re-written here the way a learner
would write it (not by calling the catalogue's fn), gets its own diagnosis; a stub is unsolved.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

import attnlib.torch as atorch
from attnlib.exercises import bahdanau, bottleneck, multi_head, numpy_to_torch
from attnlib.exercises.core import PASSED, UNSOLVED, catalogue_problem

MODULES = (multi_head, numpy_to_torch, bottleneck, bahdanau)


@pytest.fixture(autouse=True)
def _fresh_chapters():
    """Every test starts with no recorded results."""
    for m in MODULES:
        m.reset()
    yield
    for m in MODULES:
        m.reset()


def stub(*args):
    """A learner's function before it is written."""
    raise NotImplementedError


# ============================================================================= ch7: which head wins?

def loop_head_rows(masked=True):
    """Each head's dot products and weights for the race query, from the layer, with Python loops.

    Returns (dots, weights): lists of H rows of L_k floats. The projections are x @ W written
    as sums over features; head h owns the columns h * d_head : (h + 1) * d_head; the weights are
    a softmax with math.exp over the keys the causal mask lets the query see (all keys if not masked).
    """
    x, (W_q, W_k, _, _), _ = multi_head.head_race_layer()
    L, d_model = x.shape
    H = multi_head.RACE_HEADS
    d_head = d_model // H
    i = multi_head.RACE_QUERY

    def project(W, t, col):
        return sum(float(x[t, f]) * float(W[f, col]) for f in range(d_model))

    dots, weights = [], []
    for h in range(H):
        cols = range(h * d_head, (h + 1) * d_head)
        row = [sum(project(W_q, i, c) * project(W_k, j, c) for c in cols) for j in range(L)]
        visible = [j for j in range(L) if j <= i or not masked]
        scaled = {j: row[j] / math.sqrt(d_head) for j in visible}
        top = max(scaled.values())
        total = sum(math.exp(s - top) for s in scaled.values())
        dots.append(row)
        weights.append([math.exp(scaled[j] - top) / total if j in scaled else 0.0 for j in range(L)])
    return dots, weights


def argmax(values):
    return max(range(len(values)), key=lambda h: values[h])


def test_race_layer_is_what_the_exercise_says():
    x, (W_q, W_k, W_v, W_o), mask = multi_head.head_race_layer()
    assert x.shape == (4, 16) and all(W.shape == (16, 16) for W in (W_q, W_k, W_v, W_o))
    assert mask.tolist() == [[j <= i for j in range(4)] for i in range(4)]
    dots, _ = loop_head_rows()
    np.testing.assert_array_equal(dots, multi_head._RACE_DOTS)   # the table the notebook prints
    np.testing.assert_array_equal(multi_head._race_dots(), multi_head._RACE_DOTS)


def test_winning_head_measured_equals_the_weights_derived_by_hand():
    key = multi_head.RACE_KEY
    _, weights = loop_head_rows()
    truth = argmax([w[key] for w in weights])
    assert multi_head._measure_winning_head() == truth == 3
    np.testing.assert_allclose(multi_head._race_weights(), weights, atol=1e-12)
    # The formula the solution states: key 1 leads its visible rivals by 3 in head 3, by 2 in head 1.
    assert math.isclose(weights[3][key], math.e ** 3 / (math.e ** 3 + 2), rel_tol=1e-12)
    assert math.isclose(weights[1][key], math.e ** 2 / (math.e ** 2 + 2), rel_tol=1e-12)
    # The winner wins clearly, not by a rounding: more than 0.1 ahead of the next head.
    second = sorted((w[key] for w in weights), reverse=True)[1]
    assert weights[truth][key] - second > 0.1


def test_winning_head_right_answer_passes_as_a_number_or_a_function():
    for value in (3, 3.0, np.int64(3), lambda: 3):
        r = multi_head.check_winning_head(value)
        assert r.status == PASSED, r.message
        assert "measures 3" in r.message


def wrong_by_learner(name):
    """The head a learner gets by each wrong line of reasoning, derived here from the loops."""
    key = multi_head.RACE_KEY
    dots, weights = loop_head_rows()
    _, unmasked = loop_head_rows(masked=False)
    return {
        "largest_dot_product": argmax([d[key] for d in dots]),        # compared raw scores across heads
        "mask_ignored": argmax([w[key] for w in unmasked]),           # let the query see key 3
        "most_peaked_head": argmax([max(w) for w in weights]),        # the most confident head
        "counted_from_one": argmax([w[key] for w in weights]) + 1,    # heads numbered 1 to 4
    }[name]


RACE_MISTAKES = ["largest_dot_product", "mask_ignored", "most_peaked_head", "counted_from_one"]


def test_every_race_mistake_is_tested_here():
    assert [m.name for m in multi_head.WINNING_HEAD.mistakes] == RACE_MISTAKES


@pytest.mark.parametrize("name", RACE_MISTAKES)
def test_winning_head_each_wrong_reasoning_gets_its_diagnosis(name):
    value = wrong_by_learner(name)
    r = multi_head.check_winning_head(value)
    assert r.status == "failed" and r.mistake == name, r.message
    assert r.message.startswith("❌ ") and "\nHint: " in r.message
    assert multi_head.check_winning_head(lambda: value).mistake == name


def test_winning_head_catalogue_values_differ_from_each_other_and_from_the_answer():
    values = [wrong_by_learner(n) for n in RACE_MISTAKES]
    assert len(set(values)) == len(values) == 4
    assert multi_head._measure_winning_head() not in values
    assert sorted(float(m.fn()) for m in multi_head.WINNING_HEAD.mistakes) == sorted(values)


@pytest.mark.parametrize("value", [None, ..., stub])
def test_winning_head_no_prediction_yet_is_unsolved(value):
    r = multi_head.check_winning_head(value)
    assert r.status == UNSOLVED and "Not solved yet" in r.message


def test_winning_head_a_function_that_fails_is_explained():
    r = multi_head.check_winning_head(lambda: [][0])
    assert r.status == "failed" and "IndexError" in r.message
    assert multi_head.check_winning_head(7).mistake is None


def test_winning_head_is_measured_cheaply():
    start = time.perf_counter()
    multi_head._measure_winning_head()
    assert time.perf_counter() - start < 1.0


def test_multi_head_report_counts_three(capsys):
    from attnlib.numpy import split_heads
    multi_head.check_split_heads(split_heads)
    multi_head.check_multi_head_attention(multi_head._mha)
    multi_head.check_winning_head(3)
    multi_head.report()
    assert "3 of 3" in capsys.readouterr().out


# ============================================================================= ch8: a gradient from autograd

def loop_loss(q, k, v, mask, C):
    """sum(attention(q, k, v, mask) * C) with Python floats, one query row at a time (nested lists in)."""
    q, k, v, C = (np.asarray(a, dtype=float) for a in (q, k, v, C))
    batch = q.shape[:-2]
    mask = np.ones(batch + (q.shape[-2], k.shape[-2]), bool) if mask is None else \
        np.broadcast_to(np.asarray(mask), batch + (q.shape[-2], k.shape[-2]))
    d = q.shape[-1]
    total = 0.0
    for b in np.ndindex(*batch):
        for i in range(q.shape[-2]):
            allowed = [j for j in range(k.shape[-2]) if mask[b + (i, j)]]
            s = {j: sum(q[b + (i, t)] * k[b + (j, t)] for t in range(d)) / math.sqrt(d) for j in allowed}
            top = max(s.values())
            z = sum(math.exp(x - top) for x in s.values())
            for c in range(v.shape[-1]):
                out = sum(math.exp(s[j] - top) / z * v[b + (j, c)] for j in allowed)
                total += out * C[b + (i, c)]
    return total


def loop_query_gradient(q, k, v, mask, C, eps=1e-5):
    """d loss / d q by central differences of loop_loss, one entry of q at a time."""
    q = q.numpy().copy()
    args = [None if a is None else a.numpy() for a in (k, v, mask, C)]
    grad = np.zeros_like(q)
    for idx in np.ndindex(*q.shape):
        up, down = q.copy(), q.copy()
        up[idx] += eps
        down[idx] -= eps
        grad[idx] = (loop_loss(up, *args) - loop_loss(down, *args)) / (2 * eps)
    return torch.from_numpy(grad)


def autograd_query_gradient(q, k, v, mask, C):
    """What the solution does: a leaf that requires grad, the summed loss, backward."""
    q = q.detach().clone().requires_grad_(True)
    out, _ = atorch.scaled_dot_product_attention(q, k, v, mask=mask)
    (out * C).sum().backward()
    return q.grad


def test_query_gradient_loop_answer_passes():
    r = numpy_to_torch.check_query_gradient(loop_query_gradient)
    assert r.status == PASSED, r.message


def test_query_gradient_autograd_answers_pass():
    assert numpy_to_torch.check_query_gradient(autograd_query_gradient).passed

    def with_grad(q, k, v, mask, C):
        q = q.clone().requires_grad_(True)
        out, _ = atorch.scaled_dot_product_attention(q, k, v, mask=mask, need_weights=False)
        return torch.autograd.grad((out * C).sum(), q)[0]

    assert numpy_to_torch.check_query_gradient(with_grad).passed


def test_query_gradient_reference_is_the_chain_rule_autograd_agrees_with():
    """The checker's reference (written out in NumPy) against torch's autograd on a fresh case."""
    rng = np.random.default_rng(1)
    q, k, v, C = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 2)), \
        rng.normal(size=(2, 3, 2))
    mask = rng.random((2, 3, 5)) < 0.6
    mask[..., 0] = True
    want = autograd_query_gradient(*(torch.from_numpy(a) for a in (q, k, v, mask, C))).numpy()
    np.testing.assert_allclose(numpy_to_torch._query_gradient(q, k, v, mask, C), want, atol=1e-12)


def _hand_attention(q, k, v, mask, scale=True):
    scores = q @ k.transpose(-2, -1)
    if scale:
        scores = scores / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def g_loss_without_C(q, k, v, mask, C):
    q = q.clone().requires_grad_(True)
    out, _ = atorch.scaled_dot_product_attention(q, k, v, mask=mask)
    out.sum().backward()
    return q.grad


def g_mean_loss(q, k, v, mask, C):
    q = q.clone().requires_grad_(True)
    loss = torch.mean(atorch.scaled_dot_product_attention(q, k, v, mask=mask)[0] * C)
    loss.backward()
    return q.grad


def g_mask_not_passed(q, k, v, mask, C):
    q = q.clone().requires_grad_(True)
    out, _ = atorch.scaled_dot_product_attention(q, k, v)
    (out * C).sum().backward()
    return q.grad


def g_no_scaling(q, k, v, mask, C):
    q = q.clone().requires_grad_(True)
    (_hand_attention(q, k, v, mask, scale=False) * C).sum().backward()
    return q.grad


def g_keys_gradient(q, k, v, mask, C):
    k = k.clone().requires_grad_(True)
    out, _ = atorch.scaled_dot_product_attention(q, k, v, mask=mask)
    (out * C).sum().backward()
    return k.grad


GRADIENT_MISTAKES = {"loss_without_C": g_loss_without_C, "mean_loss": g_mean_loss,
                     "mask_not_passed": g_mask_not_passed, "no_scaling": g_no_scaling,
                     "keys_gradient": g_keys_gradient}


def test_every_gradient_mistake_is_tested_here():
    assert [m.name for m in numpy_to_torch.GRADIENT.mistakes] == list(GRADIENT_MISTAKES)


@pytest.mark.parametrize("name", list(GRADIENT_MISTAKES))
def test_query_gradient_learner_mistake_gets_its_diagnosis(name):
    r = numpy_to_torch.check_query_gradient(GRADIENT_MISTAKES[name])
    assert r.status == "failed" and r.mistake == name, r.message
    assert "\nHint: " in r.message


def test_query_gradient_stub_is_unsolved_and_a_missing_leaf_is_explained():
    assert numpy_to_torch.check_query_gradient(stub).status == UNSOLVED

    def no_leaf(q, k, v, mask, C):  # forgot requires_grad: backward has nothing to differentiate
        out, _ = atorch.scaled_dot_product_attention(q, k, v, mask=mask)
        (out * C).sum().backward()
        return q.grad

    r = numpy_to_torch.check_query_gradient(no_leaf)
    assert r.status == "failed" and "requires_grad_(True)" in r.message, r.message
    assert numpy_to_torch.check_query_gradient(lambda q, k, v, mask, C: None).status == UNSOLVED


def test_numpy_to_torch_report_counts_three(capsys):
    from attnlib.torch import merge_heads
    numpy_to_torch.check_batched_attention(lambda q, k, v, m: atorch.scaled_dot_product_attention(q, k, v, m)[0])
    numpy_to_torch.check_merge_heads(merge_heads)
    numpy_to_torch.check_query_gradient(autograd_query_gradient)
    numpy_to_torch.report()
    assert "3 of 3" in capsys.readouterr().out


# ============================================================================= ch9: the fixed-length vector

def loop_summary(states, lengths):
    """[forward at the last real position; backward at position 0], copied number by number."""
    B, _, two_H = states.shape
    H = two_H // 2
    out = torch.zeros(B, two_H, dtype=states.dtype)
    for b in range(B):
        last = int(lengths[b]) - 1
        for f in range(H):
            out[b, f] = states[b, last, f]           # the forward direction has read x_1 .. x_n
            out[b, H + f] = states[b, 0, H + f]      # the backward direction has read x_n .. x_1
    return out


def test_summary_loop_answer_passes():
    r = bottleneck.check_summary(loop_summary)
    assert r.status == PASSED, r.message


def test_summary_reference_is_the_encoders_own_final_state():
    """On the real encoder's case, the reference equals GRUEncoder's `final` (from the GRU's h_n)."""
    from attnlib.torch import GRUEncoder
    torch.manual_seed(3)
    encoder = GRUEncoder(10, 4, 5, bidirectional=True).double()
    lengths = torch.tensor([7, 2, 4, 7])
    src = torch.randint(4, 10, (4, 7)).masked_fill(torch.arange(7)[None] >= lengths[:, None], 0)
    with torch.no_grad():
        states, final = encoder(src, lengths)
    np.testing.assert_allclose(bottleneck._summary(states.numpy(), lengths.numpy()), final.numpy(), atol=1e-12)
    case = bottleneck._summary_cases()[0]
    assert bool((case.args[0][1, 3:] == 0).all())   # the GRU case has real padding (zeros)


def s_last_column(states, lengths):
    return states[:, -1]


def s_forward_last_column(states, lengths):
    H = states.shape[-1] // 2
    return torch.cat([states[:, -1, :H], states[:, 0, H:]], dim=-1)


def s_both_at_last_real(states, lengths):
    return states[torch.arange(len(states)), lengths - 1]


def s_both_at_first(states, lengths):
    return states[:, 0, :]


def s_backward_first(states, lengths):
    H = states.shape[-1] // 2
    return torch.cat([states[:, 0, H:], states[torch.arange(len(states)), lengths - 1, :H]], dim=-1)


def s_mean_of_states(states, lengths):
    return states.sum(dim=1) / lengths[:, None]


SUMMARY_MISTAKES = {"last_column": s_last_column, "forward_last_column": s_forward_last_column,
                    "both_at_last_real": s_both_at_last_real, "both_at_first": s_both_at_first,
                    "backward_first": s_backward_first, "mean_of_states": s_mean_of_states}


def test_every_summary_mistake_is_tested_here():
    assert [m.name for m in bottleneck.SUMMARY.mistakes] == list(SUMMARY_MISTAKES)


@pytest.mark.parametrize("name", list(SUMMARY_MISTAKES))
def test_summary_learner_mistake_gets_its_diagnosis(name):
    r = bottleneck.check_summary(SUMMARY_MISTAKES[name])
    assert r.status == "failed" and r.mistake == name, r.message
    assert "\nHint: " in r.message


def test_summary_stub_is_unsolved_and_an_off_by_one_is_explained():
    assert bottleneck.check_summary(stub).status == UNSOLVED
    r = bottleneck.check_summary(lambda states, lengths: states[torch.arange(len(states)), lengths])
    assert r.status == "failed" and "IndexError" in r.message and "lengths - 1" in r.message


def test_bottleneck_report_counts_three(capsys):
    bottleneck.check_exact_match(lambda p, t, pad: torch.from_numpy(bottleneck._exact_match(p.numpy(), t.numpy(), pad)))
    bottleneck.check_context(lambda s, v, m: torch.from_numpy(bottleneck._context(s.numpy(), v.numpy(), m.numpy())))
    bottleneck.check_summary(loop_summary)
    bottleneck.report()
    assert "3 of 3" in capsys.readouterr().out


# ============================================================================= ch10: annotations from two GRUs

def loop_annotations(forward, backward_reversed, lengths):
    """Position j of a source of n tokens gets the backward run's step n - 1 - j; zeros at padding."""
    B, L, H = forward.shape
    out = torch.zeros(B, L, 2 * H, dtype=forward.dtype)
    for b in range(B):
        n = int(lengths[b])
        for j in range(L):
            for f in range(H):
                out[b, j, f] = forward[b, j, f]
                if j < n:
                    out[b, j, H + f] = backward_reversed[b, n - 1 - j, f]
    return out


def test_annotations_loop_answer_passes():
    r = bahdanau.check_annotations(loop_annotations)
    assert r.status == PASSED, r.message


def test_annotations_of_two_one_direction_grus_are_the_packed_bidirectional_states():
    """The task's definition, checked on a GRU of its own: the loop answer rebuilds what packing gives."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    torch.manual_seed(4)
    B, L, E, H = 4, 7, 3, 2
    lengths = torch.tensor([7, 1, 4, 5])
    both = torch.nn.GRU(E, H, batch_first=True, bidirectional=True).double()
    one_way = torch.nn.GRU(E, H, batch_first=True).double()
    x = torch.randn(B, L, E, dtype=torch.float64)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(one_way, name).copy_(getattr(both, name + "_reverse"))
        packed, _ = both(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        states, _ = pad_packed_sequence(packed, batch_first=True, total_length=L)
        x_rev = torch.stack([torch.cat([x[b, :n].flip(0), x[b, n:]]) for b, n in enumerate(lengths.tolist())])
        backward_reversed, _ = one_way(x_rev)
    assert (backward_reversed[1, 1:] != 0).any()          # the one-way run goes on over the padding
    rebuilt = loop_annotations(states[..., :H], backward_reversed, lengths)
    torch.testing.assert_close(rebuilt, states, rtol=0, atol=1e-12)
    np.testing.assert_allclose(bahdanau._annotations(states[..., :H].numpy(), backward_reversed.numpy(),
                                                     lengths.numpy()), states.numpy(), atol=1e-12)


def test_annotations_cases_have_junk_after_the_reversed_sources():
    for case in bahdanau._annotation_cases():
        forward, backward_reversed, lengths = case.args
        pad = np.arange(forward.shape[1])[None, :] >= lengths[:, None]
        assert not forward[pad].any()
        if pad.any():
            assert np.abs(backward_reversed[pad]).min() > 0


def _in_place(backward_reversed, lengths, fill):
    backward = fill.clone()
    for b, n in enumerate(lengths.tolist()):
        backward[b, :n] = backward_reversed[b, :n].flip(0)
    return backward


def a_flipped_whole_width(forward, backward_reversed, lengths):
    return torch.cat([forward, torch.flip(backward_reversed, dims=[1])], dim=-1)


def a_not_reversed(forward, backward_reversed, lengths):
    return torch.cat([forward, backward_reversed], dim=-1)


def a_backward_first(forward, backward_reversed, lengths):
    return torch.cat([_in_place(backward_reversed, lengths, torch.zeros_like(backward_reversed)), forward], -1)


def a_padding_kept(forward, backward_reversed, lengths):
    return torch.cat([forward, _in_place(backward_reversed, lengths, backward_reversed)], dim=-1)


ANNOTATION_MISTAKES = {"flipped_whole_width": a_flipped_whole_width, "not_reversed": a_not_reversed,
                       "backward_first": a_backward_first, "padding_kept": a_padding_kept}


def test_every_annotation_mistake_is_tested_here():
    assert [m.name for m in bahdanau.ANNOTATIONS.mistakes] == list(ANNOTATION_MISTAKES)


@pytest.mark.parametrize("name", list(ANNOTATION_MISTAKES))
def test_annotations_learner_mistake_gets_its_diagnosis(name):
    r = bahdanau.check_annotations(ANNOTATION_MISTAKES[name])
    assert r.status == "failed" and r.mistake == name, r.message
    assert "\nHint: " in r.message


def test_annotations_stub_is_unsolved():
    assert bahdanau.check_annotations(stub).status == UNSOLVED


def test_bahdanau_report_counts_three(capsys):
    bahdanau.check_step_weights(lambda *a: torch.from_numpy(bahdanau._step_weights(*(t.numpy() for t in a))))
    bahdanau.check_context(lambda *a: torch.from_numpy(bahdanau._context(*(t.numpy() for t in a))))
    bahdanau.check_annotations(loop_annotations)
    bahdanau.report()
    assert "3 of 3" in capsys.readouterr().out


# ============================================================================= the catalogues of chapters 7-10

def _new_exercises():
    return [multi_head.WINNING_HEAD, numpy_to_torch.GRADIENT, bottleneck.SUMMARY, bahdanau.ANNOTATIONS]


@pytest.mark.parametrize("exercise", _new_exercises(), ids=lambda e: e.name)
def test_every_catalogued_mistake_can_be_diagnosed(exercise):
    for m in exercise.mistakes:
        assert catalogue_problem(exercise, m) == "", m.name
