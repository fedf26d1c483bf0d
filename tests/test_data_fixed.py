"""Every data set of attnlib.data is the same bytes everywhere: recorded SHA-256 digests.

COURSE_DESIGN.md, "Data": nothing may depend on the Python version, the platform, the order of
earlier imports, hash randomisation, the thread count or a user's cache. Each data set is hashed
here in a canonical form (text joined with fixed separators, arrays as little-endian int64 or
uint8 with their shapes) and compared with a digest written below. A digest changes only when
the data change on purpose: then the notebooks that print them are re-executed, and the new
digest is recorded here in the same commit.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnlib.course import build_corpus
from attnlib.data import corpus as corpus_mod
from attnlib.data import language_model, lookup, minilm_files, translation

#: sha256 of " ".join(stdlib_corpus()), as in the manifest; 198,637 tokens, 1,149,662 characters
STDLIB_CORPUS = "65c032c264d9c6e773b1d7e46a31d0fd7d59c056a67b3ee5be88402e5bfe9e9a"
STDLIB_TOKENS = 198_637

DIGESTS = {
    "char_corpus": "7816d7aec4b4b5f9893ce7b3b46a6cc873354e7121c3b6f0477580fb89faa045",
    "date_task": "a8689a359b1b7ef787b04cd91164966bac8b52270ada8f65b253a986fe91f6e7",
    "reverse_task": "627a8b04cdebbfdddde921e213289a41ad29eed9b253a2b3c28a7ab2720430a8",
    "lookup_data": "19ff045676fe9f8812a9c3094f454bda9a6fa936b8ca54a2f10a5ec6ebbc48c9",
    "segment_data": "c30d4696e877f8233c5d29382db5db75ec447288965ac467d1f8ef48b3a49400",
    "lookup_batches": "fdec80cbe5b3837e86a1cd1db80b403d808686803474be501cf6a151086a0fca",
    "date_batches": "f990a8eb45edda53b111bad2072c7aca77e31138f647fd82725941e2f3197167",
    "minilm_vocab": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "minilm_safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
}


# ----------------------------------------------------------------------------- canonical forms

def _sha(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))  # length-prefixed: no two part lists collide
        h.update(p)
    return h.hexdigest()


def _array(a) -> bytes:
    a = np.asarray(a)
    a = a.astype(np.uint8) if a.dtype == bool else a.astype("<i8")
    return repr(a.shape).encode() + a.tobytes()


def _pairs(pairs) -> bytes:
    return "\n".join(f"{p.source}\t{p.target}\t{p.kind}" for p in pairs).encode("utf-8")


def _task(task) -> str:
    return _sha(task.name.encode(), *(_pairs(task.split(s)) for s in ("train", "val", "test")),
                "\t".join(task.source_vocab.itos).encode(), "\t".join(task.target_vocab.itos).encode())


def _toy(data) -> str:
    parts = [data.name.encode(), str((data.n_classes, data.vocab_size)).encode()]
    for key in sorted(data.tensors):
        parts += [key.encode(), _array(data.tensors[key].numpy())]
    return _sha(*parts)


def digests() -> dict:
    """The digest of every data set (except the stdlib corpus, checked on its own)."""
    c = language_model.char_corpus()
    lk = lookup.lookup_data()
    dates = translation.date_task()
    model = minilm_files.minilm_model_dir()
    return {
        "char_corpus": _sha(c.chars.encode(), _array(c.train_ids), _array(c.val_ids)),
        "date_task": _task(dates),
        "reverse_task": _task(translation.reverse_task()),
        "lookup_data": _toy(lk),
        "segment_data": _toy(lookup.segment_data()),
        # the shuffled orders training sees (torch.randperm, NumPy's generator)
        "lookup_batches": _sha(*(_array(b.query.numpy()) for b in lk.batches(batch_size=128, seed=0))),
        "date_batches": _sha(*(_pairs(b.pairs) for b in dates.batches("train", batch_size=64, seed=0))),
        "minilm_vocab": hashlib.sha256((model / "vocab.txt").read_bytes()).hexdigest(),
        "minilm_safetensors": hashlib.sha256((model / "model.safetensors").read_bytes()).hexdigest(),
    }


# ----------------------------------------------------------------------------- recorded digests

@pytest.fixture(scope="module")
def computed():
    return digests()


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_data_set_has_its_recorded_digest(computed, name):
    assert computed[name] == DIGESTS[name], (
        f"{name} changed: {computed[name]} (recorded {DIGESTS[name]}); if on purpose, re-execute the "
        "notebooks that use it and record the new digest here")


def test_stdlib_corpus_has_its_recorded_digest():
    tokens = corpus_mod.stdlib_corpus()
    assert len(tokens) == STDLIB_TOKENS
    assert hashlib.sha256(" ".join(tokens).encode("ascii")).hexdigest() == STDLIB_CORPUS


def test_data_do_not_depend_on_hash_seed_threads_or_locale(computed):
    """A fresh interpreter with another PYTHONHASHSEED, four threads and the environment's locale set."""
    code = ("import contextlib, json, locale, torch; torch.set_num_threads(4)\n"
            "with contextlib.suppress(locale.Error): locale.setlocale(locale.LC_ALL, '')\n"
            "import test_data_fixed as t; print(json.dumps(t.digests()))")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "OMP_NUM_THREADS": "4", "LC_ALL": "C.UTF-8",
           "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out.splitlines()[-1]) == computed


# ----------------------------------------------------------------------------- the shipped corpus

