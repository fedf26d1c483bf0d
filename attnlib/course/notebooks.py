"""Conventions every chapter notebook shares, applied by the course tools.

- The first cell installs attnlib in Colab. It is written from the repository URL in
  ``_config.yml`` (set there once), tagged so nbval, nbclient and the book skip or hide it.
- The cell after the title states the notebook's measured runtime on a 2-core CPU.
- Cells tagged ``solution`` hold exercise solutions; learner copies drop them. What a learner
  copy needs is checked statically, without running it: :func:`undefined_after_removal` and
  :func:`stub_problems`.
"""
from __future__ import annotations

import ast
import builtins
import math
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
COLAB_TAGS = ["colab-install", "skip-execution", "nbval-skip", "remove-cell"]
RUNTIME_TAG = "runtime"
SOLUTION_TAG = "solution"


def repository_url(config: Path = ROOT / "_config.yml") -> str:
    """Read ``repository.url`` from the book's ``_config.yml``."""
    match = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)", config.read_text(), re.M)
    if not match:
        raise ValueError(f"{config} has no repository.url")
    return match.group(1)


def tags(cell) -> list[str]:
    """The tags of a notebook cell (an empty list when it has none)."""
    return cell.get("metadata", {}).get("tags", [])


def colab_cell_source(url: str, extras=("torch",)) -> str:
    """Source of the first cell: installs attnlib with ``extras`` when, and only when, run in Colab."""
    package = f"attnlib[{','.join(extras)}]" if extras else "attnlib"
    return ("# Colab only: install attnlib, the course's library. Skipped locally, by nbval and by the book.\n"
            "import sys\n"
            "if \"google.colab\" in sys.modules:\n"
            f"    %pip install -q \"{package} @ git+{url}\"")


def notebook_extras(nb) -> list[str]:
    """The extras of attnlib the notebook's last run needed (``make execute`` records them)."""
    return list(nb.metadata.get("attnlib", {}).get("extras", ["torch"]))


def sync_colab_cell(nb, url: str | None = None) -> None:
    """Make the notebook's first cell the Colab install cell for ``url`` (inserting it if absent)."""
    cell = nbformat.v4.new_code_cell(colab_cell_source(url or repository_url(), notebook_extras(nb)))
    cell.metadata["tags"] = list(COLAB_TAGS)
    cells = nb.cells
    if cells and "colab-install" in tags(cells[0]):
        cells[0] = cell
    else:
        cells.insert(0, cell)


def round_runtime(seconds: float) -> int:
    """Round a runtime up to a stable figure: 5 s steps below a minute, 15 s steps above."""
    step = 5 if seconds < 60 else 15
    return int(max(step, math.ceil(seconds / step) * step))


def runtime_text(seconds: float) -> str:
    """Human wording of a runtime: 'about 20 s' or 'about 1 min 15 s'."""
    s = round_runtime(seconds)
    return f"about {s} s" if s < 60 else f"about {s // 60} min" + (f" {s % 60} s" if s % 60 else "")


def set_runtime_cell(nb, seconds: float) -> None:
    """Write (or refresh) the runtime note just after the notebook's title cell."""
    text = (":::{admonition} Runtime\n:class: tip\n"
            f"This notebook runs top to bottom in **{runtime_text(seconds)}** on a 2-core laptop CPU, "
            "with no GPU and no downloads (measured by `make execute`).\n:::")
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = [RUNTIME_TAG]
    for i, c in enumerate(nb.cells):
        if RUNTIME_TAG in tags(c):
            nb.cells[i] = cell
            return
    title = next((i for i, c in enumerate(nb.cells)
                  if c.cell_type == "markdown" and c.source.lstrip().startswith("# ")), None)
    nb.cells.insert(0 if title is None else title + 1, cell)


def runtime_seconds(nb) -> int | None:
    """The runtime a notebook states, in seconds, or None when it states none."""
    for c in nb.cells:
        if RUNTIME_TAG in tags(c):
            m = re.search(r"about (?:(\d+) min)?\s*(?:(\d+) s)?", c.source)
            if m and (m.group(1) or m.group(2)):
                return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)
    return None


# The design's budget: each notebook at most 2 minutes on a 2-core CPU, all of them at most 20.
RUNTIME_BUDGET_S = 120
TOTAL_RUNTIME_BUDGET_S = 20 * 60
# Timings are benchmarks, not timed tests that fail on a slow day: a shared CI machine under load
# easily runs a notebook 1.5x slower than a quiet laptop. So only a run above twice the budget
# fails (that is a notebook that grew, not a busy machine); above the budget itself is printed.
RUNTIME_SLACK = 2.0


