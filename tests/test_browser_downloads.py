"""Headless-browser test: every chapter page with exercises offers its learner copy.

The built book (``make book``) is served from a local HTTP server and each chapter page whose
notebook has exercises (cells tagged ``solution``, read from ``chapters/``) is opened in headless
Chromium. A page passes when

* its "Download the exercises notebook (solutions removed)" link is there, on the first screen;
  clicking it downloads (from the local server) a notebook that nbformat reads and validates,
  with no cell tagged ``solution`` and no solution cell's source, and every other cell of the
  chapter, in order;
* its "Open the exercises in Colab" link, and the Colab launch button in the page's header,
  open ``<colab>/github/<org>/<repo>/blob/<branch>/<the download's path>``: ``<org>/<repo>`` from
  ``repository.url`` in ``_config.yml``, ``<branch>`` the one the Pages workflow pushes the
  built site to, so Colab opens the very file the download served;
* the header's download menu offers the same learner copy, and nothing is requested from any
  host but the local server.

Pages whose notebook has no exercises get no link (checked on the built HTML), and the
learner copies in ``_build/html/_exercises`` are exactly those of the chapters with exercises.

``test_download_check_flags_broken_pages`` builds a throwaway site with each way a page can be
wrong (no link, a copy with a solution, an invalid notebook, a Colab link to the full notebook)
and proves the check fails on each and passes on a good page.

The fixtures and the local server are test_browser.py's; without Chromium or without the built
book the tests skip, saying why (with ``CI=true`` they fail).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
import test_browser as tb
import yaml
from test_browser import HTML_DIR, ROOT, StaticServer, _is_local, _unavailable, book_pages

# test_browser.py's fixtures: one headless Chromium for the module, a fresh page per test.
browser, page = tb.browser, tb.page

pytestmark = pytest.mark.browser

DOWNLOAD_TEXT = "Download the exercises notebook (solutions removed)"
COLAB_TEXT = "Open the exercises in Colab"


def _pages_branch() -> str:
    """The branch the Pages workflow pushes ``_build/html`` to (the last word of its push)."""
    workflow = yaml.safe_load((ROOT / ".github/workflows/book.yml").read_text())
    pushes = [line.split()[-1] for s in workflow["jobs"]["build"]["steps"]
              for line in s.get("run", "").splitlines() if "git push" in line]
    assert len(pushes) == 1, pushes
    return pushes[0]


def colab_prefix() -> str:
    """``<colab>/github/<org>/<repo>/blob/<branch>/``, from _config.yml and the workflow."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    org, repo = urlsplit(config["repository"]["url"]).path.strip("/").split("/")[:2]
    colab = config["launch_buttons"]["colab_url"].rstrip("/")
    return f"{colab}/github/{org}/{repo}/blob/{_pages_branch()}/"


def is_solution(cell) -> bool:
    return "solution" in cell.get("metadata", {}).get("tags", [])


def exercise_chapters() -> dict[str, Path]:
    """Page path (relative to _build/html) -> source notebook, for chapters with exercises."""
    out = {}
    for nb_path in sorted((ROOT / "chapters").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in nb_path.parts:
            continue
        if any(is_solution(c) for c in nbformat.read(nb_path, as_version=4).cells):
            out[nb_path.relative_to(ROOT).with_suffix(".html").as_posix()] = nb_path
    return out


def copy_problems(data: bytes, solved) -> list[str]:
    """What is wrong with ``data`` as the learner copy of the solved notebook ``solved``."""
    try:
        copy = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(copy)
    except Exception as exc:  # not JSON, not a notebook, not valid
        return [f"the download is not a valid notebook ({type(exc).__name__}: {str(exc)[:100]})"]
    problems = [f"cell {i} is tagged solution" for i, c in enumerate(copy.cells) if is_solution(c)]
    text = "\n".join(c.source for c in copy.cells)
    problems += [f"a solution's source is in the copy: {c.source.strip()[:60]!r}"
                 for c in solved.cells if is_solution(c) and c.source.strip() in text]
    kept = [c.source for c in solved.cells if not is_solution(c)]
    if [c.source for c in copy.cells if not is_solution(c)] != kept:
        problems.append("the copy's other cells are not the chapter's cells, in order")
    return problems


def check_download_page(page, url: str, solved, prefix: str) -> list[str]:
    """Open the page at ``url``: the problems with its exercises links (empty: all fine)."""
    outside: list[str] = []

    def route(r):
        if _is_local(r.request.url):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="domcontentloaded")
    problems = []
    download = page.get_by_role("link", name=DOWNLOAD_TEXT)
    if download.count() == 0:
        return [f"no link {DOWNLOAD_TEXT!r}"]
    first = download.first
    box = first.bounding_box()
    if box is None or box["y"] > page.viewport_size["height"]:
        problems.append(f"the download link is not on the first screen (at {box})")
    href = first.evaluate("a => a.href")
    if not _is_local(href):
        problems.append(f"the download link leaves the local server: {href}")
    with page.expect_download(timeout=30_000) as info:
        first.click()
    data = Path(info.value.path()).read_bytes()
    if not info.value.suggested_filename.endswith(".ipynb"):
        problems.append(f"the download is named {info.value.suggested_filename!r}")
    problems += copy_problems(data, solved)
    expected = prefix + urlsplit(href).path.lstrip("/")
    colab = page.get_by_role("link", name=COLAB_TEXT)
    links = [colab.nth(i).get_attribute("href") for i in range(colab.count())]
    if not links:
        problems.append(f"no link {COLAB_TEXT!r}")
    problems += [f"the Colab link opens {h}, not {expected}" for h in links if h != expected]
    launch = page.locator(".dropdown-launch-buttons a", has_text="Colab")
    if launch.count() != 1 or launch.first.get_attribute("href") != expected:
        problems.append(f"the Colab launch button does not open {expected}")
    menu = page.locator(".dropdown-download-buttons a", has_text="exercises")
    if menu.count() != 1 or menu.first.evaluate("a => a.href") != href:
        problems.append(f"the download menu does not offer {href}")
    if outside:
        problems.append(f"requests left the local server: {sorted(set(outside))}")
    return problems


