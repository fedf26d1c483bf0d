"""The built book for every reader and every screen, in headless Chromium (``make book`` first).

Each chapter page (every page under ``chapters/``) is served from a local HTTP server and opened
in Debian's headless Chromium, as in ``tests/test_browser.py`` (whose server, browser and
skip rules this file reuses). A page passes when

* every ``<img>`` on it, the pictures the widget manager draws for the explorers included, has
  alt text that says something: not missing, not blank, not the image's file name or address
  (what Sphinx writes when a figure has no alt), so a screen reader conveys the figure;
* at phone width (390 px) and desktop width (1280 px), no display formula and no table is wider
  than the text column unless it scrolls sideways inside it: one that does not fit has a
  scrolling container within the column (``overflow-x: auto``) that does not also cut its
  content at the top or bottom; and the page itself does not scroll sideways, so nothing
  (a long inline code name, say) pushes the text off a phone's screen.

``test_phone_and_desktop_screenshots`` writes full-page screenshots of three chapters at both
widths to ``_build/screenshots/a11y/`` for a human look. ``test_checks_flag_broken_pages`` proves every check fails on a crafted
page (an image without alt, one whose alt is its file name, a formula that is cut, a table
wider than the column, a page wider than the phone) and passes on a clean one.

Without Chromium or the built book the tests skip, saying why; with ``CI=true`` they fail.
"""
from __future__ import annotations

import pytest
from test_browser import (
    HTML_DIR,
    ROOT,
    SCREENSHOT_DIR,
    StaticServer,
    _is_local,
    _unavailable,
    book_pages,
    browser,  # noqa: F401 - the module-scoped headless Chromium fixture
)

pytestmark = pytest.mark.browser

WIDTHS = {"phone": 390, "desktop": 1280}
SHOT_DIR = SCREENSHOT_DIR / "a11y"
SHOT_PAGES = ("chapters/01_foundations/06_masking.html",
              "chapters/01_foundations/07_multi_head_attention.html",
              "chapters/03_transformer/15_gpt.html")


def chapter_pages() -> list[str]:
    return [p for p in book_pages() if p.startswith("chapters/")]


def _params():
    return chapter_pages() or [pytest.param(None, id="no-built-book")]


@pytest.fixture(scope="module")
def server(pytestconfig):
    """The built book on 127.0.0.1 (test_browser's fixture also empties the screenshot folder)."""
    if not chapter_pages():
        _unavailable(f"no built book in {HTML_DIR.relative_to(ROOT)} (run `make book` first)", pytestconfig)
    with StaticServer(HTML_DIR) as s:
        yield s


