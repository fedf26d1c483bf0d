"""Attention in PyTorch, on CPU or GPU: the functions and modules of Parts II-IV.

The concepts live in subpackages, one layer each (imports only run downwards):

- :mod:`attnlib.torch.attention`    SDPA, masks, multi-head, one-query scores, positions, KV cache
- :mod:`attnlib.torch.decoding`     the greedy loop, sampling, beam search (model-agnostic)
- :mod:`attnlib.torch.seq2seq`      recurrent encoders and decoders with attention (Part II)
- :mod:`attnlib.torch.transformer`  Transformer layers, the encoder-decoder, GPT (Part III)
- :mod:`attnlib.torch.training`     the one training loop, losses, schedules, checkpoints

This package re-exports every subpackage's ``__all__``, so ``from attnlib.torch import GPT``
works. A chapter's experiments (runs, sweeps, measurements) are in :mod:`attnlib.experiments`.

One rule for ``need_weights`` everywhere: an attention operation (``scaled_dot_product_attention``,
``MultiHeadAttention``, ``CausalSelfAttention``) always returns a pair ``(output, weights)``, with
``weights`` None when ``need_weights=False`` (as ``torch.nn.MultiheadAttention`` does); what is built
from them (layers, stacks, models: ``EncoderLayer``, ``GPTBlock``, ``TransformerEncoder``, ``GPT``,
``Seq2Seq``, ``Transformer``) returns its output alone, or ``(output, weights)`` when
``need_weights=True``. (BERT keeps ``output_attentions``, the name of the library it mirrors.)
"""
from attnlib.torch import attention as _attention
from attnlib.torch import decoding as _decoding
from attnlib.torch import seq2seq as _seq2seq
from attnlib.torch import training as _training
from attnlib.torch import transformer as _transformer
from attnlib.torch.attention import *  # noqa: F403
from attnlib.torch.decoding import *  # noqa: F403
from attnlib.torch.device import default_device
from attnlib.torch.seq2seq import *  # noqa: F403
from attnlib.torch.training import *  # noqa: F403
from attnlib.torch.transformer import *  # noqa: F403

__all__ = ["default_device", *_attention.__all__, *_decoding.__all__, *_seq2seq.__all__,
           *_transformer.__all__, *_training.__all__]

# attnlib.seed() called before this import could not seed PyTorch yet: do it now.
from attnlib.seeding import seed_torch_if_imported as _seed_torch  # noqa: E402

_seed_torch()