# --------------------------------------------------------------------------- the book


@pytest.fixture(scope="module")
def html_server(pytestconfig):
    """The built book over HTTP (test_browser.py's server; its screenshots are left alone)."""
    if not book_pages():
        _unavailable(f"no built book in {HTML_DIR.relative_to(ROOT)} (run `make book` first)", pytestconfig)
    with StaticServer(HTML_DIR) as server:
        yield server


CHAPTERS = exercise_chapters()


@pytest.mark.parametrize("page_path", sorted(CHAPTERS))
def test_chapter_page_offers_its_learner_copy(page_path, html_server, page):
    solved = nbformat.read(CHAPTERS[page_path], as_version=4)
    problems = check_download_page(page, html_server.url + page_path, solved, colab_prefix())
    assert not problems, f"{page_path}:\n  " + "\n  ".join(problems)


def test_only_chapters_with_exercises_have_links(html_server):
    assert CHAPTERS, "no chapter has exercises"
    linked = {p for p in book_pages() if DOWNLOAD_TEXT in (HTML_DIR / p).read_text(errors="ignore")}
    assert linked == set(CHAPTERS)
    written = {p.relative_to(HTML_DIR / "_exercises").with_suffix(".html").as_posix()
               for p in (HTML_DIR / "_exercises").rglob("*.ipynb")}
    assert written == set(CHAPTERS)


# --------------------------------------------------------------------------- the check fails


def _site(directory: Path, solved, *, link=True, copy="good", colab_to="copy") -> str:
    """A one-page site like a chapter page; ``copy`` and ``colab_to`` choose what is broken."""
    learner = nbformat.from_dict(solved)
    if copy != "with-solution":
        learner.cells = [c for c in learner.cells if not is_solution(c)]
    target = directory / "_exercises/ch.ipynb"
    target.parent.mkdir(parents=True)
    target.write_text("{not json" if copy == "invalid" else nbformat.writes(learner))
    colab = colab_prefix() + ("_exercises/ch.ipynb" if colab_to == "copy" else "ch.ipynb")
    links = (f'<a href="_exercises/ch.ipynb" download="ch.ipynb">{DOWNLOAD_TEXT}</a> '
             f'<a href="{colab}">{COLAB_TEXT}</a>') if link else ""
    (directory / "ch.html").write_text(
        '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>'
        f'<div class="dropdown-launch-buttons"><a href="{colab}">Colab</a></div>'
        '<div class="dropdown-download-buttons"><a href="_exercises/ch.ipynb">exercises .ipynb</a></div>'
        f"<h1>Chapter</h1><p>{links}</p></body></html>")
    return "ch.html"


def _solved():
    nb = nbformat.v4.new_notebook()
    stub = nbformat.v4.new_code_cell("def f(x):\n    raise NotImplementedError")
    answer = nbformat.v4.new_code_cell("def f(x):\n    return x + 1")
    answer.metadata["tags"] = ["solution"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Chapter"), stub, answer, nbformat.v4.new_code_cell("check_f(f)")]
    return nb


@pytest.mark.parametrize("broken, expected", [
    ({}, None),
    ({"link": False}, "no link"),
    ({"copy": "with-solution"}, "tagged solution"),
    ({"copy": "invalid"}, "not a valid notebook"),
    ({"colab_to": "full"}, "the Colab link opens"),
])
def test_download_check_flags_broken_pages(broken, expected, browser, page, tmp_path):
    solved = _solved()
    name = _site(tmp_path, solved, **broken)
    with StaticServer(tmp_path) as server:
        problems = check_download_page(page, server.url + name, solved, colab_prefix())
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_copy_check_names_a_solution_left_untagged():
    solved = _solved()
    copy = nbformat.from_dict(solved)
    copy.cells[2].metadata["tags"] = []  # the solution's source kept, its tag dropped
    problems = copy_problems(json.dumps(copy).encode(), solved)
    assert any("a solution's source is in the copy" in p for p in problems), problems
