"""Misuse of attnlib.numpy (and the viz functions that take a learner's index): a clear message.

Each case calls a public function with one bad argument and asserts the exception type and that
the message names the parameter (or the shapes, or the value). The twin tests at the end check
that the NumPy functions agree with PyTorch on the edge cases: no keys (L_k = 0), +inf and NaN
scores.
"""
from __future__ import annotations

import numpy as np
import pytest

import attnlib.numpy as N
from attnlib.numpy import embeddings as E

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 3, 4))
Q, K, V = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(2, 5, 4)), RNG.normal(size=(2, 5, 6))
W8 = np.eye(8)
X8 = RNG.normal(size=(2, 5, 8))
EMB = RNG.normal(size=(5, 3))                      # a vocabulary of V = 5 rows
WORDS = ["cat", "dog", "mat", "sat", "the"]
TOKENS = ("the cat sat on the mat the dog sat " * 4).split()
TABLE = E.negative_sampling_table([10, 5, 1], size=100)


def _tables():
    return np.zeros((5, 3)), np.zeros((5, 3))


# (id, call, exception type, regex the message must match)
CASES = [
    # ---------------------------------------------------------------- counts and sizes
    ("causal_mask L_q=-1", lambda: N.causal_mask(-1), ValueError, r"L_q must be a non-negative integer, got -1"),
    ("causal_mask L_q=2.5", lambda: N.causal_mask(2.5), ValueError, r"L_q .*2\.5"),
    ("causal_mask L_q=None", lambda: N.causal_mask(None), ValueError, r"L_q .*None"),
    ("causal_mask L_q='3'", lambda: N.causal_mask("3"), ValueError, r"L_q .*'3'"),
    ("causal_mask L_q=True", lambda: N.causal_mask(True), ValueError, r"L_q .*True"),
    ("causal_mask L_k=-2", lambda: N.causal_mask(3, -2), ValueError, r"L_k .*-2"),
    ("padding_mask max_len=4.5", lambda: N.padding_mask([2, 3], 4.5), ValueError, r"max_len .*4\.5"),
    ("padding_mask max_len=-1", lambda: N.padding_mask([0], -1), ValueError, r"max_len .*-1"),
    ("padding_mask max_len=None", lambda: N.padding_mask([1], None), ValueError, r"max_len .*None"),
    ("padding_mask lengths=None", lambda: N.padding_mask(None, 4), ValueError, r"lengths"),
    ("padding_mask lengths ragged", lambda: N.padding_mask([[1], [1, 2]], 4), ValueError, r"lengths"),
    ("padding_mask length > max_len", lambda: N.padding_mask([2, 5], 4), ValueError, r"lengths.*max_len=4"),
    ("key_padding_mask L_q=1.5", lambda: N.key_padding_mask([1, 2], 1.5, 3), ValueError, r"L_q .*1\.5"),
    ("key_padding_mask max_len=-3", lambda: N.key_padding_mask([1], 2, -3), ValueError, r"max_len .*-3"),
    ("sinusoidal num_positions=-1", lambda: N.sinusoidal_positional_encoding(-1, 8), ValueError, r"num_positions .*-1"),
    ("sinusoidal num_positions=2.5", lambda: N.sinusoidal_positional_encoding(2.5, 8), ValueError, r"num_positions .*2\.5"),
    ("sinusoidal d_model=0", lambda: N.sinusoidal_positional_encoding(4, 0), ValueError, r"d_model .*0"),
    ("sinusoidal d_model=7.5", lambda: N.sinusoidal_positional_encoding(4, 7.5), ValueError, r"d_model .*7\.5"),
    ("sinusoidal d_model=None", lambda: N.sinusoidal_positional_encoding(4, None), ValueError, r"d_model .*None"),
    ("sinusoidal base=-10", lambda: N.sinusoidal_positional_encoding(4, 8, base=-10), ValueError, r"base .*-10"),
    ("sinusoidal base='1e4'", lambda: N.sinusoidal_positional_encoding(4, 8, base="1e4"), ValueError, r"base"),
    ("sinusoidal_frequencies d_model=-4", lambda: N.sinusoidal_frequencies(-4), ValueError, r"d_model .*-4"),
    ("learned_position_table num_positions=0", lambda: N.learned_position_table(0, 4, RNG), ValueError,
     r"num_positions"),
    ("relative_position_matrix max_distance=-1", lambda: N.relative_position_matrix(3, 3, -1), ValueError,
     r"max_distance .*-1"),
    ("relative_position_matrix max_distance=1.5", lambda: N.relative_position_matrix(3, 3, 1.5), ValueError,
     r"max_distance .*1\.5"),
    ("relative_position_matrix L_k=0", lambda: N.relative_position_matrix(3, 0, 1), ValueError, r"L_k .*0"),
    ("alibi_slopes num_heads=0", lambda: N.alibi_slopes(0), ValueError, r"num_heads .*0"),
    ("alibi_slopes num_heads=2.5", lambda: N.alibi_slopes(2.5), ValueError, r"num_heads .*2\.5"),
    ("alibi_bias L_q=-1", lambda: N.alibi_bias(2, -1), ValueError, r"L_q .*-1"),
    ("multi_head num_heads=0", lambda: N.multi_head_attention(X8, X8, W8, W8, W8, W8, 0), ValueError,
     r"num_heads .*0"),
    ("multi_head num_heads=None", lambda: N.multi_head_attention(X8, X8, W8, W8, W8, W8, None), ValueError,
     r"num_heads .*None"),
    ("multi_head num_heads='2'", lambda: N.multi_head_attention(X8, X8, W8, W8, W8, W8, "2"), ValueError,
     r"num_heads .*'2'"),
    ("multi_head num_heads=3 (8 features)", lambda: N.multi_head_attention(X8, X8, W8, W8, W8, W8, 3),
     ValueError, r"d_model=8 is not divisible by num_heads=3"),
    ("split_heads num_heads=-2", lambda: N.split_heads(X8, -2), ValueError, r"num_heads .*-2"),
    ("split_heads num_heads=1.5", lambda: N.split_heads(X8, 1.5), ValueError, r"num_heads .*1\.5"),
    ("attention_cost repeats=0", lambda: N.attention_cost([8], repeats=0, progress=False), ValueError,
     r"repeats .*0"),
    ("attention_cost lengths=[8, -1]", lambda: N.attention_cost([8, -1], progress=False), ValueError,
     r"lengths .*-1"),
    ("attention_cost lengths=16", lambda: N.attention_cost(16, progress=False), ValueError, r"lengths"),
    ("attention_cost num_heads=3", lambda: N.attention_cost([8], d_model=64, num_heads=3, progress=False),
     ValueError, r"num_heads=3"),
    ("build_vocab min_count=0", lambda: N.build_vocab(TOKENS, min_count=0), ValueError, r"min_count .*0"),
    ("build_vocab min_count=1.5", lambda: N.build_vocab(TOKENS, min_count=1.5), ValueError, r"min_count .*1\.5"),
    ("build_vocab max_size=-1", lambda: N.build_vocab(TOKENS, min_count=1, max_size=-1), ValueError,
     r"max_size .*-1"),
    ("one_hot vocab_size=-3", lambda: N.one_hot([0], -3), ValueError, r"vocab_size .*-3"),
    ("one_hot vocab_size=2.5", lambda: N.one_hot([0], 2.5), ValueError, r"vocab_size .*2\.5"),
    ("skipgram_pairs window=0", lambda: N.skipgram_pairs([0, 1, 2], 0), ValueError, r"window .*0"),
    ("skipgram_pairs window=1.5", lambda: N.skipgram_pairs([0, 1, 2], 1.5), ValueError, r"window .*1\.5"),
    ("skipgram_pairs window='2'", lambda: N.skipgram_pairs([0, 1, 2], "2"), ValueError, r"window .*'2'"),
    ("negative_sampling_table size=0", lambda: N.negative_sampling_table([3, 1], size=0), ValueError, r"size .*0"),
    ("sample_negatives shape=(2, -1)", lambda: N.sample_negatives(TABLE, (2, -1), RNG), ValueError,
     r"shape \(2, -1\).*-1"),
    ("sample_negatives shape=(2.5,)", lambda: N.sample_negatives(TABLE, (2.5,), RNG), ValueError, r"shape"),
    ("train_word2vec dim=0", lambda: N.train_word2vec(TOKENS, RNG, dim=0, min_count=1, progress=False),
     ValueError, r"dim .*0"),
    ("train_word2vec window=-1", lambda: N.train_word2vec(TOKENS, RNG, window=-1, min_count=1, progress=False),
     ValueError, r"window .*-1"),
    ("train_word2vec negatives=2.5", lambda: N.train_word2vec(TOKENS, RNG, negatives=2.5, min_count=1,
                                                              progress=False), ValueError, r"negatives .*2\.5"),
    ("train_word2vec epochs=-1", lambda: N.train_word2vec(TOKENS, RNG, epochs=-1, min_count=1, progress=False),
     ValueError, r"epochs .*-1"),
    ("train_word2vec batch_size=0", lambda: N.train_word2vec(TOKENS, RNG, batch_size=0, min_count=1,
                                                             progress=False), ValueError, r"batch_size .*0"),
    ("train_word2vec empty vocabulary", lambda: N.train_word2vec(TOKENS, RNG, min_count=1000, progress=False),
     ValueError, r"min_count=1000"),
    ("nearest_neighbours k beyond V", lambda: N.nearest_neighbours(EMB, 0, k=5), ValueError,
     r"k=5 .*V=5.*at most 4"),
    ("nearest_neighbours k=100", lambda: N.nearest_neighbours(EMB, 2, k=100), ValueError, r"k=100 .*V=5"),
    ("nearest_neighbours k beyond allowed", lambda: N.nearest_neighbours(EMB, 0, k=2,
                                                                         allowed=[True, True, False, False, False]),
     ValueError, r"k=2 .*V=5 .*1 are allowed"),
    ("nearest_neighbours k=-1", lambda: N.nearest_neighbours(EMB, 0, k=-1), ValueError, r"k .*-1"),
    ("nearest_neighbours k=1.5", lambda: N.nearest_neighbours(EMB, 0, k=1.5), ValueError, r"k .*1\.5"),
    ("neighbour_table k beyond V", lambda: N.neighbour_table(WORDS, EMB, ["cat"], k=9), ValueError,
     r"k=9 .*V=5"),
    ("fit_bandwidth steps=-1", lambda: N.fit_bandwidth([0.0, 1.0, 2.0], [1.0, 0.0, 1.0], steps=-1), ValueError,
     r"steps .*-1"),
    ("fit_bandwidth steps=2.5", lambda: N.fit_bandwidth([0.0, 1.0, 2.0], [1.0, 0.0, 1.0], steps=2.5), ValueError,
     r"steps .*2\.5"),
    ("fit_bandwidth one point", lambda: N.fit_bandwidth([0.0], [1.0]), ValueError, r"at least 2 points"),
    ("toy_regression n=-5", lambda: N.toy_regression(-5, RNG), ValueError, r"\bn .*-5"),
    ("toy_regression n=2.5", lambda: N.toy_regression(2.5, RNG), ValueError, r"\bn .*2\.5"),
    ("dot_product_variance d_ks=[4, 0]", lambda: N.dot_product_variance([4, 0], 10, RNG), ValueError,
     r"d_ks .*0"),
    ("dot_product_variance d_ks=[2.5]", lambda: N.dot_product_variance([2.5], 10, RNG), ValueError,
     r"d_ks .*2\.5"),
    ("dot_product_variance d_ks=8", lambda: N.dot_product_variance(8, 10, RNG), ValueError, r"d_ks .*8"),
    ("dot_product_variance n_samples=0", lambda: N.dot_product_variance([4], 0, RNG), ValueError,
     r"n_samples .*0"),
    ("softmax_saturation n_keys=-1", lambda: N.softmax_saturation([4], -1, 10, RNG), ValueError, r"n_keys .*-1"),
    ("softmax_saturation n_samples=1.5", lambda: N.softmax_saturation([4], 8, 1.5, RNG), ValueError,
     r"n_samples .*1\.5"),
    # ---------------------------------------------------------------- real numbers
    ("bandwidth=0", lambda: N.gaussian_kernel_scores([0.0], [1.0], 0), ValueError, r"bandwidth .*0"),
    ("bandwidth=-1", lambda: N.gaussian_kernel_weights([0.0], [1.0], -1.0), ValueError, r"bandwidth .*-1"),
    ("bandwidth='1'", lambda: N.gaussian_kernel_scores([0.0], [1.0], "1"), ValueError, r"bandwidth .*'1'"),
    ("bandwidth=None", lambda: N.nadaraya_watson([0.0], [1.0], [2.0], None), ValueError, r"bandwidth .*None"),
    ("bandwidth=nan", lambda: N.gaussian_kernel_scores([0.0], [1.0], float("nan")), ValueError, r"bandwidth .*nan"),
    ("bandwidth=True", lambda: N.gaussian_kernel_scores([0.0], [1.0], True), ValueError, r"bandwidth .*True"),
    ("fit_bandwidth lr=-1", lambda: N.fit_bandwidth([0.0, 1.0, 2.0], [1.0, 0.0, 1.0], lr=-1.0), ValueError,
     r"lr .*-1"),
    ("fit_bandwidth lr=None", lambda: N.fit_bandwidth([0.0, 1.0, 2.0], [1.0, 0.0, 1.0], lr=None), ValueError,
     r"lr .*None"),
    ("toy_regression noise=-0.5", lambda: N.toy_regression(5, RNG, noise=-0.5), ValueError, r"noise .*-0\.5"),
    ("toy_regression low > high", lambda: N.toy_regression(5, RNG, low=5.0, high=0.0), ValueError,
     r"low=5\.0 and high=0\.0"),
    ("toy_target x=-1", lambda: N.toy_target([-1.0, 2.0]), ValueError, r"x must be non-negative.*-1"),
    ("subsample_frequent threshold=-1e-3", lambda: N.subsample_frequent([0, 1], [5, 1], RNG, threshold=-1e-3),
     ValueError, r"threshold .*-0\.001"),
    ("subsample_frequent threshold=0", lambda: N.subsample_frequent([0, 1], [5, 1], RNG, threshold=0),
     ValueError, r"threshold .*0"),
    ("negative_sampling_distribution power=-1", lambda: N.negative_sampling_distribution([3, 1], power=-1),
     ValueError, r"power .*-1"),
    ("negative_sampling_distribution power='3/4'", lambda: N.negative_sampling_distribution([3, 1], power="3/4"),
     ValueError, r"power .*'3/4'"),
    ("negative_sampling_distribution counts=['a']", lambda: N.negative_sampling_distribution(["a", "b"]),
     ValueError, r"counts .*dtype"),
    ("sgns_step lr=nan", lambda: N.sgns_step(*_tables(), [0], [1], [[2]], float("nan")), ValueError, r"lr .*nan"),
    ("train_word2vec lr=-0.05", lambda: N.train_word2vec(TOKENS, RNG, lr=-0.05, min_count=1, progress=False),
     ValueError, r"lr .*-0\.05"),
    ("train_word2vec subsample=-1", lambda: N.train_word2vec(TOKENS, RNG, subsample=-1, min_count=1,
                                                             progress=False), ValueError, r"subsample .*-1"),
    ("learned_position_table scale=-0.02", lambda: N.learned_position_table(4, 4, RNG, scale=-0.02), ValueError,
     r"scale .*-0\.02"),
    ("rope base=0", lambda: N.rope(np.ones((3, 4)), base=0), ValueError, r"base .*0"),
    ("rope positions=['a', ...]", lambda: N.rope(np.ones((3, 4)), positions=["a", "b", "c"]), ValueError,
     r"positions .*dtype"),
    ("rope_matrix position=[1, 2]", lambda: N.rope_matrix([1, 2], 4), ValueError, r"position .*\[1, 2\]"),
    ("rope_matrix position=None", lambda: N.rope_matrix(None, 4), ValueError, r"position .*None"),
    ("rope_matrix d=0", lambda: N.rope_matrix(1, 0), ValueError, r"\bd .*0"),
    ("two_head_example sharpness='big'", lambda: N.two_head_example(["a", "b"], sharpness="big"), ValueError,
     r"sharpness .*'big'"),
    # ---------------------------------------------------------------- random generators
    ("learned_position_table rng=0", lambda: N.learned_position_table(4, 4, 0), TypeError,
     r"rng must be a numpy.random.Generator.*default_rng\(0\)"),
    ("toy_regression rng=None", lambda: N.toy_regression(5, None), TypeError, r"rng .*NoneType"),
    ("toy_regression rng=RandomState", lambda: N.toy_regression(5, np.random.RandomState(0)), TypeError,
     r"rng .*RandomState"),
    ("sample_negatives rng=42", lambda: N.sample_negatives(TABLE, (2, 3), 42), TypeError, r"rng .*int"),
    ("subsample_frequent rng=1", lambda: N.subsample_frequent([0, 1], [5, 1], 1), TypeError, r"rng .*int"),
    ("train_word2vec rng=0", lambda: N.train_word2vec(TOKENS, 0, min_count=1, progress=False), TypeError,
     r"rng .*int"),
    ("dot_product_variance rng=None", lambda: N.dot_product_variance([4], 10, None), TypeError, r"rng"),
    ("softmax_saturation rng='seed'", lambda: N.softmax_saturation([4], 8, 10, "seed"), TypeError, r"rng .*str"),
    # ---------------------------------------------------------------- text: tokens, words, queries
    ("build_vocab tokens=str", lambda: N.build_vocab("the cat sat", min_count=1), TypeError,
     r"tokens .*single str.*split"),
    ("build_vocab tokens=None", lambda: N.build_vocab(None), TypeError, r"tokens .*NoneType"),
    ("build_vocab tokens=[None]", lambda: N.build_vocab(["a", None], min_count=1), TypeError,
     r"tokens .*item 1 is NoneType"),
    ("build_vocab tokens=b'...'", lambda: N.build_vocab(b"the cat", min_count=1), TypeError, r"tokens .*bytes"),
    ("encode tokens=str", lambda: N.encode("the cat", WORDS), TypeError, r"tokens .*single str"),
    ("encode words=None", lambda: N.encode(TOKENS, None), TypeError, r"words .*NoneType"),
    ("encode tokens=[1, 2]", lambda: N.encode([1, 2], WORDS), TypeError, r"tokens .*item 0 is int"),
    ("train_word2vec tokens=str", lambda: N.train_word2vec("the cat", RNG, progress=False), TypeError,
     r"tokens .*single str"),
    ("neighbour_table queries=str", lambda: N.neighbour_table(WORDS, EMB, "cat"), TypeError,
     r"queries .*single str"),
    ("neighbour_table queries=[None]", lambda: N.neighbour_table(WORDS, EMB, [None]), TypeError,
     r"queries .*item 0 is NoneType"),
    ("neighbour_table queries=None", lambda: N.neighbour_table(WORDS, EMB, None), TypeError, r"queries"),
    ("neighbour_table unknown word", lambda: N.neighbour_table(WORDS, EMB, ["cat", "unicorn"]), ValueError,
     r"not in the vocabulary: \['unicorn'\]"),
    ("neighbour_table words=str", lambda: N.neighbour_table("cat dog", EMB, ["cat"]), TypeError, r"words"),
    ("neighbour_table words vs embeddings", lambda: N.neighbour_table(WORDS[:3], EMB, ["cat"]), ValueError,
     r"3 words, embeddings of shape \(5, 3\)"),
    ("two_head_example tokens=str", lambda: N.two_head_example("the cat saw the dog"), TypeError,
     r"tokens .*single str"),
    ("two_head_example tokens=[1, 2]", lambda: N.two_head_example([1, 2]), TypeError, r"tokens .*int"),
    # ---------------------------------------------------------------- ids and indices
    ("one_hot ids=[1.5]", lambda: N.one_hot([1.5], 3), ValueError, r"ids .*dtype float64"),
    ("one_hot ids=[-1]", lambda: N.one_hot([-1], 3), ValueError, r"ids .*\[0, 3\).*-1"),
    ("one_hot ids=[3]", lambda: N.one_hot([0, 3], 3), ValueError, r"ids .*\[0, 3\).*3"),
    ("one_hot ids=[True]", lambda: N.one_hot([True], 3), ValueError, r"ids .*bool"),
    ("one_hot ids 2-D", lambda: N.one_hot([[0, 1]], 3), ValueError, r"ids must be 1-D, got shape \(1, 2\)"),
    ("skipgram_pairs ids=[0.5, 1.7]", lambda: N.skipgram_pairs([0.5, 1.7], 1), ValueError, r"ids .*float"),
    ("skipgram_pairs ids 2-D", lambda: N.skipgram_pairs(np.zeros((2, 2), int), 1), ValueError,
     r"ids must be 1-D, got shape \(2, 2\)"),
    ("subsample_frequent ids beyond counts", lambda: N.subsample_frequent([0, 2], [5, 1], RNG), ValueError,
     r"ids .*\[0, 2\)"),
    ("subsample_frequent counts negative", lambda: N.subsample_frequent([0, 1], [5, -1], RNG), ValueError,
     r"counts .*non-negative"),
    ("sample_negatives empty table", lambda: N.sample_negatives([], (2, 3), RNG), ValueError, r"table is empty"),
    ("sample_negatives float table", lambda: N.sample_negatives([0.5, 1.0], (2,), RNG), ValueError,
     r"table .*float"),
    ("sgns_step centers=-1", lambda: N.sgns_step(*_tables(), [-1], [1], [[2]], 0.1), ValueError,
     r"centers .*\[0, 5\).*-1"),
    ("sgns_step contexts=5", lambda: N.sgns_step(*_tables(), [0], [5], [[2]], 0.1), ValueError,
     r"contexts .*\[0, 5\).*5"),
    ("sgns_step negatives float", lambda: N.sgns_step(*_tables(), [0], [1], [[2.0]], 0.1), ValueError,
     r"negatives .*float"),
    ("sgns_step negatives 1-D", lambda: N.sgns_step(*_tables(), [0], [1], [2], 0.1), ValueError,
     r"negatives must be 2-D"),
    ("sgns_step B differs", lambda: N.sgns_step(*_tables(), [0, 1], [1], [[2]], 0.1), ValueError,
     r"same B.*\(2,\).*\(1,\)"),
    ("sgns_step W_in a list", lambda: N.sgns_step([[0.0]] * 5, np.zeros((5, 1)), [0], [1], [[2]], 0.1),
     ValueError, r"W_in must be a 2-D float numpy array"),
    ("sgns_step W_out int", lambda: N.sgns_step(np.zeros((5, 3)), np.zeros((5, 3), int), [0], [1], [[2]], 0.1),
     ValueError, r"W_out must be a 2-D float"),
    ("sgns_step shapes differ", lambda: N.sgns_step(np.zeros((5, 3)), np.zeros((4, 3)), [0], [1], [[2]], 0.1),
     ValueError, r"W_in and W_out .*\(5, 3\) and \(4, 3\)"),
    ("nearest_neighbours index=5", lambda: N.nearest_neighbours(EMB, 5), ValueError, r"index .*V=5.*got 5"),
    ("nearest_neighbours index=-1", lambda: N.nearest_neighbours(EMB, -1), ValueError, r"index .*got -1"),
    ("nearest_neighbours index=1.5", lambda: N.nearest_neighbours(EMB, 1.5), ValueError, r"index .*got 1\.5"),
    ("nearest_neighbours index=None", lambda: N.nearest_neighbours(EMB, None), ValueError, r"index .*None"),
    ("nearest_neighbours index='cat'", lambda: N.nearest_neighbours(EMB, "cat"), ValueError,
     r"index .*'cat'.*neighbour_table"),
    ("nearest_neighbours allowed=[1, 3]", lambda: N.nearest_neighbours(EMB, 0, k=1, allowed=[1, 3]), ValueError,
     r"allowed .*\(5,\).*shape \(2,\)"),
    ("nearest_neighbours allowed float", lambda: N.nearest_neighbours(EMB, 0, k=1, allowed=np.full(5, 0.5)),
     ValueError, r"allowed .*float64"),
    ("nearest_neighbours embeddings 1-D", lambda: N.nearest_neighbours(np.zeros(5), 0), ValueError,
     r"embeddings must have shape \(V, d\), got shape \(5,\)"),
    # ---------------------------------------------------------------- entropy of weights that are not a distribution
    ("entropy of scores", lambda: N.entropy(np.array([2.0, -1.0, 0.5])), ValueError,
     r"weights must be probabilities.*-1.*softmax\(scores\)"),
    ("entropy negative weight", lambda: N.entropy(np.array([1.2, -0.2])), ValueError,
     r"non-negative.*-0\.2"),
    ("entropy rows summing to 2", lambda: N.entropy(np.array([[0.5, 0.5], [1.0, 1.0]])), ValueError,
     r"sum to 1 .*sums to 2"),
    ("entropy rows summing to 0.9", lambda: N.entropy(np.array([0.3, 0.3, 0.3])), ValueError,
     r"sum to 1 .*0\.9"),
    ("entropy along the wrong axis", lambda: N.entropy(np.array([[0.2, 0.8], [0.5, 0.5]]), axis=0), ValueError,
     r"sum to 1 along axis=0"),
    ("entropy axis=2 of 2-D", lambda: N.entropy(np.full((2, 2), 0.5), axis=2), ValueError,
     r"axis=2 is out of range for weights with 2 axes"),
    ("entropy of strings", lambda: N.entropy(["a", "b"]), ValueError, r"weights must be numeric"),
    # ---------------------------------------------------------------- shapes and array inputs
    ("softmax axis=2 of 2-D", lambda: N.softmax(np.zeros((2, 3)), axis=2), ValueError,
     r"axis=2 is out of range for scores with 2 axes"),
    ("softmax axis=1.0", lambda: N.softmax(np.zeros((2, 3)), axis=1.0), ValueError, r"axis must be an int"),
    ("softmax axis=None", lambda: N.softmax(np.zeros((2, 3)), axis=None), ValueError, r"axis must be an int"),
    ("softmax of a scalar", lambda: N.softmax(3.0), ValueError, r"scores must have at least one axis"),
    ("softmax x=None", lambda: N.softmax(None), ValueError, r"scores .*None"),
    ("softmax ragged", lambda: N.softmax([[1.0, 2.0], [3.0]]), ValueError, r"scores .*ragged"),
    ("softmax mask (2, 4) for (2, 5)", lambda: N.softmax(np.zeros((2, 5)), mask=np.ones((2, 4), bool)),
     ValueError, r"mask of shape \(2, 4\).*\(2, 5\)"),
    ("sdpa d_k=0", lambda: N.scaled_dot_product_attention(np.zeros((3, 0)), np.zeros((4, 0)), np.zeros((4, 2))),
     ValueError, r"d_k=0"),
    ("sdpa q=None", lambda: N.scaled_dot_product_attention(None, K, V), ValueError, r"queries .*None"),
    ("sdpa ragged keys", lambda: N.scaled_dot_product_attention(Q, [[1.0], [1.0, 2.0]], V), ValueError,
     r"keys .*ragged"),
    ("scaled_dot_scores d_k=0", lambda: N.scaled_dot_scores(np.zeros((3, 0)), np.zeros((4, 0))), ValueError,
     r"d_k=0"),
    ("relative_attention 1-D queries", lambda: N.relative_attention(np.zeros(4), K[0], V[0], np.zeros((3, 4))),
     ValueError, r"queries must have shape \(\.\.\., L_q, d_k\), got shape \(4,\)"),
    ("relative_attention batch mismatch", lambda: N.relative_attention(np.zeros((3, 2, 4)), K, V, np.zeros((3, 4))),
     ValueError, r"batch dimensions do not broadcast"),
    ("relative_attention mask not bool", lambda: N.relative_attention(Q, K, V, np.zeros((3, 4)),
                                                                      mask=np.ones((3, 5))),
     ValueError, r"mask must be boolean"),
    ("relative_attention rel_v shape", lambda: N.relative_attention(Q, K, V, np.zeros((3, 4)), np.zeros((3, 2))),
     ValueError, r"rel_v must have shape \(3, 6\), got \(3, 2\)"),
    ("biased_attention 1-D keys", lambda: N.biased_attention(Q[0], np.zeros(4), V[0], 0.0), ValueError,
     r"keys must have shape"),
    ("biased_attention bias shape", lambda: N.biased_attention(Q, K, V, np.zeros((4, 4))), ValueError,
     r"bias of shape \(4, 4\) does not broadcast to the scores' shape \(2, 3, 5\)"),
    ("biased_attention mask shape", lambda: N.biased_attention(Q, K, V, 0.0, mask=np.ones((3, 4), bool)),
     ValueError, r"mask of shape \(3, 4\)"),
    ("multi_head mask float", lambda: N.multi_head_attention(X8, X8, W8, W8, W8, W8, 2, mask=np.ones((5, 5))),
     ValueError, r"mask must be boolean"),
    ("split_heads x=None", lambda: N.split_heads(None, 2), ValueError, r"x must be an array, got None"),
    ("merge_heads 2-D", lambda: N.merge_heads(np.zeros((3, 4))), ValueError, r"\(\.\.\., H, L, d_head\).*\(3, 4\)"),
    ("sgns_loss strings", lambda: N.sgns_loss([["a"]], [["b"]], [[["c"]]]), ValueError, r"v_c must be numeric"),
    ("cosine_similarity strings", lambda: N.cosine_similarity([["a", "b"]]), ValueError, r"\bA must be numeric"),
    ("pca_2d NaN", lambda: N.pca_2d(np.array([[1.0, np.nan], [0.0, 1.0], [2.0, 2.0]])), ValueError,
     r"X must be finite"),
    ("loglog_slope strings", lambda: N.loglog_slope(["a", "b"], [1, 2]), ValueError, r"\bx must be numeric"),
    ("bandwidth_loss_and_grad strings", lambda: N.bandwidth_loss_and_grad([0.0], ["a"], [0.0], [1.0], 1.0),
     ValueError, r"targets must be numeric"),
    ("toy_target strings", lambda: N.toy_target(["a"]), ValueError, r"\bx must be numeric"),
    ("train_word2vec max_vocab=-1", lambda: N.train_word2vec(TOKENS, RNG, max_vocab=-1, min_count=1,
                                                             progress=False), ValueError, r"max_vocab .*-1"),
    ("combine_masks ragged", lambda: N.combine_masks(np.ones((2, 2), bool), [[True], [True, False]]), ValueError,
     r"mask 1 .*ragged"),
    ("nadaraya_watson ragged keys", lambda: N.nadaraya_watson([0.0], [[0.0], [1.0, 2.0]], [1.0, 2.0], 1.0),
     ValueError, r"key positions .*ragged"),
    ("nadaraya_watson scalar keys", lambda: N.nadaraya_watson([0.0], 1.0, [1.0], 1.0), ValueError,
     r"key positions must have shape \(\.\.\., L_k\)"),
]


