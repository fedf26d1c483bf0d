"""Maintainer sweeps: evidence that costs more than a notebook's budget, run once and shipped as data.

A chapter's experiments module registers a sweep with :func:`sweep`. The sweep is a function
``f(reduced: bool) -> dict`` whose result is plain JSON (numbers, strings, lists, dicts). Its
``reduced=True`` form is a cut-down run of the same code (fewer seeds, fewer steps) that takes
seconds, not minutes.

``make experiments`` (``python -m attnlib.experiments.results [NAME_OR_MODULE ...]``) runs every
registered sweep, or the ones named, both in full and reduced, and writes
``attnlib/experiments/results/<name>.json`` with the command, the SHA-256 of the module's source,
the machine, the runtime and both results. A chapter reads ``load_result(name)["full"]`` and prints
or plots it beside one small run it does live; ``tests/test_experiment_results.py`` re-runs every
sweep reduced and compares it with the stored ``"reduced"``, so the file cannot drift from the code.

A sweep may also write files (a trained checkpoint, say) with :func:`artifact_path`; their
SHA-256 digests are recorded, and :func:`load_artifact_path` refuses a file that does not match.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import importlib
import inspect
import json
import math
import os
import pkgutil
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["RESULTS_DIR", "Sweep", "sweep", "registered_sweeps", "run_sweep", "load_result",
           "artifact_path", "load_artifact_path", "compare_results", "main"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Sweep:
    """A registered maintainer sweep: ``func(reduced)`` returns a JSON-able dict.

    ``rtol``/``atol`` bound how far a re-run reduced result may differ from the stored one
    (floating-point sums differ in the last bits between CPUs and thread counts).
    """

    name: str
    func: Callable[[bool], dict]
    module: str
    rtol: float = 1e-5
    atol: float = 1e-7
    artifacts: tuple[str, ...] = field(default_factory=tuple)


_REGISTRY: dict[str, Sweep] = {}


def sweep(name: str, *, rtol: float = 1e-5, atol: float = 1e-7, artifacts: tuple[str, ...] = ()):
    """Register ``func(reduced: bool) -> dict`` as the maintainer sweep ``name``.

    ``artifacts`` names the files (under ``RESULTS_DIR``) the full run writes with
    :func:`artifact_path`; their digests go into the JSON file.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a sweep's name must be an identifier (it names a file), got {name!r}")

    def register(func):
        if name in _REGISTRY and _REGISTRY[name].func.__qualname__ != func.__qualname__:
            raise ValueError(f"two sweeps are named {name!r}: {_REGISTRY[name].module} and {func.__module__}")
        _REGISTRY[name] = Sweep(name, func, func.__module__, rtol, atol, tuple(artifacts))
        return func

    return register


def _import_experiment_modules() -> None:
    """Import every module of :mod:`attnlib.experiments`, so that their sweeps register."""
    import attnlib.experiments as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name != "results":
            importlib.import_module(f"{package.__name__}.{info.name}")


def registered_sweeps() -> dict[str, Sweep]:
    """Every sweep of every experiments module, by name."""
    _import_experiment_modules()
    return dict(sorted(_REGISTRY.items()))


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _machine() -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "python": sys.version.split()[0], "cpu_count": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    try:
        import numpy
        import torch

        info.update(numpy=numpy.__version__, torch=torch.__version__, torch_threads=torch.get_num_threads())
    except ImportError:  # pragma: no cover - the course environment has both
        pass
    return info


def _result_file(name: str) -> Path:
    return RESULTS_DIR / f"{name}.json"


