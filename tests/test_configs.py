"""Frozen configs: a model rebuilt from its config has the same architecture and, seeded alike,
the same weights; configs cannot be changed in place; the date recipe overrides by name."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from attnlib.experiments.encoder_decoder import DATE_RECIPE, DateRecipe, train_transformer
from attnlib.torch import GPT, GPTConfig, Transformer, TransformerConfig


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_gpt_from_its_config_is_the_same_model():
    torch.manual_seed(0)
    m = GPT(11, 8, 16, 2, 2, positions="rope", d_ff=24)
    assert m.config == GPTConfig(11, 8, 16, 2, 2, "rope", 24, 0.0)
    torch.manual_seed(0)
    assert _same_weights(m, GPT.from_config(m.config))


def test_transformer_from_its_config_is_the_same_model():
    torch.manual_seed(0)
    m = Transformer(9, 7, d_model=16, num_heads=2, d_ff=32, tgt_to_src=[0, 1, 2, 3, 4, 5, 6])
    assert isinstance(m.config, TransformerConfig) and m.config.tgt_to_src == (0, 1, 2, 3, 4, 5, 6)
    torch.manual_seed(0)
    assert _same_weights(m, Transformer.from_config(m.config))


@pytest.mark.parametrize("config", [GPTConfig(5, 4, 8, 2, 1), TransformerConfig(5, 5), DATE_RECIPE])
def test_configs_are_frozen(config):
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.d_model = 3  # every config has some field; the assignment itself must fail


def test_date_recipe_overrides_by_name_and_refuses_unknown_settings():
    assert dataclasses.replace(DATE_RECIPE, steps=5).steps == 5 and DATE_RECIPE.steps == DateRecipe().steps
    with pytest.raises(ValueError, match="unknown recipe settings"):
        train_transformer(None, stepz=3)
