"""Every chapter explorer is a frame explorer: each knob switches between distinct pre-rendered
frames (so it works in the static book), and the frames stay few and small."""
from __future__ import annotations

import re

import ipywidgets as widgets
import numpy as np
import pytest

from attnlib.viz.frames import FRAME_CLASS, MAX_FRAMES

KNOBS = (widgets.SelectionSlider, widgets.Dropdown, widgets.ToggleButtons)


def _attention():
    from attnlib.viz.explorer import attention_explorer
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 3))
    return attention_explorer(X, X, X, ["the", "cat", "sat", "down"], query=2, temperature=1.0)


def _neighbours():
    from attnlib.viz.embeddings import neighbour_explorer
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(20)]
    tables = {"a": (words, rng.normal(size=(20, 5)), None), "b": (words, rng.normal(size=(20, 5)), None)}
    return neighbour_explorer(tables, ["w0", "w1", "w2"], k=4)


def _positions():
    from attnlib.viz.positional import position_explorer
    return position_explorer(num_positions=16, d_model=8, position=5, pair=0)


def _pooling():
    from attnlib.viz.attention_pooling import pooling_explorer
    x = np.linspace(0, 5, 12)
    return pooling_explorer(x, np.sin(x), np.linspace(0, 5, 6), bandwidth=0.3)


def _scaling():
    from attnlib.viz.scores import scaling_explorer
    return scaling_explorer(d_k=16, d_ks=(4, 16, 64), n_queries=30)


def _masks():
    from attnlib.viz.masking import mask_explorer
    return mask_explorer(lengths=(5, 3, 7), causal=True, element=1)


def _two_heads():
    from attnlib.viz.multi_head import two_head_explorer
    return two_head_explorer("the cat saw the dog", sharpness=20.0, causal=True)


def _path_ratios():
    from attnlib.viz.numpy_to_torch import path_ratios_explorer
    paths = ("weights", "fused", "numpy")
    ratios = {"L": np.array([16, 32, 64]), "weights_bytes": np.array([1, 4, 16]) * 1024,
              "device": "cpu", "threads": 1, "dtype": "float32", "rounds": 3}
    for k, p in enumerate(paths):
        ratios[p] = np.array([1.5, 2.0, 2.5]) + k
        ratios[f"{p}_q25"], ratios[f"{p}_q75"] = ratios[p] - 0.1, ratios[p] + 0.1
    return path_ratios_explorer(ratios)


def _records(seed, n=5):
    rng = np.random.default_rng(seed)
    return [dict(source=f"src{i}", target=f"t{i}", prediction=f"t{i}" if i % 2 else "xx",
                 correct=bool(i % 2), kind="val", weights=rng.dirichlet(np.ones(4), size=3))
            for i in range(n)]


def _alignments():
    from attnlib.viz.alignment import alignment_explorer
    return alignment_explorer({"dot": _records(0), "general": _records(1)}, index=0)


def _minilm():
    from attnlib.viz.pretrained import minilm_explorer
    rng = np.random.default_rng(2)
    tokens = ["[CLS]", "it", "was", "[SEP]"]
    records = {s: {"tokens": tokens, "attentions": rng.dirichlet(np.ones(4), size=(3, 2, 4))}
               for s in ("one sentence", "another")}
    return minilm_explorer(records, layer=1, head=1)


def _loss_runs():
    rng = np.random.default_rng(3)
    steps = np.arange(1, 41)
    runs = {}
    for k, (key, floor) in enumerate(((("post-LN", False), 2.0), (("post-LN", True), 0.1), (("pre-LN", False), 0.05))):
        losses = np.array([floor + 2.0 / (1 + steps * (0.2 + 0.05 * s)) + 0.02 * rng.random(40) for s in range(3)])
        runs[key] = {"seeds": [0, 1, 2], "losses": losses, "accuracy": np.array([0.1, 0.9, 0.95])[k] + 0.01 * np.arange(3),
                     "diverged": np.zeros(3, bool)}
    return runs


def _loss_curves():
    from attnlib.viz.transformer_block import loss_curves_explorer
    return loss_curves_explorer(_loss_runs())


