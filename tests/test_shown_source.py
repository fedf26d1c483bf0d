"""The code a chapter shows is attnlib's current code: every stored show_source output is re-derived."""
from __future__ import annotations

import importlib
import inspect
import re

import nbformat
import pytest

from attnlib.course import notebooks as cn
from attnlib.numpy import scaled_dot_product_attention
from attnlib.viz.source import FOLD_LINES, Source, show_source, source_text

HEADER = re.compile(r"^# (?P<name>attnlib[\w.]*)  \((?P<path>[^,)]+)(?P<nodoc>, docstring omitted)?\)\n")


def shown_sources():
    """(notebook, cell index, stored text) of every show_source output in the chapters, and the
    (notebook, cell index) of show_source cells that store none."""
    found, missing = [], []
    for path in cn.chapter_notebooks():
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or "show_source(" not in cell.source:
                continue
            texts = [o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", [])
                     if o.get("output_type") in ("execute_result", "display_data")]
            shown = [t for t in texts if HEADER.match(t)]
            if not shown:
                missing.append((path.name, i))
            found += [(path.name, i, t) for t in shown]
    return found, missing


def resolve(name: str):
    """The object named by a dotted path module.qualname (the longest importable module prefix)."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


SHOWN, UNSHOWN = shown_sources()


def test_every_show_source_cell_stores_its_source():
    assert not UNSHOWN, f"cells call show_source but store no shown source (run `make execute`): {UNSHOWN}"


def test_chapters_show_code():
    assert len({notebook for notebook, _, _ in SHOWN} | {notebook for notebook, _ in UNSHOWN}) >= 10


@pytest.mark.parametrize("notebook,cell,stored", SHOWN, ids=[f"{n}:{c}" for n, c, _ in SHOWN])
def test_shown_source_is_the_current_source(notebook, cell, stored):
    match = HEADER.match(stored)
    current = repr(Source(resolve(match["name"]), docstring=not match["nodoc"]))
    assert stored == current, (f"{notebook} cell {cell} shows an old version of {match['name']}: "
                               "run `make execute` to refresh the page")


def test_source_is_inspects_and_docstring_can_go():
    text = source_text(scaled_dot_product_attention)
    assert text == inspect.getsource(scaled_dot_product_attention).rstrip("\n") + "\n"
    bare = source_text(scaled_dot_product_attention, docstring=False)
    assert scaled_dot_product_attention.__doc__.strip().splitlines()[0] not in bare
    assert bare.splitlines()[0] == text.splitlines()[0]  # the def line stays
    assert len(bare) < len(text)


def test_display_names_the_object_and_folds_long_code():
    shown = show_source(scaled_dot_product_attention)
    assert HEADER.match(repr(shown))["name"] == "attnlib.numpy.scaled_dot_product.scaled_dot_product_attention"
    html = shown._repr_html_()
    assert "attnlib/numpy/scaled_dot_product.py" in html and "<pre>" in html
    assert ("<details>" in html) == (shown.text.count("\n") > FOLD_LINES)
    assert "<details>" in show_source(scaled_dot_product_attention, fold=True)._repr_html_()


def test_a_stale_copy_is_caught():
    stored = repr(show_source(scaled_dot_product_attention))
    changed = stored.replace("def scaled_dot_product_attention", "def scaled_dot_product_attention_old", 1)
    current = repr(Source(resolve(HEADER.match(changed)["name"])))
    assert changed != current


@pytest.mark.parametrize("obj", [len, 3, "text"])
def test_things_without_python_source_are_refused(obj):
    with pytest.raises(TypeError, match="show_source needs"):
        show_source(obj)
