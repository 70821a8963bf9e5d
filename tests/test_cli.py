"""The command line: help is instant, schema and models commands, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from conftest import EXAMPLES
from interests.cli import cli


def test_help_does_not_import_torch_or_vllm():
    code = (
        "import sys; from interests.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'vllm', 'transformers', 'instructor') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "extract" in proc.stdout and "taxonomy" in proc.stdout


def test_extract_help_lists_the_options():
    res = CliRunner().invoke(cli, ["extract", "--help"])
    assert res.exit_code == 0
    for opt in (
        "--catalog",
        "--map",
        "--quarantine",
        "--strict",
        "--server",
        "--limit",
        "--batch-size",
        "--redact",
    ):
        assert opt in res.output


def test_schema_prints_the_profile_json_schema():
    res = CliRunner().invoke(cli, ["schema"])
    assert res.exit_code == 0
    schema = json.loads(res.output)
    assert schema["title"] == "InterestProfile" and "domains" in schema["properties"]
    draft = json.loads(CliRunner().invoke(cli, ["schema", "--draft", "--structure", "model"]).output)
    assert draft["$defs"]["DraftTopic"]["properties"]["item_ids"]["items"]["enum"] == ["ITEM_1", "ITEM_2"]
    slots = json.loads(CliRunner().invoke(cli, ["schema", "--draft"]).output)["$defs"]
    assert slots["Slot_d1_t1"]["properties"]["items"]["items"]["enum"] == ["ITEM_1", "ITEM_2"]
    assert slots["Slot_d2_t1"]["properties"]["items"]["items"]["const"] == "ITEM_3"


def test_models_list_shows_the_embedded_default():
    res = CliRunner().invoke(cli, ["models", "list", "--json"])
    assert res.exit_code == 0
    rows = json.loads(res.output)
    assert rows[0]["name"] == "smollm2-135m" and rows[0]["default"] and rows[0]["installed"]


def test_missing_log_file_is_a_one_line_error(tmp_path):
    res = CliRunner().invoke(cli, ["extract", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "p.jsonl")])
    assert res.exit_code == 2  # a missing input file, as click's own path checks (docs/cli.md)
    assert res.output.startswith("Error:") and "nope.csv" in res.output


def test_strict_stops_at_the_first_bad_row(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating,timestamp\nu1,i1,5,2020-01-01T00:00:00Z\nu2,,4,2020-01-01T00:00:00Z\n")
    res = CliRunner().invoke(cli, ["extract", str(bad), "--strict", "-o", str(tmp_path / "p.jsonl")])
    assert res.exit_code == 1
    assert "bad.csv, line 3" in res.output and "missing item" in res.output


def test_examples_exist():
    assert (EXAMPLES / "events.csv").is_file() and (EXAMPLES / "catalog.jsonl").is_file()


def test_sigterm_raises_keyboard_interrupt_inside_a_command_and_the_old_handler_returns() -> None:
    import signal as _signal

    from interests.cli.common import sigterm_as_interrupt

    before = _signal.getsignal(_signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), _signal.SIGTERM)
        time.sleep(5)  # the signal arrives before this ends
    assert _signal.getsignal(_signal.SIGTERM) is before


@pytest.mark.parametrize(
    "argv",
    [
        ["extract", "x.csv", "--batch-size", "0"],
        ["extract", "x.csv", "--limit", "-1"],
        ["extract", "x.csv", "--concurrency", "0"],
        ["extract", "x.csv", "--max-items", "0"],
        ["recommend", "model", "--user", "u1", "-k", "0"],
        ["evaluate", "--logs", "x.csv", "--seeds", "x"],
    ],
)
def test_bad_numbers_are_usage_errors_not_tracebacks(argv: list[str]) -> None:
    """--seeds x and --batch-size 0 ended in tracebacks; --limit -1 silently dropped a user."""
    res = CliRunner().invoke(cli, argv)
    assert res.exit_code == 2, res.output
    assert "Invalid value" in res.output and "Traceback" not in res.output
