"""Progress across the course (attnlib.exercises.progress): what the checkers record, and where.

The rule for *solved*, chosen here and tested below: an exercise is solved once it has passed, and
stays solved when a later check fails (the latest status is kept beside it); only a reset clears it.
Every test uses its own file under ``tmp_path``; none touches a user's record.
"""
from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest

import attnlib.exercises
from attnlib.exercises import masking, positional_encoding, why_attention
from attnlib.exercises.core import Chapter, Mistake, Prediction

P = importlib.import_module("attnlib.exercises.progress")  # the package's `progress` is the function
ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"


def _stub(*args):
    raise NotImplementedError


def _forgot_scale(Q, K):
    return Q @ np.swapaxes(K, -1, -2)


@pytest.fixture
def record_file(tmp_path, monkeypatch):
    """A fresh progress file for one test, with this session's memory of messages and checks cleared."""
    path = tmp_path / "data" / "progress.json"
    monkeypatch.setenv(P.ENV, str(path))
    monkeypatch.setattr(P, "_SAID", set())
    monkeypatch.setattr(P, "_BEFORE", {})
    for module in (why_attention, masking, positional_encoding):
        module.reset()
    yield path
    for module in (why_attention, masking, positional_encoding):
        module.reset()


def _entry(path: Path, chapter: str, name: str) -> dict:
    return json.loads(path.read_text())["chapters"][chapter]["results"][name]


# ----------------------------------------------------------------------------- where

