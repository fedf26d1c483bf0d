"""What each chapter needs installed, measured when it runs, and the extras of attnlib that provide it.

``make execute`` records, in each notebook's metadata (``metadata.attnlib.distributions``), the
third-party distributions whose modules the notebook's kernel imported while it ran (lazy imports
inside attnlib included). From those, :func:`required_extras` picks the extras of
attnlib (``pyproject.toml``'s ``[project.optional-dependencies]``) that provide them, and the
notebook's Colab cell installs ``attnlib[<those extras>]``. The test builds, for each chapter,
the environment a new learner's fresh virtual environment would hold (torch, plus that cell's
install) by resolving requirements, and checks the chapter's imports against it.
"""
from __future__ import annotations

import importlib.metadata as metadata
import re
import sys
from functools import lru_cache
from itertools import combinations

from packaging.markers import default_environment
from packaging.requirements import Requirement

__all__ = ["EXTRAS_ORDER", "KERNEL", "PREINSTALLED", "canonical", "closure", "distributions_of_modules",
           "required_extras", "allowed_distributions", "PROBE_BEFORE", "PROBE_AFTER"]

# The extras of attnlib, in the order they are preferred when several would do.
EXTRAS_ORDER = ("torch", "minilm", "reference")
# What runs a notebook at all: its kernel's closure is there wherever a notebook runs.
KERNEL = ("ipykernel",)
# What the "fresh virtual environment" holds before the Colab cell: torch (Colab has it).
PREINSTALLED = ("torch",)

# Run first and last in the kernel by `make execute` (then removed): the top-level modules that
# the notebook imported, printed as JSON.
PROBE_BEFORE = "import sys as _attnlib_sys\n_attnlib_before = {m.partition('.')[0] for m in _attnlib_sys.modules}"
PROBE_AFTER = ("import json as _attnlib_json\n"
               "print(_attnlib_json.dumps(sorted({m.partition('.')[0] for m in _attnlib_sys.modules} - _attnlib_before)))")


def canonical(name: str) -> str:
    """A distribution's name as PEP 503 normalises it: ``Foo_Bar`` -> ``foo-bar``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@lru_cache(maxsize=None)
def _requirements(dist: str, extras: frozenset[str]) -> tuple[tuple[str, frozenset[str]], ...]:
    """The (distribution, extras) that ``dist[extras]`` requires on this platform."""
    try:
        reqs = metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return ()
    env = default_environment()
    out = []
    for text in reqs:
        req = Requirement(text)
        if req.marker is not None:
            wanted = [e for e in ({""} | set(extras))]
            if not any(req.marker.evaluate({**env, "extra": e}) for e in wanted):
                continue
        out.append((canonical(req.name), frozenset(req.extras)))
    return tuple(out)


def closure(*specs: str) -> frozenset[str]:
    """Every distribution that installing ``specs`` (e.g. ``"attnlib[torch]"``) brings, by canonical name.

    Resolved from the metadata of the installed distributions: a requirement that is not
    installed here still counts, with nothing below it.
    """
    seen: set[tuple[str, frozenset[str]]] = set()
    stack = []
    for spec in specs:
        req = Requirement(spec)
        stack.append((canonical(req.name), frozenset(req.extras)))
    while stack:
        item = stack.pop()
        if item in seen:
            continue
        seen.add(item)
        stack.extend(_requirements(*item))
    return frozenset(name for name, _ in seen)


def distributions_of_modules(modules) -> list[str]:
    """The third-party distributions providing the top-level ``modules`` (stdlib and attnlib dropped)."""
    owners = metadata.packages_distributions()
    found = set()
    for module in modules:
        if module in sys.stdlib_module_names or module.startswith("_") or module == "attnlib":
            continue
        for dist in owners.get(module, []):
            if canonical(dist) != "attnlib":
                found.add(canonical(dist))
    return sorted(found)


def allowed_distributions(extras) -> frozenset[str]:
    """What a learner's fresh environment holds after ``pip install attnlib[extras]``, with torch and a kernel."""
    return closure(_spec(extras), *PREINSTALLED, *KERNEL)


def required_extras(distributions) -> list[str]:
    """The extras of attnlib whose install provides ``distributions`` with the fewest distributions.

    Raises
    ------
    ValueError
        When no combination of extras provides one of them: add it to an extra in pyproject.toml.
    """
    # Not assuming torch is there: the cell must also be right in an environment without it.
    needed = set(distributions)
    candidates = [list(c) for k in range(len(EXTRAS_ORDER) + 1) for c in combinations(EXTRAS_ORDER, k)]
    # the smallest install (fewest distributions); among equals, the fewest extras
    candidates.sort(key=lambda c: (len(closure(_spec(c), *KERNEL)), len(c)))
    for extras in candidates:
        if needed <= closure(_spec(extras), *KERNEL):
            return extras
    missing = needed - closure(_spec(EXTRAS_ORDER), *KERNEL)
    raise ValueError(f"no extra of attnlib installs {sorted(missing)}: add them to an extra in "
                     f"pyproject.toml's [project.optional-dependencies] ({', '.join(EXTRAS_ORDER)})")


def _spec(extras) -> str:
    return f"attnlib[{','.join(extras)}]" if extras else "attnlib"
