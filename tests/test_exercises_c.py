"""The third exercises of chapters 11-13, proved both ways.

- ch11 (Luong): local-p's predicted centre p_t = S sigmoid(v_p . tanh(W_p s_t));
- ch12 (hard and structured attention): the CRF marginals p(z_j = 1) by forward-backward;
- ch13 (the Transformer block): a Prediction, the parameter count of one encoder layer.

An independent correct answer (plain Python loops, brute-force enumeration, a formula) passes;
every catalogued mistake, written here the way a learner would write it, gets its own diagnosis;
a stub is unsolved; the chapter's report counts three exercises; the notebook's own solution
cell passes its checker.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from attnlib.exercises import hard_structured, luong, transformer_block
from attnlib.exercises.core import catalogue_problem

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_chapters():
    """Every test starts with no recorded results."""
    for module in (luong, hard_structured, transformer_block):
        module.reset()
    yield
    for module in (luong, hard_structured, transformer_block):
        module.reset()


def _stub(*args):
    raise NotImplementedError


def _solution_namespace(notebook: str, name: str) -> dict:
    """Run the notebook's solution cell that defines ``name`` (with torch imported) and return its names."""
    nb = nbformat.read(ROOT / "chapters" / notebook, as_version=4)
    [cell] = [c for c in nb.cells if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])
              and f"def {name}(" in c.source]
    namespace = {"torch": torch, "np": np, "math": math}
    exec(compile(cell.source, notebook, "exec"), namespace)  # noqa: S102 - the course's own cell
    return namespace


