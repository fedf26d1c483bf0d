"""The code on the page: a chapter shows attnlib's own source of what it teaches.

``show_source(attnlib.numpy.scaled_dot_product_attention)`` as the last line of a cell displays
the function's current source, highlighted, with its file and line, folded when it is long. The
cell's stored output carries the plain source too (``text/plain``), and
``tests/test_shown_source.py`` compares it with the library's source now, so the page cannot
drift from attnlib: change the function and the test asks for ``make execute``.
"""
from __future__ import annotations

import html
import inspect
import textwrap
from pathlib import Path

__all__ = ["Source", "show_source", "source_text"]

# Longer than this many lines, the code is folded under a "show the code" summary.
FOLD_LINES = 40
_ROOT = Path(__file__).resolve().parents[2]


def source_text(obj, docstring: bool = True) -> str:
    """The source of a function, class or method of attnlib, dedented; without its docstring if asked.

    Raises
    ------
    TypeError
        When ``obj`` has no Python source (a builtin, an instance, a number).
    """
    target = inspect.unwrap(obj)
    try:
        text = textwrap.dedent(inspect.getsource(target))
    except (TypeError, OSError):
        raise TypeError(f"show_source needs a function, class or method written in Python, "
                        f"got {type(obj).__name__} {obj!r:.60}") from None
    if not docstring:
        text = _without_docstring(text)
    return text.rstrip("\n") + "\n"


def _without_docstring(text: str) -> str:
    """``text`` (one def or class) with the docstring of its outer definition removed."""
    import ast

    tree = ast.parse(text)
    node = tree.body[0]
    body = getattr(node, "body", [])
    if not (body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
            and isinstance(body[0].value.value, str)):
        return text
    lines = text.splitlines(keepends=True)
    start, end = body[0].lineno - 1, body[0].end_lineno
    return "".join(lines[:start] + lines[end:])


class Source:
    """A displayable piece of attnlib's source (see :func:`show_source`)."""

    def __init__(self, obj, docstring: bool = True, fold: bool | None = None):
        self.text = source_text(obj, docstring)
        self.docstring = bool(docstring)
        target = inspect.unwrap(obj)
        self.name = f"{target.__module__}.{target.__qualname__}"
        path = Path(inspect.getsourcefile(target)).resolve()
        try:
            self.path = str(path.relative_to(_ROOT))
        except ValueError:
            self.path = path.name
        self.line = inspect.getsourcelines(target)[1]
        lines = self.text.count("\n")
        self.fold = lines > FOLD_LINES if fold is None else bool(fold)

    def __repr__(self) -> str:
        # What the test compares with the library: the source itself under a one-line header
        # (no line number, so an edit elsewhere in the file does not call for a re-execution).
        # (No final newline: Jupyter strips it from a stored text/plain.)
        note = "" if self.docstring else ", docstring omitted"
        return f"# {self.name}  ({self.path}{note})\n{self.text}".rstrip("\n")

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        code = highlight(self.text, PythonLexer(), HtmlFormatter(nowrap=True))
        header = (f'<div class="attnlib-source-header"><code>{html.escape(self.name)}</code> '
                  f'<small>from <code>{html.escape(self.path)}</code>, line {self.line}</small></div>')
        block = f'<div class="highlight"><pre>{code}</pre></div>'
        if self.fold:
            lines = self.text.count("\n")
            block = f"<details><summary>show the code ({lines} lines)</summary>{block}</details>"
        return f'<div class="attnlib-source">{header}{block}</div>'


def show_source(obj, docstring: bool = True, fold: bool | None = None) -> Source:
    """Display attnlib's source of ``obj`` (make it the last expression of a cell).

    Parameters
    ----------
    obj : function, class or method
    docstring : bool
        Keep the docstring (default) or show the code alone.
    fold : bool, optional
        Fold the code under a summary line; default: when it is longer than 40 lines.

    Returns
    -------
    Source
        Shown as highlighted HTML in notebooks and the book, as plain text elsewhere.
    """
    return Source(obj, docstring=docstring, fold=fold)
