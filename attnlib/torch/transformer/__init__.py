"""The Transformer (Part III): its layers, the encoder-decoder and the decoder-only GPT.

The package re-exports the public names (``__all__``) of its modules."""
from attnlib.torch.transformer import encoder_decoder as _encoder_decoder
from attnlib.torch.transformer import gpt as _gpt
from attnlib.torch.transformer import layers as _layers
from attnlib.torch.transformer.encoder_decoder import *  # noqa: F403
from attnlib.torch.transformer.gpt import *  # noqa: F403
from attnlib.torch.transformer.layers import *  # noqa: F403

__all__ = [*_layers.__all__, *_encoder_decoder.__all__, *_gpt.__all__]