def _date_maps(n=5, layers=2, heads=2, seed=4):
    rng = np.random.default_rng(seed)
    sources = ["9/23/2027", "Sep 10 2027", "Wed, Apr 18 2029", "4 Aug 2029", "July 5th, 2028"][:n]
    out = []
    for src in sources:
        S, T = len(src), 11
        dec = np.tril(rng.random((layers, heads, T, T)) + 0.1)
        out.append({"encoder": rng.dirichlet(np.ones(S), size=(layers, heads, S)),
                    "decoder": dec / dec.sum(-1, keepdims=True),
                    "cross": rng.dirichlet(np.ones(S), size=(layers, heads, T)), "source": list(src),
                    "target": list("2027-09-23") + ["<eos>"], "input": ["<bos>"] + list("2027-09-23")})
    return out


def _attention_maps():
    from attnlib.viz.encoder_decoder import attention_maps_explorer
    return attention_maps_explorer(_date_maps(), examples=3)


class _Chars:
    """The two things the next-token explorer needs of a CharCorpus: its characters and an encoder."""
    chars = " abcdefghijklmnopqrstuvwxyz"
    vocab_size = len(chars)

    def encode(self, text):
        return np.array([self.chars.index(c) for c in text], dtype=np.int64)


def _gpt():
    import torch

    from attnlib.torch import GPT
    torch.manual_seed(5)
    return GPT(_Chars.vocab_size, block_size=32, d_model=16, num_heads=2, num_layers=1).eval()


def _next_token():
    from attnlib.viz.gpt import next_token_explorer
    return next_token_explorer(_gpt(), _Chars(), ["the value of the argume", "the function returns "])


EXPLORERS = [_attention, _neighbours, _positions, _pooling, _scaling, _masks, _two_heads,
             _path_ratios, _alignments, _minilm, _loss_curves, _attention_maps, _next_token]


def _images(widget):
    if FRAME_CLASS in getattr(widget, "_dom_classes", ()):  # a frame: an <img> with alt text
        return [widget]
    return [img for child in getattr(widget, "children", ()) for img in _images(child)]


def _visible(box, knobs, indices):
    """The frame the browser shows when the knobs sit at ``indices`` (following the stacks)."""
    node = next(c for c in box.children if isinstance(c, widgets.Stack))
    for i in indices:
        node = node.children[i]
    return node.png


@pytest.mark.parametrize("make", EXPLORERS, ids=lambda f: f.__name__.strip("_"))
def test_each_knob_switches_between_distinct_frames(make):
    box = make()
    assert "attnlib-frame-explorer" in box._dom_classes
    knobs = [c for c in box.children if isinstance(c, KNOBS)]
    assert knobs and 2 <= box.frames <= MAX_FRAMES
    frames = _images(box)
    assert len(frames) == box.frames
    assert sum(len(f.png) for f in frames) < 400_000, "the frames are too heavy for the notebook"
    start = [k.index for k in knobs]
    for n, knob in enumerate(knobs):
        if len(knob.options) < 2:
            continue
        seen = {_visible(box, knobs, start[:n] + [i] + start[n + 1:]) for i in range(len(knob.options))}
        assert len(seen) >= 2, f"knob {knob.description!r} does not change the picture"
    # links: each knob drives the stacks of its depth, in the browser
    assert {id(link.source[0]) for link in box.links} == {id(k) for k in knobs}


# ---------------------------------------------------------------- the live part of chapters 13-15


@pytest.fixture
def shown(monkeypatch):
    """The pictures the live part displays: <img> tags with a PNG data URI and alt text (outside a
    kernel its Output widget captures nothing)."""
    import IPython.display

    pictures = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: pictures.append(obj.data))
    return pictures


def _free(box):
    """The live part's free controls, by description."""
    live = box.children[-1]
    assert "attnlib-live-only" in live._dom_classes
    return {w.description: w for w in live.children[1].children}


def _moved(box, shown, description, value):
    before = len(shown)
    _free(box)[description].value = value
    assert len(shown) == before + 1, f"moving {description!r} drew nothing"
    assert shown[-1].startswith('<img src="data:image/png;base64,iVBORw0KGgo')  # base64 of the PNG signature
    assert re.search(r'alt="[^"]{10,}"', shown[-1]), "the recomputed picture has no alt text"
    return _src(shown[-1])


def _src(img_html: str) -> str:
    """The picture itself (its data URI), without the alt text, which differs between a frame and the live part."""
    return re.search(r'src="([^"]+)"', img_html).group(1)


