"""`interests taxonomy build/show/apply` on the example logs (CliRunner, hashing encoder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from interests.cli import cli

from interests.profile.store import append_lines
from interests.synthetic import generate
from interests.synthetic.profiles import planted_profiles
from interests.taxonomy import Taxonomy, UserVectors


@pytest.fixture(scope="module")
def profiles_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tax") / "profiles.jsonl"
    append_lines(path, planted_profiles(generate(n_users=24, seed=0)))  # the users of examples/logs
    return path


def test_build_show_apply(profiles_file: Path, example_logs_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "taxonomy"
    logs, catalog = str(example_logs_dir / "events.csv"), str(example_logs_dir / "catalog.jsonl")
    res = runner.invoke(
        cli,
        [
            "taxonomy",
            "build",
            str(profiles_file),
            "--catalog",
            catalog,
            "--logs",
            logs,
            "-o",
            str(out),
            "--encoder",
            "hashing",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "6 domains, 18 topics from 24 profiles; 270 items classified" in res.output
    assert {p.name for p in out.iterdir()} == {
        "taxonomy.json",
        "classifier.safetensors",
        "items.parquet",
        "user_vectors.parquet",
    }
    doc = json.loads((out / "taxonomy.json").read_text())
    assert doc["encoder"] == "hashing" and len(doc["domains"]) == 6
    vectors = UserVectors.load(out / "user_vectors.parquet")
    assert len(vectors.user_ids) == 24
    truth = json.loads((example_logs_dir / "truth.json").read_text())
    evening = [u["user_id"] for u in truth["users"] if u["rhythm"] == "evening"]
    assert all(vectors.block("hour")[vectors.user_ids.index(u), 19:23].sum() > 0.9999 for u in evening)

    res = runner.invoke(cli, ["taxonomy", "show", str(out), "--examples", "2"])
    assert res.exit_code == 0, res.output
    tax = Taxonomy.load(out)
    for d in tax.domains:
        assert f"{d.id} {d.label}" in res.output
        assert f"{d.topics[0].id} {d.topics[0].label}" in res.output
    assert "45 items" in res.output and "e.g." in res.output

    res = runner.invoke(
        cli,
        [
            "taxonomy",
            "apply",
            str(profiles_file),
            "--taxonomy",
            str(out),
            "--logs",
            logs,
            "-o",
            str(tmp_path / "v.parquet"),
        ],
    )
    assert res.exit_code == 0, res.output
    again = UserVectors.load(tmp_path / "v.parquet")
    assert again.columns == vectors.columns and again.user_ids == vectors.user_ids
    assert (abs(again.matrix - vectors.matrix) < 1e-6).all()


def test_errors_are_one_line(tmp_path: Path, profiles_file: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["taxonomy", "show", str(tmp_path)])
    assert res.exit_code == 1 and "not a taxonomy folder" in res.output and "Traceback" not in res.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = runner.invoke(cli, ["taxonomy", "apply", str(empty), "--taxonomy", str(tmp_path)])
    assert res.exit_code == 1 and "holds no profiles" in res.output
