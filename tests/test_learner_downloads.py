"""The book offers each chapter's learner copy: the pieces of attnlib/course/sphinx_book.py.

URLs come from ``repository.url`` and ``launch_buttons.colab_url`` in ``_config.yml``; the copy
written into the HTML output is a valid notebook without solutions; a page gets the exercises box
(and its buttons are retargeted) exactly when its notebook has cells tagged ``solution``. The
built pages themselves are checked in a browser by tests/test_browser_downloads.py.
"""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import nbformat
import pytest
import yaml
from docutils import nodes
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser
from docutils.utils import new_document

from attnlib.course import notebooks as cn
from attnlib.course import sphinx_book as sb

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]
COLAB = CONFIG["launch_buttons"]["colab_url"]
NOTEBOOKS = cn.chapter_notebooks()
WITH_EXERCISES = [p for p in NOTEBOOKS if sb.exercise_notebook(p) is not None]
WITHOUT = [p for p in NOTEBOOKS if p not in WITH_EXERCISES]


def docname(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").as_posix()


def is_solution(cell) -> bool:
    return "solution" in cell.get("metadata", {}).get("tags", [])


def has_solution(nb) -> bool:
    return any(is_solution(c) for c in nb.cells)


# ----------------------------------------------------------------------------- URLs


def test_colab_url_is_derived_from_the_config():
    org, repo = urlsplit(REPO_URL).path.strip("/").split("/")
    expected = f"{COLAB}/github/{org}/{repo}/blob/gh-pages/_exercises/chapters/01_foundations/05_x.ipynb"
    assert sb.colab_url(REPO_URL, "chapters/01_foundations/05_x", COLAB) == expected
    assert cn.repository_url() == REPO_URL  # the Colab install cell reads the same setting


@pytest.mark.parametrize("url, parts", [
    ("https://github.com/org/repo", ("org", "repo")),
    ("https://github.com/org/repo/", ("org", "repo")),
    ("https://github.com/my-org/my.repo.git", ("my-org", "my.repo")),
])
def test_github_parts(url, parts):
    assert sb.github_parts(url) == parts


@pytest.mark.parametrize("url", ["https://gitlab.com/org/repo", "https://github.com/org", "", "github.com/org/repo"])
def test_github_parts_rejects_what_colab_cannot_open(url):
    with pytest.raises(ValueError, match="GitHub"):
        sb.github_parts(url)


@pytest.mark.parametrize("page, expected", [
    ("chapters/01_foundations/05_x.html", "../../_exercises/chapters/01_foundations/05_x.ipynb"),
    ("index.html", "_exercises/chapters/01_foundations/05_x.ipynb"),
    ("chapters/01_foundations/05_x/", "../../../_exercises/chapters/01_foundations/05_x.ipynb"),  # dirhtml
])
def test_page_relative_link(page, expected):
    assert sb.page_relative(page, sb.exercises_path("chapters/01_foundations/05_x")) == expected


# ----------------------------------------------------------------------------- the learner copy


def test_which_notebooks_have_exercises():
    assert WITH_EXERCISES and WITHOUT, "expected chapters with exercises and pages without (the welcome)"
    for p in NOTEBOOKS:
        assert (p in WITH_EXERCISES) == has_solution(nbformat.read(p, as_version=4)), p


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=[p.name for p in WITH_EXERCISES])
def test_written_learner_copy_is_valid_and_has_no_solution(path, tmp_path):
    solved = nbformat.read(path, as_version=4)
    target = sb.write_learner_copy(solved, tmp_path / "out" / sb.exercises_path(docname(path)))
    copy = nbformat.read(target, as_version=4)
    nbformat.validate(copy)
    assert not has_solution(copy)
    solutions = [c.source for c in solved.cells if is_solution(c)]
    text = "\n".join(c.source for c in copy.cells)
    assert solutions and not [s for s in solutions if s.strip() in text]
    assert len(copy.cells) == len(solved.cells) - len(solutions)


# ----------------------------------------------------------------------------- the page


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.append(dict(attrs))


def test_links_html_has_a_download_and_a_colab_link():
    parser = _Links()
    parser.feed(sb.links_html("../../_exercises/a&b.ipynb", "a&b.ipynb", "https://colab.example/x"))
    download, colab = parser.links
    assert download["href"] == "../../_exercises/a&b.ipynb" and download["download"] == "a&b.ipynb"
    assert colab["href"] == "https://colab.example/x"
    assert sb.DOWNLOAD_TEXT in sb.links_html("x", "x", None) and sb.COLAB_TEXT not in sb.links_html("x", "x", None)


def _doctree(source: str):
    settings = get_default_settings(Parser)
    settings.report_level = 4
    document = new_document("<test>", settings)
    Parser().parse(source, document)
    return document


PAGE = "Title\n=====\n\nIntro.\n\nExercises\n---------\n\nDo them.\n\nMore\n----\n\nText.\n"


