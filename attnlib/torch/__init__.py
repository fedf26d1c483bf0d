"""Attention in PyTorch, on CPU or GPU: the functions and modules of Parts II-IV."""
from attnlib.torch.device import default_device
from attnlib.torch.scaled_dot_product import scaled_dot_product_attention

__all__ = ["default_device", "scaled_dot_product_attention"]

# --- Part II, from NumPy to PyTorch (multi-head attention module) ---
from attnlib.torch.compare import (attention_path_times, best_time, numerical_gradient,
                                   path_times_table)
from attnlib.torch.multi_head import MultiHeadAttention, merge_heads, split_heads

__all__ += ["MultiHeadAttention", "split_heads", "merge_heads", "numerical_gradient", "best_time",
            "attention_path_times", "path_times_table"]
# --- Part II, data, encoders, decoders and the shared training loop ---
# --- Part II, Bahdanau and Luong attention ---
# --- Part II, hard and structured attention ---
# --- Part III, the Transformer block ---