def artifact_path(name: str) -> Path:
    """Where a sweep writes the artifact file ``name`` (e.g. ``"gpt_small.safetensors"``)."""
    if Path(name).name != name:
        raise ValueError(f"an artifact is a plain file name inside {RESULTS_DIR}, got {name!r}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return RESULTS_DIR / name


def run_sweep(name: str, progress: bool = True) -> dict:
    """Run sweep ``name`` in full and reduced, write its JSON file and return the record."""
    sweeps = registered_sweeps()
    if name not in sweeps:
        raise ValueError(f"no sweep named {name!r}; registered: {', '.join(sweeps) or 'none'}")
    entry = sweeps[name]
    start = time.perf_counter()
    full = entry.func(False)
    seconds = time.perf_counter() - start
    reduced = entry.func(True)
    source = Path(inspect.getsourcefile(sys.modules[entry.module]))
    record = {
        "name": name,
        "command": f"make experiments SWEEPS={name}",
        "module": entry.module,
        "code_sha256": _sha256_file(source),
        "machine": _machine(),
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "seconds": round(seconds, 1),
        "artifacts": {a: _sha256_file(artifact_path(a)) for a in entry.artifacts},
        "full": full,
        "reduced": reduced,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    _result_file(name).write_text(json.dumps(record, indent=1, sort_keys=False) + "\n")
    return record


def load_result(name: str) -> dict:
    """The stored record of sweep ``name`` (``record["full"]`` is what a chapter shows)."""
    path = _result_file(name)
    if not path.is_file():
        raise FileNotFoundError(f"no stored result for sweep {name!r} at {path}; "
                                f"a maintainer writes it with `make experiments SWEEPS={name}`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"the stored result {path} is not valid JSON ({err}); "
                         f"rewrite it with `make experiments SWEEPS={name}`") from None


def load_artifact_path(result_name: str, artifact: str) -> Path:
    """The path of an artifact of sweep ``result_name``, after checking its recorded SHA-256."""
    record = load_result(result_name)
    digests = record.get("artifacts", {})
    if artifact not in digests:
        raise ValueError(f"sweep {result_name!r} records no artifact {artifact!r}; it has: {', '.join(digests) or 'none'}")
    path = RESULTS_DIR / artifact
    if not path.is_file():
        raise FileNotFoundError(f"artifact {path} is missing; rewrite it with `make experiments SWEEPS={result_name}`")
    got = _sha256_file(path)
    if got != digests[artifact]:
        raise ValueError(f"artifact {path} has SHA-256 {got[:12]}..., but {result_name}.json records "
                         f"{digests[artifact][:12]}...: the file is damaged or stale")
    return path


def compare_results(stored: Any, fresh: Any, rtol: float = 1e-5, atol: float = 1e-7, where: str = "") -> list[str]:
    """The differences between two JSON-like results, as readable lines (empty when they agree)."""
    problems: list[str] = []
    here = where or "result"
    if isinstance(stored, bool) or isinstance(fresh, bool):
        if stored != fresh:
            problems.append(f"{here}: stored {stored!r}, re-run {fresh!r}")
    elif isinstance(stored, (int, float)) and isinstance(fresh, (int, float)):
        both_nan = isinstance(stored, float) and isinstance(fresh, float) and math.isnan(stored) and math.isnan(fresh)
        if not both_nan and not math.isclose(stored, fresh, rel_tol=rtol, abs_tol=atol):
            problems.append(f"{here}: stored {stored!r}, re-run {fresh!r}")
    elif isinstance(stored, dict) and isinstance(fresh, dict):
        if set(stored) != set(fresh):
            problems.append(f"{here}: keys differ: stored {sorted(stored)}, re-run {sorted(fresh)}")
        for key in sorted(set(stored) & set(fresh), key=str):
            problems += compare_results(stored[key], fresh[key], rtol, atol, f"{here}[{key!r}]")
    elif isinstance(stored, list) and isinstance(fresh, list):
        if len(stored) != len(fresh):
            problems.append(f"{here}: stored {len(stored)} items, re-run {len(fresh)}")
        for i, (a, b) in enumerate(zip(stored, fresh)):
            problems += compare_results(a, b, rtol, atol, f"{here}[{i}]")
    elif stored != fresh:
        problems.append(f"{here}: stored {stored!r}, re-run {fresh!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run maintainer sweeps and write attnlib/experiments/results/.")
    parser.add_argument("names", nargs="*", help="sweep names or experiments module names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the registered sweeps and exit")
    args = parser.parse_args(argv)
    sweeps = registered_sweeps()
    if args.list:
        for name, entry in sweeps.items():
            print(f"{name:32s} {entry.module}")
        return 0
    chosen = []
    for wanted in args.names or list(sweeps):
        matches = [n for n, s in sweeps.items() if n == wanted or s.module.rsplit(".", 1)[-1] == wanted]
        if not matches:
            parser.error(f"no sweep or experiments module named {wanted!r}; registered: {', '.join(sweeps) or 'none'}")
        chosen += [m for m in matches if m not in chosen]
    for name in chosen:
        record = run_sweep(name)
        print(f"{name}: {record['seconds']} s -> {_result_file(name)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    # `python -m` runs this file as __main__, a second copy of the module: the experiment modules
    # register their sweeps in the imported attnlib.experiments.results, so run that copy's main.
    from attnlib.experiments.results import main as _main

    sys.exit(_main())
