"""Exercise checkers: each tells a learner *what* is wrong with an answer (shape, mask, scale).

One module per chapter, each with ``check_*`` functions and ``report()`` (this chapter, this
session)::

    from attnlib.exercises import why_attention as ex
    ex.check_scores(my_scores)
    ex.report()

Every check is also recorded on your machine (never sent anywhere), so the course at a glance
survives a restart of the kernel::

    import attnlib.exercises
    attnlib.exercises.progress()               # per chapter: solved of total, what is left, links
    attnlib.exercises.reset_progress("masking")  # start one chapter over; reset_progress() for all

Where the record is kept and how a damaged file is handled: :mod:`attnlib.exercises.progress`
(``ATTNLIB_PROGRESS_FILE`` chooses the file).

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
- :mod:`attnlib.exercises.progress`       the record of what you have solved across the course

(The function ``attnlib.exercises.progress`` shadows the module's name on the package; import
the module's other names with ``from attnlib.exercises.progress import ...``.)
"""
from attnlib.exercises import why_attention
from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake, Prediction
from attnlib.exercises.progress import progress, reset_progress

__all__ = ["why_attention", "Case", "Chapter", "CheckResult", "Exercise", "Mistake", "Prediction",
           "progress", "reset_progress"]
