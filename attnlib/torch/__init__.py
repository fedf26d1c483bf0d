"""Attention in PyTorch, on CPU or GPU: the functions and modules of Parts II-IV."""
from attnlib.torch.device import default_device
from attnlib.torch.scaled_dot_product import scaled_dot_product_attention

__all__ = ["default_device", "scaled_dot_product_attention"]

# attnlib.seed() called before this import could not seed PyTorch yet: do it now.
from attnlib.seeding import seed_torch_if_imported as _seed_torch

_seed_torch()

# --- Part II, from NumPy to PyTorch (multi-head attention module) ---
from attnlib.torch.compare import (attention_path_times, best_time, numerical_gradient,
                                   path_times_table)
from attnlib.torch.multi_head import MultiHeadAttention, merge_heads, split_heads

__all__ += ["MultiHeadAttention", "split_heads", "merge_heads", "numerical_gradient", "best_time",
            "attention_path_times", "path_times_table"]
# --- Part II, data, encoders, decoders and the shared training loop ---
from attnlib.torch.additive import AdditiveAttention, attention_context, masked_softmax
from attnlib.torch.bottleneck import accuracy_by_length, bottleneck_models, length_bins
from attnlib.torch.decoders import (AttentionDecoder, Decoder, GRUDecoder, Seq2Seq,
                                    evaluate_exact_match, predict, seq2seq_loss)
from attnlib.torch.encoders import GRUEncoder
from attnlib.torch.multiplicative import MultiplicativeAttention
from attnlib.torch.training import (History, count_parameters, exact_match, load_checkpoint,
                                    save_checkpoint, sequence_cross_entropy, train)

__all__ += ["AdditiveAttention", "attention_context", "masked_softmax", "AttentionDecoder", "Decoder",
            "GRUDecoder", "Seq2Seq", "evaluate_exact_match", "predict", "seq2seq_loss", "GRUEncoder",
            "MultiplicativeAttention", "History", "count_parameters", "exact_match", "load_checkpoint",
            "save_checkpoint", "sequence_cross_entropy", "train", "accuracy_by_length",
            "bottleneck_models", "length_bins"]
# --- Part II, Bahdanau and Luong attention ---
from attnlib.torch.bahdanau import BahdanauDecoder, alignments
from attnlib.torch.local import (LocalAttentionDecoder, LocalMonotonicAttention,
                                 LocalPredictiveAttention, gaussian_window, local_window_mask)
from attnlib.torch.luong import ConcatAttention, InputFeedingDecoder, attention_variants

__all__ += ["BahdanauDecoder", "alignments", "ConcatAttention", "InputFeedingDecoder",
            "LocalAttentionDecoder", "LocalMonotonicAttention", "LocalPredictiveAttention",
            "gaussian_window", "local_window_mask", "attention_variants"]
# --- Part II, hard and structured attention ---
from attnlib.torch.crf import (CRFAttention, SegmentModel, crf_forward_backward, crf_log_partition,
                               crf_marginals, crf_unaries, segment_accuracy, segment_loss,
                               segment_selection)
from attnlib.torch.hard import (HardAttention, LookupModel, MovingAverageBaseline, attention_gradients,
                                gradient_variance, lookup_accuracy, lookup_loss, reinforce_loss)

__all__ += ["CRFAttention", "SegmentModel", "crf_forward_backward", "crf_log_partition", "crf_marginals",
            "crf_unaries", "segment_accuracy", "segment_loss", "segment_selection", "HardAttention", "LookupModel",
            "MovingAverageBaseline", "attention_gradients", "gradient_variance", "lookup_accuracy",
            "lookup_loss", "reinforce_loss"]
# --- Part III, the Transformer block ---
from attnlib.torch.block_experiments import (SequenceTagger, activation_stats, gradient_norms_by_depth,
                                             norm_warmup_runs, reverse_tagging_batch,
                                             sublayer_parameter_counts, train_tagger)
from attnlib.torch.transformer import (DecoderLayer, EncoderLayer, FeedForward, TransformerDecoder,
                                       TransformerEncoder, warmup_schedule)

__all__ += ["DecoderLayer", "EncoderLayer", "FeedForward", "SequenceTagger", "TransformerDecoder",
            "TransformerEncoder", "activation_stats", "gradient_norms_by_depth", "norm_warmup_runs",
            "reverse_tagging_batch", "sublayer_parameter_counts", "train_tagger", "warmup_schedule"]
# --- Part III, the encoder-decoder Transformer ---
from attnlib.torch.beam_search import BeamResult, beam_predict, beam_search, beam_step, length_penalty
from attnlib.torch.encoder_decoder import (DATE_RECIPE, Transformer, attention_maps, decoder_self_mask,
                                           label_smoothing_targets, noam_rate, noam_schedule,
                                           padding_mask, shared_vocabulary_map, train_transformer)

__all__ += ["DATE_RECIPE", "BeamResult", "beam_predict", "beam_search", "beam_step", "length_penalty", "Transformer",
            "attention_maps", "decoder_self_mask", "label_smoothing_targets", "noam_rate",
            "noam_schedule", "padding_mask", "shared_vocabulary_map", "train_transformer"]
# --- Part III, decoder-only models: GPT ---
from attnlib.torch.gpt import (GPT, CausalSelfAttention, GPTBlock, context_length_losses,
                               evaluate_lm_loss, kv_cache_speedup, lm_loss, next_token_probs,
                               sample_next, train_language_model)
from attnlib.torch.kv_cache import KVCache, LayerKVCache, kv_cache_bytes
from attnlib.torch.positional import alibi_bias, alibi_slopes, rope, rope_angles

__all__ += ["GPT", "CausalSelfAttention", "GPTBlock", "context_length_losses", "evaluate_lm_loss",
            "kv_cache_speedup", "lm_loss", "next_token_probs", "sample_next", "train_language_model",
            "KVCache", "LayerKVCache", "kv_cache_bytes", "alibi_bias", "alibi_slopes", "rope", "rope_angles"]