def test_manifest_matches_the_shipped_file():
    folder = corpus_mod.files_dir()
    manifest = corpus_mod.corpus_manifest()
    assert manifest["file"] == corpus_mod.CORPUS_FILE
    assert manifest["sha256"] == STDLIB_CORPUS and manifest["tokens"] == STDLIB_TOKENS
    data = gzip.decompress((folder / manifest["file"]).read_bytes())
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"]
    assert len(data) == manifest["characters"]
    assert manifest["modules"] == list(corpus_mod.CORPUS_MODULES), \
        "CORPUS_MODULES changed: rebuild with `python -m attnlib.course.build_corpus`"
    assert sum(n for _, n in manifest["sections"]) == manifest["tokens"]
    for key in ("python", "implementation", "platform"):
        assert manifest["built_with"][key]
    assert manifest["command"] == "python -m attnlib.course.build_corpus"


def test_a_damaged_corpus_raises(tmp_path):
    folder = corpus_mod.files_dir()
    for name in (corpus_mod.CORPUS_FILE, corpus_mod.MANIFEST_FILE):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    text = gzip.decompress((tmp_path / corpus_mod.CORPUS_FILE).read_bytes())
    (tmp_path / corpus_mod.CORPUS_FILE).write_bytes(gzip.compress(text.replace(b"the", b"teh", 1)))
    with pytest.raises(corpus_mod.CorpusIntegrityError, match="SHA-256"):
        corpus_mod.read_corpus(tmp_path)


def test_stdlib_corpus_ignores_and_writes_no_cache(tmp_path, monkeypatch):
    cache, home = tmp_path / "cache", tmp_path / "home"
    cache.mkdir()
    (home / ".cache" / "attnlib").mkdir(parents=True)
    # a stale cache file of the old builder, where it used to look: it must not be read
    (home / ".cache" / "attnlib" / "stdlib-corpus-py3.11-0123456789.txt").write_text("stale words")
    monkeypatch.setenv("ATTNLIB_CACHE", str(cache))
    monkeypatch.setenv("HOME", str(home))
    corpus_mod._shipped_tokens.cache_clear()
    tokens = corpus_mod.stdlib_corpus()
    assert len(tokens) == STDLIB_TOKENS
    assert hashlib.sha256(" ".join(tokens).encode("ascii")).hexdigest() == STDLIB_CORPUS
    assert list(cache.iterdir()) == []
    assert sorted(p.name for p in (home / ".cache" / "attnlib").iterdir()) == \
        ["stdlib-corpus-py3.11-0123456789.txt"]
    tokens.append("extra")  # each call returns a new list
    assert len(corpus_mod.stdlib_corpus()) == STDLIB_TOKENS


def test_refresh_is_deprecated_and_ignored():
    with pytest.warns(DeprecationWarning, match="ignored"):
        tokens = corpus_mod.stdlib_corpus(refresh=True)
    assert len(tokens) == STDLIB_TOKENS


def test_month_and_weekday_names_are_the_c_locale_ones():
    import calendar

    with calendar.different_locale("C"):
        assert translation.MONTHS == [calendar.month_name[m] for m in range(1, 13)]
        assert translation.WEEKDAYS == [calendar.day_name[d] for d in range(7)]


# ----------------------------------------------------------------------------- the builder

MODULES = ["json", "textwrap"]  # a small build: these two and the pydoc topics (about 2 s)


def test_builder_check_on_a_reduced_module_list(tmp_path, capsys):
    assert build_corpus.main(["--modules", *MODULES, "--folder", str(tmp_path)]) == 0
    manifest = corpus_mod.corpus_manifest(tmp_path)
    assert manifest["modules"] == MODULES and manifest["modules_skipped"] == []
    assert [name for name, _ in manifest["sections"]] == MODULES + ["pydoc_data.topics"]
    assert manifest["command"].endswith("--modules json textwrap")
    text = corpus_mod.read_corpus(tmp_path)
    assert text.split(" ")[0] == "json"
    first = (tmp_path / corpus_mod.CORPUS_FILE).read_bytes()
    capsys.readouterr()

    assert build_corpus.main(["--check", "--modules", *MODULES, "--folder", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("identical")
    assert (tmp_path / corpus_mod.CORPUS_FILE).read_bytes() == first  # --check writes nothing

    # What another Python build would ship: textwrap's first word differs, and one more word.
    result = build_corpus.build(MODULES)
    clean = list(result["tokens"])
    assert clean == text.split(" ")
    i = result["manifest"]["sections"][0][1]  # the first token of textwrap
    result["tokens"][i:i + 1] = ["extra", "thing"]
    result["manifest"]["sections"][1][1] += 1
    build_corpus.write(result, tmp_path)
    assert corpus_mod.read_corpus(tmp_path).split(" ") == result["tokens"]
    assert build_corpus.main(["--check", "--modules", *MODULES, "--folder", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"built {len(clean):,} tokens" in out and "-1 tokens" in out
    assert "textwrap: shipped" in out and "json:" not in out and "pydoc_data" not in out
    assert "2 removed, 1 added in 1 place(s)" in out


def test_builder_reads_docstrings_in_an_isolated_interpreter(tmp_path, monkeypatch):
    # a module in the current folder that shadows a standard one is not picked up
    (tmp_path / "textwrap.py").write_text('"""not the standard library"""\n')
    monkeypatch.chdir(tmp_path)
    sections, skipped = build_corpus.collect_sections(["textwrap", "no_such_module_here"])
    assert skipped == ["no_such_module_here"]
    assert sections[0][0] == "textwrap" and "not the standard library" not in sections[0][1]
    assert sections[-1][0] == "pydoc_data.topics"


def test_shipped_file_has_no_timestamp():
    """gzip header time 0 and no file name: the same tokens and zlib give the same bytes."""
    data = (corpus_mod.files_dir() / corpus_mod.CORPUS_FILE).read_bytes()
    assert data[:3] == b"\x1f\x8b\x08" and data[3] == 0 and data[4:8] == bytes(4)