@pytest.mark.parametrize("call, exc, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_misuse_gets_a_message_naming_it(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------------------- viz: a learner's index

def _viz(module: str):
    pytest.importorskip("matplotlib")
    import importlib

    import matplotlib
    matplotlib.use("Agg")
    return importlib.import_module(f"attnlib.viz.{module}")


XV = RNG.normal(size=(5, 4))
VIZ_WORDS = ["the", "cat", "sat", "on", "mats"]
ATT = np.full((2, 3, 5, 5), 0.2)

VIZ_CASES = [
    ("attend_one query=5", lambda: _viz("explorer").attend_one(XV, XV, XV, 5), ValueError,
     r"query=5 is out of range: there are 5 tokens"),
    ("attend_one query=-1", lambda: _viz("explorer").attend_one(XV, XV, XV, -1), ValueError,
     r"query=-1 is out of range"),
    ("attend_one query=1.5", lambda: _viz("explorer").attend_one(XV, XV, XV, 1.5), ValueError,
     r"query must be an integer index.*1\.5"),
    ("attend_one query='cat'", lambda: _viz("explorer").attend_one(XV, XV, XV, "cat"), ValueError, r"query .*'cat'"),
    ("attend_one temperature=0", lambda: _viz("explorer").attend_one(XV, XV, XV, 0, temperature=0), ValueError,
     r"temperature .*0"),
    ("attend_one temperature='hot'", lambda: _viz("explorer").attend_one(XV, XV, XV, 0, temperature="hot"),
     ValueError, r"temperature .*'hot'"),
    ("explorer_frame query=7", lambda: _viz("explorer").explorer_frame(XV, XV, XV, VIZ_WORDS, 7), ValueError,
     r"query=7 .*5 tokens"),
    ("explorer_snapshots query=-2", lambda: _viz("explorer").explorer_snapshots(XV, XV, XV, VIZ_WORDS, -2),
     ValueError, r"query=-2"),
    ("path_length_figure target=9", lambda: _viz("paths").path_length_figure(VIZ_WORDS, 0, 9), ValueError,
     r"target=9 is out of range: there are 5 words"),
    ("path_length_figure source=0.5", lambda: _viz("paths").path_length_figure(VIZ_WORDS, 0.5, 3), ValueError,
     r"source .*0\.5"),
    ("path_length_figure words=str", lambda: _viz("paths").path_length_figure("the cat sat", 0, 1), TypeError,
     r"words must be a list of str, got a single str"),
    ("position_frame position=64", lambda: _viz("positional").position_frame(64, 32, 64, 0), ValueError,
     r"position=64 is out of range: there are 64 positions"),
    ("position_frame pair=16", lambda: _viz("positional").position_frame(64, 32, 3, 16), ValueError,
     r"pair=16 .*16 column pairs"),
    ("position_snapshots position=2.5", lambda: _viz("positional").position_snapshots(8, 4, [(2.5, 0)]),
     ValueError, r"position .*2\.5"),
    ("head_grid_figure unknown query", lambda: _viz("pretrained").head_grid_figure(ATT, VIZ_WORDS, query="dog"),
     ValueError, r"query 'dog' is not one of the 5 tokens"),
    ("head_grid_figure query=1", lambda: _viz("pretrained").head_grid_figure(ATT, VIZ_WORDS, query=1), TypeError,
     r"query must be a str"),
    ("rollout_figure unknown query", lambda: _viz("pretrained").rollout_figure(ATT, ATT[:, 0], VIZ_WORDS, "it"),
     ValueError, r"query 'it' is not one of"),
]


@pytest.mark.parametrize("call, exc, pattern", [c[1:] for c in VIZ_CASES], ids=[c[0] for c in VIZ_CASES])
def test_viz_index_misuse_gets_a_message_naming_it(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_misuse_case_count():
    """The number of misuse cases in this file (the issue's closing note quotes it)."""
    assert len(CASES) + len(VIZ_CASES) >= 200


# ---------------------------------------------------------------------------- valid edge inputs still work

def test_valid_edges_keep_working():
    """What the checks must not refuse: zero counts, integral floats, 0/1 integer masks, zero rows."""
    assert N.causal_mask(0).shape == (0, 0) and N.causal_mask(3.0).shape == (3, 3)
    assert N.padding_mask([0, 2], 2).tolist() == [[False, False], [True, True]]
    assert N.padding_mask([1], 4.0).shape == (1, 4)
    assert N.one_hot([], 3).shape == (0, 3)
    assert N.nearest_neighbours(EMB, 0, k=4)[0].shape == (4,)                    # every other row
    assert N.nearest_neighbours(EMB, 0, k=0)[0].shape == (0,)
    assert N.nearest_neighbours(EMB, 0, k=1, allowed=np.array([0, 1, 0, 0, 0]))[0].tolist() == [1]
    assert N.entropy(np.zeros(4)) == 0                                           # a fully masked row
    assert N.entropy(np.full(3, 1 / 3, dtype=np.float32)) == pytest.approx(np.log(3), rel=1e-6)
    assert np.isnan(N.entropy(np.array([np.nan, 0.5])))                          # NaN propagates
    assert N.skipgram_pairs([], 2)[0].shape == (0,)
    assert N.sample_negatives(TABLE, 4, RNG).shape == (4,)
    assert N.rope_matrix(2.5, 4).shape == (4, 4)
    assert N.sinusoidal_positional_encoding(4, 5).shape == (4, 5)                # odd d_model is valid
    w = N.softmax(np.array([[1.0, 2.0], [3.0, 4.0]]), mask=np.array([[True, False], [False, False]]))
    assert w.tolist() == [[1.0, 0.0], [0.0, 0.0]]


# ---------------------------------------------------------------------------- twins agree on edge cases

def _torch():
    return pytest.importorskip("torch")


def _torch_sdpa(*args, **kwargs):
    from attnlib.torch import scaled_dot_product_attention
    return scaled_dot_product_attention(*args, **kwargs)


INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize("row", [
    [INF, 0.0], [INF, INF], [0.0, INF, 1.0], [INF, -INF], [NAN, 1.0], [NAN, INF], [-INF, 0.0, 1.0],
    [1e4, -1e4, 0.0], [-1e4, -1e4], [3.0],
], ids=lambda r: str(r))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_agrees_with_torch_on_non_finite_scores(row, dtype):
    x = np.array([row, [0.5] * len(row)], dtype=dtype)    # a finite second row stays finite
    torch = _torch()
    got = N.softmax(x)
    want = torch.softmax(torch.from_numpy(x), dim=-1).numpy()
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6)       # NaN where torch has NaN
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.all(np.isfinite(got[1]))


@pytest.mark.parametrize("row, allowed", [
    ([INF, 0.0, 1.0], [False, True, True]),      # +inf masked out: no NaN
    ([NAN, 0.0, 1.0], [False, True, True]),      # NaN masked out: no NaN
    ([INF, 0.0, 1.0], [True, True, False]),      # +inf allowed: NaN row
    ([0.0, 1.0, 2.0], [False, False, False]),    # fully masked: zeros
    ([-INF, 0.0, 1.0], [True, True, True]),
])
def test_masked_softmax_agrees_with_torch(row, allowed):
    torch = _torch()
    from attnlib.torch import masked_softmax

    x, m = np.array([row]), np.array([allowed])
    got = N.softmax(x, mask=m)
    want = masked_softmax(torch.tensor(x), torch.tensor(m)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.array_equal(np.isnan(got), np.isnan(want)) and np.array_equal(got == 0, want == 0)


@pytest.mark.parametrize("shape", [(0,), (3, 0), (2, 4, 0)])
def test_softmax_over_no_keys_is_empty_as_in_torch(shape):
    torch = _torch()
    x = np.zeros(shape, dtype=np.float32)
    got = N.softmax(x)
    want = torch.softmax(torch.from_numpy(x), dim=-1).numpy()
    assert got.shape == want.shape == shape and got.dtype == want.dtype


@pytest.mark.parametrize("q_shape, k_shape, v_shape", [
    ((3, 4), (0, 4), (0, 5)),
    ((2, 3, 4), (2, 0, 4), (2, 0, 5)),
    ((2, 1, 3, 4), (1, 2, 0, 4), (2, 2, 0, 6)),
    ((0, 4), (0, 4), (0, 2)),
])
@pytest.mark.parametrize("with_mask", [False, True])
def test_sdpa_with_no_keys_gives_zeros_as_in_torch(q_shape, k_shape, v_shape, with_mask):
    torch = _torch()
    rng = np.random.default_rng(1)
    q, k, v = (rng.normal(size=s) for s in (q_shape, k_shape, v_shape))
    mask = np.zeros((q_shape[-2], 0), dtype=bool) if with_mask else None
    out, w = N.scaled_dot_product_attention(q, k, v, mask=mask)
    t_mask = None if mask is None else torch.from_numpy(mask)
    t_out, t_w = _torch_sdpa(*(torch.from_numpy(a) for a in (q, k, v)), mask=t_mask)
    t_out_fused, _ = _torch_sdpa(*(torch.from_numpy(a) for a in (q, k, v)), mask=t_mask, need_weights=False)
    assert out.shape == tuple(t_out.shape) == tuple(t_out_fused.shape)
    assert w.shape == tuple(t_w.shape) and w.shape[-1] == 0
    np.testing.assert_array_equal(out, t_out.numpy())
    np.testing.assert_array_equal(out, np.zeros_like(out))


@pytest.mark.parametrize("q_row", [[INF, 0.0], [NAN, 1.0], [1e4, -1e4]])
def test_sdpa_with_non_finite_queries_agrees_with_torch(q_row):
    torch = _torch()
    q = np.array([[q_row]])                          # (1, 1, 2)
    k = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    v = np.arange(9.0).reshape(1, 3, 3)
    with np.errstate(invalid="ignore"):
        out, w = N.scaled_dot_product_attention(q, k, v)
    t_out, t_w = _torch_sdpa(*(torch.from_numpy(a) for a in (q, k, v)))
    np.testing.assert_allclose(w, t_w.numpy(), rtol=1e-12)
    np.testing.assert_allclose(out, t_out.numpy(), rtol=1e-12)


def test_numpy_side_given_a_torch_tensor_that_requires_grad_says_what_to_call():
    torch = _torch()
    x = torch.zeros(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match=r"scores is a torch tensor .*detach\(\)\.cpu\(\)\.numpy\(\)"):
        N.softmax(x)
    np.testing.assert_allclose(N.softmax(x.detach()), np.full((2, 3), 1 / 3), rtol=1e-6)  # a plain CPU tensor


def test_entropy_accepts_softmax_output_of_long_float32_rows():
    x = np.random.default_rng(2).normal(size=(4, 4096)).astype(np.float32) * 3
    h = N.entropy(N.softmax(x))
    assert h.shape == (4,) and np.all(np.isfinite(h))
