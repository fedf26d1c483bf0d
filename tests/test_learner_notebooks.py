"""`make exercises`: learner notebooks drop the solutions, still run top to bottom, and every
checker then reports "not solved yet"; the solved notebooks' stored checks all pass.

The learner copies are checked from their source, not executed: nbval already runs every chapter
once per `make test`. What removing the solutions can break is a later cell needing a name only a
solution defined (`cn.undefined_after_removal`) and a checker handed something other than a stub
(`cn.stub_problems`); that a checker calls a stub "not solved yet" is tested with the checkers.
"""
from __future__ import annotations

import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from attnlib.course import notebooks as cn
from attnlib.course.learner import write_learner_notebooks

WITH_EXERCISES = [p for p in cn.chapter_notebooks()
                  if any(cn.SOLUTION_TAG in cn.tags(c) for c in nbformat.read(p, as_version=4).cells)]
IDS = [p.name for p in WITH_EXERCISES]
CHECK = re.compile(r"\bcheck_\w+\(")


def checker_outputs(nb) -> list[str]:
    """The text each checker cell displayed, one entry per checker cell."""
    out = []
    for c in nb.cells:
        if c.cell_type == "code" and CHECK.search(c.source):
            out.append("".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                               for o in c.outputs))
    return out


def test_some_chapter_has_exercises():
    assert WITH_EXERCISES


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=IDS)
def test_solved_notebook_passes_every_checker(path):
    outputs = checker_outputs(nbformat.read(path, as_version=4))
    assert outputs
    assert all(o.startswith("✅") for o in outputs), outputs


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=IDS)
def test_learner_notebook_needs_no_solution_and_checks_stubs(path, tmp_path):
    [target] = write_learner_notebooks([path], tmp_path)
    nb = nbformat.read(target, as_version=4)
    assert not any(cn.SOLUTION_TAG in cn.tags(c) for c in nb.cells)
    assert not any(c.outputs or c.execution_count for c in nb.cells if c.cell_type == "code")
    assert "widgets" not in nb.metadata
    # The copy is the solved notebook minus its solution cells, nothing else changed.
    solved = nbformat.read(path, as_version=4)
    assert [c.source for c in nb.cells] == [c.source for c in solved.cells if not cn.is_solution(c)]
    assert cn.undefined_after_removal(solved) == []
    assert cn.stub_problems(nb) == []
    checkers = [c for c in nb.cells if c.cell_type == "code" and CHECK.search(c.source)]
    assert len(checkers) == len(checker_outputs(solved)) > 0


# ----------------------------------------------------------------------------- the static checks, on small notebooks

def notebook(*cells):
    """A notebook of code cells; ("solution", source) is a cell tagged solution."""
    out = []
    for c in cells:
        if isinstance(c, tuple):
            c = new_code_cell(c[1], metadata={"tags": [cn.SOLUTION_TAG]})
        out.append(c if not isinstance(c, str) else new_code_cell(c))
    return new_notebook(cells=out)


STUB = 'def my_fn(x):\n    """x -> 2 x"""\n    # your code here\n    raise NotImplementedError'
SOLUTION = ("solution", "import math\n\ndef my_fn(x):\n    return helper(x)\n\ndef helper(x):\n    return 2 * x")


def test_a_later_cell_using_a_solution_only_name_is_reported():
    nb = notebook("import numpy as np", STUB, SOLUTION, "ex.check_fn(my_fn)", "print(helper(3))")
    [problem] = cn.undefined_after_removal(nb)
    assert "cell 4" in problem and "`helper`" in problem and "solution cell 2" in problem


def test_a_name_the_stub_defines_too_is_fine():
    nb = notebook("import numpy as np", STUB, SOLUTION, "ex.check_fn(my_fn)", "print(my_fn)")
    assert cn.undefined_after_removal(nb) == []


def test_a_name_a_kept_cell_defines_first_or_again_is_fine():
    assert cn.undefined_after_removal(notebook("import math", SOLUTION, "math.pi")) == []
    assert cn.undefined_after_removal(notebook(SOLUTION, "import math", "math.pi")) == []
    # ...but not when the kept cell defines it only after the use.
    assert len(cn.undefined_after_removal(notebook(SOLUTION, "math.pi", "import math"))) == 1


@pytest.mark.parametrize("later", [
    "y = [helper(i) for i in range(3)]",         # in a comprehension
    "def g(x):\n    return helper(x)",            # in a function body defined later
    "helper += 1",                                 # an augmented assignment reads first
    "helper = helper + 1",                         # so does this one
    "class A:\n    f = staticmethod(helper)",     # a class body
    "%time helper(2)",                             # a timed IPython line runs its statement
    "print(f'{helper(1)}')",                       # an f-string
], ids=["comprehension", "function body", "augmented", "read-then-bind", "class body", "%time", "f-string"])
def test_uses_hidden_in_other_syntax_are_reported(later):
    assert len(cn.undefined_after_removal(notebook(SOLUTION, later))) == 1


