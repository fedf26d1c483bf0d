"""Maintainer tool: build the standard-library corpus that ships in ``attnlib/data/files``.

Usage::

    python -m attnlib.course.build_corpus            # rebuild stdlib_corpus.txt.gz and stdlib_corpus.json
    python -m attnlib.course.build_corpus --check    # build in memory, compare with the shipped file

:func:`attnlib.data.stdlib_corpus` only reads the shipped file; this tool is the one place the
corpus is built. It collects the docstrings of :data:`attnlib.data.corpus.CORPUS_MODULES` (each
module, its public classes and their methods, its public functions) and the reference topics of
:mod:`pydoc_data.topics`, tokenises them with :func:`attnlib.data.tokenize`, and writes the tokens
joined by single spaces (gzip, header time 0, so the same tokens give the same bytes with the same
zlib) and a manifest: the SHA-256 of the uncompressed text, the token count, the tokens of each
module, the Python that built it and this command.

The docstrings are read in a fresh, isolated interpreter (``python -I`` running this file as a
script): it imports nothing but the standard library first, and neither the current folder nor
the user's site-packages can shadow a standard module (a stray ``sched.py`` would). What an
interpreter has imported changes some docstrings: IPython replaces ``builtins.input`` and the
hooks of :mod:`sys`, importing PyTorch wraps :func:`inspect.getfile`. A different Python build
gives a different corpus; that is why it is shipped, and ``--check`` says which modules differ
and by how many tokens (exit status 1).

Options: ``--modules NAME ...`` builds from other modules (for tests); ``--folder DIR`` writes or
checks the corpus in another folder than the package's.
"""
from __future__ import annotations

# Only `sys` at module level: this file also runs as the isolated child, which must import
# nothing before it reads the docstrings.
import sys

TOPICS = "pydoc_data.topics"


# ----------------------------------------------------------------------------- the isolated child

def _docstrings(module) -> list[str]:
    """Docstrings of a module, its public classes (and their methods) and its public functions."""
    import inspect

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


def _collect_sections(modules) -> tuple[list[tuple[str, str]], list[str]]:
    """(name, text) for each module that imports, then the pydoc topics; and the skipped modules."""
    import importlib
    import warnings

    sections, skipped = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in modules:
            try:
                module = importlib.import_module(name)
            except Exception:  # e.g. a module this platform lacks
                skipped.append(name)
                continue
            sections.append((name, "\n".join(_docstrings(module))))
        from pydoc_data.topics import topics
        sections.append((TOPICS, "\n".join(topics[key] for key in sorted(topics))))
    return sections, skipped


def _child(out_path: str, modules: list[str]) -> None:
    sections, skipped = _collect_sections(modules)
    import json
    with open(out_path, "w", encoding="ascii") as f:
        json.dump({"sections": sections, "skipped": skipped}, f, ensure_ascii=True)


# ----------------------------------------------------------------------------- building

def collect_sections(modules) -> tuple[list[tuple[str, str]], list[str]]:
    """The docstring text of each module, read in a fresh isolated copy of this interpreter.

    Parameters
    ----------
    modules : sequence of str

    Returns
    -------
    sections : list of (str, str)
        (module name, its docstrings joined by newlines) for each module that imports, then
        ``("pydoc_data.topics", the topics in key order)``.
    skipped : list of str
        The modules that did not import.
    """
    import json
    import subprocess
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sections.json"
        proc = subprocess.run([sys.executable, "-I", str(Path(__file__).resolve()),
                               "--emit-sections", str(out), *modules],
                              cwd=tmp, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"collecting the docstrings failed (exit {proc.returncode}):\n{proc.stderr}")
        data = json.loads(out.read_text(encoding="ascii"))
    return [tuple(s) for s in data["sections"]], data["skipped"]


def build(modules=None) -> dict:
    """Build the corpus: tokens, and the manifest that describes them.

    Parameters
    ----------
    modules : sequence of str, optional
        Default :data:`attnlib.data.corpus.CORPUS_MODULES`.

    Returns
    -------
    dict
        ``"tokens"`` (list of str) and ``"manifest"`` (dict, as written to the JSON file).
    """
    import hashlib
    import platform

    from attnlib.data.corpus import CORPUS_FILE, CORPUS_MODULES, REBUILD_COMMAND, tokenize

    modules = list(CORPUS_MODULES if modules is None else modules)
    sections, skipped = collect_sections(modules)
    tokens, counts = [], []
    for name, text in sections:
        words = tokenize(text)
        tokens += words
        counts.append([name, len(words)])
    text = " ".join(tokens)
    built_with = {"python": sys.version, "implementation": platform.python_implementation(),
                  "platform": platform.platform()}
    command = REBUILD_COMMAND
    if list(CORPUS_MODULES) != modules:
        command += " --modules " + " ".join(modules)
    manifest = {
        "file": CORPUS_FILE,
        "format": "the tokens joined by single spaces, ASCII, gzip-compressed",
        "sha256": hashlib.sha256(text.encode("ascii")).hexdigest(),
        "tokens": len(tokens),
        "characters": len(text),
        "built_with": built_with,
        "command": command,
        "builder": "attnlib/course/build_corpus.py (docstrings read in a fresh `python -I`)",
        "modules": modules,
        "modules_skipped": skipped,
        "sections": counts,
    }
    return {"tokens": tokens, "manifest": manifest}


