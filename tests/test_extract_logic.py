"""Extraction logic around the engine (retries, error records, resume), with a scripted backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interests.ingest import read_logs
from interests.llm.fake import FakeBackend, schema_answer
from interests.profile.extract import extract_profiles, sibling_path
from interests.profile.store import done_users, iter_jsonl, read_errors, read_profiles, repair


@pytest.fixture(scope="module")
def logs(example_logs_dir):
    return read_logs(example_logs_dir / "events.csv", catalog=example_logs_dir / "catalog.jsonl")


def _valid(request, attempt):
    """A valid draft (either structure) citing the first two items the prompt showed of each group."""
    return json.dumps(schema_answer(request.schema(), summary="Likes the things in the log.")), "stop"


def test_every_user_gets_a_grounded_profile(logs, tmp_path):
    out = tmp_path / "p.jsonl"
    res = extract_profiles(logs, output=out, backend=FakeBackend(_valid), batch_size=5)
    profiles = read_profiles(out)
    assert res.profiles == len(profiles) == len(logs.histories) and res.errors == 0
    assert res.valid_first_try == len(profiles)
    for p in profiles:
        own = {e.item_id for e in logs.histories[p.user_id].events}
        assert p.item_ids() <= own
        assert p.provenance.backend == "fake" and p.provenance.prompt_hash


def test_cutoffs_and_invalid_output_are_retried_then_recorded(logs, tmp_path):
    def script(request, attempt):
        if request.key == "u001":
            return '{"summary": "cut', "length"  # always cut off
        if request.key == "u002" and attempt == 0:
            return "not json", "stop"
        return _valid(request, attempt)

    backend = FakeBackend(script)
    out = tmp_path / "p.jsonl"
    res = extract_profiles(logs, output=out, backend=backend, users=["u001", "u002", "u003"], max_attempts=3)
    assert (res.profiles, res.errors, res.valid_first_try) == (2, 1, 1)
    [err] = read_errors(sibling_path(out, "errors"))
    assert err.user_id == "u001" and err.attempts == 3 and "max_tokens" in err.reason
    assert err.raw_output == '{"summary": "cut'
    # retries used a larger budget and sampling
    budgets = [(r.max_tokens, r.temperature) for call in backend.calls for r in call if r.key == "u001"]
    assert budgets[0][0] < budgets[1][0] and budgets[0][1] == 0.0 < budgets[1][1]


def test_rerun_skips_done_users_and_never_duplicates(logs, tmp_path):
    out = tmp_path / "p.jsonl"
    extract_profiles(logs, output=out, backend=FakeBackend(_valid), limit=10)
    # simulate a kill in the middle of writing: a torn last line
    with out.open("a") as f:
        f.write('{"schema_version":"1.0","user_id":"u0')
    backend = FakeBackend(_valid)
    res = extract_profiles(logs, output=out, backend=backend)
    assert res.users_skipped == 10
    ids = [d["user_id"] for d in iter_jsonl(out)]
    assert sorted(ids) == sorted(logs.histories) and len(ids) == len(set(ids))
    assert all(r.key not in ids[:10] for call in backend.calls for r in call)


def test_retry_errors_moves_users_from_errors_to_profiles(logs, tmp_path):
    out = tmp_path / "p.jsonl"
    extract_profiles(logs, output=out, backend=FakeBackend(lambda r, a: ("{}", "stop")), limit=3)
    assert len(read_errors(sibling_path(out, "errors"))) == 3
    extract_profiles(logs, output=out, backend=FakeBackend(_valid), limit=3, retry_errors=True)
    assert len(read_profiles(out)) == 3 and read_errors(sibling_path(out, "errors")) == []
    assert done_users(out) == {"u001", "u002", "u003"}


def test_repair_cuts_only_a_partial_last_line(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n{"b": 2}\n{"c"')
    assert repair(p) == 4
    assert p.read_text() == '{"a": 1}\n{"b": 2}\n'
    assert repair(p) == 0


def test_show_profiles_example_prints_every_profile(logs, tmp_path):
    """examples/show_profiles.py (what `make demo` prints) on profiles of structure "data"."""
    import subprocess
    import sys

    out = tmp_path / "p.jsonl"
    extract_profiles(logs, output=out, backend=FakeBackend(_valid), limit=3)
    script = Path(__file__).resolve().parent.parent / "examples" / "show_profiles.py"
    proc = subprocess.run(
        [sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\nu0") + proc.stdout.startswith("u0") == 3
    assert "3 profiles; 0 of " in proc.stdout and "Jazz records*" in proc.stdout  # "Favourites" was refused


@pytest.mark.parametrize("tz", ["+02:00", "utc", "Z", "Europe/Berlin"])
def test_every_time_zone_that_reading_accepts_also_profiles(logs, tmp_path, tz):
    """--tz +02:00 passed reading but failed every user at the prompt stage (ZoneInfo('+02:00'))."""
    out = tmp_path / "p.jsonl"
    res = extract_profiles(logs, output=out, backend=FakeBackend(_valid), limit=2, tz=tz)
    assert (res.profiles, res.errors) == (2, 0)
    utc = extract_profiles(logs, output=tmp_path / "u.jsonl", backend=FakeBackend(_valid), limit=1)
    assert utc.profiles == 1
    shift = {"+02:00": 2, "utc": 0, "Z": 0}.get(tz)
    if shift is not None:  # u001 is planted as an evening user: 19-22 UTC
        hours = read_profiles(out)[0].time_patterns.hour_of_day
        base = read_profiles(tmp_path / "u.jsonl")[0].time_patterns.hour_of_day
        assert hours == base[-shift:] + base[:-shift] if shift else hours == base
