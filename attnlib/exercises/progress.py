"""Progress across the course: what a learner has solved, kept in a small file on their machine.

Every check a chapter's checker makes goes through :meth:`attnlib.exercises.core.Chapter.check`,
which records it here. Nothing is ever sent anywhere: the record is one JSON file, at

1. ``$ATTNLIB_PROGRESS_FILE`` when that is set;
2. else ``$XDG_DATA_HOME/attnlib/progress.json``;
3. else ``~/.local/share/attnlib/progress.json``.

It is the learner's data, not a cache, so it never lives under a cache directory (which may be
wiped). The course's own runs (``make execute``, the tests, nbval) point
``ATTNLIB_PROGRESS_FILE`` at a temporary file (:func:`temporary_progress_file`), so they never
touch a learner's record.

The file, schema 1::

    {"schema": 1, "about": "...", "updated": "2025-01-31T12:00:00Z",
     "chapters": {"positional_encoding": {          # the exercise module's name: a stable key
         "title": "Positional encoding", "number": 3,
         "notebook": "chapters/01_foundations/03_positional_encoding.ipynb",
         "exercises": ["sinusoidal encoding", "RoPE"], "total": 2,
         "results": {"RoPE": {"solved": true, "status": "failed", "checks": 4,
                              "first_solved": "2025-01-31T11:58:02Z",
                              "last_checked": "2025-01-31T12:00:00Z"}}}},
     "resets": [{"at": "2025-01-30T09:00:00Z", "chapter": "all"}]}

The rule for *solved*: an exercise is solved once it has passed, and stays solved when a later
check fails (a learner who solved it and then experiments with the function has not forgotten
it); ``status`` is always the latest check's. :func:`reset_progress` is the way to start over.

Robustness, because a checker must never crash a notebook: a missing file is an empty course; a
file that is not valid JSON of this schema is moved aside to ``progress.json.corrupt-<time>``
(nothing is lost), a one-line message says so and where, and recording continues in a fresh
file; a location that cannot be written gives one warning per session and the checker still
returns its result. Two kernels checking at the same moment may lose one of the two records
(each record re-reads the file, then replaces it atomically).
"""
from __future__ import annotations

import html
import importlib
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

# A check's statuses. They live here, the lower layer: core (the checking) records through this
# module, so this module never imports core.
PASSED, FAILED, UNSOLVED = "passed", "failed", "unsolved"


ENV = "ATTNLIB_PROGRESS_FILE"
SCHEMA = 1
# The folders the course's own runs record into start with this (progress() then says so, not where).
TEMPORARY_PREFIX = "attnlib-temporary-progress-"

# The chapters with exercises, in course order: the exercise module and the chapter's notebook
# (relative to chapters/). The chapter's number is its notebook's prefix; its title and
# exercises come from the module's Chapter. tests/test_progress.py checks this against the notebooks.
COURSE = (
    ("why_attention", "00_start/01_why_attention.ipynb"),
    ("word_embeddings", "01_foundations/02_word_embeddings.ipynb"),
    ("positional_encoding", "01_foundations/03_positional_encoding.ipynb"),
    ("queries_keys_values", "01_foundations/04_queries_keys_values.ipynb"),
    ("alignment_scores", "01_foundations/05_alignment_scores.ipynb"),
    ("masking", "01_foundations/06_masking.ipynb"),
    ("multi_head", "01_foundations/07_multi_head_attention.ipynb"),
    ("numpy_to_torch", "02_seq2seq/08_numpy_to_torch.ipynb"),
    ("bottleneck", "02_seq2seq/09_bottleneck.ipynb"),
    ("bahdanau", "02_seq2seq/10_bahdanau_attention.ipynb"),
    ("luong", "02_seq2seq/11_luong_attention.ipynb"),
    ("hard_structured", "02_seq2seq/12_hard_and_structured_attention.ipynb"),
    ("transformer_block", "03_transformer/13_transformer_block.ipynb"),
    ("encoder_decoder", "03_transformer/14_encoder_decoder.ipynb"),
    ("gpt", "03_transformer/15_gpt.ipynb"),
    ("pretrained_encoder", "03_transformer/16_pretrained_encoder.ipynb"),
)
_NOTEBOOKS = dict(COURSE)

