"""Maintainer tools of the course: run with ``python -m attnlib.course.<tool>`` (the Makefile does).

- :mod:`attnlib.course.notebooks` the conventions every chapter notebook shares
- :mod:`attnlib.course.execute`   ``make execute``: re-run notebooks, store outputs and runtimes
- :mod:`attnlib.course.learner`   ``make exercises``: learner copies with solutions removed
- :mod:`attnlib.course.bench`     ``make bench``: the performance table
- :mod:`attnlib.course.build_corpus` rebuild (or ``--check``) the standard-library corpus that
  ships in ``attnlib/data/files``
"""
