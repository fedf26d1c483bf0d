"""Chapter 13's evidence functions against independent references: the per-layer parameter
gradients against torch autograd computed directly, the majority baseline against a count by
NumPy, the seed-batched warm-up runs and the figures drawn from them."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnlib.data import reverse_task
from attnlib.experiments.transformer_block import (
    SequenceTagger,
    gradient_norms_by_depth,
    init_gradient_norms,
    layer_gradient_norms,
    majority_token_accuracy,
    norm_warmup_runs,
    reverse_tagging_batch,
    train_tagger,
    warmup_sweep,
)
from attnlib.viz.transformer_block import (
    gradient_norms_figure,
    init_gradient_figure,
    loss_curves_figure,
    loss_curves_snapshots,
    warmup_sweep_figure,
)


@pytest.fixture(scope="module")
def task():
    return reverse_task(n_train=200, n_val=40, n_test=4, min_len=4, max_len=6, alphabet="abcde")


def _batch(task, n=16):
    return reverse_tagging_batch(next(iter(task.batches("train", n, shuffle=False))))


@pytest.mark.parametrize("norm_first", [False, True])
def test_layer_gradient_norms_equal_autograd_computed_directly(task, norm_first):
    torch.manual_seed(3)
    model = SequenceTagger(len(task.source_vocab), 6, d_model=8, num_heads=2, d_ff=16, num_layers=3,
                           norm_first=norm_first).double()
    src, target = _batch(task)
    names = ("ffn.linear1.weight", "ffn.linear2.weight", "self_attn.q_proj.weight", "norm2.bias")
    got = layer_gradient_norms(model, src, target, names)
    # the reference: the cross-entropy written out with torch's own op, backward(), .grad
    logits = model(src)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=0)
    loss.backward()
    for name in names:
        want = torch.stack([dict(layer.named_parameters())[name].grad.norm()
                            for layer in model.encoder.layers])
        assert got[name].shape == (3,)
        torch.testing.assert_close(got[name], want.double(), rtol=1e-10, atol=1e-12)


def test_layer_gradient_norms_equal_finite_differences(task):
    # one coordinate of the gradient of W2 in the last layer, by central differences (float64)
    torch.manual_seed(0)
    model = SequenceTagger(len(task.source_vocab), 6, d_model=8, num_heads=2, d_ff=16, num_layers=2,
                           norm_first=False).double()
    src, target = _batch(task)
    w = model.encoder.layers[-1].ffn.linear2.weight
    loss = lambda: F.cross_entropy(model(src).reshape(-1, len(task.source_vocab)),  # noqa: E731
                                   target.reshape(-1), ignore_index=0)
    eps, fd = 1e-6, torch.zeros_like(w)
    with torch.no_grad():
        for idx in np.ndindex(*w.shape):
            w[idx] += eps
            up = loss()
            w[idx] -= 2 * eps
            fd[idx] = (up - loss()) / (2 * eps)
            w[idx] += eps
    got = layer_gradient_norms(model, src, target, ("ffn.linear2.weight",))["ffn.linear2.weight"]
    assert abs(got[-1].item() - fd.norm().item()) < 1e-6 * max(1.0, fd.norm().item())


def test_layer_gradient_norms_leave_grad_alone_and_refuse_bad_input(task):
    model = SequenceTagger(len(task.source_vocab), 6, d_model=8, num_heads=2, d_ff=16, num_layers=2)
    src, target = _batch(task)
    layer_gradient_norms(model, src, target)
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="no parameter named"):
        layer_gradient_norms(model, src, target, ("ffn.w9",))
    with pytest.raises(ValueError, match="names"):
        layer_gradient_norms(model, src, target, "ffn.linear1.weight")
    with pytest.raises(ValueError, match="shape of src"):
        layer_gradient_norms(model, src, target[:, :-1])
    with pytest.raises(TypeError, match="SequenceTagger"):
        layer_gradient_norms(model.encoder, src, target)


def test_init_gradient_norms_are_the_per_model_measurement(task):
    norms = init_gradient_norms(task, depths=(1, 3), seeds=(0, 5), d_model=8, num_heads=2, d_ff=16,
                                batch_size=16)
    assert set(norms) == {("post-LN", 1), ("post-LN", 3), ("pre-LN", 1), ("pre-LN", 3)}
    assert norms[("pre-LN", 3)]["ffn.linear2.weight"].shape == (2, 3)
    torch.manual_seed(5)
    model = SequenceTagger(len(task.source_vocab), 6, 8, 2, 16, 3, True)
    src, target = _batch(task)
    want = layer_gradient_norms(model, src, target)["ffn.linear1.weight"].numpy()
    np.testing.assert_allclose(norms[("pre-LN", 3)]["ffn.linear1.weight"][1], want, rtol=1e-6)
    with pytest.raises(ValueError, match="non-empty"):
        init_gradient_norms(task, depths=(2,), seeds=())
    with pytest.raises(ValueError, match="depth"):
        init_gradient_norms(task, depths=(0,))


def test_post_ln_output_is_normalised_so_its_last_gradient_ignores_the_scale_below(task):
    # Xiong et al.'s argument in one line: in post-LN the last LayerNorm divides by the scale of
    # its input, so multiplying the embeddings by 10 changes the last layer's W2 gradient far
    # less in post-LN than in pre-LN (whose stream carries the scale up to the final norm).
    src, target = _batch(task)

    def last_w2(norm_first, scale):
        torch.manual_seed(1)
        m = SequenceTagger(len(task.source_vocab), 6, 16, 2, 32, 4, norm_first).double()
        with torch.no_grad():
            m.embed.weight.mul_(scale)
            m.pos.weight.mul_(scale)
        return layer_gradient_norms(m, src, target)["ffn.linear2.weight"][-1].item()

    post = last_w2(False, 10.0) / last_w2(False, 1.0)
    pre = last_w2(True, 10.0) / last_w2(True, 1.0)
    assert pre < 0.5 and post > pre


def test_majority_token_accuracy_against_a_numpy_count(task):
    letters = np.array([c for p in task.val for c in p.target])
    _, counts = np.unique(letters, return_counts=True)
    assert majority_token_accuracy(task) == pytest.approx(counts.max() / len(letters))
    assert 1 / 5 <= majority_token_accuracy(task, "train") < 0.5
    with pytest.raises(ValueError):
        majority_token_accuracy(task, "dev")


def test_train_tagger_clip_none_and_nonfinite_loss(task):
    kw = dict(steps=6, batch_size=8, d_model=8, num_layers=1, num_heads=2, d_ff=16, progress=False,
              device="cpu")
    _, h = train_tagger(task, False, 0, lr=1e-3, clip=None, **kw)
    assert len(h.losses) == 6 and h.diverged is False
    # an absurd learning rate without clipping: the loss overflows within a few steps
    _, h = train_tagger(task, False, 0, lr=1e12, clip=None, stop_if_nonfinite=True, **kw)
    assert h.diverged is True and len(h.losses) < 6 and np.isfinite(h.losses).all()
    assert 0.0 <= h.evals[-1]["token_accuracy"] <= 1.0
    with pytest.raises(ValueError, match="the loss is"):
        train_tagger(task, False, 0, lr=1e12, clip=None, **kw)


def test_norm_warmup_runs_over_seeds(task):
    runs = norm_warmup_runs(task, steps=4, lr=1e-3, warmup_steps=2, progress=False, seeds=(0, 1),
                            configs=[("pre-LN", False), ("post-LN", True)], batch_size=8, d_model=8,
                            num_layers=1, num_heads=2, d_ff=16, clip=None, device="cpu")
    assert list(runs) == [("pre-LN", False), ("post-LN", True)]
    r = runs[("post-LN", True)]
    assert r["losses"].shape == (2, 4) and r["accuracy"].shape == (2,) and r["seeds"] == [0, 1]
    # seed 1 alone reproduces row 1
    _, h = train_tagger(task, False, 2, steps=4, lr=1e-3, batch_size=8, d_model=8, num_layers=1,
                        num_heads=2, d_ff=16, seed=1, progress=False, clip=None, device="cpu")
    np.testing.assert_allclose(r["losses"][1], h.losses)
    with pytest.raises(ValueError, match="configs"):
        norm_warmup_runs(task, steps=2, configs=[("mid-LN", False)])
    with pytest.raises(ValueError, match="seed"):
        norm_warmup_runs(task, steps=2, seeds=())


def test_figures_draw(task):
    g = torch.stack([gradient_norms_by_depth(3, 8, 2, 16, seed=s) for s in range(3)])
    gradient_norms_figure({"a": g, "b": g[0]})
    norms = init_gradient_norms(task, depths=(1, 2), seeds=(0, 1), d_model=8, num_heads=2, d_ff=16,
                                batch_size=8)
    init_gradient_figure(norms, 2)
    with pytest.raises(ValueError, match="profile_depth"):
        init_gradient_figure(norms, 5)
    runs = {("post-LN", False): {"losses": np.array([[2.0, 1.0, np.nan], [2.0, 1.5, 1.0]]),
                                 "accuracy": np.array([0.2, 0.9])},
            ("pre-LN", False): {"losses": np.array([2.0, 1.0, 0.5]), "accuracy": 1.0}}
    loss_curves_figure(runs)
    loss_curves_snapshots(runs)
    warmup_sweep_figure(warmup_sweep(True))
    matplotlib.pyplot.close("all")
