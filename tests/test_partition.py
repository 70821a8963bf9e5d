"""Partitioned reading (logs larger than memory) gives exactly what read_logs gives, part by part."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from interests.ingest import IngestError, PartitionedLogs, partition_logs, read_logs, user_partition
from interests.llm.fake import FakeBackend, schema_answer
from interests.profile.extract import extract_profiles
from interests.profile.partitioned import extract_partitioned
from interests.profile.store import read_profiles
from interests.synthetic import generate, write_logs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "logs"
BAD = Path(__file__).parent / "data" / "bad"
COUNTS = ("rows_read", "rows_used", "rows_quarantined", "duplicates", "rows_filtered", "users", "items")


def _events(logs_iter: object) -> dict[str, list[tuple[object, ...]]]:
    out: dict[str, list[tuple[object, ...]]] = {}
    for logs in logs_iter:  # type: ignore[attr-defined]
        for user, h in logs.histories.items():
            assert user not in out, f"{user} in two partitions"
            out[user] = [(e.item_id, e.ts, e.rating, e.text, e.event, e.source, e.line) for e in h.events]
    return out


def _messy_log(tmp_path: Path) -> Path:
    """Duplicates, a quarantined row, ties in time and a user filtered out, over 40 users."""
    rows = ["user,item,rating,timestamp"]
    for k in range(400):
        rows.append(f"u{k % 40},i{k % 23},{k % 5 + 1},{1_600_000_000 + (k // 3) * 60}")
    rows += ["u3,i1,4,1600000000", "u3,i1,4,1600000000", "u7,i2,not-a-rating,1600000100", ",i3,2,1600000200"]
    path = tmp_path / "messy.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("cap", [None, 4])
@pytest.mark.parametrize("parts", [1, 3, 16])
def test_partitions_hold_exactly_the_histories_of_read_logs(
    tmp_path: Path, parts: int, cap: int | None
) -> None:
    log = _messy_log(tmp_path)
    whole = read_logs(log, max_events_per_user=cap)
    split = partition_logs(log, tmp_path / "parts", parts=parts, max_events_per_user=cap)
    assert _events(split) == _events([whole])
    # the counts are those of read_logs once every partition has been read, and add up
    assert {c: getattr(split.report, c) for c in COUNTS} == {c: getattr(whole.report, c) for c in COUNTS}
    assert split.report.duplicates == 1 and split.report.rows_quarantined == 2
    assert split.report.events_dropped == whole.report.events_dropped
    assert split.report.consistent


def test_a_partition_can_be_read_again_and_reopened_without_the_logs(tmp_path: Path) -> None:
    log = _messy_log(tmp_path)
    split = partition_logs(log, tmp_path / "parts", parts=4)
    first = _events(split)
    assert _events(split) == first  # a second pass reads the files again and counts nothing twice
    assert split.report.duplicates == 1 and split.report.consistent
    again = PartitionedLogs.open(tmp_path / "parts")
    assert _events(again) == first
    assert {c: getattr(again.report, c) for c in COUNTS} == {c: getattr(split.report, c) for c in COUNTS}
    assert set(split.user_logs("u3").histories) >= {"u3"}


def test_the_catalogue_and_the_quarantine_work_as_in_read_logs(tmp_path: Path) -> None:
    q = tmp_path / "quarantine.jsonl"
    split = partition_logs(
        EXAMPLES / "events.csv", tmp_path / "parts", parts=5, catalog=EXAMPLES / "catalog.jsonl", quarantine=q
    )
    whole = read_logs(EXAMPLES / "events.csv", catalog=EXAMPLES / "catalog.jsonl")
    assert _events(split) == _events([whole])
    assert split.catalog is not None and len(split.catalog) == len(whole.catalog or [])
    bad = partition_logs(BAD / "bad_ratings.csv", tmp_path / "bad", parts=2, quarantine=q)
    _events(bad)
    assert bad.report.rows_quarantined == 3 and bad.report.by_reason == {"bad rating": 3}
    assert len(q.read_text(encoding="utf-8").splitlines()) == 3


def test_user_partition_is_stable_across_processes_and_spread() -> None:
    users = [f"user-{k}" for k in range(2000)] + ["ünï", "u1"]
    here = [user_partition(u, 7) for u in users]
    code = (
        "import sys; from interests.ingest import user_partition; "
        "print([user_partition(u, 7) for u in sys.argv[1:]])"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code, *users],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert json.loads(out.stdout) == here
    sizes = [here.count(p) for p in range(7)]
    assert min(sizes) > 2000 / 7 * 0.8, sizes  # a hash, not a bias towards a few parts


def test_bad_arguments_and_an_unfinished_directory(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="parts must be at least 1"):
        partition_logs(EXAMPLES / "events.csv", tmp_path / "p", parts=0)
    (tmp_path / "half").mkdir()
    with pytest.raises(IngestError, match="did not finish"):
        PartitionedLogs.open(tmp_path / "half")


def _draft(request: Any, attempt: int) -> tuple[str, str]:
    return json.dumps(schema_answer(request.schema(), summary="Likes the things in the log.")), "stop"


def _profiles(path: Path) -> dict[str, dict[str, Any]]:
    return {p.user_id: p.model_dump(exclude={"provenance"}) for p in read_profiles(path)}


@pytest.mark.parametrize("categories", [True, False])
def test_partitioned_extraction_writes_the_profiles_of_a_whole_run(tmp_path: Path, categories: bool) -> None:
    """Item groups (clusters when the catalogue has no categories), rating scale and latest time are
    those of the whole data set, so each profile equals the one-pass run's; a re-run adds nothing."""
    paths = write_logs(generate(n_users=14, seed=3, categories=categories), tmp_path / "logs")
    whole = read_logs(paths["events"], catalog=paths["catalog"])
    one = extract_profiles(whole, output=tmp_path / "one" / "p.jsonl", backend=FakeBackend(_draft))
    split = partition_logs(paths["events"], tmp_path / "parts", parts=3, catalog=paths["catalog"])
    seen: list[int] = []
    res = extract_partitioned(
        split,
        output=tmp_path / "split" / "p.jsonl",
        backend=FakeBackend(_draft),
        batch_size=4,
        on_batch=lambda r, n: seen.append(r.attempted),
    )
    assert res.profiles == one.profiles == 14 and res.errors == 0
    assert seen == sorted(seen) and seen[-1] == 14  # running totals across partitions
    assert _profiles(tmp_path / "split" / "p.jsonl") == _profiles(tmp_path / "one" / "p.jsonl")
    groups = [json.loads((tmp_path / d / "p.groups.json").read_text()) for d in ("one", "split")]
    assert groups[0] == groups[1] and groups[0]["source"] == ("category" if categories else "cluster")
    again = extract_partitioned(split, output=tmp_path / "split" / "p.jsonl", backend=FakeBackend(_draft))
    assert again.profiles == 0 and again.users_skipped == 14
    assert len(read_profiles(tmp_path / "split" / "p.jsonl")) == 14


