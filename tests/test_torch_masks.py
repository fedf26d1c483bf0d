"""attnlib.torch's masks against their NumPy twins, the one masked softmax, the one greedy loop."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import attnlib.numpy as anp
from attnlib.torch import (
    causal_mask,
    decoder_self_mask,
    greedy_decode,
    masked_softmax,
    padding_mask,
    scaled_dot_product_attention,
)


@pytest.mark.parametrize("L_q, L_k", [(1, 1), (3, 3), (2, 5), (5, 2), (0, 3)])
def test_causal_mask_is_the_numpy_twin(L_q, L_k):
    assert np.array_equal(causal_mask(L_q, L_k).numpy(), anp.causal_mask(L_q, L_k))


def test_padding_mask_is_the_numpy_twin():
    lengths = [3, 0, 5, 1]
    assert np.array_equal(padding_mask(torch.tensor(lengths), 5).numpy(), anp.padding_mask(lengths, 5))


@pytest.mark.parametrize("call, word", [
    (lambda: causal_mask(-1), "L_q"), (lambda: causal_mask(2, 1.5), "L_k"),
    (lambda: padding_mask(torch.tensor([1, 2]), -1), "max_len"),
    (lambda: padding_mask(torch.tensor([1, 2]), 4.5), "max_len"),
    (lambda: padding_mask(torch.tensor([1.0, 2.0]), 3), "integer"),
    (lambda: padding_mask(torch.tensor([-1, 2]), 3), "lengths"),
    (lambda: padding_mask([1, 2], 3), "tensor"),
])
def test_bad_sizes_are_named(call, word):
    with pytest.raises(ValueError, match=word):
        call()


def test_decoder_self_mask_is_causal_and_padding():
    m = decoder_self_mask(torch.tensor([2, 3]), 3)
    want = causal_mask(3)[None] & padding_mask(torch.tensor([2, 3]), 3)[:, None, :]
    assert torch.equal(m, want) and m.shape == (2, 3, 3)
    assert not m[0, 2, 2] and m[1, 2, 2]


def test_masked_softmax_zeroes_fully_masked_rows_with_finite_gradients():
    scores = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, False, True, False], [False] * 4])
    w = masked_softmax(scores, mask)
    assert torch.allclose(w[0], torch.softmax(scores[0].masked_fill(~mask[0], -torch.inf), -1))
    assert torch.equal(w[1], torch.zeros(4, dtype=torch.float64))
    w.sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_sdpa_and_masked_softmax_share_the_fully_masked_row_rule():
    q, k, v = (torch.randn(1, 3, 4, dtype=torch.float64) for _ in range(3))
    mask = torch.tensor([[True, True, False], [False, False, False], [True, False, False]])
    out, w = scaled_dot_product_attention(q, k, v, mask)
    assert torch.allclose(w, masked_softmax(q @ k.transpose(-2, -1) / 2.0, mask))
    assert torch.equal(out[0, 1], torch.zeros(4, dtype=torch.float64))
    fused, _ = scaled_dot_product_attention(q, k, v, mask, need_weights=False)
    assert torch.allclose(fused, out)


def test_greedy_decode_feeds_back_the_argmax_and_pads_after_eos():
    V, bos, eos, pad = 6, 1, 2, 0
    # a "model" that emits prev + 1 (mod V), so row 0 runs 1 -> 2 (eos) and row 1 runs 3 -> 4 -> 5 -> 0
    seen = []

    def step(y_prev):
        seen.append(y_prev.clone())
        logits = torch.nn.functional.one_hot((y_prev + 1 + start) % V, V).float()
        return logits, None

    start = torch.tensor([0, 2])
    tokens, weights = greedy_decode(step, 2, bos, eos, pad, max_len=4)
    assert weights is None
    assert tokens.tolist() == [[2, pad, pad, pad], [4, 1, 4, 1]]
    assert seen[0].tolist() == [bos, bos] and seen[1].tolist() == [2, 4]


def test_greedy_decode_rejects_a_bad_max_len():
    step = lambda y: (torch.zeros(len(y), 3), None)  # noqa: E731
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="max_len"):
            greedy_decode(step, 1, 1, 2, 0, bad)
