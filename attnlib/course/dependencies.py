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
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

__all__ = ["EXTRAS_ORDER", "KERNEL", "PREINSTALLED", "canonical", "closure", "distributions_of_modules",
           "required_extras", "allowed_distributions", "direct_imports", "attnlib_imports", "split_incidental", "PROBE_BEFORE", "PROBE_AFTER"]

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


def direct_imports(sources) -> set[str]:
    """The top-level modules that Python ``sources`` (strings) import themselves."""
    import ast

    found = set()
    for source in sources:
        text = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name.partition(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.partition(".")[0])
    return found


def attnlib_imports() -> set[str]:
    """The top-level modules attnlib's own source imports (anywhere, lazily included)."""
    root = Path(__file__).resolve().parents[1]
    return direct_imports(p.read_text() for p in root.rglob("*.py"))


def split_incidental(distributions, direct_modules) -> tuple[list[str], list[str]]:
    """Split imported distributions into (needed, incidental).

    Incidental: imported by some third-party package only because it happened to be installed
    (``transformers`` imports ``requests`` when it finds it), so a fresh environment without it
    still runs. A distribution is needed when the notebook or attnlib imports one of its modules
    directly, or when attnlib, the kernel or such a distribution requires it.
    """
    imported = set(distributions)
    # attnlib's own requirements count as imported by attnlib, even those it loads by name
    # (the MiniLM package is found with importlib, not an import statement)
    own = {canonical(Requirement(r).name) for r in (metadata.requires("attnlib") or [])}
    roots = (set(distributions_of_modules(direct_modules)) | own) & imported
    # what the notebook and attnlib import themselves, and everything those require
    reach = closure("attnlib", *KERNEL, *sorted(roots))
    needed = [d for d in distributions if d in reach]
    return needed, [d for d in distributions if d not in needed]


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
