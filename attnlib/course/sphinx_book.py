"""A small Sphinx extension with the book's fixes to its theme and extensions (in ``_config.yml``).

Sphinx 7.4 writes some inline scripts that extensions add late into a page twice (once with
filename None, once with filename ""); sphinx-thebe's
``const THEBE_JS_URL = ...`` then throws "already declared" in every page. We keep the first copy.
"""
from __future__ import annotations


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
    # Run after every other html-page-context handler (MyST-NB adds per-page scripts there).
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
