"""attnlib's GPT against an independent reference: transformers' GPT2LMHeadModel.

`GPT.from_gpt2` copies the weights of a small GPT-2 with random weights (built offline from a
`GPT2Config`; nothing downloads) into the course's GPT. The two must give the same logits, the
same loss, the same gradients and the same greedy tokens, with and without attnlib's KV cache.
Every weight is perturbed away from its initial value first (LayerNorms included: at their init,
weight 1 and bias 0, a forgotten or swapped copy would go unnoticed), and a test perturbs each
copied parameter in turn to show that every one of them moves the logits.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import dataclasses

import pytest
import torch
from torch import nn

from attnlib.torch import GPT, lm_loss

transformers = pytest.importorskip("transformers")
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Model

transformers.logging.set_verbosity_error()

SMALL = dict(n_layer=2, n_head=4, n_embd=64, vocab_size=100, n_positions=64)
TOL32, TOL64 = 1e-5, 1e-10


def gpt2(seed=0, dtype=torch.float32, attn="eager", **overrides) -> GPT2LMHeadModel:
    """A small GPT-2 with random weights, every parameter perturbed (LayerNorms included), eval mode."""
    torch.manual_seed(seed)
    config = GPT2Config(**{**SMALL, **overrides}, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    config._attn_implementation = attn
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for p in model.parameters():  # the tied wte/lm_head is one parameter, perturbed once
            p.add_(0.1 * torch.randn_like(p))
    return model.to(dtype).eval()


def tokens(B, T, seed=1, vocab=SMALL["vocab_size"]):
    return torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))


def max_diff(ours: GPT, ref: GPT2LMHeadModel, x: torch.Tensor) -> float:
    with torch.no_grad():
        return (ours(x) - ref(x).logits).abs().max().item()


@pytest.fixture(scope="module")
def pair():
    ref = gpt2()
    return GPT.from_gpt2(ref), ref


# ----------------------------------------------------------------------------- same logits

@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("B, T", [(1, 1), (3, 7), (2, 33), (4, 64)])
def test_logits_equal_float32(attn, B, T):
    ref = gpt2(attn=attn)
    ours = GPT.from_gpt2(ref)
    x = tokens(B, T, seed=T)
    with torch.no_grad():
        scale = ref(x).logits.abs().max().item()
    assert scale > 1.0  # logits far from uniform: the comparison is not between near-zeros
    assert max_diff(ours, ref, x) < TOL32


@pytest.mark.parametrize("T", [5, 64])
def test_logits_equal_float64(T):
    ref = gpt2(dtype=torch.float64)
    ours = GPT.from_gpt2(ref)
    assert ours.tok_emb.weight.dtype == torch.float64
    assert max_diff(ours, ref, tokens(3, T, seed=T)) < TOL64


@pytest.mark.parametrize("overrides, activation", [
    ({}, "gelu_tanh"),                                         # GPT-2's own: gelu_new
    ({"activation_function": "gelu_pytorch_tanh"}, "gelu_tanh"),
    ({"activation_function": "gelu"}, "gelu"),
    ({"activation_function": "relu"}, "relu"),
    ({"n_inner": 96}, "gelu_tanh"),
    ({"n_layer": 3, "n_head": 2, "n_embd": 32, "vocab_size": 37, "n_positions": 20}, "gelu_tanh"),
])
def test_logits_equal_across_configs(overrides, activation):
    ref = gpt2(**overrides)
    ours = GPT.from_gpt2(ref)
    cfg = ref.config
    assert ours.config.activation == activation
    assert (ours.config.vocab_size, ours.config.block_size, ours.config.d_model, ours.config.num_heads,
            ours.config.num_layers) == (cfg.vocab_size, cfg.n_positions, cfg.n_embd, cfg.n_head, cfg.n_layer)
    assert ours.blocks[0].ffn.linear1.out_features == (cfg.n_inner or 4 * cfg.n_embd)
    assert max_diff(ours, ref, tokens(2, cfg.n_positions, vocab=cfg.vocab_size)) < TOL32


def test_the_config_rebuilds_the_architecture(pair):
    ours, ref = pair
    again = GPT.from_config(ours.config)
    again.load_state_dict(ours.state_dict())
    assert max_diff(again.eval(), ref, tokens(2, 16)) < TOL32


# ----------------------------------------------------------------------------- loss, gradients, generation

def test_loss_equals_transformers_labels_loss(pair):
    ours, ref = pair
    x = tokens(4, 40, seed=5)
    with torch.no_grad():
        theirs = ref(x, labels=x).loss.item()  # shifts inside: predicts x[:, 1:] from x[:, :-1]
        mine = lm_loss(ours, (x[:, :-1], x[:, 1:])).item()
    assert abs(mine - theirs) < TOL32
    assert abs(theirs - torch.log(torch.tensor(100.0)).item()) > 0.1  # not the uniform guess's ln 100


def test_gradients_equal():
    """In float64 (transformers' labels= loss computes in float32, so the loss comes from torch here)."""
    ref = gpt2(dtype=torch.float64)
    ours = GPT.from_gpt2(ref)
    x = tokens(2, 24, seed=6)
    logits = ref(x).logits[:, :-1]
    torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)).backward()
    lm_loss(ours, (x[:, :-1], x[:, 1:])).backward()
    conv = {"attn.qkv": "attn.c_attn", "attn.proj": "attn.c_proj", "ffn.linear1": "mlp.c_fc",
            "ffn.linear2": "mlp.c_proj"}
    theirs = dict(ref.named_parameters())
    for i in range(ref.config.n_layer):
        for a, b in conv.items():
            g_ours = dict(ours.named_parameters())[f"blocks.{i}.{a}.weight"].grad
            g_ref = theirs[f"transformer.h.{i}.{b}.weight"].grad.T  # Conv1D stores (in, out)
            assert (g_ours - g_ref).abs().max() < 1e-10
    assert (ours.tok_emb.weight.grad - ref.transformer.wte.weight.grad).abs().max() < 1e-10  # tied: both uses
    assert (ours.pos_emb.weight.grad - ref.transformer.wpe.weight.grad).abs().max() < 1e-10


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_generation_equals_transformers(pair, use_cache):
    ours, ref = pair
    prompt = tokens(2, 10, seed=7)
    steps = 12
    out = ref.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=steps, do_sample=False,
                       min_new_tokens=steps, output_logits=True, return_dict_in_generate=True)
    mine, logits = ours.generate(prompt, steps, temperature=0.0, use_cache=use_cache, return_logits=True)
    assert torch.equal(mine, out.sequences)
    assert len(set(mine[:, 10:].flatten().tolist())) > 2  # not one token repeated
    assert (logits - torch.stack(out.logits, dim=1)).abs().max() < TOL32


