"""The course is open to reuse and can be published: licenses, citation, the Pages workflow."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_code_is_mit_and_text_is_cc_by():
    code = (ROOT / "LICENSE").read_text()
    assert code.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in code
    content = (ROOT / "LICENSE-CONTENT.md").read_text()
    assert "CC BY 4.0" in content and "creativecommons.org/licenses/by/4.0" in content


def test_every_shipped_data_file_has_a_provenance_line():
    content = (ROOT / "LICENSE-CONTENT.md").read_text()
    shipped = sorted(p.name for p in (ROOT / "attnlib/data/files").iterdir() if not p.name.startswith("."))
    assert shipped, "attnlib/data/files is empty"
    for name in shipped:
        stem = name.split(".")[0]
        assert stem in content, f"{name} ships in attnlib/data/files but LICENSE-CONTENT.md does not name it"
    assert "Python Software Foundation License" in content


def test_readme_and_footer_state_the_licenses():
    readme = (ROOT / "README.md").read_text()
    assert "MIT" in readme and "CC BY 4.0" in readme and "CITATION.cff" in readme
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    footer = config["html"]["extra_footer"]
    assert "CC BY 4.0" in footer and "MIT" in footer and "LICENSE-CONTENT.md" in footer


def test_citation_file_is_valid_cff():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    for key in ("cff-version", "message", "title", "authors", "license", "repository-code"):
        assert key in cff, f"CITATION.cff lacks {key}"
    assert cff["license"] == "MIT"
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cff["repository-code"] == config["repository"]["url"]
    project = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{cff["version"]}"' in project, "CITATION.cff's version differs from pyproject.toml's"


def test_pages_workflow_builds_with_the_makefile_and_deploys_the_html():
    workflow = yaml.safe_load((ROOT / ".github/workflows/book.yml").read_text())
    # YAML reads the key `on` as True
    triggers = workflow.get("on", workflow.get(True))
    assert triggers["push"]["branches"] == ["main"]
    assert workflow["permissions"]["pages"] == "write" and workflow["permissions"]["id-token"] == "write"
    build = workflow["jobs"]["build"]["steps"]
    runs = [s["run"] for s in build if "run" in s]
    assert runs == ["make book"], f"the build must be the Makefile's, got {runs}"
    uploads = [s for s in build if s.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert uploads and uploads[0]["with"]["path"] == "_build/html"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in deploy["steps"])
    python = [s["with"]["python-version"] for s in build if s.get("uses", "").startswith("actions/setup-python")]
    ci_python = re.search(r"You need Python (\d+\.\d+)", (ROOT / "README.md").read_text())
    assert ci_python and python == [ci_python.group(1)], "the workflow's Python differs from the README's"