@pytest.mark.parametrize("later", [
    "def g(helper):\n    return helper",          # a parameter of that name is local
    "[helper for helper in range(3)]",             # so is a comprehension's loop variable
    "for helper in range(3):\n    print(helper)",  # a for loop binds before its body reads
    "helper = 2\nprint(helper)",                  # bound earlier in the same cell
    "!echo helper\n%matplotlib inline",           # IPython syntax, no Python name read
    "%%bash\necho $helper",                       # a cell magic that is not Python
], ids=["parameter", "comprehension variable", "for target", "bound first", "magics", "%%bash"])
def test_what_does_not_read_a_solution_name_passes(later):
    assert cn.undefined_after_removal(notebook(SOLUTION, later)) == []


def test_a_cell_that_is_not_run_reads_nothing():
    cell = new_code_cell("print(helper)", metadata={"tags": [cn.SKIP_TAG]})  # nbval and nbclient skip it
    assert cn.undefined_after_removal(notebook(SOLUTION, cell)) == []


def test_what_a_solution_defines_counts_however_it_defines_it():
    sol = ("solution", "import os.path as osp\nfrom math import tau\nfor k in range(2):\n    pass\n"
                       "with open(__file__) as fh:\n    pass\nif (w := 3):\n    pass\nclass C:\n    pass\n"
                       "def set_g():\n    global g\n    g = 1")
    nb = notebook(sol, "osp, tau, k, fh, w, C, set_g, g")
    found = {p.split("`")[1] for p in cn.undefined_after_removal(nb)}
    assert found == {"osp", "tau", "k", "fh", "w", "C", "set_g", "g"}
    # Names local to a solution's functions are not the notebook's.
    assert cn.undefined_after_removal(notebook(SOLUTION, "x = 1")) == []
    assert cn.defined_names(SOLUTION[1]) == {"math", "my_fn", "helper"}


def test_a_solution_star_import_and_an_unparsable_cell_are_reported():
    assert "import *" in cn.undefined_after_removal(notebook(("solution", "from math import *"), "pi"))[0]
    assert "does not parse" in cn.undefined_after_removal(notebook("def (:"))[0]


def test_stub_problems_accepts_a_stub_checked_by_name():
    nb = cn.learner_copy(notebook("from attnlib.exercises import why_attention as ex", STUB, SOLUTION,
                                  new_markdown_cell("Check it:"), "ex.check_fn(my_fn)", "ex.report()"))
    assert cn.stub_problems(nb) == []


@pytest.mark.parametrize("cells, words", [
    (("def my_fn(x):\n    return None", "ex.check_fn(my_fn)"), "not a stub"),
    (("def my_fn(x):\n    if x:\n        raise NotImplementedError", "ex.check_fn(my_fn)"), "not a stub"),
    ((STUB, "my_fn = abs", "ex.check_fn(my_fn)"), "not a stub"),
    (("ex.check_fn(my_fn)",), "no cell before it defines"),
    ((STUB, "ex.check_fn(lambda x: x)"), "not handed a function by name"),
    ((STUB, "print(my_fn(2))", "ex.check_fn(my_fn)"), "outside a checker call"),
    ((STUB, ("solution", "def my_fn(x):\n    return x"), "ex.check_fn(my_fn)"), "solution cell"),
], ids=["returns", "raises only sometimes", "redefined", "undefined", "not by name", "stub called",
        "solution left in"])
def test_stub_problems_reports(cells, words):
    problems = cn.stub_problems(notebook(*cells))
    assert problems and words in problems[0], problems


# ----------------------------------------------------------------------------- what the checkers say to a stub

def _checker_modules():
    import importlib
    import pkgutil

    import attnlib.exercises
    for info in pkgutil.iter_modules(attnlib.exercises.__path__):
        module = importlib.import_module(f"attnlib.exercises.{info.name}")
        if hasattr(module, "report"):
            yield pytest.param(module, id=info.name)


@pytest.mark.parametrize("module", list(_checker_modules()))
def test_every_checker_says_not_solved_yet_to_a_stub(module, capsys):
    """What the learner copy's checker cells show, given the stubs that stub_problems requires."""
    def stub(*args):
        raise NotImplementedError

    module.reset()
    checkers = [getattr(module, n) for n in module.__all__ if n.startswith("check_")]
    assert checkers
    for check in checkers:
        assert repr(check(stub)).startswith("⏳ Not solved yet"), check.__name__
    module.report()
    assert re.search(r"\b0 of \d+", capsys.readouterr().out)
    module.reset()