def test_partitioned_extraction_limit_counts_users_across_partitions(tmp_path: Path) -> None:
    split = partition_logs(
        EXAMPLES / "events.csv", tmp_path / "parts", parts=4, catalog=EXAMPLES / "catalog.jsonl"
    )
    res = extract_partitioned(split, output=tmp_path / "p.jsonl", backend=FakeBackend(_draft), limit=5)
    assert res.users_selected == res.profiles == 5 == len(read_profiles(tmp_path / "p.jsonl"))


def test_cli_extract_partitions_equals_the_run_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`interests extract --partitions N`: the same profiles file, the spill folder removed after."""
    from click.testing import CliRunner
    from interests.cli import cli

    import interests.llm.vllm_local as vllm_local

    monkeypatch.setattr(vllm_local, "VLLMBackend", lambda *a, **k: FakeBackend(_draft))
    args = [str(EXAMPLES / "events.csv"), "--catalog", str(EXAMPLES / "catalog.jsonl")]
    runner = CliRunner()
    one = runner.invoke(cli, ["extract", *args, "-o", str(tmp_path / "one.jsonl")])
    split = runner.invoke(cli, ["extract", *args, "-o", str(tmp_path / "split.jsonl"), "--partitions", "3"])
    assert one.exit_code == split.exit_code == 0, split.output
    assert "spilled to 3 partitions" in split.output
    assert _profiles(tmp_path / "split.jsonl") == _profiles(tmp_path / "one.jsonl")
    assert not (tmp_path / "split.parts").exists()
    again = runner.invoke(cli, ["extract", *args, "-o", str(tmp_path / "split.jsonl"), "--partitions", "3"])
    assert again.exit_code == 0 and "24 already done" in again.output
