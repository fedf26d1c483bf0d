"""Recurrent sequence-to-sequence models with attention (Part II): encoders, decoders,
Bahdanau, Luong, local, hard and structured attention.

The package re-exports the public names (``__all__``) of its modules."""
from attnlib.torch.seq2seq import bahdanau as _bahdanau
from attnlib.torch.seq2seq import crf as _crf
from attnlib.torch.seq2seq import decoders as _decoders
from attnlib.torch.seq2seq import encoders as _encoders
from attnlib.torch.seq2seq import hard as _hard
from attnlib.torch.seq2seq import local as _local
from attnlib.torch.seq2seq import luong as _luong
from attnlib.torch.seq2seq.bahdanau import *  # noqa: F403
from attnlib.torch.seq2seq.crf import *  # noqa: F403
from attnlib.torch.seq2seq.decoders import *  # noqa: F403
from attnlib.torch.seq2seq.encoders import *  # noqa: F403
from attnlib.torch.seq2seq.hard import *  # noqa: F403
from attnlib.torch.seq2seq.local import *  # noqa: F403
from attnlib.torch.seq2seq.luong import *  # noqa: F403

__all__ = [*_encoders.__all__, *_decoders.__all__, *_bahdanau.__all__, *_luong.__all__, *_local.__all__, *_hard.__all__, *_crf.__all__]