def test_gpt2_small_architecture_at_full_size():
    """GPT2Config()'s defaults are GPT-2 small's sizes (12 layers, 12 heads, d 768, 50257 tokens,
    1024 positions, gelu_new): random weights at that size convert too (the real checkpoint is
    never downloaded here)."""
    torch.manual_seed(0)
    ref = GPT2LMHeadModel(GPT2Config(pad_token_id=0)).eval()
    ours = GPT.from_gpt2(ref)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) == 124_439_808
    x = tokens(1, 24, vocab=50257)
    assert max_diff(ours, ref, x) < TOL32
    steps = dict(max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert torch.equal(ours.generate(x, 4, temperature=0), ref.generate(x, attention_mask=torch.ones_like(x), **steps))


def test_conversion_leaves_the_random_state_alone(pair):
    state = torch.random.get_rng_state()
    GPT.from_gpt2(pair[1])
    assert torch.equal(torch.random.get_rng_state(), state)


def test_train_mode_and_independent_copies(pair):
    ours, ref = pair
    assert not ours.training
    assert GPT.from_gpt2(gpt2().train()).training
    before = ref.transformer.h[0].attn.c_attn.weight.clone()
    with torch.no_grad():
        ours_copy = GPT.from_gpt2(ref)
        ours_copy.blocks[0].attn.qkv.weight.add_(1.0)
    assert torch.equal(ref.transformer.h[0].attn.c_attn.weight, before)
    assert ours.head.weight is ours.tok_emb.weight  # still tied after the copy


# ----------------------------------------------------------------------------- the test has teeth

def test_every_copied_parameter_moves_the_logits(pair):
    """Perturb one parameter of the copy at a time: the logits leave the 1e-5 band every time, so
    a weight left uncopied, copied untransposed (c_proj is square) or into the wrong place fails."""
    ours, ref = pair
    x = tokens(2, SMALL["n_positions"], seed=8)
    names = [n for n, _ in ours.named_parameters()]
    assert len(names) == 4 + 12 * SMALL["n_layer"]
    for name in names:
        broken = GPT.from_gpt2(ref)
        with torch.no_grad():
            p = dict(broken.named_parameters())[name]
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
        assert max_diff(broken, ref, x) > 1e-3, name


def test_untransposed_conv1d_weight_fails(pair):
    ours, ref = pair
    broken = GPT.from_gpt2(ref)
    with torch.no_grad():
        broken.blocks[1].attn.proj.weight.copy_(ref.transformer.h[1].attn.c_proj.weight)  # (in, out) as is
    assert max_diff(broken, ref, tokens(2, 16)) > 1e-3


def test_exact_gelu_instead_of_gpt2s_tanh_gelu_fails(pair):
    ours, ref = pair
    exact = GPT.from_config(dataclasses.replace(ours.config, activation="gelu"))
    exact.load_state_dict(ours.state_dict())
    assert max_diff(exact.eval(), ref, tokens(2, 32)) > 1e-4


# ----------------------------------------------------------------------------- misuse and refusals

@pytest.mark.parametrize("make, name", [
    (lambda: GPT2Model(GPT2Config(**SMALL)), "GPT2Model"),
    (lambda: nn.Linear(3, 3), "Linear"),
    (lambda: GPT(11, 8, 16, 2, 1), "GPT"),
    (lambda: None, "NoneType"),
    (lambda: GPT2Config(**SMALL), "GPT2Config"),
    (lambda: gpt2().state_dict(), "OrderedDict"),
])
def test_anything_but_a_gpt2_lm_head_model_is_a_type_error(make, name):
    with pytest.raises(TypeError, match=rf"GPT2LMHeadModel, got \S*{name}"):
        GPT.from_gpt2(make())


@pytest.mark.parametrize("dropout", [-0.1, 1.0, "0.1", None])
def test_bad_dropout(pair, dropout):
    with pytest.raises((ValueError, TypeError), match="dropout"):
        GPT.from_gpt2(pair[1], dropout=dropout)


def test_dropout_is_attnlibs_and_eval_mode_agrees(pair):
    ours, ref = pair
    drop = GPT.from_gpt2(ref, dropout=0.1)
    assert drop.config.dropout == 0.1 and not drop.training
    assert max_diff(drop, ref, tokens(2, 16)) < TOL32


@pytest.mark.parametrize("setting", [
    {"add_cross_attention": True},
    {"scale_attn_weights": False},
    {"scale_attn_by_inverse_layer_idx": True},
    {"reorder_and_upcast_attn": True},
    {"tie_word_embeddings": False},
    {"activation_function": "silu"},
    {"activation_function": "gelu_fast"},
    {"layer_norm_epsilon": 1e-6},
])
def test_configs_attnlib_cannot_reproduce_are_refused(setting):
    name, value = next(iter(setting.items()))
    with pytest.raises(ValueError, match=rf"GPT2Config\.{name}={value!r}|GPT2Config\.{name}={value}"):
        GPT.from_gpt2(gpt2(**setting))


def test_refused_settings_do_change_gpt2():
    """The refusals are needed: each refused setting changes transformers' logits."""
    x = tokens(2, 16)
    with torch.no_grad():
        base = gpt2()(x).logits
        for setting in ({"scale_attn_by_inverse_layer_idx": True}, {"scale_attn_weights": False},
                        {"activation_function": "silu"}, {"layer_norm_epsilon": 1e-2}):
            assert (gpt2(**setting)(x).logits - base).abs().max() > 1e-3, setting


def test_untied_output_layer_is_refused():
    ref = gpt2()
    ref.lm_head.weight = nn.Parameter(ref.lm_head.weight.detach() + 0.01)
    with pytest.raises(ValueError, match="lm_head.weight differs.*tie_word_embeddings"):
        GPT.from_gpt2(ref)


def test_weights_of_the_wrong_shape_are_refused():
    ref = gpt2()
    c_attn = ref.transformer.h[1].attn.c_attn
    c_attn.weight = nn.Parameter(c_attn.weight.detach()[:, :-16])  # as if heads were pruned
    with pytest.raises(ValueError, match=r"transformer\.h\.1\.attn\.c_attn\.weight.*\(64, 192\).*\(64, 176\)"):
        GPT.from_gpt2(ref)


def test_weights_it_would_not_copy_are_refused():
    ref = gpt2()
    ref.transformer.h[0].mlp.register_buffer("extra", torch.zeros(3))
    with pytest.raises(ValueError, match=r"would not copy: transformer\.h\.0\.mlp\.extra"):
        GPT.from_gpt2(ref)


def test_bad_activation_for_gpt():
    with pytest.raises(ValueError, match="activation"):
        GPT(11, 8, 16, 2, 1, activation="gelu_new")
