"""The course is open to reuse and can be published: licenses, citation, the Pages workflow."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from attnlib.course.sphinx_book import PAGES_BRANCH

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


def _workflow():
    return yaml.safe_load((ROOT / ".github/workflows/book.yml").read_text())


def _publish_step(steps):
    [publish] = [s for s in steps if "git push" in s.get("run", "")]
    return publish


def test_pages_workflow_builds_with_the_makefile_and_publishes_the_html_on_the_pages_branch():
    workflow = _workflow()
    # YAML reads the key `on` as True
    triggers = workflow.get("on", workflow.get(True))
    assert triggers["push"]["branches"] == ["main"]
    assert workflow["permissions"]["contents"] == "write", "pushing the Pages branch needs contents: write"
    build = workflow["jobs"]["build"]["steps"]
    publish = _publish_step(build)
    runs = [s["run"] for s in build if "run" in s and s is not publish]
    assert runs == ["make book"], f"the build must be the Makefile's, got {runs}"
    assert build.index(publish) > [s.get("run") for s in build].index("make book")
    # It publishes exactly the built site, only from main, to the branch the Colab links name.
    assert publish["working-directory"] == "_build/html"
    assert publish["if"] == "github.ref == 'refs/heads/main'"
    push = [line for line in publish["run"].splitlines() if "git push" in line]
    assert push and push[0].split()[-1] == PAGES_BRANCH, push
    assert "secrets.GITHUB_TOKEN" in publish["env"]["GITHUB_TOKEN"]
    python = [s["with"]["python-version"] for s in build if s.get("uses", "").startswith("actions/setup-python")]
    ci_python = re.search(r"You need Python (\d+\.\d+)", (ROOT / "README.md").read_text())
    assert ci_python and python == [ci_python.group(1)], "the workflow's Python differs from the README's"


def _site(directory: Path, nojekyll: bool = True) -> Path:
    """A tiny built site: a page, a learner copy under _exercises/ and (optionally) .nojekyll."""
    (directory / "_exercises/chapters").mkdir(parents=True)
    (directory / "index.html").write_text("<p>book</p>")
    (directory / "_exercises/chapters/01.ipynb").write_text("{}")
    if nojekyll:
        (directory / ".nojekyll").write_text("")
    return directory


def _run_publish_step(site: Path, remote: Path) -> subprocess.CompletedProcess:
    """Run the workflow's publish script in ``site``, its GitHub push redirected to ``remote``."""
    script = _publish_step(_workflow()["jobs"]["build"]["steps"])["run"]
    env = {**os.environ, "GITHUB_TOKEN": "token", "GITHUB_SHA": "abc123", "GITHUB_REPOSITORY": "org/repo",
           "HOME": str(site.parent), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_COUNT": "1",
           "GIT_CONFIG_KEY_0": f"url.{remote.as_uri()}.insteadOf",
           "GIT_CONFIG_VALUE_0": "https://x-access-token:token@github.com/org/repo.git"}
    return subprocess.run(["bash", "-e", "-c", script], cwd=site, env=env, capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_publish_step_pushes_the_whole_site_to_the_pages_branch(tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    done = _run_publish_step(_site(tmp_path / "html"), remote)
    assert done.returncode == 0, done.stderr
    files = subprocess.run(["git", "--git-dir", str(remote), "ls-tree", "-r", "--name-only", PAGES_BRANCH],
                           capture_output=True, text=True, check=True).stdout.split()
    assert sorted(files) == [".nojekyll", "_exercises/chapters/01.ipynb", "index.html"]
    # Without .nojekyll, GitHub Pages would run Jekyll and drop _exercises/ and _static/: refused.
    remote2 = tmp_path / "remote2.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote2)], check=True)
    assert _run_publish_step(_site(tmp_path / "bare", nojekyll=False), remote2).returncode != 0


def test_the_book_writes_nojekyll():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "sphinx.ext.githubpages" in config["sphinx"]["extra_extensions"]
