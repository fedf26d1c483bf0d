"""A small Sphinx extension with the book's fixes to its theme and extensions (in ``_config.yml``).

Two jobs, both in the HTML build only:

- **Exercise notebooks on every chapter page.** For each chapter notebook that has exercises
  (cells tagged ``solution``), the build writes its learner copy (solutions removed, by
  :func:`attnlib.course.notebooks.learner_copy`, as ``make exercises`` does) to
  ``_exercises/<docname>.ipynb`` in the HTML output, puts a box near the top of the page (and
  under its "Exercises" heading) with a download link and an "Open the exercises in Colab"
  link, adds the copy to the page's download menu and points the theme's Colab launch button
  at it. Colab opens notebooks from GitHub only: the Pages workflow publishes the HTML output
  to the :data:`PAGES_BRANCH` branch, so the Colab URL is
  ``<colab>/github/<org>/<repo>/blob/gh-pages/_exercises/<docname>.ipynb``, with ``<org>/<repo>``
  read from ``repository.url`` in ``_config.yml``. Binder builds a repository branch and opens a
  path in it, so its button keeps opening the full chapter notebook; its tooltip says so.
- **Scripts written twice.** Sphinx 7.4 writes some inline scripts that extensions add late into
  a page twice (once with filename None, once with filename ""); sphinx-thebe's
  ``const THEBE_JS_URL = ...`` then throws "already declared" in every page. We keep the first copy.
"""
from __future__ import annotations

import html
import posixpath
import re
from pathlib import Path

import nbformat
from docutils import nodes
from sphinx.util import logging

from attnlib.course.notebooks import SOLUTION_TAG, learner_copy, tags

LOGGER = logging.getLogger(__name__)
# The branch the Pages workflow (.github/workflows/book.yml) pushes the built HTML to.
PAGES_BRANCH = "gh-pages"
# Where the learner copies go in the HTML output (and so on the PAGES_BRANCH branch).
EXERCISES_DIR = "_exercises"
DEFAULT_COLAB = "https://colab.research.google.com"
DOWNLOAD_TEXT = "Download the exercises notebook (solutions removed)"
COLAB_TEXT = "Open the exercises in Colab"
BOX_CLASS = "course-exercises"


# ----------------------------------------------------------------------------- URLs


def github_parts(repo_url: str) -> tuple[str, str]:
    """``(org, repo)`` of a GitHub repository URL such as ``https://github.com/org/repo``."""
    match = re.fullmatch(r"https?://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", repo_url.strip())
    if not match:
        raise ValueError(f"not a GitHub repository URL: {repo_url!r} (Colab opens notebooks from GitHub only)")
    return match.group(1), match.group(2)


def exercises_path(docname: str) -> str:
    """Path of a chapter's learner copy in the HTML output (and on the Pages branch)."""
    return f"{EXERCISES_DIR}/{docname}.ipynb"


def colab_url(repo_url: str, docname: str, colab: str = DEFAULT_COLAB, branch: str = PAGES_BRANCH) -> str:
    """The Colab URL that opens a chapter's learner copy from the published Pages branch."""
    org, repo = github_parts(repo_url)
    return f"{colab.rstrip('/')}/github/{org}/{repo}/blob/{branch}/{exercises_path(docname)}"


def page_relative(page_uri: str, target: str) -> str:
    """``target`` (a path from the output root) relative to the page at ``page_uri``."""
    return posixpath.relpath(target, posixpath.dirname(page_uri) or ".")


# ----------------------------------------------------------------------------- notebooks


def has_exercises(nb) -> bool:
    """True when the notebook has a cell tagged ``solution`` (so a learner copy differs from it)."""
    return any(SOLUTION_TAG in tags(c) for c in nb.cells)


_NOTEBOOKS: dict[Path, tuple[float, object]] = {}


def exercise_notebook(path: Path):
    """The notebook at ``path`` when it is one with exercises, else None (cached by mtime)."""
    path = Path(path)
    if path.suffix != ".ipynb" or not path.is_file():
        return None
    mtime = path.stat().st_mtime
    cached = _NOTEBOOKS.get(path)
    if cached is None or cached[0] != mtime:
        nb = nbformat.read(path, as_version=4)
        _NOTEBOOKS[path] = cached = (mtime, nb if has_exercises(nb) else None)
    return cached[1]


def write_learner_copy(nb, target: Path) -> Path:
    """Write the learner copy of ``nb`` to ``target``, checked to be a valid notebook first."""
    copy = learner_copy(nb)
    nbformat.validate(copy)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(copy, target)
    return target


