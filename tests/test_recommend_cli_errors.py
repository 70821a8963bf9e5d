"""`interests recommend` on bad requests (issue #26): unknown users are reported and the others
served, unknown --items ids and --diverse out of 0..1 are errors, a closed pipe ends it quietly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import interests_cmd
from interests.cli import cli


@pytest.fixture(scope="module")
def model_dir(example_logs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rec") / "model"
    res = CliRunner().invoke(
        cli,
        ["train", str(example_logs_dir / "events.csv"), "-o", str(out), "--epochs", "1", "--no-sasrec"],
    )
    assert res.exit_code == 0, res.output
    return out


def test_unknown_users_are_reported_and_the_others_served(model_dir: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        cli, ["recommend", str(model_dir), "--user", "nobody,u001", "--user", "ghost", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert [b["user_id"] for b in json.loads(res.stdout)] == ["u001"]
    assert "skipped: nobody, ghost" in res.stderr and "--items" in res.stderr and "--text" in res.stderr
    assert "recommend_new" not in res.output

    res = runner.invoke(cli, ["recommend", str(model_dir), "--user", "nobody"])
    assert res.exit_code == 1 and res.stdout == ""
    assert "Error: none of the 1 users could be served" in res.stderr and "--items" in res.stderr

    # an unknown user with a cold-start request: the new user is served
    res = runner.invoke(cli, ["recommend", str(model_dir), "--user", "nobody", "--items", "i0001", "--json"])
    assert res.exit_code == 0, res.output
    assert [b["user_id"] for b in json.loads(res.stdout)] == ["(new user)"]


def test_unknown_items_are_an_error(model_dir: Path) -> None:
    res = CliRunner().invoke(cli, ["recommend", str(model_dir), "--items", "nosuch,i0001,other"])
    assert res.exit_code == 1 and res.stdout == ""
    assert "Error: unknown item ids in --items: nosuch, other" in res.stderr


@pytest.mark.parametrize("value", ["5", "-1"])
def test_diverse_out_of_range_is_a_usage_error(model_dir: Path, value: str) -> None:
    res = CliRunner().invoke(cli, ["recommend", str(model_dir), "--user", "u001", "--diverse", value])
    assert res.exit_code == 2 and "0<=x<=1" in res.output


def test_closed_pipe_ends_quietly(model_dir: Path) -> None:
    users = ",".join(f"u{n:03d}" for n in range(1, 25))
    proc = subprocess.Popen(
        interests_cmd("recommend", str(model_dir), "--user", users, "-k", "250"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # `| head -1`: read one line, then close the pipe
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141  # 128 + SIGPIPE, as `yes | head -1` under pipefail
    assert first.startswith(b"user u001") and "Traceback" not in err and "BrokenPipe" not in err
