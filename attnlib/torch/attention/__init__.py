"""Attention itself in PyTorch: SDPA, masks, multi-head, one-query scores, positions, the KV cache.

The package re-exports the public names (``__all__``) of its modules."""
from attnlib.torch.attention import kv_cache as _kv_cache
from attnlib.torch.attention import masks as _masks
from attnlib.torch.attention import multi_head as _multi_head
from attnlib.torch.attention import positional as _positional
from attnlib.torch.attention import scores as _scores
from attnlib.torch.attention import sdpa as _sdpa
from attnlib.torch.attention.kv_cache import *  # noqa: F403
from attnlib.torch.attention.masks import *  # noqa: F403
from attnlib.torch.attention.multi_head import *  # noqa: F403
from attnlib.torch.attention.positional import *  # noqa: F403
from attnlib.torch.attention.scores import *  # noqa: F403
from attnlib.torch.attention.sdpa import *  # noqa: F403

__all__ = [*_masks.__all__, *_sdpa.__all__, *_scores.__all__, *_multi_head.__all__, *_positional.__all__, *_kv_cache.__all__]