def _open(browser, url: str, width: int):  # noqa: F811 - the fixture's value
    """A fresh page at ``width`` px, loaded, with its formulas typeset and its widgets drawn."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.route("**/*", lambda route: route.continue_() if _is_local(route.request.url) else route.abort())
    page.goto(url, wait_until="load")
    page.evaluate("() => { for (const i of document.images) i.loading = 'eager'; }")
    if page.evaluate("() => document.querySelector('script[src*=\"mathjax\"]') !== null"):
        try:
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                   timeout=20_000)
            page.evaluate("() => MathJax.startup.promise.then(() => true)")
        except Exception:
            pass  # test_browser.py reports MathJax failures; here the layout is checked as it is
    if page.evaluate("() => document.querySelector('script[type=\"application/vnd.jupyter.widget-state+json\"]')"
                     " !== null"):
        try:  # every widget view drawn next to its script tag (what test_browser.py waits for)
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll("
                "'script[type=\"application/vnd.jupyter.widget-view+json\"]'))"
                ".every(s => s.parentElement.querySelector('.jupyter-widgets'))", timeout=20_000)
        except Exception:
            pass
    page.wait_for_timeout(300)
    return page


# --------------------------------------------------------------------------- the checks

# Images whose alt text says nothing: missing, blank, or the image's own file name or address.
_BAD_ALT_JS = """() => Array.from(document.images).map(img => {
    const alt = (img.getAttribute('alt') || '').trim();
    const src = img.getAttribute('src') || '';
    const file = src.split(/[?#]/)[0].split('/').pop();
    const where = img.closest('.jupyter-widgets') ? 'widget picture' : 'image';
    const what = `${where} ${src.startsWith('data:') || src.startsWith('blob:') ? src.slice(0, 30) + '...' : src}`;
    if (img.getAttribute('alt') === null) return `${what} has no alt attribute`;
    if (!alt) return `${what} has an empty alt`;
    if (alt === src || alt === file || alt.endsWith('/' + file) || /^[^\\s]+\\.(png|jpe?g|gif|svg|webp)$/i.test(alt))
        return `${what} has its file name as alt (${alt.slice(0, 60)})`;
    return null;
}).filter(x => x)"""

# Display formulas and tables that do not fit the text column and cannot be scrolled to.
_OVERFLOW_JS = """() => {
    const col = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
    const cr = col.getBoundingClientRect();
    const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
    const name = el => {
        const text = (el.querySelector('mjx-assistive-mml') || el).textContent.trim().replace(/\\s+/g, ' ');
        return `${el.matches('table') ? 'table' : 'formula'} "${text.slice(0, 50)}"`;
    };
    const out = new Set();
    for (const el of col.querySelectorAll('mjx-container[display="true"], div.math, table')) {
        if (!el.getClientRects().length) continue;  // not displayed: a closed dropdown, say
        let scroller = null;  // the nearest scrolling box from the element up to the column
        for (let a = el; a && a !== col; a = a.parentElement) if (scrolls(a)) { scroller = a; break; }
        const box = (scroller || el).getBoundingClientRect();
        if (box.right > cr.right + 1 || box.left < cr.left - 1)
            out.add(`${name(el)} is wider than the text column (${Math.round(box.left)}-${Math.round(box.right)} px, `
                    + `column ${Math.round(cr.left)}-${Math.round(cr.right)} px)`);
        else if (el.scrollWidth > el.clientWidth + 1 && !scroller)
            out.add(`${name(el)} is cut: ${el.scrollWidth} px of content in ${el.clientWidth} px, nothing scrolls`);
        else if (scroller && scroller.scrollWidth > scroller.clientWidth + 1
                 && getComputedStyle(scroller).overflowY !== 'visible'
                 && scroller.scrollHeight > scroller.clientHeight + 1)
            out.add(`${name(el)} scrolls but is cut at the top or bottom `
                    + `(${scroller.scrollHeight} px of content in ${scroller.clientHeight} px)`);
    }
    return [...out];
}"""

_PAGE_WIDTH_JS = "() => [document.documentElement.scrollWidth, window.innerWidth]"

# The outermost elements that stick out of the viewport with nothing clipping them (why a page
# scrolls sideways), for the report.
_WIDE_ELEMENTS_JS = """() => {
    const clipped = el => { for (let a = el.parentElement; a && a !== document.body; a = a.parentElement)
        if (getComputedStyle(a).overflowX !== 'visible') return true; return false; };
    const out = [];
    for (const el of document.querySelectorAll('body *')) {
        const s = getComputedStyle(el);
        if (s.position === 'fixed') continue;
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.right > innerWidth + 1 && !clipped(el)
                && el.parentElement.getBoundingClientRect().right <= innerWidth + 1)
            out.push(`<${el.tagName.toLowerCase()} class="${el.className}"> "${el.textContent.trim().slice(0, 40)}"`
                     + ` reaches ${Math.round(r.right)} px`);
    }
    return out.slice(0, 5);
}"""


def alt_problems(page) -> list[str]:
    return page.evaluate(_BAD_ALT_JS)


def overflow_problems(page) -> list[str]:
    problems = page.evaluate(_OVERFLOW_JS)
    width, viewport = page.evaluate(_PAGE_WIDTH_JS)
    if width > viewport + 1:
        problems.append(f"the page scrolls sideways: {width} px wide in a {viewport} px window; "
                        + "; ".join(page.evaluate(_WIDE_ELEMENTS_JS)))
    return problems


# --------------------------------------------------------------------------- the book


@pytest.mark.parametrize("page_path", _params())
def test_every_image_has_alt_text(page_path, server, browser):  # noqa: F811
    assert page_path is not None
    page = _open(browser, server.url + page_path, WIDTHS["desktop"])
    try:
        problems = alt_problems(page)
        count = page.evaluate("() => document.images.length")
    finally:
        page.context.close()
    assert not problems, f"{page_path}: {len(problems)} of {count} images say nothing:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("width", list(WIDTHS), ids=list(WIDTHS))
@pytest.mark.parametrize("page_path", _params())
def test_formulas_and_tables_fit_or_scroll(page_path, width, server, browser):  # noqa: F811
    assert page_path is not None
    page = _open(browser, server.url + page_path, WIDTHS[width])
    try:
        problems = overflow_problems(page)
    finally:
        page.context.close()
    assert not problems, f"{page_path} at {WIDTHS[width]} px:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page_path", SHOT_PAGES)
def test_phone_and_desktop_screenshots(page_path, server, browser):  # noqa: F811
    if not (HTML_DIR / page_path).is_file():
        pytest.skip(f"{page_path} is not in the built book")
    SHOT_DIR.mkdir(parents=True, exist_ok=True)
    for width, px in WIDTHS.items():
        page = _open(browser, server.url + page_path, px)
        try:
            page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")  # lazy images
            page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=10_000)
            page.evaluate("() => window.scrollTo(0, 0)")
            shot = SHOT_DIR / f"{page_path.split('/')[-1].removesuffix('.html')}__{width}_{px}px.png"
            page.screenshot(path=str(shot), full_page=True)  # the whole page: the explorers sit low
        finally:
            page.context.close()
        assert shot.stat().st_size > 0


# --------------------------------------------------------------------------- self-test

_PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a2fd7fa9"
    "0000000049454e44ae426082"
)

_STYLE = """<style>body { margin: 0; } article.bd-article { width: 300px; margin-left: 40px; }
div.scroll { overflow-x: auto; } .wide { width: 600px; display: block; }</style>"""

_GOOD = f"""<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">{_STYLE}</head>
<body><article class="bd-article"><p>Text.</p>
<img src="dot.png" alt="A single black dot on white: the smallest picture there is.">
<div class="math"><div class="scroll"><span class="wide">a formula wider than the column, scrolled</span></div></div>
<div class="scroll"><table><tr><td class="wide">a wide table in a scrolling box</td></tr></table></div>
</article></body></html>"""

_BAD = f"""<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">{_STYLE}</head>
<body><article class="bd-article">
<img src="dot.png"><img src="dot.png" alt="  "><img src="_images/dot.png" alt="_images/dot.png">
<div class="math" style="overflow: hidden"><span class="wide">E = mc^2, cut at the right edge</span></div>
<table class="wide"><tr><td>a table wider than the column</td></tr></table>
<p><code style="white-space: nowrap">a_very_long_inline_code_name_that_pushes_the_page_sideways_on_a_phone()</code></p>
</article></body></html>"""


def test_checks_flag_broken_pages(browser, tmp_path):  # noqa: F811
    """Each check fails on the crafted broken page, for its reason, and passes on the clean one."""
    (tmp_path / "_images").mkdir()
    for path in (tmp_path / "dot.png", tmp_path / "_images" / "dot.png"):
        path.write_bytes(_PNG_1PX)
    (tmp_path / "good.html").write_text(_GOOD, encoding="utf-8")
    (tmp_path / "bad.html").write_text(_BAD, encoding="utf-8")
    found = {}
    with StaticServer(tmp_path) as s:
        for name in ("good.html", "bad.html"):
            page = _open(browser, s.url + name, 390)
            try:
                found[name] = (alt_problems(page), overflow_problems(page))
            finally:
                page.context.close()
    assert found["good.html"] == ([], []), f"false alarms on a clean page: {found['good.html']}"
    alts, overflows = found["bad.html"]
    assert [a.split(" has ")[1].split(" (")[0] for a in alts] == [
        "no alt attribute", "an empty alt", "its file name as alt"], alts
    report = "\n".join(overflows)
    for expected in ('formula "E = mc^2, cut at the right edge" is cut', 'table "a table wider than the column" is wider',
                     "the page scrolls sideways", "a_very_long_inline_code_name"):
        assert expected in report, (expected, overflows)
