"""The maintainer sweeps' stored results agree with the code: each sweep is re-run reduced and compared."""
from __future__ import annotations

import json

import pytest

from attnlib.experiments import results
from attnlib.experiments.results import compare_results, load_artifact_path, load_result, registered_sweeps

SWEEPS = registered_sweeps()


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_stored_reduced_result_matches_a_rerun(name):
    entry = SWEEPS[name]
    record = load_result(name)
    fresh = entry.func(True)
    # a JSON round trip, so that tuples and numpy scalars compare as the stored file holds them
    fresh = json.loads(json.dumps(fresh))
    problems = compare_results(record["reduced"], fresh, entry.rtol, entry.atol)
    assert not problems, (f"{name}: the stored result no longer matches the code; rerun "
                          f"`make experiments SWEEPS={name}`:\n" + "\n".join(problems[:20]))


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_stored_record_is_complete(name):
    record = load_result(name)
    for key in ("command", "code_sha256", "machine", "created", "seconds", "full", "reduced"):
        assert key in record, f"{name}.json lacks {key!r}"
    assert set(record["artifacts"]) == set(SWEEPS[name].artifacts)
    for artifact in record["artifacts"]:
        assert load_artifact_path(name, artifact).is_file()


def test_every_stored_file_belongs_to_a_sweep():
    stored = {p.stem for p in results.RESULTS_DIR.glob("*.json")}
    assert stored <= set(SWEEPS), f"result files without a sweep: {sorted(stored - set(SWEEPS))}"


def test_compare_results_names_each_difference():
    a = {"loss": [1.0, 2.0], "label": "x", "ok": True}
    assert compare_results(a, {"loss": [1.0, 2.0], "label": "x", "ok": True}) == []
    problems = compare_results(a, {"loss": [1.0, 2.1], "label": "y", "ok": False})
    assert len(problems) == 3 and any("['loss'][1]" in p for p in problems)
    assert compare_results({"a": 1}, {"b": 1}) and compare_results([1], [1, 2])
    assert compare_results(1.0, 1.0 + 1e-9) == []


def test_missing_and_damaged_results_get_clear_messages(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="make experiments SWEEPS=nothing"):
        load_result("nothing")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_result("bad")
    (tmp_path / "art.json").write_text(json.dumps({"artifacts": {"w.bin": "0" * 64}}))
    (tmp_path / "w.bin").write_bytes(b"weights")
    with pytest.raises(ValueError, match="damaged or stale"):
        load_artifact_path("art", "w.bin")
    with pytest.raises(ValueError, match="records no artifact"):
        load_artifact_path("art", "other.bin")


def test_sweep_names_must_be_identifiers():
    with pytest.raises(ValueError, match="identifier"):
        results.sweep("not a name")