def test_location_follows_the_variable_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv(P.ENV, str(tmp_path / "mine.json"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert P.progress_file() == tmp_path / "mine.json"
    monkeypatch.delenv(P.ENV)
    assert P.progress_file() == tmp_path / "xdg" / "attnlib" / "progress.json"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")  # the XDG spec says: ignore a relative path
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert P.progress_file() == tmp_path / "home" / ".local" / "share" / "attnlib" / "progress.json"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert P.progress_file() == tmp_path / "home" / ".local" / "share" / "attnlib" / "progress.json"
    assert "cache" not in str(P.progress_file()).lower()


def test_the_test_session_never_uses_the_users_file():
    """tests/conftest.py points the variable into a temporary folder at import, for every test."""
    path = Path(os.environ[P.ENV])
    assert path.parent.name.startswith(P.TEMPORARY_PREFIX)
    assert "temporary file of this run" in str(attnlib.exercises.progress())
    assert not str(path).startswith(str(Path.home() / ".local"))


# ----------------------------------------------------------------------------- recording

def test_a_pass_a_failure_and_a_stub_are_recorded(record_file):
    assert not record_file.exists()
    assert why_attention.check_scores(why_attention._scores).passed
    assert why_attention.check_weights(_stub).status == "unsolved"
    assert why_attention.check_attention(lambda Q, K, V, mask: V).status == "failed"
    data = json.loads(record_file.read_text())
    chapter = data["chapters"]["why_attention"]
    assert chapter["exercises"] == ["scores", "weights", "attention"] and chapter["total"] == 3
    assert chapter["number"] == 1 and chapter["notebook"] == "chapters/00_start/01_why_attention.ipynb"
    scores, weights, attention = (chapter["results"][n] for n in ("scores", "weights", "attention"))
    assert scores["solved"] and scores["status"] == "passed" and scores["first_solved"] == scores["last_checked"]
    assert not weights["solved"] and weights["status"] == "unsolved" and weights["first_solved"] is None
    assert not attention["solved"] and attention["status"] == "failed"
    assert [scores["checks"], weights["checks"], attention["checks"]] == [1, 1, 1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", scores["last_checked"])


def test_solved_stays_solved_after_a_later_failure(record_file, monkeypatch):
    """The chosen rule: once passed, solved; a later failing check only changes the latest status."""
    clock = ["2025-01-01T10:00:00Z"]
    monkeypatch.setattr(P, "_now", lambda: clock[0])
    why_attention.check_scores(why_attention._scores)
    clock[0] = "2025-01-01T11:00:00Z"
    why_attention.check_scores(_forgot_scale)
    entry = _entry(record_file, "why_attention", "scores")
    assert entry == {"solved": True, "status": "failed", "checks": 2,
                     "first_solved": "2025-01-01T10:00:00Z", "last_checked": "2025-01-01T11:00:00Z"}
    assert attnlib.exercises.progress()["why_attention"].solved == ("scores",)
    clock[0] = "2025-01-01T12:00:00Z"
    why_attention.check_scores(why_attention._scores)  # passing again keeps the first time it was solved
    assert _entry(record_file, "why_attention", "scores")["first_solved"] == "2025-01-01T10:00:00Z"


def test_a_pass_the_chapter_takes_back_is_not_recorded_as_solved(record_file):
    """masking.check_combined_mask fails a mask with the right pattern but a float dtype after
    Chapter.check passed it, by setting the status again: that amends the check, it is not a pass."""
    float_mask = lambda lengths, max_len: masking._combined(lengths, max_len).astype(float)  # noqa: E731
    result = masking.check_combined_mask(float_mask)
    assert result.status == "failed" and "dtype" in result.message
    entry = _entry(record_file, "masking", "combined_mask")
    assert entry["solved"] is False and entry["status"] == "failed" and entry["checks"] == 1
    assert masking.check_combined_mask(masking._combined).passed
    entry = _entry(record_file, "masking", "combined_mask")
    assert entry["solved"] is True and entry["checks"] == 2
    masking.check_combined_mask(float_mask)  # solved before, so an amended later check keeps it solved
    assert _entry(record_file, "masking", "combined_mask")["solved"] is True


def test_a_prediction_is_recorded_like_a_function(record_file):
    """The other kind of exercise, a number to predict, goes through the same Chapter.check."""
    cache = Prediction(name="cache bytes", question="How many bytes?", measure=lambda: 4096.0,
                       mistakes=(Mistake("bits", "You counted bits.", lambda: 4096.0 * 8),), unit="bytes")
    chapter = Chapter("Predictions", [cache], key="predicting")
    assert chapter.check(cache, None).status == "unsolved"
    assert _entry(record_file, "predicting", "cache bytes")["status"] == "unsolved"
    assert chapter.check(cache, 4096 * 8).mistake == "bits"
    assert _entry(record_file, "predicting", "cache bytes")["solved"] is False
    assert chapter.check(cache, 4096).passed
    entry = _entry(record_file, "predicting", "cache bytes")
    assert entry["solved"] is True and entry["checks"] == 3


def test_a_chapter_is_keyed_by_the_module_that_made_it(record_file):
    assert why_attention._CHAPTER.key == "why_attention" and masking._CHAPTER.key == "masking"
    here = Chapter("A chapter made in a test", list(why_attention._CHAPTER.exercises))
    assert here.key == "test_progress"
    assert Chapter("named", [], key="mine").key == "mine"


def test_progress_survives_a_restart_of_the_kernel(tmp_path):
    """One interpreter records; a second, started afterwards, reads it back through progress()."""
    env = {**os.environ, P.ENV: str(tmp_path / "progress.json"), "PYTHONPATH": str(ROOT)}
    first = textwrap.dedent("""
        from attnlib.exercises import positional_encoding as ex, why_attention as w
        from attnlib.numpy.positional import sinusoidal_positional_encoding
        print(ex.check_sinusoidal(sinusoidal_positional_encoding).status, w.check_scores(w._scores).status)
    """)
    second = textwrap.dedent("""
        import json
        import attnlib.exercises
        p = attnlib.exercises.progress()
        print(json.dumps({c.key: [list(c.solved), list(c.left)] for c in p.chapters}))
        print(p)
    """)
    out1 = subprocess.run([sys.executable, "-c", first], env=env, capture_output=True, text=True, check=True)
    assert out1.stdout.split() == ["passed", "passed"]
    out2 = subprocess.run([sys.executable, "-c", second], env=env, capture_output=True, text=True, check=True)
    seen = json.loads(out2.stdout.splitlines()[0])
    assert seen["positional_encoding"][0] == ["sinusoidal encoding"]
    assert "RoPE" in seen["positional_encoding"][1] and "sinusoidal encoding" not in seen["positional_encoding"][1]
    assert seen["why_attention"] == [["scores"], ["weights", "attention"]]
    assert seen["masking"][0] == []
    assert re.search(r"^ *1 +why_attention +Why attention, by hand +1 of 3 +weights, attention", out2.stdout, re.M)


# ----------------------------------------------------------------------------- missing, corrupt, unwritable

def test_a_missing_file_is_an_empty_course_and_reading_writes_nothing(record_file):
    p = attnlib.exercises.progress()
    assert p.solved == 0 and p.total == sum(c.total for c in p.chapters) > 0
    assert all(c.left == c.exercises for c in p.chapters)
    assert not record_file.exists() and not record_file.parent.exists()


@pytest.mark.parametrize("content", [
    b"{not json", b"", b"\xff\xfe\x00", b"[]", b'{"schema": 99, "chapters": {}}',
    b'{"schema": 1, "chapters": {"masking": {"results": {"combined_mask": {"solved": "yes", "status": "passed"}}}}}',
    b'{"schema": 1, "chapters": {"masking": []}}',
], ids=["invalid", "empty", "not-utf8", "a-list", "other-schema", "solved-not-bool", "chapter-not-object"])
def test_a_corrupt_file_is_moved_aside_and_recording_goes_on(record_file, content, capsys):
    record_file.parent.mkdir(parents=True)
    record_file.write_bytes(content)
    assert why_attention.check_scores(why_attention._scores).passed
    aside = list(record_file.parent.glob("progress.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content  # nothing lost
    assert re.fullmatch(r"progress\.json\.corrupt-\d{8}T\d{6}Z", aside[0].name)
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1
    assert str(record_file) in message and str(aside[0]) in message and "fresh file" in message
    assert _entry(record_file, "why_attention", "scores")["solved"] is True
    why_attention.check_weights(why_attention._weights)  # the fresh file is fine: nothing more is moved
    assert len(list(record_file.parent.glob("progress.json.corrupt-*"))) == 1
    assert capsys.readouterr().err == ""


def test_a_second_corruption_does_not_overwrite_the_first(record_file, capsys):
    record_file.parent.mkdir(parents=True)
    for text in ("first", "second"):
        record_file.write_text(text)
        attnlib.exercises.progress()
    kept = sorted(p.read_text() for p in record_file.parent.glob("progress.json.corrupt-*"))
    assert kept == ["first", "second"]
    assert len(capsys.readouterr().err.strip().splitlines()) == 2


def test_an_unwritable_location_warns_once_and_the_checker_still_answers(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the folder should be")  # fails for root too, unlike chmod
    monkeypatch.setenv(P.ENV, str(blocker / "progress.json"))
    monkeypatch.setattr(P, "_SAID", set())
    first = why_attention.check_scores(why_attention._scores)
    second = why_attention.check_scores(_forgot_scale)
    assert first.passed and second.status == "failed" and second.mistake is not None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(blocker / "progress.json") in err[0] and P.ENV in err[0]
    assert attnlib.exercises.progress().solved == 0  # shows an empty course, does not raise
    why_attention.reset()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes through permissions")
def test_a_read_only_folder_warns_once(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        monkeypatch.setenv(P.ENV, str(folder / "progress.json"))
        monkeypatch.setattr(P, "_SAID", set())
        assert why_attention.check_scores(why_attention._scores).passed
        assert why_attention.check_scores(why_attention._scores).passed
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    finally:
        folder.chmod(0o700)
        why_attention.reset()


# ----------------------------------------------------------------------------- reset

def test_reset_one_chapter_then_all(record_file):
    from attnlib.numpy.positional import sinusoidal_positional_encoding

    why_attention.check_scores(why_attention._scores)
    positional_encoding.check_sinusoidal(sinusoidal_positional_encoding)
    p = attnlib.exercises.reset_progress("why_attention")
    assert p["why_attention"].solved == () and p["positional_encoding"].solved == ("sinusoidal encoding",)
    assert why_attention._CHAPTER.results == {}  # report() counts from zero too
    data = json.loads(record_file.read_text())
    assert "why_attention" not in data["chapters"] and data["resets"][-1]["chapter"] == "why_attention"

    p = attnlib.exercises.progress().reset()
    assert p.solved == 0 and positional_encoding._CHAPTER.results == {}
    data = json.loads(record_file.read_text())
    assert data["chapters"] == {} and [r["chapter"] for r in data["resets"]] == ["why_attention", "all"]


def test_reset_accepts_a_module_or_a_number_and_rejects_unknown_chapters(record_file):
    from attnlib.numpy.positional import sinusoidal_positional_encoding

    positional_encoding.check_sinusoidal(sinusoidal_positional_encoding)
    assert attnlib.exercises.reset_progress(3)["positional_encoding"].solved == ()
    positional_encoding.check_sinusoidal(sinusoidal_positional_encoding)
    assert attnlib.exercises.reset_progress(positional_encoding)["positional_encoding"].solved == ()
    with pytest.raises(ValueError, match="no chapter 'positional'"):
        attnlib.exercises.reset_progress("positional")
    with pytest.raises(ValueError, match="no chapter number 99"):
        attnlib.exercises.reset_progress(99)


# ----------------------------------------------------------------------------- the course at a glance

def _notebook_modules() -> dict[str, set[str]]:
    """Chapter notebook (relative to chapters/) -> the attnlib.exercises modules its code imports."""
    found = {}
    for path in sorted(CHAPTERS.glob("*/*.ipynb")):
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        mods = set(re.findall(r"from attnlib\.exercises import (\w+)", code))
        mods |= set(re.findall(r"attnlib\.exercises\.(\w+)", code))
        found[path.relative_to(CHAPTERS).as_posix()] = mods - {"core", "progress"}
    return found


def _toc_order() -> list[str]:
    return [m + ".ipynb" for m in re.findall(r"file:\s*chapters/(\S+)", (ROOT / "_toc.yml").read_text())]


def test_the_registry_matches_the_chapter_notebooks():
    """Every chapter notebook that imports attnlib.exercises.<mod> is in the course's registry, in
    the table of contents' order; the welcome page may demonstrate another chapter's checker."""
    registry = dict(P.COURSE)
    for notebook, mods in _notebook_modules().items():
        if notebook == "00_start/00_welcome.ipynb":
            assert mods <= set(registry)
            continue
        for mod in mods:
            assert mod in registry, f"{notebook} imports attnlib.exercises.{mod}, which progress() does not know"
            assert registry[mod] == notebook, f"attnlib.exercises.{mod} is registered for {registry[mod]}"
    toc = [n for n in _toc_order() if n in set(registry.values())]
    assert [n for _, n in P.COURSE] == toc
    assert len(set(registry.values())) == len(P.COURSE)


def test_the_totals_are_each_modules_exercises(record_file):
    """Totals come from the modules themselves (a new exercise counts at once), and match the
    number of learner-facing check_* functions each module exports."""
    p = attnlib.exercises.progress()
    assert [c.key for c in p.chapters[:len(P.COURSE)]] == [k for k, _ in P.COURSE]
    for row in p.chapters[:len(P.COURSE)]:
        module = importlib.import_module(f"attnlib.exercises.{row.key}")
        chapter = next(v for v in vars(module).values() if isinstance(v, Chapter))
        assert row.exercises == tuple(e.name for e in chapter.exercises)
        assert row.total == len([n for n in module.__all__ if n.startswith("check_")]), row.key
        assert row.number == int(Path(row.notebook).name[:2]) and row.title == chapter.title
    assert p.total == sum(len(next(v for v in vars(importlib.import_module(f"attnlib.exercises.{k}")).values()
                                   if isinstance(v, Chapter)).exercises) for k, _ in P.COURSE)


def test_the_html_and_text_views(record_file):
    why_attention.check_scores(why_attention._scores)
    Chapter("Not in the course", list(why_attention._CHAPTER.exercises[:1]), key="my_own").check(
        why_attention.SCORES, why_attention._scores)
    p = attnlib.exercises.progress()
    html, text = p._repr_html_(), str(p)
    assert p.chapters[-1].key == "my_own" and p.chapters[-1].solved == ("scores",)
    assert '<a href="../00_start/01_why_attention.html">Why attention, by hand</a>' in html
    assert '<a href="../03_transformer/16_pretrained_encoder.ipynb">notebook</a>' in html
    assert "<td>1 of 3</td><td>weights, attention</td>" in html and "all solved" in html
    for notebook in (n for _, n in P.COURSE):
        assert (CHAPTERS / notebook).exists()  # every link points at a real notebook (and its page)
    assert text.splitlines()[0] == f"Exercises solved across the course: 2 of {p.total}"
    assert str(record_file) in text.splitlines()[-1]
    assert "<a " not in text and "<td>" not in text


# ----------------------------------------------------------------------------- the course's own runs

def _probe_notebook(path: Path, user_file: Path) -> None:
    """A notebook that runs a checker and fails unless its kernel records somewhere else than ``user_file``."""
    code = textwrap.dedent(f"""
        import os
        from attnlib.exercises import why_attention as ex
        print(ex.check_scores(ex._scores).status)
        where = os.environ.get("{P.ENV}", "")
        assert where and where != {str(user_file)!r} and os.path.exists(where), where
        print(where)
    """)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), path)


def test_make_execute_kernels_record_into_a_temporary_file(tmp_path, monkeypatch):
    from attnlib.course.execute import execute

    user_file = tmp_path / "user" / "progress.json"
    monkeypatch.setenv(P.ENV, str(user_file))  # as if the user had chosen this file
    notebook = tmp_path / "probe.ipynb"
    _probe_notebook(notebook, user_file)
    execute(notebook, timeout=120, baseline=set())
    out = "".join(o.get("text", "") for c in nbformat.read(notebook, as_version=4).cells
                  if c.cell_type == "code" for o in c.get("outputs", []))
    status, where = out.split()
    assert status == "passed" and P.TEMPORARY_PREFIX in where
    assert not user_file.exists() and not Path(where).exists()  # the temporary folder is gone
    assert os.environ[P.ENV] == str(user_file)  # and the variable is restored


@pytest.mark.parametrize("conftest_dir", ["tests", "chapters"])
def test_nbval_kernels_inherit_the_conftests_temporary_file(tmp_path, conftest_dir):
    """pytest imports a conftest before it starts nbval's kernels, which inherit os.environ: loaded as a
    plugin, each conftest that runs notebooks must redirect their checkers away from the user's file."""
    user_file = tmp_path / "user" / "progress.json"
    notebook = tmp_path / "probe.ipynb"
    _probe_notebook(notebook, user_file)
    env = {**os.environ, P.ENV: str(user_file), "HOME": str(tmp_path / "home"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / conftest_dir), str(ROOT)])}
    env.pop("XDG_DATA_HOME", None)
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conftest", "-q",
                          "--nbval-lax", "--nbval-current-env", "--rootdir", str(tmp_path), str(notebook)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert not user_file.exists() and not (tmp_path / "home" / ".local").exists()
