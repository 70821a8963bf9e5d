"""`interests check`: logs read and mapped as extract would, without the engine (issue #26)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from interests.cli import cli


def test_check_reports_what_extract_would_do(example_logs_dir: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs.csv"
    logs.write_text((example_logs_dir / "events.csv").read_text() + "u999,,5,2022-01-01,,\nu998,i0001,x,,,\n")
    out = tmp_path / "out" / "p.jsonl"
    catalog = str(example_logs_dir / "catalog.jsonl")
    res = CliRunner().invoke(cli, ["check", str(logs), "--catalog", catalog, "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["users"], doc["events"], doc["items"], doc["rows_read"]) == (24, 1097, 262, 1099)
    assert doc["quarantined_by_reason"] == {"missing item": 1, "bad rating": 1}
    quarantine = out.parent / "p.quarantine.jsonl"
    assert doc["quarantine_file"] == str(quarantine) and len(quarantine.read_text().splitlines()) == 2
    assert doc["catalog"]["coverage"] == 1.0 and doc["catalog"]["items"] == 270
    assert not out.exists()  # no profiles, no engine

    res = CliRunner().invoke(cli, ["check", str(logs), "--catalog", catalog, "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "users: 24; events: 1,097; items: 262" in res.stdout
    assert f"missing item: 1, bad rating: 1 -> {quarantine}" in res.stdout
    assert "262 of the 262 logged items are in it (100.0%)" in res.stdout


def test_check_tries_a_map(tmp_path: Path) -> None:
    logs = tmp_path / "ratings.csv"
    logs.write_text("userId,movieId,stars\n1,10,4\n2,10,5\n2,11,3\n")
    res = CliRunner().invoke(cli, ["check", str(logs), "--map", "item=film", "-o", str(tmp_path / "p.jsonl")])
    assert res.exit_code == 1 and "no column 'film'" in res.output and "userId, movieId, stars" in res.output
    res = CliRunner().invoke(
        cli,
        ["check", str(logs), "--map", "item=movieId,rating=stars", "--json", "-o", str(tmp_path / "p.jsonl")],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["users"] == 2 and json.loads(res.stdout)["quarantine_file"] is None
    res = CliRunner().invoke(cli, ["check", str(tmp_path / "nosuch.csv")])
    assert res.exit_code == 2 and "nosuch.csv" in res.output


def test_json_logs_with_a_map_naming_a_missing_key(tmp_path: Path) -> None:
    logs = tmp_path / "events.jsonl"
    logs.write_text('{"user": "u1", "item": "i1"}\n{"user": "u2", "item": "i2"}\n')
    q = tmp_path / "q.jsonl"
    res = CliRunner().invoke(cli, ["check", str(logs), "--map", "item=nosuch", "--quarantine", str(q)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    [line] = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert "all 2 rows were quarantined (missing item: 2)" in line and str(q) in line and q.is_file()
    assert "--map item=nosuch" in line