def write(result: dict, folder=None) -> tuple:
    """Write the corpus and its manifest (each atomically).

    Parameters
    ----------
    result : dict
        From :func:`build`.
    folder : path, optional
        Default ``attnlib/data/files`` of this checkout.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The corpus file and the manifest.
    """
    import gzip
    import hashlib
    import json
    import os
    from pathlib import Path

    from attnlib.data.corpus import MANIFEST_FILE, files_dir

    folder = Path(folder or files_dir())
    folder.mkdir(parents=True, exist_ok=True)
    text = " ".join(result["tokens"]).encode("ascii")
    if sum(n for _, n in result["manifest"]["sections"]) != len(result["tokens"]):
        raise ValueError("the manifest's sections do not add up to the number of tokens")
    # the checksum and the counts always describe the tokens written
    manifest = {**result["manifest"], "sha256": hashlib.sha256(text).hexdigest(),
                "tokens": len(result["tokens"]), "characters": len(text)}
    data = gzip.compress(text, compresslevel=9, mtime=0)
    paths = folder / manifest["file"], folder / MANIFEST_FILE
    for path, content in zip(paths, (data, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))):
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_bytes(content)
        tmp.replace(path)  # a reader never sees half a file
    return paths


# ----------------------------------------------------------------------------- checking

def compare(result: dict, folder=None) -> list[str]:
    """How a freshly built corpus differs from the shipped one, module by module.

    Parameters
    ----------
    result : dict
        From :func:`build`.
    folder : path, optional
        Where the shipped corpus lies (default ``attnlib/data/files``).

    Returns
    -------
    list of str
        One line per difference; empty when the two are identical token for token.
    """
    import difflib

    from attnlib.data.corpus import corpus_manifest, read_corpus

    shipped_manifest = corpus_manifest(folder)
    shipped = read_corpus(folder).split(" ")
    built, manifest = result["tokens"], result["manifest"]
    if built == shipped:
        return []
    lines = [f"built {len(built):,} tokens (sha256 {manifest['sha256'][:12]}), shipped "
             f"{len(shipped):,} (sha256 {shipped_manifest['sha256'][:12]}): "
             f"{len(built) - len(shipped):+,} tokens"]
    if manifest["modules"] != shipped_manifest["modules"]:
        lines.append(f"the module lists differ: built from {len(manifest['modules'])} modules, "
                     f"shipped from {len(shipped_manifest['modules'])}")
    if manifest["modules_skipped"] != shipped_manifest["modules_skipped"]:
        lines.append(f"modules skipped: built {manifest['modules_skipped']}, "
                     f"shipped {shipped_manifest['modules_skipped']}")

    def slices(tokens, counts):
        out, start = {}, 0
        for name, n in counts:
            out[name] = tokens[start:start + n]
            start += n
        return out

    ours = slices(built, manifest["sections"])
    theirs = slices(shipped, shipped_manifest["sections"])
    for name in list(ours) + [n for n in theirs if n not in ours]:
        a, b = theirs.get(name, []), ours.get(name, [])
        if a == b:
            continue
        ops = [op for op in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
               if op[0] != "equal"]
        removed = sum(i2 - i1 for _, i1, i2, _, _ in ops)
        added = sum(j2 - j1 for _, _, _, j1, j2 in ops)
        tag, i1, i2, j1, j2 = ops[0]
        example = (f"first at shipped token {i1}: {' '.join(a[i1:i1 + 8])!r} -> "
                   f"{' '.join(b[j1:j1 + 8])!r}")
        lines.append(f"{name}: shipped {len(a):,} tokens, built {len(b):,}; {removed:,} removed, "
                     f"{added:,} added in {len(ops)} place(s); {example}")
    return lines


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="build in memory and compare with the shipped corpus; write nothing")
    parser.add_argument("--modules", nargs="+", default=None,
                        help="the modules to read (default: CORPUS_MODULES)")
    parser.add_argument("--folder", default=None,
                        help="where the corpus and its manifest lie (default: attnlib/data/files)")
    args = parser.parse_args(argv)
    result = build(args.modules)
    manifest = result["manifest"]
    if args.check:
        differences = compare(result, args.folder)
        if not differences:
            print(f"identical: {manifest['tokens']:,} tokens, sha256 {manifest['sha256']}")
            return 0
        print("this interpreter builds a different corpus than the shipped one:")
        for line in differences:
            print("  " + line)
        return 1
    corpus, manifest_path = write(result, args.folder)
    print(f"wrote {corpus} ({corpus.stat().st_size:,} bytes) and {manifest_path}: "
          f"{manifest['tokens']:,} tokens, sha256 {manifest['sha256']}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--emit-sections"]:
        _child(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(main())