def runtime_failures(seconds: dict[str, float]) -> list[str]:
    """The measured runtimes over ``RUNTIME_SLACK`` times the budget, one message each.

    ``seconds`` maps each notebook that ran to its measured wall time; notebooks that did not
    run are simply absent (a run of some notebooks checks those). The total is checked against
    the total budget the same way.
    """
    limit = RUNTIME_SLACK * RUNTIME_BUDGET_S
    out = [f"{name} ran {s:.0f} s: over {RUNTIME_SLACK:g} x the {RUNTIME_BUDGET_S} s budget"
           for name, s in seconds.items() if s > limit]
    total = sum(seconds.values())
    if total > RUNTIME_SLACK * TOTAL_RUNTIME_BUDGET_S:
        out.append(f"the {len(seconds)} notebooks ran {total:.0f} s together: over "
                   f"{RUNTIME_SLACK:g} x the {TOTAL_RUNTIME_BUDGET_S} s budget")
    return out


def runtime_table(seconds: dict[str, float], cells: dict[str, int] | None = None,
                  stated: dict[str, int | None] | None = None) -> str:
    """A plain-text table of measured runtimes: cells run, seconds, the runtime the notebook
    states (from ``make execute``) and a mark: ``over budget`` above the budget, ``FAIL`` above
    ``RUNTIME_SLACK`` times it."""
    cells, stated = cells or {}, stated or {}
    total = f"total ({len(seconds)} notebook{'' if len(seconds) == 1 else 's'})"
    width = max([len(total), *map(len, seconds)])

    def mark(s: float, budget: float) -> str:
        return "FAIL" if s > RUNTIME_SLACK * budget else "over budget" if s > budget else ""

    def fmt(name, n, s, said, budget):
        said = "-" if said is None else f"{said} s"
        return f"{name:<{width}}  {n:>5}  {s:>8.1f} s  {said:>7}  {mark(s, budget)}".rstrip()

    lines = [f"{'notebook':<{width}}  {'cells':>5}  {'measured':>10}  {'stated':>7}", "-" * (width + 32)]
    lines += [fmt(name, cells.get(name, "-"), s, stated.get(name), RUNTIME_BUDGET_S)
              for name, s in seconds.items()]
    lines.append("-" * (width + 32))
    lines.append(fmt(total, sum(cells.values()) if cells else "-",
                     sum(seconds.values()), None, TOTAL_RUNTIME_BUDGET_S))
    lines.append(f"Budget: {RUNTIME_BUDGET_S} s a notebook, {TOTAL_RUNTIME_BUDGET_S} s in all; a run fails "
                 f"only above {RUNTIME_SLACK:g} x that (a loaded machine is slow, not broken).")
    return "\n".join(lines)


def learner_copy(nb):
    """A copy of ``nb`` for learners: solution cells removed, outputs and widget state cleared."""
    out = nbformat.from_dict(nb)
    out.cells = [c for c in out.cells if SOLUTION_TAG not in tags(c)]
    for c in out.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    out.metadata.pop("widgets", None)
    return out