# Messages already given in this session (one warning per problem and file, not one per check).
_SAID: set[tuple[str, str]] = set()
# The entry each exercise had before its latest check in this session, for amend=True.
_BEFORE: dict[tuple[str, str, str], dict | None] = {}


# ----------------------------------------------------------------------------- the file

def progress_file() -> Path:
    """Where the record is: ``$ATTNLIB_PROGRESS_FILE``, ``$XDG_DATA_HOME/attnlib/``, ``~/.local/share/attnlib/``.

    Read on every call, so setting the variable in a running kernel (say, to a file on a mounted
    drive in Colab) takes effect at the next check. An empty or relative ``XDG_DATA_HOME`` is
    ignored, as the XDG specification says.
    """
    explicit = os.environ.get(ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "attnlib" / "progress.json"


def _now() -> str:
    """The current time in UTC, ISO 8601 to the second: ``2025-01-31T12:00:00Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _say(kind: str, path: Path | None, message: str) -> None:
    """Print a one-line message about the progress file to stderr, once per session for ``kind``."""
    if (kind, str(path)) in _SAID:
        return
    _SAID.add((kind, str(path)))
    print(f"attnlib progress: {message}", file=sys.stderr)


def empty_record() -> dict:
    """A record with no chapters: a fresh file, or what a missing file means."""
    return {"schema": SCHEMA,
            "about": "What you have solved in 'Attention, from first principles', written by attnlib's "
                     "checkers. It stays on this machine; nothing is sent anywhere.",
            "updated": None, "chapters": {}, "resets": []}


def schema_problem(data) -> str:
    """Why ``data`` is not a progress record of this schema ("" when it is one)."""
    if not isinstance(data, dict):
        return f"it holds a JSON {type(data).__name__}, not an object"
    if data.get("schema") != SCHEMA:
        return f"its schema is {data.get('schema')!r}, not {SCHEMA}"
    if not isinstance(data.get("chapters"), dict) or not isinstance(data.get("resets", []), list):
        return "'chapters' is not an object or 'resets' is not a list"
    for key, chapter in data["chapters"].items():
        if not (isinstance(chapter, dict) and isinstance(chapter.get("results"), dict)
                and isinstance(chapter.get("exercises", []), list)):
            return f"chapter {key!r} has no 'results' object"
        for name, entry in chapter["results"].items():
            if not (isinstance(entry, dict) and isinstance(entry.get("solved"), bool)
                    and isinstance(entry.get("status"), str)):
                return f"exercise {name!r} of chapter {key!r} has no true/false 'solved' and text 'status'"
    return ""


def _move_aside(path: Path, why: str) -> None:
    """Rename an unreadable record to ``<name>.corrupt-<time>`` (never overwriting) and say so."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        target, n = path.with_name(f"{path.name}.corrupt-{stamp}-{n}"), n + 1
    os.replace(path, target)
    _SAID.discard(("corrupt", str(path)))
    _say("corrupt", path, f"{path} was not a progress record ({why}); moved it, unchanged, to {target}, "
                          "and recording continues in a fresh file.")


def load(path: Path | None = None) -> dict:
    """The record in ``path`` (default :func:`progress_file`); missing means empty.

    A file that is not valid JSON of this schema is moved aside (:func:`_move_aside`) and an empty
    record returned. Raises ``OSError`` only when the file exists but cannot be read or moved.
    """
    path = progress_file() if path is None else path
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return empty_record()
    try:
        data = json.loads(raw.decode("utf-8"))
        why = schema_problem(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        why = f"not valid JSON: {err}"
    if why:
        _move_aside(path, why)
        return empty_record()
    return data


def save(data: dict, path: Path | None = None) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

    A reader (another kernel) sees the old record or the new one, never half of one.
    """
    path = progress_file() if path is None else path
    path.parent.mkdir(parents=True, exist_ok=True)
    data["updated"] = _now()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def temporary_progress_file():
    """Point ``ATTNLIB_PROGRESS_FILE`` at a fresh temporary file while the block runs, then restore it.

    ``make execute`` runs its notebooks inside this; kernels started meanwhile inherit the variable.
    Yields the file's path (it does not exist until something is recorded).
    """
    before = os.environ.get(ENV)
    with tempfile.TemporaryDirectory(prefix=TEMPORARY_PREFIX) as folder:
        os.environ[ENV] = str(Path(folder) / "progress.json")
        try:
            yield Path(os.environ[ENV])
        finally:
            if before is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = before


# ----------------------------------------------------------------------------- recording

def _chapter_meta(chapter) -> dict:
    """What the file keeps about a chapter besides its results: for display without importing it."""
    notebook = _NOTEBOOKS.get(chapter.key)
    names = [e.name for e in chapter.exercises]
    return {"title": chapter.title, "number": _number(notebook),
            "notebook": f"chapters/{notebook}" if notebook else None,
            "exercises": names, "total": len(names)}


def _updated(entry: dict | None, status: str, now: str) -> dict:
    """``entry`` after one more check, with ``status``: solved once passed, and solved stays solved."""
    entry = dict(entry or {"solved": False, "status": status, "checks": 0, "first_solved": None})
    passed = status == PASSED
    if passed and not entry.get("solved"):
        entry["first_solved"] = now
    entry["solved"] = bool(entry.get("solved")) or passed
    entry["status"], entry["last_checked"] = status, now
    entry["checks"] = int(entry.get("checks", 0)) + 1
    return entry


def record(chapter, name: str, status: str, amend: bool = False) -> bool:
    """Record that exercise ``name`` of ``chapter`` (a :class:`~attnlib.exercises.core.Chapter`) got ``status``.

    ``amend=True`` replaces the outcome of this session's latest check of ``name`` instead of adding
    a check: a chapter module that finds more wrong after :meth:`Chapter.check` passed (a mask of the
    wrong dtype) sets the status again, and a pass taken back must not leave the exercise solved.
    Never raises: a problem with the file is said once and ``False`` returned.
    """
    path = None
    try:
        path = progress_file()
        data = load(path)
        results = data["chapters"].get(chapter.key, {}).get("results", {})
        data["chapters"][chapter.key] = {**_chapter_meta(chapter), "results": results}
        slot = (str(path), chapter.key, name)
        if amend and slot in _BEFORE:
            results[name] = _updated(_BEFORE[slot], status, _now())
        else:
            _BEFORE[slot] = results.get(name)
            results[name] = _updated(results.get(name), status, _now())
        save(data, path)
        return True
    except (OSError, RuntimeError, KeyError) as err:  # unwritable, or no home directory to put it in
        where = f" in {path}" if path else ""
        _say("unwritable", path, f"could not record your result{where} ({type(err).__name__}: {err}); "
                                 f"the checkers still work, but progress is not kept. Set {ENV} to a "
                                 "file you can write to keep it.")
        return False
    except Exception as err:  # noqa: BLE001 - a checker must never crash a notebook
        _say("failed", path, f"recording your result in {path} failed ({type(err).__name__}: {err}); "
                             "the checkers still work. Please report this.")
        return False


class SessionResults(dict):
    """A :class:`Chapter`'s statuses in this session, by exercise name, that also reach the file.

    :meth:`Chapter.check` records through :meth:`checked`; a status set directly
    (``chapter.results[name] = status``, as a chapter module does after a check that passed when it
    finds more wrong) amends that check in the file (:func:`record` with ``amend=True``).
    """

    def __init__(self, chapter, *args):
        super().__init__(*args)
        self._chapter = chapter

    def checked(self, name: str, status: str) -> None:
        """Store the status of a new check of ``name`` and record it in the progress file."""
        super().__setitem__(name, status)
        record(self._chapter, name, status)

    def __setitem__(self, name: str, status: str) -> None:
        super().__setitem__(name, status)
        record(self._chapter, name, status, amend=True)


def caller_module_key() -> str:
    """The last part of the name of the first module on the call stack outside attnlib.exercises.core.

    A :class:`Chapter` made in ``attnlib/exercises/positional_encoding.py`` gets the key
    ``"positional_encoding"`` this way, without each module having to repeat its own name.
    """
    frame = sys._getframe(1)
    skip = {"attnlib.exercises.core", __name__}
    while frame is not None and frame.f_globals.get("__name__") in skip:
        frame = frame.f_back
    name = frame.f_globals.get("__name__", "") if frame is not None else ""
    return name.rpartition(".")[2] or "unknown"


# ----------------------------------------------------------------------------- the course at a glance

def _number(notebook: str | None) -> int | None:
    """The chapter number in a notebook's file name: ``01_foundations/03_positional_encoding.ipynb`` -> 3."""
    if not notebook:
        return None
    prefix = Path(notebook).name.partition("_")[0]
    return int(prefix) if prefix.isdigit() else None


def _module_chapter(key: str):
    """The :class:`Chapter` of ``attnlib.exercises.<key>``, or None when the module cannot be imported.

    (The PyTorch chapters' modules need torch; without it their titles and exercise lists come
    from the file, as recorded at the last check.)
    """
    try:
        module = importlib.import_module(f"attnlib.exercises.{key}")
    except Exception:  # noqa: BLE001 - e.g. torch is not installed
        return None
    return getattr(module, "_CHAPTER", None)  # every chapter module names its Chapter so


@dataclass(frozen=True)
class ChapterProgress:
    """One chapter's line of :func:`progress`: its exercises and which of them are solved."""
    key: str
    number: int | None
    title: str
    notebook: str | None  # relative to the repository root: chapters/<part>/<file>.ipynb
    exercises: tuple  # names, in the chapter's order; empty when unknown
    solved: tuple

    @property
    def total(self) -> int:
        return len(self.exercises)

    @property
    def left(self) -> tuple:
        """The exercises not solved yet, in the chapter's order."""
        return tuple(n for n in self.exercises if n not in self.solved)

    def link(self, suffix: str) -> str | None:
        """A link relative to a chapter notebook (or page): ``../<part>/<file><suffix>``."""
        if not self.notebook:
            return None
        return "../" + Path(self.notebook).relative_to("chapters").with_suffix(suffix).as_posix()


def _chapter_progress(key: str, notebook: str | None, stored: dict) -> ChapterProgress:
    """A chapter's line: its title and exercises from its module (else as stored), its solved ones as stored."""
    chapter = _module_chapter(key) if notebook else None
    if chapter is not None:
        title, names = chapter.title, tuple(e.name for e in chapter.exercises)
    else:
        title, names = stored.get("title") or key, tuple(stored.get("exercises", ()))
    results = stored.get("results", {})
    solved = tuple(n for n in names if results.get(n, {}).get("solved"))
    path = f"chapters/{notebook}" if notebook else stored.get("notebook")
    return ChapterProgress(key, _number(notebook) if notebook else stored.get("number"), title, path,
                           names, solved)


class Progress:
    """The course at a glance: per chapter, solved of total and what is left, with links.

    In a notebook it shows as an HTML table (links relative to a chapter notebook: the chapter's
    page in the book, its notebook in Jupyter); ``print`` gives the plain-text table.
    """

    def __init__(self, chapters: list, path: Path, resets: list):
        self.chapters, self.path, self.resets = chapters, path, resets

    @property
    def solved(self) -> int:
        return sum(len(c.solved) for c in self.chapters)

    @property
    def total(self) -> int:
        return sum(c.total for c in self.chapters)

    def __getitem__(self, key: str) -> ChapterProgress:
        for c in self.chapters:
            if c.key == key:
                return c
        raise KeyError(f"no chapter {key!r}; the chapters are {', '.join(c.key for c in self.chapters)}")

    def reset(self, chapter=None) -> "Progress":
        """Clear the record of one chapter, or of all (see :func:`reset_progress`)."""
        return reset_progress(chapter)

    def _headline(self) -> str:
        return f"Exercises solved across the course: {self.solved} of {self.total}"

    def _footer(self) -> str:
        if self.path.parent.name.startswith(TEMPORARY_PREFIX):
            where = ("in a temporary file of this run of the course's tools (make execute and the tests "
                     "never read or write your own record)")
        else:
            where = f"on this machine only, in {self.path}"
        return (f"Recorded {where}. Start over with attnlib.exercises.reset_progress() (all) "
                "or reset_progress('<key>') (one chapter, by the key above).")

    def __repr__(self) -> str:
        rows = [("ch", "key", "chapter", "solved", "left", "notebook")]
        for c in self.chapters:
            left = ", ".join(c.left) if c.left else ("all solved" if c.total else "?")
            rows.append((str(c.number) if c.number is not None else "", c.key, c.title,
                         f"{len(c.solved)} of {c.total}" if c.total else "?", left, c.notebook or ""))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(r[i].ljust(widths[i]) if i else r[i].rjust(widths[i]) for i in range(5)) + "  " + r[5]
                 for r in rows]
        return "\n".join([self._headline(), *(line.rstrip() for line in lines), self._footer()])

    __str__ = __repr__

    def _repr_html_(self) -> str:
        e = html.escape
        body = []
        for c in self.chapters:
            page, nb = c.link(".html"), c.link(".ipynb")
            title = f'<a href="{e(page)}">{e(c.title)}</a>' if page else e(c.title)
            notebook = f'<a href="{e(nb)}">notebook</a>' if nb else ""
            done = bool(c.total) and not c.left
            left = "all solved ✅" if done else (e(", ".join(c.left)) if c.total else "?")
            solved = f"{len(c.solved)} of {c.total}" if c.total else "?"
            body.append(f"<tr><td>{c.number if c.number is not None else ''}</td><td>{title}</td>"
                        f"<td><code>{e(c.key)}</code></td><td>{solved}</td><td>{left}</td><td>{notebook}</td></tr>")
        return (f'<div class="attnlib-progress"><p><strong>{e(self._headline())}</strong></p>'
                "<table><thead><tr><th>ch</th><th>chapter</th><th>key</th><th>solved</th><th>left</th>"
                f"<th>notebook</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
                f"<p><small>{e(self._footer())}</small></p></div>")


def _read_for_display(path: Path) -> dict:
    """The record for :func:`progress`: a file that cannot be read shows as empty, with one message."""
    try:
        return load(path)
    except OSError as err:
        _say("unreadable", path, f"could not read {path} ({type(err).__name__}: {err}); showing an empty course.")
        return empty_record()


def progress() -> Progress:
    """The course at a glance: every chapter with exercises, in course order, opened or not.

    Chapters recorded in the file but not part of the course (a renamed module, an experiment of
    your own) follow at the end. Display it in a notebook, or ``print`` it in a terminal.
    """
    path = progress_file()
    data = _read_for_display(path)
    stored = data["chapters"]
    rows = [_chapter_progress(key, notebook, stored.get(key, {})) for key, notebook in COURSE]
    rows += [_chapter_progress(key, None, stored[key]) for key in stored if key not in _NOTEBOOKS]
    return Progress(rows, path, data.get("resets", []))


def _chapter_key(chapter) -> str:
    """A chapter given as its key (``"masking"``), its module, or its number (6)."""
    if isinstance(chapter, int) and not isinstance(chapter, bool):
        for key, notebook in COURSE:
            if _number(notebook) == chapter:
                return key
        raise ValueError(f"no chapter number {chapter} has exercises")
    if hasattr(chapter, "__name__"):
        return chapter.__name__.rpartition(".")[2]
    return str(chapter)


def reset_progress(chapter=None) -> Progress:
    """Clear the record of every chapter (``chapter=None``) or of one, and return the course at a glance.

    ``chapter`` is a key (``"masking"``, as :func:`progress` shows), the chapter's exercise module,
    or its number. The file keeps a line saying when what was reset. This session's results of the
    chapters already imported (what their ``report()`` counts) are cleared too.
    """
    path = progress_file()
    data = load(path)
    known = set(_NOTEBOOKS) | set(data["chapters"])
    key = None if chapter is None else _chapter_key(chapter)
    if key is not None and key not in known:
        raise ValueError(f"no chapter {key!r}; the chapters are {', '.join(sorted(known))}")
    for k in ([key] if key else list(known)):
        data["chapters"].pop(k, None)
        module = sys.modules.get(f"attnlib.exercises.{k}")
        session = _module_chapter(k) if module is not None else None
        if session is not None:
            session.reset()
    for slot in [s for s in _BEFORE if s[0] == str(path) and (key is None or s[1] == key)]:
        del _BEFORE[slot]
    data["resets"].append({"at": _now(), "chapter": key or "all"})
    save(data, path)
    return progress()
