"""One rule for need_weights: attention operations always return (output, weights or None);
layers, stacks and models return the output alone unless need_weights=True."""
from __future__ import annotations

import pytest
import torch

from attnlib.torch import (
    GPT,
    CausalSelfAttention,
    EncoderLayer,
    GPTBlock,
    MultiHeadAttention,
    Transformer,
    TransformerEncoder,
    scaled_dot_product_attention,
)

torch.manual_seed(0)
X = torch.randn(2, 5, 8)
IDS = torch.randint(0, 7, (2, 5))
LENGTHS = torch.tensor([5, 3])

OPERATIONS = {
    "sdpa": lambda nw: scaled_dot_product_attention(X, X, X, need_weights=nw),
    "MultiHeadAttention": lambda nw: MultiHeadAttention(8, 2)(X, X, X, need_weights=nw),
    "CausalSelfAttention": lambda nw: CausalSelfAttention(8, 2)(X, need_weights=nw),
}
MODELS = {
    "EncoderLayer": lambda nw: EncoderLayer(8, 2, 16)(X, need_weights=nw),
    "TransformerEncoder": lambda nw: TransformerEncoder(2, 8, 2, 16)(X, need_weights=nw),
    "GPTBlock": lambda nw: GPTBlock(8, 2, 16)(X, need_weights=nw),
    "GPT": lambda nw: GPT(7, 8, 8, 2, 1)(IDS, need_weights=nw),
    "Transformer": lambda nw: Transformer(7, 7, 8, 2, 16)(IDS, LENGTHS, IDS, need_weights=nw),
}


@pytest.mark.parametrize("name", OPERATIONS)
def test_attention_operations_always_return_a_pair(name):
    out, w = OPERATIONS[name](False)
    assert isinstance(out, torch.Tensor) and w is None
    out, w = OPERATIONS[name](True)
    assert isinstance(out, torch.Tensor) and isinstance(w, torch.Tensor)


@pytest.mark.parametrize("name", MODELS)
def test_models_return_the_output_alone_unless_asked(name):
    assert isinstance(MODELS[name](False), torch.Tensor)
    out, w = MODELS[name](True)
    assert isinstance(out, torch.Tensor) and w is not None
