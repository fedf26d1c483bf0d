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

