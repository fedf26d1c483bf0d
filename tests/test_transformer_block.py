"""attnlib.torch.transformer against torch.nn.TransformerEncoderLayer / TransformerDecoderLayer."""
import pytest
import torch
from torch import nn

from attnlib.experiments.transformer_block import (
    gradient_norms_by_depth,
    reverse_tagging_batch,
    sublayer_parameter_counts,
)
from attnlib.torch import DecoderLayer, EncoderLayer, FeedForward, TransformerEncoder, causal_mask

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _randomise(m):
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))  # non-trivial norms and biases
    return m


def _pad(B, L):
    lengths = torch.randint(1, L + 1, (B,))
    lengths[0] = L
    return torch.arange(L)[None, :] < lengths[:, None]  # True = real


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_equals_torch(dtype, norm_first, activation):
    torch.manual_seed(0)
    ref = _randomise(nn.TransformerEncoderLayer(16, 4, 24, dropout=0.1, activation=activation,
                                                batch_first=True, norm_first=norm_first,
                                                dtype=dtype)).eval()
    ours = EncoderLayer.from_torch(ref)
    assert not ours.training and ours.norm_first == norm_first
    x = torch.randn(3, 7, 16, dtype=dtype)
    keep = _pad(3, 7)
    causal = causal_mask(7)
    with torch.no_grad():
        want = ref(x, src_mask=~causal, src_key_padding_mask=~keep)
        got = ours(x, mask=causal, padding_mask=keep)
        want_plain, got_plain = ref(x), ours(x)
    assert (got - want)[keep].abs().max() < TOL[dtype]  # torch's fast path may zero padded rows
    assert (got_plain - want_plain).abs().max() < TOL[dtype]
    assert got.dtype == dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_decoder_layer_equals_torch(dtype, norm_first, activation):
    torch.manual_seed(1)
    ref = _randomise(nn.TransformerDecoderLayer(16, 2, 20, dropout=0.1, activation=activation,
                                                batch_first=True, norm_first=norm_first,
                                                dtype=dtype)).eval()
    ours = DecoderLayer.from_torch(ref)
    x, mem = torch.randn(3, 5, 16, dtype=dtype), torch.randn(3, 6, 16, dtype=dtype)
    tgt_keep, mem_keep = _pad(3, 5), _pad(3, 6)
    with torch.no_grad():
        want = ref(x, mem, tgt_mask=~causal_mask(5), tgt_key_padding_mask=~tgt_keep,
                   memory_key_padding_mask=~mem_keep)
        got, w = ours(x, mem, padding_mask=tgt_keep, memory_padding_mask=mem_keep, need_weights=True)
    assert (got - want).abs().max() < TOL[dtype]
    assert w["self"].shape == (3, 2, 5, 5) and w["cross"].shape == (3, 2, 5, 6)
    assert bool((w["self"].triu(1) == 0).all())                       # causal
    assert bool((w["cross"] * ~mem_keep[:, None, None, :] == 0).all())  # padded memory ignored


def test_decoder_is_causal():
    torch.manual_seed(2)
    layer = DecoderLayer(8, 2, 16, dropout=0.0).double().eval()
    x, mem = torch.randn(2, 6, 8, dtype=torch.float64), torch.randn(2, 4, 8, dtype=torch.float64)
    y = x.clone()
    y[:, 4] += 1.0  # change target token 4
    with torch.no_grad():
        a, b = layer(x, mem), layer(y, mem)
    assert (a[:, :4] - b[:, :4]).abs().max() == 0
    assert (a[:, 4:] - b[:, 4:]).abs().max() > 1e-3
    with torch.no_grad():  # without the causal mask, earlier positions do change
        assert (layer(x, mem, causal=False)[:, :4] - layer(y, mem, causal=False)[:, :4]).abs().max() > 1e-3


@pytest.mark.parametrize("norm_first", [False, True])
def test_gradcheck(norm_first):
    torch.manual_seed(3)
    enc = EncoderLayer(4, 2, 6, dropout=0.0, norm_first=norm_first, activation="gelu").double()
    dec = DecoderLayer(4, 2, 6, dropout=0.0, norm_first=norm_first).double()
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    m = torch.randn(2, 2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: enc(a, mask=causal_mask(3)), (x,))
    assert torch.autograd.gradcheck(lambda a, b: dec(a, b), (x, m))