def _app(tmp_path, fmt="html", repo=REPO_URL):
    return SimpleNamespace(
        builder=SimpleNamespace(format=fmt, get_target_uri=lambda d: d + ".html"),
        env=SimpleNamespace(doc2path=lambda d: ROOT / f"{d}.ipynb"),
        outdir=str(tmp_path),
        config=SimpleNamespace(html_theme_options={"repository_url": repo, "launch_buttons": {"colab_url": COLAB}}))


def _boxes(doctree) -> list[str]:
    return [n.astext() for n in doctree.findall(nodes.raw) if sb.BOX_CLASS in n.astext()]


def test_a_page_with_exercises_gets_the_copy_and_two_boxes(tmp_path):
    name = docname(WITH_EXERCISES[0])
    doctree = _doctree(PAGE)
    sb._on_doctree_resolved(_app(tmp_path), doctree, name)
    written = tmp_path / sb.exercises_path(name)
    assert not has_solution(nbformat.read(written, as_version=4))
    boxes = _boxes(doctree)
    assert len(boxes) == 2  # after the title, and under "Exercises"; not under "More"
    [top, more] = [s for s in doctree.findall(nodes.section) if s[0].astext() in ("Title", "More")]
    assert isinstance(top[1], nodes.raw) and not _boxes(more)
    assert f'href="{sb.page_relative(name + ".html", sb.exercises_path(name))}"' in boxes[0]
    assert f'href="{sb.colab_url(REPO_URL, name, COLAB)}"' in boxes[0]


@pytest.mark.parametrize("path", WITHOUT + [ROOT / "chapters/appendix/api.md"], ids=lambda p: p.name)
def test_a_page_without_exercises_gets_no_link(path, tmp_path):
    doctree = _doctree(PAGE)
    sb._on_doctree_resolved(_app(tmp_path), doctree, path.relative_to(ROOT).with_suffix("").as_posix())
    assert not _boxes(doctree) and not list(tmp_path.iterdir())


def test_a_repository_colab_cannot_open_gives_the_download_alone(tmp_path):
    doctree = _doctree(PAGE)
    sb._on_doctree_resolved(_app(tmp_path, repo="https://gitlab.com/o/r"), doctree, docname(WITH_EXERCISES[0]))
    boxes = _boxes(doctree)
    assert boxes and all(sb.DOWNLOAD_TEXT in b and "colab" not in b for b in boxes)


def test_a_stale_copy_of_a_page_without_exercises_is_removed(tmp_path):
    name = docname(WITHOUT[0])
    stale = tmp_path / sb.exercises_path(name)
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    sb._on_doctree_resolved(_app(tmp_path), _doctree(PAGE), name)
    assert not stale.exists()


def test_other_builders_are_left_alone(tmp_path):
    doctree = _doctree(PAGE)
    sb._on_doctree_resolved(_app(tmp_path, fmt="latex"), doctree, docname(WITH_EXERCISES[0]))
    assert not _boxes(doctree) and not list(tmp_path.iterdir())


def _theme_buttons() -> list[dict]:
    """Header buttons shaped as sphinx-book-theme 1.x builds them (header_buttons/, launch.py)."""
    return [
        {"type": "group", "label": "download-buttons", "buttons": [
            {"type": "link", "url": "../_sources/x.ipynb", "text": ".ipynb", "label": "download-notebook-button"}]},
        {"type": "group", "label": "launch-buttons", "buttons": [
            {"type": "link", "text": "Binder", "tooltip": "Launch on Binder", "url": "https://mybinder.org/v2/gh/o/r/main"},
            {"type": "link", "text": "Colab", "tooltip": "Launch on Colab",
             "url": "https://colab.research.google.com/github/o/r/blob/main/chapters/x.ipynb"}]},
    ]


def test_buttons_open_and_offer_the_learner_copy():
    context = {"header_buttons": _theme_buttons()}
    sb.retarget_buttons(context, "../_exercises/chapters/x.ipynb", "https://colab/learner")
    download, launch = context["header_buttons"]
    assert download["buttons"][0]["url"] == "../_exercises/chapters/x.ipynb"
    assert download["buttons"][1]["text"] == ".ipynb"  # the full notebook stays on offer
    binder, colab = launch["buttons"]
    assert colab["url"] == "https://colab/learner"
    assert binder["url"] == "https://mybinder.org/v2/gh/o/r/main" and "solutions included" in binder["tooltip"]


def test_page_context_of_a_page_without_exercises_is_untouched(tmp_path):
    context = {"header_buttons": _theme_buttons(), "pathto": lambda uri, resource=0: uri}
    sb._on_page_context(_app(tmp_path), docname(WITHOUT[0]), "page.html", context, object())
    assert context["header_buttons"] == _theme_buttons()
    sb._on_page_context(_app(tmp_path), docname(WITH_EXERCISES[0]), "page.html", context, object())
    assert context["header_buttons"][1]["buttons"][1]["url"] == sb.colab_url(REPO_URL, docname(WITH_EXERCISES[0]), COLAB)