def test_loss_curves_live_part_recomputes_the_running_mean(shown):
    box = _loss_curves()
    frames = {_src(img.value) for img in _images(box)}
    raw, wide = _moved(box, shown, "running mean over", 1), _moved(box, shown, "running mean over", 25)
    assert raw != wide and raw not in frames and wide not in frames


def test_loss_curves_menu_offers_the_comparisons_that_differ_in_one_setting():
    from attnlib.viz.transformer_block import _comparisons
    keys = list(_loss_runs())
    options = dict(_comparisons(keys))
    assert list(options.values()) == [tuple(keys), (keys[0], keys[1]), (keys[0], keys[2])]
    # a frame draws exactly the runs of its option: one line per seed plus the mean, per run
    from attnlib.viz.transformer_block import _runs_frame
    for option in options.values():
        assert len(_runs_frame(_loss_runs(), list(option)).axes[0].lines) == 4 * len(option)
        assert len(_runs_frame(_loss_runs(), list(option), seed=1).axes[0].lines) == len(option)


def test_attention_maps_live_part_reaches_every_example(shown):
    box = _attention_maps()
    frames = {_src(img.value) for img in _images(box)}
    assert box.frames == 3 * 3  # three examples, three kinds
    last = _moved(box, shown, "any example", 4)  # an example with no frame of its own
    assert last not in frames and _moved(box, shown, "any example", 0) in frames


def test_attention_maps_live_part_translates_a_typed_source(shown):
    import torch

    from attnlib.data import date_task
    from attnlib.torch import Transformer
    from attnlib.viz.encoder_decoder import attention_maps_explorer

    task = date_task(n_train=20, n_val=2, n_test=2, test_formats=())
    torch.manual_seed(0)
    model = Transformer(len(task.source_vocab), len(task.target_vocab), 16, 2, 32, 1, 1, dropout=0.0).eval()
    box = attention_maps_explorer(_date_maps(n=2, layers=1, heads=2), model=model, task=task)
    one, other = _moved(box, shown, "or type a source", "Mon, Jan 2 2023"), _moved(box, shown, "or type a source", "2/1/23")
    assert one != other
    with pytest.raises(ValueError, match="both model and task"):
        attention_maps_explorer(_date_maps(n=1), model=model)


def test_mosaic_tiles_every_layer_and_head_in_place():
    from matplotlib.figure import Figure

    from attnlib.viz.encoder_decoder import _mosaic
    maps = _date_maps(n=1, layers=2, heads=3)[0]
    ax = Figure().subplots()
    _mosaic(ax, maps, "cross")
    tiled = ax.images[0].get_array()
    T, S = maps["cross"].shape[2:]
    for layer in range(2):
        for head in range(3):
            block = tiled[layer * (T + 1):layer * (T + 1) + T, head * (S + 1):head * (S + 1) + S]
            np.testing.assert_array_equal(block, maps["cross"][layer, head])
    assert tiled.mask[T].all() and tiled.mask[:, S].all(), "no blank line between the maps"
    assert [t.get_text() for t in ax.get_xticklabels()][:S] == [c.replace(" ", "_") for c in maps["source"]]


def test_next_token_live_part_takes_any_temperature_and_prompt(shown):
    box = _next_token()
    frames = {_src(img.value) for img in _images(box)}
    assert box.frames == 2 * 4 * 2  # prompts x temperatures x top-k
    warm = _moved(box, shown, "any τ", 0.7)  # no frame has tau 0.7
    assert warm not in frames
    assert _moved(box, shown, "any prompt", "the cat sat on the ma") != warm
    assert _moved(box, shown, "any top-k (0 = off)", 2) not in frames


def test_next_token_frames_match_the_distribution():
    import torch

    from attnlib.torch import next_token_probs
    from attnlib.viz.gpt import next_token_distribution, next_token_frame
    model, corpus = _gpt(), _Chars()
    prompt = "the function returns "
    with torch.no_grad():
        logits = model(torch.as_tensor(corpus.encode(prompt)[None]))[0, -1].double()
    for tau, k in ((0.0, None), (0.5, None), (2.0, 3)):
        want = next_token_probs(logits, tau, k).numpy()
        np.testing.assert_allclose(next_token_distribution(model, corpus, prompt, tau, k), want, atol=1e-12)
        bars = next_token_frame(model, corpus, prompt, tau, k).axes[0].patches
        np.testing.assert_allclose(sorted((b.get_height() for b in bars), reverse=True), np.sort(want)[::-1][:12])
