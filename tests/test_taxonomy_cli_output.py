"""`interests taxonomy` output (issue #26): summaries on stderr (silenced by -q), --json results on
stdout, `show` never cuts lines when piped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from interests.cli import cli

from interests.profile.store import append_lines
from interests.synthetic import generate
from interests.synthetic.profiles import planted_profiles
from interests.taxonomy import Taxonomy


@pytest.fixture(scope="module")
def profiles_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tax") / "profiles.jsonl"
    append_lines(path, planted_profiles(generate(n_users=24, seed=0)))
    return path


def test_build_show_apply_output(profiles_file: Path, example_logs_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "taxonomy"
    catalog = str(example_logs_dir / "catalog.jsonl")
    res = runner.invoke(cli, ["taxonomy", "build", str(profiles_file), "--catalog", catalog, "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert res.stdout == "" and "6 domains, 18 topics from 24 profiles" in res.stderr

    res = runner.invoke(
        cli, ["-q", "taxonomy", "build", str(profiles_file), "--catalog", catalog, "-o", str(out), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    doc = json.loads(res.stdout)
    assert (doc["domains"], doc["topics"], doc["profiles"], doc["items_classified"]) == (6, 18, 24, 270)

    res = runner.invoke(cli, ["taxonomy", "show", str(out), "--examples", "5"])  # stdout is not a terminal
    assert res.exit_code == 0, res.output
    tax = Taxonomy.load(out)
    example = "; ".join(tax.domains[0].example_items[:5])
    assert len(example) > 80 and example in res.stdout  # whole, not cut at 80 columns
    assert max(len(line) for line in res.stdout.splitlines()) < 1000  # and not padded to a huge width

    res = runner.invoke(cli, ["taxonomy", "show", str(out), "--json"])
    shown = json.loads(res.stdout)
    assert [d["id"] for d in shown["domains"]] == [d.id for d in tax.domains]
    assert shown["domains"][0]["topics"][0]["items"] == tax.domains[0].topics[0].size

    vectors = tmp_path / "v.parquet"
    res = runner.invoke(
        cli,
        ["-q", "taxonomy", "apply", str(profiles_file), "--taxonomy", str(out), "-o", str(vectors), "--json"],
    )
    assert res.exit_code == 0, res.output
    assert res.stderr == "" and json.loads(res.stdout)["users"] == 24 and vectors.is_file()