# ----------------------------------------------------------------------------- the page


def links_html(download_href: str, filename: str, colab: str | None) -> str:
    """The exercises box: a download link (and a Colab link when there is a Colab URL)."""
    download = (f'<a class="reference download {BOX_CLASS}-download" href="{html.escape(download_href)}" '
                f'download="{html.escape(filename)}">{DOWNLOAD_TEXT}</a>')
    parts = [download]
    if colab:
        parts.append(f'<a class="reference external {BOX_CLASS}-colab" href="{html.escape(colab)}" '
                     f'target="_blank" rel="noopener">{COLAB_TEXT}</a>')
    return (f'<div class="admonition note {BOX_CLASS}">\n<p class="admonition-title">Exercises</p>\n'
            "<p>Work through this chapter's exercises in a notebook of their own: "
            + " · ".join(parts) + ".</p>\n</div>\n")


def _insert_after_title(section, node) -> None:
    index = next((i + 1 for i, child in enumerate(section.children) if isinstance(child, nodes.title)), 0)
    section.insert(index, node)


def add_links_to_doctree(doctree, box: str) -> int:
    """Put ``box`` (raw HTML) after the page's title and after each "Exercises" heading.

    Returns how many boxes were inserted (0 when the page has no section).
    """
    sections = list(doctree.findall(nodes.section))
    if not sections:
        return 0
    targets = [sections[0]] + [s for s in sections[1:]
                               if s.children and isinstance(s[0], nodes.title)
                               and s[0].astext().strip().lower().startswith("exercises")]
    for section in targets:
        _insert_after_title(section, nodes.raw("", box, format="html"))
    return len(targets)


def _repository(app) -> tuple[str, str]:
    """``(repository URL, Colab URL)`` from the theme options that ``_config.yml`` sets."""
    options = app.config.html_theme_options or {}
    colab = (options.get("launch_buttons") or {}).get("colab_url") or DEFAULT_COLAB
    return options.get("repository_url", ""), colab


def _colab_for(app, docname: str) -> str | None:
    repo_url, colab = _repository(app)
    try:
        return colab_url(repo_url, docname, colab)
    except ValueError as err:
        LOGGER.warning(f"no Colab link for the exercises: {err}", type="attnlib", subtype="exercises")
        return None


def _on_doctree_resolved(app, doctree, docname: str) -> None:
    """Write the page's learner copy into the HTML output and link it from the page."""
    if app.builder.format != "html":
        return
    nb = exercise_notebook(Path(app.env.doc2path(docname)))
    target = exercises_path(docname)
    if nb is None:
        # A chapter whose exercises were removed since the last build keeps no stale copy.
        (Path(app.outdir) / target).unlink(missing_ok=True)
        return
    write_learner_copy(nb, Path(app.outdir) / target)
    href = page_relative(app.builder.get_target_uri(docname), target)
    add_links_to_doctree(doctree, links_html(href, posixpath.basename(target), _colab_for(app, docname)))


def retarget_buttons(context: dict, download_url: str, colab: str | None) -> None:
    """Make the theme's header buttons (already in ``context``) offer the learner copy.

    The download menu gets the learner copy, the Colab launch button opens it, and the Binder
    button's tooltip says that it opens the full chapter (Binder serves repository branches).
    """
    for group in context.get("header_buttons", []):
        buttons = group.get("buttons", [])
        if group.get("label") == "download-buttons":
            buttons.insert(0, {"type": "link", "url": download_url, "text": "exercises .ipynb",
                               "tooltip": DOWNLOAD_TEXT, "icon": "fas fa-pen",
                               "label": "download-exercises-button"})
        elif group.get("label") == "launch-buttons":
            for button in buttons:
                if button.get("text") == "Colab" and colab:
                    button["url"] = colab
                    button["tooltip"] = "Open the exercises (solutions removed) in Colab"
                elif button.get("text") == "Binder":
                    button["tooltip"] = "Launch on Binder: the full chapter from the repository, solutions included"


def _on_page_context(app, pagename, templatename, context, doctree) -> None:
    if doctree is None or exercise_notebook(Path(app.env.doc2path(pagename))) is None:
        return
    retarget_buttons(context, context["pathto"](exercises_path(pagename), 1), _colab_for(app, pagename))


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        key = (str(getattr(js, "filename", js) or ""), tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def setup(app):
    app.connect("doctree-resolved", _on_doctree_resolved)
    # After the theme's header and launch buttons (priority 501) have been built.
    app.connect("html-page-context", _on_page_context, priority=600)
    # Run after every other html-page-context handler (MyST-NB adds per-page scripts there).
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
