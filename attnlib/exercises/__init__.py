"""Exercise checkers: each tells a learner *what* is wrong with an answer (shape, mask, scale).

One module per chapter, each with ``check_*`` functions and ``report()``::

    from attnlib.exercises import why_attention as ex
    ex.check_scores(my_scores)

- :mod:`attnlib.exercises.why_attention`        chapter 1, "Why attention, by hand"
- :mod:`attnlib.exercises.word_embeddings`      word embeddings (Part I)
- :mod:`attnlib.exercises.queries_keys_values`  queries, keys and values (Part I)
- :mod:`attnlib.exercises.alignment_scores`     alignment scores and softmax (Part I)
- :mod:`attnlib.exercises.masking`              scaled dot-product attention and masking (Part I)
- :mod:`attnlib.exercises.multi_head`           multi-head, self- and cross-attention (Part I)
- :mod:`attnlib.exercises.numpy_to_torch`       from NumPy to PyTorch (Part II)
- :mod:`attnlib.exercises.bottleneck`           the fixed-length bottleneck (Part II)
- :mod:`attnlib.exercises.bahdanau`             Bahdanau attention (Part II)
- :mod:`attnlib.exercises.luong`                Luong attention (Part II)
- :mod:`attnlib.exercises.hard_structured`      hard and structured attention (Part II)
- :mod:`attnlib.exercises.transformer_block`    the Transformer block (Part III)
- :mod:`attnlib.exercises.encoder_decoder`      the encoder-decoder Transformer (Part III)
- :mod:`attnlib.exercises.pretrained_encoder` a real pretrained Transformer (Part III)
- :mod:`attnlib.exercises.gpt`            decoder-only models: GPT (Part III)
- :mod:`attnlib.exercises.core`           the shared machinery (cases, mistakes, diagnosis)
"""
from attnlib.exercises import why_attention
from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake, Prediction

__all__ = ["why_attention", "Case", "Chapter", "CheckResult", "Exercise", "Mistake", "Prediction"]