def _checker_cells(notebook: str) -> list[str]:
    nb = nbformat.read(ROOT / "chapters" / notebook, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code" and "ex.check_" in c.source]


# ============================================================================= ch11: p_t

def loop_centre(s, mask, W_p, v_p):
    """p_t = S sigmoid(v_p . tanh(W_p s_t)), one example and one hidden unit at a time."""
    B, H = s.shape
    out = []
    for b in range(B):
        S = sum(1 for j in range(mask.shape[1]) if bool(mask[b, j]))
        logit = 0.0
        for i in range(W_p.shape[0]):
            pre = sum(float(W_p[i, k]) * float(s[b, k]) for k in range(H))
            logit += float(v_p[i]) * math.tanh(pre)
        out.append(S / (1.0 + math.exp(-logit)))
    return torch.tensor(out, dtype=torch.float64)


def test_centre_loop_answer_passes():
    result = luong.check_predicted_centre(loop_centre)
    assert result.passed, result.message


def test_centre_reference_is_attnlibs_local_p_position():
    """The checker's reference agrees with LocalPredictiveAttention.position on every case."""
    from attnlib.torch import LocalPredictiveAttention
    for case in luong.CENTRE.cases():
        s, mask, W_p, v_p = (torch.from_numpy(a) for a in case.args)
        att = LocalPredictiveAttention(s.shape[1], s.shape[1], window=2).double()
        with torch.no_grad():
            att.W_p.weight.copy_(W_p)
            att.v_p.weight.copy_(v_p[None])
            want = att.position(s, mask.sum(-1))
        assert torch.allclose(want, torch.from_numpy(luong.CENTRE.reference(*case.args)))


def _pt(s, W_p, v_p):
    return torch.sigmoid(torch.tanh(s @ W_p.T) @ v_p)


CENTRE_MISTAKES = {
    "padded_length": lambda s, mask, W_p, v_p: mask.shape[1] * _pt(s, W_p, v_p),
    "last_index": lambda s, mask, W_p, v_p: (mask.sum(-1) - 1) * _pt(s, W_p, v_p),
    "no_scale": lambda s, mask, W_p, v_p: _pt(s, W_p, v_p),
    "no_tanh": lambda s, mask, W_p, v_p: mask.sum(-1) * torch.sigmoid((s @ W_p.T) @ v_p),
    "no_sigmoid": lambda s, mask, W_p, v_p: mask.sum(-1) * (torch.tanh(s @ W_p.T) @ v_p),
    "transposed_W": lambda s, mask, W_p, v_p: mask.sum(-1) * torch.sigmoid(torch.tanh(s @ W_p) @ v_p),
}


@pytest.mark.parametrize("name", list(CENTRE_MISTAKES))
def test_centre_learner_mistake_is_named(name):
    result = luong.check_predicted_centre(CENTRE_MISTAKES[name])
    assert result.mistake == name, result.message
    assert result.hint


def test_centre_catalogue_is_the_one_tested_here():
    assert {m.name for m in luong.CENTRE.mistakes} == set(CENTRE_MISTAKES)
    assert all(catalogue_problem(luong.CENTRE, m) == "" for m in luong.CENTRE.mistakes)


def test_centre_unsqueezed_output_is_a_shape_message():
    result = luong.check_predicted_centre(lambda s, mask, W_p, v_p: loop_centre(s, mask, W_p, v_p)[:, None])
    assert not result.passed and "shape" in result.message


def test_centre_stub_is_unsolved_and_report_counts_three(capsys):
    assert luong.check_predicted_centre(_stub).status == "unsolved"
    luong.check_predicted_centre(loop_centre)
    luong.report()
    assert "1 of 3 (predicted_centre)" in capsys.readouterr().out


def test_centre_notebook_solution_passes_and_is_checked():
    ns = _solution_namespace("02_seq2seq/11_luong_attention.ipynb", "my_predicted_centre")
    assert luong.check_predicted_centre(ns["my_predicted_centre"]).passed
    assert any("check_predicted_centre(my_predicted_centre)" in c
               for c in _checker_cells("02_seq2seq/11_luong_attention.ipynb"))


# ============================================================================= ch12: CRF marginals

def brute_force_marginals(scores, transitions):
    """p(z_j = 1) by enumerating all 2^L assignments, with the log-sum-exp written out."""
    L = len(scores)
    s = [float(v) for v in scores]
    A = [[float(transitions[a, b]) for b in range(2)] for a in range(2)]
    assignments = list(itertools.product([0, 1], repeat=L))
    energy = [sum(z[j] * s[j] for j in range(L)) + sum(A[z[j - 1]][z[j]] for j in range(1, L))
              for z in assignments]
    top = max(energy)
    weight = [math.exp(e - top) for e in energy]      # max-subtracted: scores of 1000 stay finite
    total = sum(weight)
    return torch.tensor([sum(w for w, z in zip(weight, assignments) if z[j] == 1) / total
                         for j in range(L)], dtype=torch.float64)


def test_marginals_brute_force_answer_passes():
    result = hard_structured.check_marginals(brute_force_marginals)
    assert result.passed, result.message


def test_marginals_reference_is_attnlibs_crf_marginals():
    from attnlib.torch import crf_marginals
    for case in hard_structured.MARGINALS.cases():
        s, A = (torch.from_numpy(a) for a in case.args)
        assert torch.allclose(crf_marginals(s[None], A)[0],
                              torch.from_numpy(hard_structured.MARGINALS.reference(*case.args)))


def test_marginals_by_autograd_of_log_z_pass():
    """The chapter's remark: d log Z / d s_j is p(z_j = 1), so the gradient of a correct log Z passes."""
    from attnlib.torch import crf_log_partition

    def by_gradient(scores, transitions):
        s = scores.clone().requires_grad_()
        grad, = torch.autograd.grad(crf_log_partition(s[None], transitions).sum(), s)
        return grad

    assert hard_structured.check_marginals(by_gradient).passed


def _forward_backward(scores, transitions, backward_dim=1, unary_in_beta=False):
    """A learner's forward-backward; the flags reproduce two slips in the backward recursion."""
    zero = torch.zeros_like(scores)
    u = torch.stack([zero, scores], dim=-1)
    alpha = [u[0]]
    for j in range(1, len(scores)):
        alpha.append(torch.logsumexp(alpha[-1][:, None] + transitions, dim=0) + u[j])
    last = u[-1] if unary_in_beta else torch.zeros(2, dtype=scores.dtype)
    beta = [last]
    for j in range(len(scores) - 2, -1, -1):
        if unary_in_beta:   # beta_j(a) = u_j(a) + logsumexp_b(A[a, b] + beta_{j+1}(b))
            beta.insert(0, u[j] + torch.logsumexp(transitions + beta[0][None, :], dim=1))
        elif backward_dim == 1:
            beta.insert(0, torch.logsumexp(transitions + (u[j + 1] + beta[0])[None, :], dim=1))
        else:               # the forward pass's pattern copied: sums over the first index of A
            beta.insert(0, torch.logsumexp((u[j + 1] + beta[0])[:, None] + transitions, dim=0))
    alpha, beta = torch.stack(alpha), torch.stack(beta)
    return alpha, beta, torch.logsumexp(alpha[-1], dim=0)


def _learner_no_backward(scores, transitions):
    alpha, _, _ = _forward_backward(scores, transitions)
    return torch.softmax(alpha, dim=-1)[:, 1]


def _learner_backward_transposed(scores, transitions):
    alpha, beta, log_z = _forward_backward(scores, transitions, backward_dim=0)
    return torch.exp(alpha[:, 1] + beta[:, 1] - log_z)


def _learner_unary_twice(scores, transitions):
    alpha, beta, log_z = _forward_backward(scores, transitions, unary_in_beta=True)
    return torch.exp(alpha[:, 1] + beta[:, 1] - log_z)


def _learner_normalised(scores, transitions):
    alpha, beta, log_z = _forward_backward(scores, transitions)
    w = torch.exp(alpha[:, 1] + beta[:, 1] - log_z)
    return w / w.sum()


def _learner_state_zero(scores, transitions):
    alpha, beta, log_z = _forward_backward(scores, transitions)
    return torch.exp(alpha[:, 0] + beta[:, 0] - log_z)


MARGINAL_MISTAKES = {
    "no_backward": _learner_no_backward,
    "backward_transposed": _learner_backward_transposed,
    "unary_twice": _learner_unary_twice,
    "no_transitions": lambda scores, transitions: torch.sigmoid(scores),
    "normalised": _learner_normalised,
    "state_zero": _learner_state_zero,
}


def test_the_learners_forward_backward_without_slips_passes():
    def right(scores, transitions):
        alpha, beta, log_z = _forward_backward(scores, transitions)
        return torch.exp(alpha[:, 1] + beta[:, 1] - log_z)
    assert hard_structured.check_marginals(right).passed


@pytest.mark.parametrize("name", list(MARGINAL_MISTAKES))
def test_marginals_learner_mistake_is_named(name):
    result = hard_structured.check_marginals(MARGINAL_MISTAKES[name])
    assert result.mistake == name, result.message
    assert result.hint


def test_marginals_catalogue_is_the_one_tested_here():
    assert {m.name for m in hard_structured.MARGINALS.mistakes} == set(MARGINAL_MISTAKES)
    assert all(catalogue_problem(hard_structured.MARGINALS, m) == "" for m in hard_structured.MARGINALS.mistakes)


def test_marginals_outside_log_space_overflow_is_explained():
    def in_probability_space(scores, transitions):
        # Forward-backward with exp'd potentials: right for small scores, inf/NaN at 1000.
        u = torch.stack([torch.ones_like(scores), torch.exp(scores)], dim=-1)
        E = torch.exp(transitions)
        alpha = [u[0]]
        for j in range(1, len(scores)):
            alpha.append((alpha[-1] @ E) * u[j])
        beta = [torch.ones(2, dtype=scores.dtype)]
        for j in range(len(scores) - 2, -1, -1):
            beta.insert(0, E @ (u[j + 1] * beta[0]))
        alpha, beta = torch.stack(alpha), torch.stack(beta)
        return alpha[:, 1] * beta[:, 1] / alpha[-1].sum()

    result = hard_structured.check_marginals(in_probability_space)
    assert not result.passed and "log space" in result.message and "magnitude ~1000" in result.message


def test_marginals_stub_is_unsolved_and_report_counts_three(capsys):
    assert hard_structured.check_marginals(_stub).status == "unsolved"
    hard_structured.check_marginals(brute_force_marginals)
    hard_structured.report()
    assert "1 of 3 (marginals)" in capsys.readouterr().out


def test_marginals_notebook_solution_passes_and_is_checked():
    nb = "02_seq2seq/12_hard_and_structured_attention.ipynb"
    ns = _solution_namespace(nb, "my_marginals")
    assert hard_structured.check_marginals(ns["my_marginals"]).passed
    assert any("check_marginals(my_marginals)" in c for c in _checker_cells(nb))


# ============================================================================= ch13: a prediction

D, H, D_FF = 64, 4, 192   # the question's layer


def formula_layer_parameters(d=D, d_ff=D_FF):
    """The count derived by hand: attention 4 (d^2 + d), FFN 2 d d_ff + d_ff + d, two LayerNorms 2 x 2 d."""
    return 4 * (d * d + d) + (2 * d * d_ff + d_ff + d) + 2 * 2 * d


def test_layer_parameters_formula_agrees_with_the_measurement_and_with_pytorchs_layer():
    torch_layer = torch.nn.TransformerEncoderLayer(D, H, D_FF, batch_first=True)
    assert sum(p.numel() for p in torch_layer.parameters()) == formula_layer_parameters()
    assert transformer_block.LAYER_PARAMETERS.measure() == formula_layer_parameters() == 41_728


@pytest.mark.parametrize("prediction", [formula_layer_parameters(), float(formula_layer_parameters()),
                                        np.int64(formula_layer_parameters()), lambda: formula_layer_parameters()],
                         ids=["int", "float", "numpy", "function"])
def test_layer_parameters_right_number_passes(prediction):
    result = transformer_block.check_layer_parameters(prediction)
    assert result.passed, result.message
    assert "41,728" in result.message


d, d_ff, h = D, D_FF, H
LAYER_MISTAKES = {   # the arithmetic a learner would write for each wrong reasoning
    "no_biases": 4 * d * d + 2 * d * d_ff + 2 * 2 * d,
    "no_layer_norms": 4 * (d * d + d) + 2 * d * d_ff + d_ff + d,
    "qkv_once": 2 * (d * d + d) + 2 * d * d_ff + d_ff + d + 4 * d,
    "no_output_projection": 3 * (d * d + d) + 2 * d * d_ff + d_ff + d + 4 * d,
    "ffn_4d": 4 * (d * d + d) + 2 * d * (4 * d) + 4 * d + d + 4 * d,
    "per_head": h * 3 * (d * d + d) + (d * d + d) + 2 * d * d_ff + d_ff + d + 4 * d,
}
del d, d_ff, h


@pytest.mark.parametrize("name", list(LAYER_MISTAKES))
def test_layer_parameters_learner_mistake_is_named(name):
    result = transformer_block.check_layer_parameters(LAYER_MISTAKES[name])
    assert result.mistake == name, result.message
    assert result.hint


def test_layer_parameters_catalogue_is_the_one_tested_here():
    ex = transformer_block.LAYER_PARAMETERS
    assert {m.name for m in ex.mistakes} == set(LAYER_MISTAKES)
    assert all(catalogue_problem(ex, m) == "" for m in ex.mistakes)


def test_layer_parameters_near_misses_and_other_answers_are_explained():
    truth = formula_layer_parameters()
    one_norm_only = transformer_block.check_layer_parameters(truth - 2 * D)
    assert one_norm_only.status == "failed" and "close but too low" in one_norm_only.message
    assert "close but too high" in transformer_block.check_layer_parameters(truth + 1).message
    assert "not a whole number" in transformer_block.check_layer_parameters(truth + 0.5).message
    far = transformer_block.check_layer_parameters(3 * truth)
    assert "too high" in far.message and "41,728" not in far.message
    assert "not a number" in transformer_block.check_layer_parameters("41728").message

    def broken():
        return undefined_name  # noqa: F821 - a learner's typo

    assert "raised NameError" in transformer_block.check_layer_parameters(broken).message


def test_layer_parameters_stub_is_unsolved_and_report_counts_three(capsys):
    def my_layer_parameters():
        raise NotImplementedError

    result = transformer_block.check_layer_parameters(my_layer_parameters)
    assert result.status == "unsolved" and "EncoderLayer(d_model=64" in result.message
    assert transformer_block.check_layer_parameters(...).status == "unsolved"
    transformer_block.check_layer_parameters(formula_layer_parameters)
    transformer_block.report()
    assert "1 of 3 (layer parameters)" in capsys.readouterr().out


def test_layer_parameters_notebook_solution_passes_and_the_cell_measures_the_same_layer():
    nb = "03_transformer/13_transformer_block.ipynb"
    ns = _solution_namespace(nb, "my_layer_parameters")
    assert transformer_block.check_layer_parameters(ns["my_layer_parameters"]).passed
    cells = _checker_cells(nb)
    assert any("check_layer_parameters(my_layer_parameters)" in c for c in cells)
    source = nbformat.read(ROOT / "chapters" / nb, as_version=4).cells
    assert any("sublayer_parameter_counts(64, 4, 192)" in c.source for c in source if c.cell_type == "code")