def chapter_notebooks(root: Path = ROOT) -> list[Path]:
    """Every chapter notebook, in order."""
    return sorted(p for p in (root / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


# ----------------------------------------------------------------------------- learner copies, statically
#
# A learner copy must run top to bottom with its checkers saying "not solved yet". Executing every
# learner copy would run each chapter a second time per `make test`; instead the two things that
# removing the solutions can break are checked from the source: a later cell using a name only a
# solution defined (NameError), and a checker being handed something other than a stub.

SKIP_TAG = "skip-execution"
# Cell magics whose body is Python run in the notebook's namespace. Any other cell magic (%%bash,
# %%writefile, %%html, ...) holds no Python that runs there, and its cell is left out.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
CHECKER_NAME = re.compile(r"check_\w+")


def is_solution(cell) -> bool:
    """True for a cell that learner copies drop (tagged ``solution``)."""
    return SOLUTION_TAG in tags(cell)


def python_source(source: str) -> str | None:
    """A code cell's source as plain Python, line numbers kept; None when it is not Python.

    Source that parses is returned as it is. Otherwise IPython's syntax is replaced line by line:
    ``%time stmt`` and ``%timeit stmt`` become ``stmt`` (it runs), any other ``%magic`` or
    ``!shell`` line becomes ``pass`` and ``x = !cmd`` (or ``x = %magic``) becomes ``x = None``. A
    cell magic keeps its body when that body is Python (``%%time``, ``%%capture``); any other
    cell magic gives None.
    """
    try:
        ast.parse(source)
        return source
    except SyntaxError:
        pass
    lines = source.splitlines()
    first = lines[0].lstrip() if lines else ""
    if first.startswith("%%"):
        magic = first[2:].split(maxsplit=1)
        if not magic or magic[0] not in PYTHON_CELL_MAGICS:
            return None
        lines = [""] + lines[1:]
    out = []
    for line in lines:
        body = line.lstrip()
        indent = line[:len(line) - len(body)]
        timed = re.match(r"%(?:time|timeit)\s+(?!-)(.+)", body)
        assigned = re.match(r"([A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*\s*=)\s*[%!]", body)
        if timed:
            out.append(indent + timed.group(1))
        elif body.startswith(("%", "!")):
            out.append(indent + "pass")
        elif assigned:
            out.append(indent + assigned.group(1) + " None")
        else:
            out.append(line)
    return "\n".join(out)


class _Names(ast.NodeVisitor):
    """The names one scope binds and uses, as events in the order the scope runs them.

    Each event is ``(kind, name, line)``:

    - ``load``: the name is read now; ``late``: read inside a function body defined here, so
      when that function is called (later);
    - ``bind``: bound in this scope (``=``, ``def``, ``class``, ``import``, ``for``, ``with ... as``,
      ``except ... as``, ``:=``, a ``match`` capture); ``late_bind``: assigned by a function
      defined here after a ``global`` statement, when it is called;
    - ``walrus``: a ``:=`` inside a comprehension, which binds in the enclosing scope;
    - ``star``: ``from module import *`` (``name`` is the module): names no one can list.

    Nested scopes are visited by their own ``_Names`` and only their free names come back: a
    function's parameters and locals, a comprehension's loop variables and a class body's names
    are not the module's.
    """

    def __init__(self, kind: str = "module"):
        self.kind = kind  # "module", "function", "class" or "comprehension"
        self.events: list[tuple[str, str, int]] = []
        self.global_names: set[str] = set()
        self.nonlocal_names: set[str] = set()

    def _add(self, kind: str, name: str, node) -> None:
        self.events.append((kind, name, getattr(node, "lineno", 0)))

    def _bound(self) -> set[str]:
        return {n for k, n, _ in self.events if k == "bind"}

    def visit_all(self, nodes) -> None:
        for node in nodes:
            self.visit(node)

    # --- reads and writes, in the order they run
    def visit_Name(self, node):
        if isinstance(node.ctx, (ast.Load, ast.Del)):  # `del x` needs x as much as reading it does
            self._add("load", node.id, node)
        elif isinstance(node.ctx, ast.Store):
            self._add("bind", node.id, node)

    def visit_Assign(self, node):
        self.visit(node.value)
        self.visit_all(node.targets)

    def visit_AugAssign(self, node):
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self._add("load", node.target.id, node.target)
        self.visit(node.target)

    def visit_AnnAssign(self, node):
        self.visit(node.annotation)
        if node.value is not None:
            self.visit(node.value)
            self.visit(node.target)
        elif not isinstance(node.target, ast.Name):  # `x.a: int` evaluates x; `x: int` binds nothing
            self.visit(node.target)

    def visit_For(self, node):
        self.visit(node.iter)
        self.visit(node.target)
        self.visit_all(node.body + node.orelse)

    visit_AsyncFor = visit_For

    def visit_NamedExpr(self, node):
        self.visit(node.value)
        self._add("walrus" if self.kind == "comprehension" else "bind", node.target.id, node.target)

    def visit_Import(self, node):
        for alias in node.names:
            self._add("bind", alias.asname or alias.name.split(".")[0], node)

    def visit_ImportFrom(self, node):
        for alias in node.names:
            if alias.name == "*":
                self._add("star", "." * node.level + (node.module or ""), node)
            else:
                self._add("bind", alias.asname or alias.name, node)

    def visit_Global(self, node):
        self.global_names.update(node.names)

    def visit_Nonlocal(self, node):
        self.nonlocal_names.update(node.names)

    def visit_ExceptHandler(self, node):
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._add("bind", node.name, node)
        self.visit_all(node.body)

    def visit_MatchAs(self, node):
        if node.pattern is not None:
            self.visit(node.pattern)
        if node.name:
            self._add("bind", node.name, node)

    def visit_MatchStar(self, node):
        if node.name:
            self._add("bind", node.name, node)

    def visit_MatchMapping(self, node):
        self.visit_all(node.keys + node.patterns)
        if node.rest:
            self._add("bind", node.rest, node)

    # --- nested scopes
    def _function(self, node, args: ast.arguments, body: list) -> None:
        """Decorators, defaults and annotations run now; the body when the function is called."""
        every = args.posonlyargs + args.args + args.kwonlyargs + [a for a in (args.vararg, args.kwarg) if a]
        self.visit_all(getattr(node, "decorator_list", []))
        self.visit_all(args.defaults + [d for d in args.kw_defaults if d is not None])
        self.visit_all([a.annotation for a in every if a.annotation is not None])
        if getattr(node, "returns", None) is not None:
            self.visit(node.returns)
        inner = _Names("function")
        inner.visit_all(body)
        local = ({a.arg for a in every} | inner._bound() | inner.nonlocal_names) - inner.global_names
        for kind, name, line in inner.events:
            if kind in ("load", "late") and name not in local:
                self.events.append(("late", name, line))
            elif kind == "bind" and name in inner.global_names or kind == "late_bind":
                self.events.append(("late_bind", name, line))

    def visit_FunctionDef(self, node):
        self._function(node, node.args, node.body)
        self._add("bind", node.name, node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._function(node, node.args, [node.body])

    def visit_ClassDef(self, node):
        """Decorators, bases and the class body run now; the methods' bodies when called."""
        self.visit_all(node.decorator_list + node.bases + [k.value for k in node.keywords])
        inner = _Names("class")
        inner.visit_all(node.body)
        local = inner._bound() - inner.global_names
        for kind, name, line in inner.events:
            if kind == "load" and name not in local:
                self.events.append(("load", name, line))
            elif kind in ("late", "late_bind"):  # methods do not see the class body's names
                self.events.append((kind, name, line))
            elif kind == "bind" and name in inner.global_names:
                self.events.append(("bind", name, line))
        self._add("bind", node.name, node)

    def _comprehension(self, node, elements: list) -> None:
        """The first iterable runs in this scope, the rest in the comprehension's own."""
        self.visit(node.generators[0].iter)
        inner = _Names("comprehension")
        for i, gen in enumerate(node.generators):
            if i:
                inner.visit(gen.iter)
            inner.visit(gen.target)
            inner.visit_all(gen.ifs)
        inner.visit_all(elements)
        local = inner._bound()
        for kind, name, line in inner.events:
            if kind in ("load", "late") and name not in local:
                self.events.append((kind, name, line))
            elif kind == "walrus":
                self.events.append(("walrus" if self.kind == "comprehension" else "bind", name, line))
            elif kind == "late_bind":
                self.events.append((kind, name, line))

    def visit_ListComp(self, node):
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node):
        self._comprehension(node, [node.key, node.value])


def name_events(source: str) -> list[tuple[str, str, int]]:
    """The module-level name events of a code cell, in the order they run (see :class:`_Names`).

    IPython syntax is handled by :func:`python_source`; a cell that is not Python gives ``[]``.
    Raises SyntaxError when the cell does not parse.
    """
    code = python_source(source)
    if code is None:
        return []
    names = _Names()
    names.visit(ast.parse(code))
    return names.events


def defined_names(source: str) -> set[str]:
    """The module-level names a code cell defines: assigned, ``def``, ``class``, imported,
    ``for``/``with``/``except`` targets, ``:=``, and ``global`` names its functions assign."""
    return {name for kind, name, _ in name_events(source) if kind in ("bind", "late_bind")}


def _runs(cell) -> bool:
    """A code cell that runs top to bottom (nbval and nbclient skip ``skip-execution`` cells)."""
    return cell.cell_type == "code" and SKIP_TAG not in tags(cell) and bool(cell.source.strip())


def undefined_after_removal(nb) -> list[str]:
    """Names the learner copy of ``nb`` would use before any kept cell defines them: one message each.

    ``nb`` is the solved notebook. Going through its code cells in order, a name that a removed
    cell (tagged ``solution``) binds at module level is *solution-only* until a kept cell binds
    it too. A kept cell that reads a solution-only name would raise NameError in the learner
    copy, where the solution cell is gone; each such read is reported, naming the cell (its index
    in ``nb.cells``), the line, the name and the solution cell that defined it.

    Reads at the top level of a cell count in the order they run (``x = x + 1`` reads before it
    binds); reads inside a function body defined in the cell count at the end of the cell (the
    function runs when it is called). Local names of functions, comprehensions and class bodies
    are not module names. Builtins always exist. Cells tagged ``skip-execution`` are not run (as
    by nbval and nbclient); a cell magic that is not Python (``%%bash``) is left out. A cell that
    does not parse, or a solution's ``from module import *`` (whose names cannot be known), is
    reported too. An empty list means the learner copy defines every name it uses wherever the
    solved notebook does.
    """
    problems: list[str] = []
    kept: set[str] = set()
    solution_only: dict[str, int] = {}  # name -> index of the (last) removed cell that binds it

    for i, cell in enumerate(nb.cells):
        if not _runs(cell):
            continue
        try:
            events = name_events(cell.source)
        except SyntaxError as err:
            problems.append(f"cell {i}: does not parse ({err.msg}, line {err.lineno})")
            continue
        if is_solution(cell):
            for kind, name, line in events:
                if kind in ("bind", "late_bind"):
                    solution_only[name] = i
                elif kind == "star":
                    problems.append(f"cell {i} (a solution), line {line}: `from {name} import *` "
                                    "defines names that cannot be checked; import them by name")
            continue

        reported: set[str] = set()

        def use(name: str, line: int) -> None:
            if (name in solution_only and name not in kept and name not in reported
                    and not hasattr(builtins, name)):
                reported.add(name)
                problems.append(f"cell {i}, line {line}: uses `{name}`, which only the removed "
                                f"solution cell {solution_only[name]} defines")

        late, late_binds = [], []
        for kind, name, line in events:
            if kind == "load":
                use(name, line)
            elif kind == "bind":
                kept.add(name)
            elif kind == "late":
                late.append((name, line))
            elif kind == "late_bind":
                late_binds.append(name)
        kept.update(late_binds)
        for name, line in late:
            use(name, line)
    return problems


def _is_checker_call(node) -> bool:
    func = getattr(node, "func", None)
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return isinstance(node, ast.Call) and bool(CHECKER_NAME.fullmatch(name))


def _is_stub(fn) -> bool:
    """A function whose first statement after its docstring is ``raise NotImplementedError``."""
    body = fn.body[1:] if (fn.body and isinstance(fn.body[0], ast.Expr)
                           and isinstance(fn.body[0].value, ast.Constant)
                           and isinstance(fn.body[0].value.value, str)) else fn.body
    exc = body[0].exc if body and isinstance(body[0], ast.Raise) else None
    exc = exc.func if isinstance(exc, ast.Call) else exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def stub_problems(nb) -> list[str]:
    """What would keep a learner copy's checkers from saying "not solved yet": one message each,
    naming the cell by its index in the copy's cells.

    ``nb`` is a learner copy (:func:`learner_copy`). Every checker call ``check_xxx(my_fn)`` must
    pass, by name, a function that a kept cell before it (the last one defining that name)
    defines as a *stub*: a ``def`` whose first statement after its docstring is ``raise
    NotImplementedError``. A checker reports such a function as unsolved, so ``report()`` counts 0.
    No other use of a stub's name may run in the learner copy: outside a checker call it would
    raise NotImplementedError there. (A copy with no checker call at all gives no message.)
    """
    problems: list[str] = []
    stubs: set[str] = set()  # names whose latest definition is a stub
    definer: dict[str, int] = {}  # name -> index of the last cell that defined it
    for i, cell in enumerate(nb.cells):
        if not _runs(cell):
            continue
        if is_solution(cell):
            problems.append(f"cell {i}: a solution cell is still in the learner copy")
        code = python_source(cell.source)
        if code is None:
            continue
        try:
            tree = ast.parse(code)
        except SyntaxError as err:
            problems.append(f"cell {i}: does not parse ({err.msg}, line {err.lineno})")
            continue
        passed = set()
        for node in ast.walk(tree):
            if not _is_checker_call(node):
                continue
            checker = ast.unparse(node.func)
            arg = node.args[0] if node.args else None
            if not isinstance(arg, ast.Name):
                problems.append(f"cell {i}: {checker}(...) is not handed a function by name")
            elif arg.id not in definer:
                problems.append(f"cell {i}: {checker}({arg.id}) but no cell before it defines `{arg.id}`")
            elif arg.id not in stubs:
                problems.append(f"cell {i}: {checker}({arg.id}), but `{arg.id}` as defined in cell "
                                f"{definer[arg.id]} is not a stub that raises NotImplementedError")
            if isinstance(arg, ast.Name):
                passed.add(id(arg))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in stubs
                    and id(node) not in passed):
                problems.append(f"cell {i}, line {node.lineno}: uses the stub `{node.id}` outside a "
                                "checker call: it raises NotImplementedError in the learner copy")
        for statement in tree.body:  # in order: the last definition of a name decides
            names = _Names()
            names.visit(statement)
            for kind, name, _ in names.events:
                if kind in ("bind", "late_bind"):
                    definer[name] = i
                    stubs.discard(name)
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_stub(statement):
                stubs.add(statement.name)
    return problems
