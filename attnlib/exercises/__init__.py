"""Exercise checkers: each tells a learner *what* is wrong with an answer (shape, mask, scale).

One module per chapter, each with ``check_*`` functions and ``report()``::

    from attnlib.exercises import why_attention as ex
    ex.check_scores(my_scores)

- :mod:`attnlib.exercises.why_attention`  chapter 1, "Why attention, by hand"
- :mod:`attnlib.exercises.core`           the shared machinery (cases, mistakes, diagnosis)
"""
from attnlib.exercises import why_attention
from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake

__all__ = ["why_attention", "Case", "Chapter", "CheckResult", "Exercise", "Mistake"]
