"""A corpus that needs no download: the Python standard library's own documentation, shipped.

The corpus is the text of the docstrings of a fixed, sorted list of standard-library modules
(:data:`CORPUS_MODULES`: each module, its public classes, their methods and its public functions)
and of the reference topics that ship with Python in :mod:`pydoc_data.topics` (what ``help("if")``
shows), lowercased and split into words with :func:`tokenize`.

Those docstrings differ from one Python build to the next, and even with what the interpreter has
imported before (IPython replaces ``input`` and the hooks of :mod:`sys`, importing PyTorch wraps
:func:`inspect.getfile`). So the corpus was built once and **ships with attnlib**, compressed:
``attnlib/data/files/stdlib_corpus.txt.gz`` (the tokens joined by single spaces), next to the
manifest ``stdlib_corpus.json`` that records the SHA-256 of the uncompressed text, the number of
tokens, the Python that built it, the module list and the command that rebuilds it
(``python -m attnlib.course.build_corpus``, a maintainer tool). :func:`stdlib_corpus` only reads
that file and checks its SHA-256, so every machine and every Python version gets the same tokens;
nothing is built or cached at run time.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.resources
import json
import re
import warnings
from pathlib import Path

from attnlib.checks import check_path, check_text

__all__ = ["CORPUS_MODULES", "CORPUS_FILE", "MANIFEST_FILE", "CorpusIntegrityError",
           "corpus_manifest", "files_dir", "read_corpus", "stdlib_corpus", "tokenize"]

#: The modules whose docstrings make up the corpus, sorted. A module that did not import where the
#: corpus was built is skipped (the manifest lists those).
CORPUS_MODULES = tuple(sorted("""
    abc argparse array ast asyncio base64 bdb binascii bisect builtins bz2 calendar cmath cmd code
    codecs collections colorsys concurrent.futures configparser contextlib copy csv ctypes
    dataclasses datetime decimal difflib dis doctest email email.message enum filecmp fnmatch
    fractions ftplib functools gc getopt gettext glob graphlib gzip hashlib heapq hmac html
    html.parser http http.client http.cookies http.server imaplib importlib inspect io ipaddress
    itertools json keyword linecache locale logging logging.handlers lzma mailbox marshal math
    mimetypes mmap multiprocessing netrc numbers operator optparse os os.path pathlib pdb pickle
    pkgutil platform plistlib poplib pprint profile pstats queue quopri random re reprlib
    rlcompleter sched secrets select selectors shelve shlex shutil signal site smtplib socket
    socketserver sqlite3 ssl stat statistics string struct subprocess symtable sys sysconfig
    tabnanny tarfile tempfile textwrap threading time timeit token tokenize trace traceback
    tracemalloc types typing unicodedata unittest unittest.mock urllib.parse urllib.request uuid
    warnings wave weakref webbrowser xml.dom.minidom xml.etree.ElementTree xml.sax zipapp zipfile
    zipimport zlib zoneinfo
""".split()))

#: Names of the shipped corpus and of its manifest, in ``attnlib/data/files/``.
CORPUS_FILE = "stdlib_corpus.txt.gz"
MANIFEST_FILE = "stdlib_corpus.json"
REBUILD_COMMAND = "python -m attnlib.course.build_corpus"

_WORD = re.compile(r"[a-z]+")


def tokenize(text: str) -> list[str]:
    """Lowercase ``text`` and return its runs of letters a-z as tokens.

    Digits, punctuation and underscores separate tokens, so ``"os.path.join(a, b2)"`` gives
    ``["os", "path", "join", "a", "b"]``.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of str

    Raises
    ------
    TypeError
        When ``text`` is not a str (None, bytes, a number, a list of str: tokenize each one).
    """
    return _WORD.findall(check_text(text, "text").lower())


class CorpusIntegrityError(RuntimeError):
    """The shipped corpus does not match its manifest (a damaged or hand-edited file)."""


def files_dir() -> Path:
    """The folder of the data files that ship with attnlib (``attnlib/data/files``).

    Returns
    -------
    pathlib.Path
    """
    return Path(str(importlib.resources.files("attnlib.data"))) / "files"


def corpus_manifest(folder: Path | str | None = None) -> dict:
    """The manifest of the shipped corpus: SHA-256, token count, provenance, module list.

    Parameters
    ----------
    folder : path, optional
        Where the corpus and its manifest lie (default :func:`files_dir`).

    Returns
    -------
    dict
        Keys include ``"sha256"`` (of the uncompressed text), ``"tokens"``, ``"characters"``,
        ``"built_with"`` (``sys.version``, implementation, platform), ``"modules"``,
        ``"modules_skipped"`` and ``"command"``.
    """
    if folder is not None:
        check_path(folder, "folder")
    path = Path(folder or files_dir()) / MANIFEST_FILE
    return json.loads(path.read_text(encoding="utf-8"))


def read_corpus(folder: Path | str | None = None) -> str:
    """The uncompressed text of the corpus (tokens joined by single spaces), checked against its manifest.

    Parameters
    ----------
    folder : path, optional
        Where the corpus and its manifest lie (default :func:`files_dir`).

    Returns
    -------
    str

    Raises
    ------
    CorpusIntegrityError
        When the SHA-256 or the number of tokens of the text differs from the manifest's.
    """
    if folder is not None:
        check_path(folder, "folder")
    folder = Path(folder or files_dir())
    manifest = corpus_manifest(folder)
    path = folder / manifest.get("file", CORPUS_FILE)
    data = gzip.decompress(path.read_bytes())
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest["sha256"]:
        raise CorpusIntegrityError(
            f"{path} does not match {folder / MANIFEST_FILE}: its text has SHA-256 {digest}, the "
            f"manifest records {manifest['sha256']}. Restore the file from the repository, or (a "
            f"maintainer) rebuild both with `{manifest.get('command', REBUILD_COMMAND)}`.")
    text = data.decode("ascii")
    n = text.count(" ") + 1 if text else 0
    if n != manifest["tokens"]:
        raise CorpusIntegrityError(f"{path} holds {n} tokens, its manifest records {manifest['tokens']}")
    return text


@functools.lru_cache(maxsize=1)
def _shipped_tokens() -> tuple[str, ...]:
    return tuple(read_corpus().split(" "))


def stdlib_corpus(refresh: bool | None = None) -> list[str]:
    """The tokens of the standard-library documentation corpus (198,637 of them), as shipped.

    The same list on every machine and Python version: it is read from the file that ships with
    attnlib (checked against the SHA-256 in its manifest), not built from the running
    interpreter, and nothing is written to disk.

    Parameters
    ----------
    refresh : bool, optional
        Deprecated and ignored (the corpus used to be built and cached on first use). To rebuild
        the shipped file, a maintainer runs ``python -m attnlib.course.build_corpus``.

    Returns
    -------
    list of str
        The tokens in order: docstrings module by module (in the order of
        :data:`CORPUS_MODULES`), then the reference topics of :mod:`pydoc_data.topics`. A new
        list on each call.

    Raises
    ------
    CorpusIntegrityError
        When the shipped file does not match its manifest.
    """
    if refresh is not None:
        warnings.warn("stdlib_corpus(refresh=...) is ignored: the corpus ships with attnlib and is "
                      "never rebuilt at run time (maintainers: python -m attnlib.course.build_corpus)",
                      DeprecationWarning, stacklevel=2)
    return list(_shipped_tokens())
