"""A corpus that needs no download: the Python standard library's own documentation.

:func:`stdlib_corpus` collects the docstrings of a fixed, sorted list of standard-library modules
(:data:`CORPUS_MODULES`: each module, its public classes, their methods and its public functions)
and the reference topics that ship with Python in :mod:`pydoc_data.topics` (what ``help("if")``
shows), lowercases the text and splits it into words with :func:`tokenize`. For a given Python
version the result is always the same list of tokens; it is cached on disk, so only the first
call imports the modules.

The cache lives in ``$ATTNLIB_CACHE`` if that is set, else in ``~/.cache/attnlib``.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import re
import sys
import warnings
from pathlib import Path

#: The modules whose docstrings make up the corpus, sorted. A module that does not import on
#: this platform is skipped (the cache file name records the Python version).
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
    """
    return _WORD.findall(text.lower())


def cache_dir() -> Path:
    """The folder where attnlib caches what it builds: ``$ATTNLIB_CACHE`` or ``~/.cache/attnlib``.

    Returns
    -------
    pathlib.Path
        The folder (created if needed).
    """
    path = Path(os.environ.get("ATTNLIB_CACHE") or Path.home() / ".cache" / "attnlib")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _docstrings(module) -> list[str]:
    """Docstrings of a module, its public classes (and their methods) and its public functions."""
    docs, seen = [], set()

    def add(obj):
        doc = inspect.getdoc(obj)
        if doc and id(obj) not in seen:
            seen.add(id(obj))
            docs.append(doc)

    add(module)
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj):
            add(obj)
            for attr, member in sorted(vars(obj).items()):
                if not attr.startswith("_") and (inspect.isfunction(member)
                                                 or inspect.ismethoddescriptor(member)):
                    add(member)
        elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
            add(obj)
    return docs


def _build_text(modules) -> str:
    parts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in modules:
            try:
                module = importlib.import_module(name)
            except Exception:  # e.g. a module this platform lacks
                continue
            parts.extend(_docstrings(module))
        from pydoc_data.topics import topics
        parts.extend(topics[key] for key in sorted(topics))
    return "\n".join(parts)


def stdlib_corpus(refresh: bool = False) -> list[str]:
    """The tokens of the standard-library documentation corpus (about 200,000 on Python 3.11).

    Parameters
    ----------
    refresh : bool
        Rebuild the corpus even if a cached copy exists.

    Returns
    -------
    list of str
        The tokens in order: docstrings module by module (in the order of
        :data:`CORPUS_MODULES`), then the reference topics of :mod:`pydoc_data.topics`.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    digest = hashlib.sha256(" ".join(CORPUS_MODULES).encode()).hexdigest()[:10]
    path = cache_dir() / f"stdlib-corpus-py{version}-{digest}.txt"
    if path.exists() and not refresh:
        return path.read_text(encoding="utf-8").split()
    tokens = tokenize(_build_text(CORPUS_MODULES))
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(" ".join(tokens), encoding="utf-8")
    tmp.replace(path)  # atomic: a reader never sees half a file
    return tokens
