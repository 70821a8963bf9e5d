"""`interests update` with the real vLLM engine: the model runs for the one user whose groups changed."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import EXAMPLES, expected_exit, interests_cmd

from interests.profile.store import read_profiles

pytestmark = pytest.mark.engine


def test_update_asks_the_engine_only_for_the_user_whose_groups_changed(
    engine_profiles: Path, tmp_path: Path
) -> None:
    out = tmp_path / "profiles.jsonl"
    shutil.copy(engine_profiles, out)
    shutil.copy(engine_profiles.with_name("profiles.groups.json"), tmp_path / "profiles.groups.json")
    before = {p.user_id: p for p in read_profiles(out)}
    catalog = {json.loads(line)["item_id"]: json.loads(line) for line in (EXAMPLES / "catalog.jsonl").open()}
    with (EXAMPLES / "events.csv").open() as f:
        rows = list(csv.DictReader(f))
    mine = {r["item"] for r in rows if r["user"] == "u001"}
    domains = {catalog[i]["categories"][0] for i in mine}
    fresh = [i for i, it in catalog.items() if it["categories"][0] not in domains][:3]
    other = next(u for u in before if u not in ("u001",) and before[u].domains)
    repeat = before[other].domains[0].topics[0].item_ids[0]
    extra = [
        {"user": "u001", "item": i, "rating": "5", "timestamp": f"2023-12-{d:02d}T20:00:00+00:00"}
        for d, i in enumerate(fresh * 4, start=1)
    ] + [{"user": other, "item": repeat, "rating": "4", "timestamp": "2023-12-20T20:00:00+00:00"}]
    grown = tmp_path / "events.csv"
    with grown.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
        w.writerows({k: r.get(k, "") for k in rows[0]} for r in extra)
    cmd = interests_cmd("update", str(grown), "--catalog", str(EXAMPLES / "catalog.jsonl"))
    proc = subprocess.run(
        [*cmd, "--profiles", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2"},
    )
    assert proc.returncode == expected_exit(out.with_name("profiles.errors.jsonl")), proc.stderr[-3000:]
    counts = json.loads(proc.stdout)
    assert (counts["unchanged"], counts["exact"], counts["llm"], counts["new"]) == (len(before) - 2, 1, 1, 0)
    after = {p.user_id: p for p in read_profiles(out)}
    assert list(after) == list(before)  # one line a user, same order
    assert after[other].provenance.made_by == "update-exact"
    assert after[other].stats.n_events == before[other].stats.n_events + 1
    if counts["errors"] == 0:  # the engine wrote the new words
        new = after["u001"]
        assert new.provenance.made_by == "update-llm" and new.provenance.backend == "vllm"
        assert len(new.domains) == len(before["u001"].domains) + 1
        assert set(fresh) <= new.item_ids()
    else:  # or the user has an error record and keeps the old profile
        assert after["u001"] == before["u001"]
    history = [json.loads(line) for line in (tmp_path / "profiles.history.jsonl").open()]
    assert sorted(h["user_id"] for h in history) == sorted(
        {other, "u001"} if counts["errors"] == 0 else {other}
    )