def test_pre_ln_stack_final_norm_equals_torch():
    torch.manual_seed(4)
    layer = nn.TransformerEncoderLayer(8, 2, 12, batch_first=True, norm_first=True,
                                       dtype=torch.float64)
    ref = _randomise(nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(8, dtype=torch.float64),
                                           enable_nested_tensor=False)).eval()
    ours = TransformerEncoder.from_torch(ref)
    assert ours.norm is not None and len(ours.layers) == 3
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max() < 1e-10
        out = ours(x)
    # the final LayerNorm (weight/bias randomised) is applied: undo its affine part -> zero mean
    z = (out - ours.norm.bias) / ours.norm.weight
    assert z.mean(-1).abs().max() < 1e-10
    assert TransformerEncoder(2, 8, 2, 12, norm_first=True).norm is not None
    assert TransformerEncoder(2, 8, 2, 12, norm_first=False).norm is None


def test_feedforward_is_position_wise():
    torch.manual_seed(5)
    ffn = FeedForward(6, 10, dropout=0.0, activation="gelu").double()
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    per_position = torch.stack([ffn(x[:, i]) for i in range(5)], dim=1)
    assert (ffn(x) - per_position).abs().max() < 1e-12
    ref = ffn.linear2(torch.nn.functional.gelu(x @ ffn.linear1.weight.T + ffn.linear1.bias))
    assert (ffn(x) - ref).abs().max() < 1e-12


def test_parameter_counts_formula():
    d, f = 32, 128
    c = sublayer_parameter_counts(d, 4, f)
    assert c["self-attention"] == 4 * d * d + 4 * d
    assert c["feed-forward"] == 2 * d * f + f + d
    assert c["layer norms"] == 4 * d
    assert c["total"] == sum(v for k, v in c.items() if k != "total")
    assert sublayer_parameter_counts(d, 4, f, decoder=True)["layer norms"] == 6 * d


def test_residuals_keep_gradients():
    with_res = gradient_norms_by_depth(12, 16, 2, 32, norm_first=True, residual=True)
    without = gradient_norms_by_depth(12, 16, 2, 32, norm_first=True, residual=False)
    assert with_res.shape == (13,)
    assert with_res[0] / with_res[-1] > 0.5          # the gradient reaches the bottom
    assert without[0] / without[-1] < with_res[0] / with_res[-1]


def test_reverse_tagging_targets():
    from attnlib.data import reverse_task
    task = reverse_task(n_train=20, n_val=5, n_test=5, min_len=3, max_len=6)
    b = next(task.batches("train", 8))
    src, tgt = reverse_tagging_batch(b)
    for i, p in enumerate(b.pairs):
        n = len(p.source)
        assert task.source_vocab.decode(tgt[i, :n]) == p.source[::-1]
        assert bool((tgt[i, n:] == 0).all())


def test_bad_inputs():
    enc = EncoderLayer(8, 2, 16)
    dec = DecoderLayer(8, 2, 16)
    with pytest.raises(ValueError, match=r"\(B, L, d_model=8\).*\(2, 3, 5\)"):
        enc(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="padding_mask"):
        enc(torch.randn(2, 3, 8), padding_mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        enc(torch.randn(2, 3, 8), mask=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="batch size 2 but memory 3"):
        dec(torch.randn(2, 3, 8), torch.randn(3, 4, 8))
    with pytest.raises(ValueError, match="memory"):
        dec(torch.randn(2, 3, 8), torch.randn(2, 4, 6))
    with pytest.raises(ValueError, match="activation"):
        FeedForward(8, 16, activation="tanh")
    with pytest.raises(ValueError, match="batch_first"):
        EncoderLayer.from_torch(nn.TransformerEncoderLayer(8, 2, 16))
    with pytest.raises(ValueError, match="TransformerEncoderLayer"):
        EncoderLayer.from_torch(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="num_layers"):
        TransformerEncoder(0, 8, 2, 16)
