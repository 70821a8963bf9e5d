"""One CLI surface: exit codes, INTERESTS_* environment variables, -q/-v, --user, missing extras.

No engine: the extract runs here find every selected user already done (a resumed
run), so the exit code and the lines printed come from the real command path
without starting a model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from conftest import EXAMPLES
from interests.cli import cli
from worlds import make_profile

from interests.profile.store import append_lines
from interests.schema import ErrorRecord


def _extract(tmp_path: Path, *extra: str, env: dict[str, str] | None = None, top: tuple[str, ...] = ()):
    out = tmp_path / "profiles.jsonl"
    args = [*top, "extract", str(EXAMPLES / "events.csv"), "--catalog", str(EXAMPLES / "catalog.jsonl")]
    # no model: a user left to do fails fast against a closed port instead of starting an engine
    args += ["--server", "http://127.0.0.1:9", "--served-model", "m", "--max-model-len", "4096"]
    return CliRunner().invoke(cli, [*args, "-o", str(out), *extra], env=env)


def _done(tmp_path: Path, profile_for: list[str], error_for: list[str]) -> None:
    profile = make_profile("x", 0, ["i1"])
    append_lines(
        tmp_path / "profiles.jsonl", [profile.model_copy(update={"user_id": u}) for u in profile_for]
    )
    append_lines(
        tmp_path / "profiles.errors.jsonl",
        [
            ErrorRecord(user_id=u, stage="generate", reason="cut off", created_at="2026-01-01T00:00:00Z")
            for u in error_for
        ],
    )


def test_exit_code_is_1_when_any_selected_user_ended_in_an_error(tmp_path: Path) -> None:
    _done(tmp_path, ["u001"], ["u002"])
    res = _extract(tmp_path, "--user", "u001", "--user", "u002", "--json")
    assert res.exit_code == 1, res.output
    assert "1 user ended in an error record" in res.stderr
    assert json.loads(res.stdout)["users_with_errors"] == 1
    # the user with a profile alone: success
    res = _extract(tmp_path, "--user", "u001")
    assert res.exit_code == 0, res.output
    # usage errors are 2
    assert _extract(tmp_path, "--batch-size", "0").exit_code == 2


def test_user_is_repeatable_and_takes_commas(tmp_path: Path) -> None:
    _done(tmp_path, ["u001", "u002", "u003"], [])
    res = _extract(tmp_path, "--user", "u001,u002", "--users", "u003", "--json")
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert (got["users_selected"], got["users_skipped"]) == (3, 3)


def test_every_option_reads_an_interests_environment_variable(tmp_path: Path) -> None:
    _done(tmp_path, ["u001", "u002"], [])
    res = _extract(tmp_path, "--json", env={"INTERESTS_EXTRACT_USER": "u001"})
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["users_selected"] == 1
    # a bad value from the environment is a usage error that names the option
    res = _extract(tmp_path, env={"INTERESTS_EXTRACT_BATCH_SIZE": "0"})
    assert res.exit_code == 2 and "batch-size" in res.output
    # nested commands too
    res = CliRunner().invoke(cli, ["models", "list"], env={"INTERESTS_MODELS_LIST_JSON": "1"})
    assert res.exit_code == 0 and isinstance(json.loads(res.stdout), list)


def test_quiet_drops_status_lines_and_keeps_results(tmp_path: Path) -> None:
    _done(tmp_path, ["u001"], [])
    loud = _extract(tmp_path, "--user", "u001", "--json")
    assert "read " in loud.stderr and "users: 1 selected" in loud.stderr
    quiet = _extract(tmp_path, "--user", "u001", "--json", top=("-q",))
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert json.loads(quiet.stdout) == {
        **json.loads(loud.stdout),
        "seconds": json.loads(quiet.stdout)["seconds"],
    }
    both = _extract(tmp_path, top=("-q", "-v"))
    assert both.exit_code == 2


def test_train_reports_its_progress_on_stderr(example_logs_dir: Path, tmp_path: Path) -> None:
    logs = [str(example_logs_dir / "events.csv"), "--catalog", str(example_logs_dir / "catalog.jsonl")]
    args = ["train", *logs, "-o", str(tmp_path / "model"), "--epochs", "2", "--no-holdout", "--json"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "epoch 2" in res.stderr and "two-tower:" in res.stderr and "read " in res.stderr
    assert json.loads(res.stdout)["epochs"] == 2
    res = CliRunner().invoke(cli, ["-q", *args])
    assert res.exit_code == 0, res.output
    assert res.stderr == "" and json.loads(res.stdout)["epochs"] == 2
    # the logs as --logs, the same as an argument
    res = CliRunner().invoke(cli, ["-q", "train", "--logs", *args[1:]])
    assert res.exit_code == 0 and json.loads(res.stdout)["users"] == 24, res.output


def test_the_recommender_without_torch_names_the_extra() -> None:
    code = "import sys; sys.modules['torch'] = None\nimport interests.recsys.model\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "interests[cpu]" in proc.stderr and "ConfigError" in proc.stderr


def test_the_sdk_runs_the_pipeline_in_three_calls(example_logs_dir: Path, tmp_path: Path) -> None:
    import interests
    from interests.llm.fake import FakeBackend

    logs = interests.read_logs(example_logs_dir / "events.csv", catalog=example_logs_dir / "catalog.jsonl")
    out = tmp_path / "profiles.jsonl"
    profiles = interests.extract(logs, output=out, backend=FakeBackend(), users=["u001", "u002", "u003"])
    assert sorted(p.user_id for p in profiles) == ["u001", "u002", "u003"]
    assert interests.read_profiles(out) == profiles
    model = interests.train(logs, profiles=out, output=tmp_path / "model", epochs=2, holdout=False)
    assert isinstance(model, interests.TwoTower) and (tmp_path / "model" / "model.safetensors").is_file()
    recs = interests.recommend(model, ["u001"], k=3, explain=True)
    assert [r["user_id"] for r in recs] == ["u001"] and len(recs[0]["items"]) == 3
    assert all("because" in item or "nodes" in item for item in recs[0]["items"])
    # the CLI prints the same list from the saved model
    res = CliRunner().invoke(
        cli, ["recommend", str(tmp_path / "model"), "--user", "u001", "-k", "3", "--json", "--explain"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == json.loads(json.dumps(recs))
    for name in ("read_profiles", "TwoTower", "evaluate", "extract", "train", "recommend", "update_profiles"):
        assert name in interests.__all__ and getattr(interests, name) is not None
