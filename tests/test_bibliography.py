"""The bibliography parses, has no duplicate keys, and every {cite} in a chapter names an entry."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
from pybtex.database import parse_file

from attnlib.course import notebooks as cn

BIB = Path(cn.ROOT) / "chapters" / "appendix" / "references.bib"


def test_bibliography_parses_without_duplicates():
    text = BIB.read_text()
    keys = re.findall(r"^@\w+\{([^,]+),", text, re.M)
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    assert len(parse_file(str(BIB)).entries) == len(keys)


def test_every_citation_has_an_entry():
    keys = set(parse_file(str(BIB)).entries)
    missing = set()
    for path in cn.chapter_notebooks():
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", cell.source):
                    missing |= {k.strip() for k in group.split(",")} - keys
    assert not missing, f"cited but not in references.bib: {sorted(missing)}"
