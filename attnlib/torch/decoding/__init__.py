"""Turning a model into tokens: the one greedy loop, sampling with temperature, top-k and top-p, beam search.

The package re-exports the public names (``__all__``) of its modules."""
from attnlib.torch.decoding import beam_search as _beam_search
from attnlib.torch.decoding import greedy as _greedy
from attnlib.torch.decoding import sampling as _sampling
from attnlib.torch.decoding.beam_search import *  # noqa: F403
from attnlib.torch.decoding.greedy import *  # noqa: F403
from attnlib.torch.decoding.sampling import *  # noqa: F403

__all__ = [*_greedy.__all__, *_sampling.__all__, *_beam_search.__all__]
