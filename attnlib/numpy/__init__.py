"""Attention from scratch in NumPy: the functions of Parts 0 and I, in chapter order."""
from attnlib.numpy.softmax import softmax
from attnlib.numpy.masks import causal_mask, padding_mask
from attnlib.numpy.scaled_dot_product import scaled_dot_product_attention

__all__ = ["softmax", "causal_mask", "padding_mask", "scaled_dot_product_attention"]

# --- Part I, word embeddings ---
# --- Part I, positional encoding ---
# --- Part I, queries, keys and values ---
# --- Part I, alignment scores ---
# --- Part I, multi-head attention ---
