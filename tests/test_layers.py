"""attnlib's layers, read from the source tree: imports only run downwards, and no module cycle.

The layers (COURSE_DESIGN.md, "attnlib: layered"), lowest first. A module may import its own
layer (its own subpackage) and any layer below; two subpackages that share a rank (seq2seq and
transformer, viz and exercises) may not import each other. Imports inside functions count too:
a lazy import that runs up the layers is still an upward dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "attnlib"

#: (prefix, rank): the longest matching prefix gives a module's layer.
LAYERS = [
    ("attnlib.shapes", 0), ("attnlib.seeding", 0), ("attnlib", 0),
    ("attnlib.numpy", 1), ("attnlib.data", 1),
    ("attnlib.torch.device", 2), ("attnlib.torch.attention", 2),
    # decoding loops are model-agnostic (they call a step function), so the models use them
    ("attnlib.torch.decoding", 3),
    ("attnlib.torch.seq2seq", 4), ("attnlib.torch.transformer", 4),
    ("attnlib.torch.training", 5),
    ("attnlib.torch", 6),  # the package itself: the facade that re-exports every subpackage
    ("attnlib.pretrained", 7),
    ("attnlib.experiments", 8),
    ("attnlib.viz", 9), ("attnlib.exercises", 9),
    ("attnlib.course", 10),
]


def layer_of(module: str) -> tuple[str, int]:
    """The (prefix, rank) of the longest layer prefix of ``module``."""
    best = max((p for p, _ in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return best, dict(LAYERS)[best]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[str, int]]:
    """Every ``attnlib`` module ``path`` imports (module level or inside functions), with line numbers."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("attnlib")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([node.module] if node.module else []))
            if not base.startswith("attnlib"):
                continue
            for a in node.names:  # `from attnlib.torch import attention` names a submodule
                sub = f"{base}.{a.name}"
                found.append((sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists()
                              or (PACKAGE.parent / sub.replace(".", "/")).is_dir() else base,
                              node.lineno))
    return found


def source_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "results" not in p.parts)


def graph() -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for path in source_files():
        g.setdefault(module_name(path), set()).update(m for m, _ in imports_of(path))
    return g


def upward_imports(files) -> list[str]:
    bad = []
    for path in files:
        me = module_name(path)
        my_prefix, my_rank = layer_of(me)
        for target, line in imports_of(path):
            prefix, rank = layer_of(target)
            if rank > my_rank or (rank == my_rank and prefix != my_prefix and my_prefix != "attnlib"
                                  and prefix != "attnlib"):
                bad.append(f"{path.relative_to(ROOT)}:{line}: {me} ({my_prefix}, layer {my_rank}) "
                           f"imports {target} ({prefix}, layer {rank})")
    return bad


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Elementary cycles found by depth-first search (one per back edge)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(g.get(node, ())):
            if nxt not in g or nxt == node:
                continue
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(g):
        if node not in state:
            visit(node, [])
    return found


def package_cycle_ok(cycle: list[str]) -> bool:
    """A package's ``__init__`` importing its modules, which import a sibling, is not a cycle of
    code: only cycles that do not pass through a package ``__init__`` count."""
    return any((PACKAGE.parent / m.replace(".", "/")).is_dir() for m in cycle)


def test_every_module_has_a_layer():
    for path in source_files():
        prefix, _ = layer_of(module_name(path))
        if prefix == "attnlib":
            assert path.parent == PACKAGE, f"{path} is in no layer: add its package to LAYERS"


def test_no_import_runs_up_the_layers():
    bad = upward_imports(source_files())
    assert not bad, "imports that run up the layers:\n" + "\n".join(bad)


def test_no_import_cycle():
    bad = [c for c in cycles(graph()) if not package_cycle_ok(c)]
    assert not bad, "import cycles:\n" + "\n".join(" -> ".join(c) for c in bad)


def test_torch_reexports_its_subpackages():
    import attnlib.torch as at
    from attnlib.torch import attention, decoding, seq2seq, training, transformer

    for sub in (attention, decoding, seq2seq, training, transformer):
        for name in sub.__all__:
            assert getattr(at, name) is getattr(sub, name), name
            assert name in at.__all__, name


def test_no_private_name_imported_across_packages():
    bad = []
    for path in source_files():
        me = module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("attnlib"):
                src_pkg = node.module.rsplit(".", 1)[0] if not (
                    PACKAGE.parent / node.module.replace(".", "/")).is_dir() else node.module
                my_pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
                for a in node.names:
                    if a.name.startswith("_") and not src_pkg.startswith(my_pkg):
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {a.name} from {node.module}")
    assert not bad, "private helpers imported from another package:\n" + "\n".join(bad)


# ------------------------------------------------------------------ the checks can fail

@pytest.fixture
def fake_tree(tmp_path, monkeypatch):
    """A tiny attnlib tree whose files the checks above read instead of the real one."""
    root = tmp_path
    for rel, text in {
        "attnlib/__init__.py": "",
        "attnlib/torch/__init__.py": "",
        "attnlib/torch/attention/__init__.py": "",
        "attnlib/torch/attention/sdpa.py": "def f():\n    from attnlib.torch.training.loop import train\n",
        "attnlib/torch/training/__init__.py": "",
        "attnlib/torch/training/loop.py": "from attnlib.torch.attention.sdpa import f\n",
        "attnlib/torch/seq2seq/__init__.py": "",
        "attnlib/torch/seq2seq/a.py": "from attnlib.torch.seq2seq.b import x\n",
        "attnlib/torch/seq2seq/b.py": "from attnlib.torch.seq2seq.a import y\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    monkeypatch.setitem(globals(), "ROOT", root)
    monkeypatch.setitem(globals(), "PACKAGE", root / "attnlib")
    return root


def test_the_layer_check_catches_a_lazy_upward_import(fake_tree):
    bad = upward_imports(source_files())
    assert any("attention.sdpa" in b and "training.loop" in b for b in bad), bad


def test_the_cycle_check_catches_a_cycle(fake_tree):
    bad = [c for c in cycles(graph()) if not package_cycle_ok(c)]
    assert any(set(c) == {"attnlib.torch.seq2seq.a", "attnlib.torch.seq2seq.b"} for c in bad), bad


def test_every_public_definition_of_a_torch_module_is_exported():
    """A class or function defined in an attnlib.torch module and not listed in its ``__all__``
    would be missing from ``attnlib.torch`` (and from its API page)."""
    missing = []
    for path in sorted((PACKAGE / "torch").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exported = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
                exported = {ast.literal_eval(e) for e in node.value.elts}
        for node in tree.body:
            if (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
                    and node.name not in exported):
                missing.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert not missing, "public but not in __all__:\n" + "\n".join(missing)
