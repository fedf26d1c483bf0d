"""attnlib: the one library every chapter of *Attention, from first principles* imports.

Subpackages, in chapter order:

- :mod:`attnlib.numpy`     attention from scratch in NumPy (Parts 0 and I)
- :mod:`attnlib.torch`     the same ideas in PyTorch, CPU or GPU (Parts II-IV)
- :mod:`attnlib.viz`       figures and interactive explorers used by the chapters
- :mod:`attnlib.exercises` checkers that tell a learner what is wrong with an answer
- :mod:`attnlib.course`    maintainer tools: execute notebooks, learner copies, benchmarks
"""
from attnlib.seeding import seed

__version__ = "0.1.0"
__all__ = ["seed", "__version__"]
