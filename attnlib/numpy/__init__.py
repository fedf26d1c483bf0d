"""Attention from scratch in NumPy: the functions of Parts 0 and I, in chapter order."""
from attnlib.numpy.masks import causal_mask, combine_masks, key_padding_mask, padding_mask
from attnlib.numpy.scaled_dot_product import scaled_dot_product_attention
from attnlib.numpy.softmax import softmax

__all__ = ["softmax", "causal_mask", "padding_mask", "scaled_dot_product_attention",
           "combine_masks", "key_padding_mask"]

# --- Part I, word embeddings ---
from attnlib.numpy.embeddings import (
           Word2Vec,
           analogy,
           build_vocab,
           cosine_similarity,
           encode,
           nearest_neighbours,
           negative_sampling_distribution,
           negative_sampling_table,
           neighbour_table,
           one_hot,
           pca_2d,
           sample_negatives,
           sgns_gradients,
           sgns_loss,
           sgns_step,
           skipgram_pairs,
           subsample_frequent,
           train_word2vec,
)

__all__ += ["analogy", "build_vocab", "cosine_similarity", "encode", "nearest_neighbours",
            "negative_sampling_distribution", "negative_sampling_table", "neighbour_table", "one_hot",
            "pca_2d", "sample_negatives", "sgns_gradients", "sgns_loss", "sgns_step", "skipgram_pairs",
            "subsample_frequent", "train_word2vec", "Word2Vec"]
# --- Part I, positional encoding ---
from attnlib.numpy.positional import (
           add_positions,
           alibi_bias,
           alibi_slopes,
           biased_attention,
           learned_position_table,
           relative_attention,
           relative_position_matrix,
           rope,
           rope_half_permutation,
           rope_matrix,
           rope_rotate_half,
           sinusoidal_frequencies,
           sinusoidal_positional_encoding,
)

__all__ += ["sinusoidal_positional_encoding", "sinusoidal_frequencies", "learned_position_table",
            "add_positions", "relative_position_matrix", "relative_attention", "rope", "rope_matrix",
            "rope_rotate_half", "rope_half_permutation",
            "alibi_slopes", "alibi_bias", "biased_attention"]
# --- Part I, queries, keys and values ---
from attnlib.numpy.attention_pooling import (
           bandwidth_loss_and_grad,
           fit_bandwidth,
           gaussian_kernel_scores,
           gaussian_kernel_weights,
           nadaraya_watson,
           qkv_projections,
           toy_regression,
           toy_target,
)

__all__ += ["gaussian_kernel_scores", "gaussian_kernel_weights", "nadaraya_watson",
            "bandwidth_loss_and_grad", "fit_bandwidth", "toy_regression", "toy_target",
            "qkv_projections"]
# --- Part I, alignment scores ---
from attnlib.numpy.scores import (
           additive_scores,
           concat_scores,
           dot_product_variance,
           dot_scores,
           entropy,
           general_scores,
           scaled_dot_scores,
           softmax_jacobian,
           softmax_saturation,
)

__all__ += ["dot_scores", "scaled_dot_scores", "general_scores", "concat_scores", "additive_scores",
            "softmax_jacobian", "entropy", "dot_product_variance", "softmax_saturation"]
# --- Part I, multi-head attention ---
from attnlib.numpy.multi_head import (
           attention_cost,
           loglog_slope,
           merge_heads,
           multi_head_attention,
           split_heads,
           two_head_example,
)

__all__ += ["multi_head_attention", "split_heads", "merge_heads", "attention_cost", "loglog_slope",
            "two_head_example"]
