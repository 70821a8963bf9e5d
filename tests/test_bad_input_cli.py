"""Bad input given to the CLI: one line that names the file and the fix, the documented exit code,
no traceback and nothing half-written (issue #26: profiles files, mappings, empty or binary logs,
profiles of other users, a missing profiles path)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from interests.cli import cli

import interests
from interests.errors import InputFormatError, InputNotFoundError
from interests.profile.store import append_lines, read_errors, read_profiles
from interests.synthetic import generate
from interests.synthetic.profiles import planted_profiles


@pytest.fixture(scope="module")
def profiles_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profiles") / "profiles.jsonl"
    append_lines(path, planted_profiles(generate(n_users=24, seed=0)))  # the users of examples/logs
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def one_line_error(res: Result, code: int, *needles: str) -> str:
    """The ``Error: ...`` line of a failed command, checked: exit code, no traceback, the needles."""
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    [line] = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    for needle in needles:
        assert needle in line, line
    return line


def bad_profiles(tmp_path: Path, profiles_file: Path) -> dict[str, tuple[Path, str]]:
    """Each kind of bad profiles file, with what its error says."""
    records = [json.loads(line) for line in profiles_file.read_text().splitlines()]
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(bytes(range(256)) * 4)
    array = tmp_path / "array.json"
    array.write_text(json.dumps(records[:2], indent=2))
    pretty = tmp_path / "pretty.jsonl"
    pretty.write_text(json.dumps(records[0], indent=2) + "\n")
    prose = tmp_path / "prose.jsonl"
    prose.write_text("these are not profiles\n")
    events = tmp_path / "events.jsonl"
    events.write_text('{"user": "u001", "item": "i0001"}\n')
    return {
        "binary": (binary, "not a text file (binary data)"),
        "array": (array, "a JSON array, not JSON Lines"),
        "pretty": (pretty, "looks pretty-printed"),
        "prose": (prose, "line 1: not JSON"),
        "events": (events, "line 1: not a valid profile record"),
    }


@pytest.mark.parametrize("kind", ["binary", "array", "pretty", "prose", "events"])
def test_bad_profiles_file_report_train_taxonomy(
    kind: str, tmp_path: Path, profiles_file: Path, example_logs_dir: Path
) -> None:
    path, says = bad_profiles(tmp_path, profiles_file)[kind]
    logs, catalog = str(example_logs_dir / "events.csv"), str(example_logs_dir / "catalog.jsonl")
    out = tmp_path / "out"
    for args in (
        ["report", str(path), "--all", "-o", str(out / "r.html")],
        ["train", logs, "--profiles", str(path), "-o", str(out / "model")],
        ["taxonomy", "build", str(path), "--catalog", catalog, "-o", str(out / "tax")],
    ):
        line = one_line_error(run(*args), 1, str(path), says)
        assert "jq" in line or "give the" in line  # says how to fix it
    assert not out.exists()  # nothing half-written


def test_report_torn_last_line_is_named_on_stderr(tmp_path: Path, profiles_file: Path) -> None:
    lines = profiles_file.read_text().splitlines(keepends=True)
    torn = tmp_path / "torn.jsonl"
    torn.write_text("".join(lines[:3]) + lines[3][:80])
    res = run("report", str(torn), "--all", "-o", str(tmp_path / "r.md"), "--json")
    assert res.exit_code == 0, res.output
    assert f"{torn}, line 4: skipped a torn last line" in res.stderr
    assert json.loads(res.stdout)["profiles"] == 3
    # a whole last line without its newline is read, not dropped
    whole = tmp_path / "whole.jsonl"
    whole.write_text("".join(lines[:3]).rstrip("\n"))
    assert len(read_profiles(whole)) == 3


def test_report_on_empty_profiles_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    one_line_error(run("report", str(empty), "--all", "-o", str(tmp_path / "r.html")), 1, "holds no profiles")
    assert not (tmp_path / "r.html").exists()


def test_catalog_map_naming_a_missing_column(tmp_path: Path, example_logs_dir: Path) -> None:
    logs, catalog = str(example_logs_dir / "events.csv"), str(example_logs_dir / "catalog.jsonl")
    q = tmp_path / "q.jsonl"
    res = run("train", logs, "--catalog", catalog, "--catalog-map", "item=nosuch", "--quarantine", str(q))
    one_line_error(
        res, 1, "catalog.jsonl", "no column 'nosuch'", "--catalog-map item=nosuch", "item_id, title"
    )
    assert not q.exists()  # not one quarantined row per catalogue row
    csv_catalog = tmp_path / "items.csv"
    csv_catalog.write_text("item_id,title\ni0001,A\n")
    res = run("train", logs, "--catalog", str(csv_catalog), "--catalog-map", "item=nosuch")
    one_line_error(res, 1, "items.csv", "no column 'nosuch'", "columns are: item_id, title")


def test_map_naming_a_missing_column_and_a_field_twice(tmp_path: Path) -> None:
    logs = tmp_path / "small.csv"
    logs.write_text("user,item,rating\nu1,i1,5\n")
    line = one_line_error(run("train", str(logs), "--map", "item=nosuch"), 1, "small.csv", "'nosuch'")
    assert "columns are: user, item, rating" in line and "no column for item" not in line
    res = run("train", str(logs), "--map", "user=user,user=item")
    one_line_error(res, 1, "'user' is mapped twice", "user=user", "user=item")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "is empty"),
        (bytes(range(256)) * 8, "is not text (binary data)"),
        (b"user,item,rating\n", "has a header but no rows"),
    ],
)
def test_empty_or_binary_logs_say_what_is_wrong(content: bytes, says: str, tmp_path: Path) -> None:
    logs = tmp_path / "logs.csv"
    logs.write_bytes(content)
    out = tmp_path / "out" / "profiles.jsonl"
    line = one_line_error(run("extract", str(logs), "-o", str(out)), 1, str(logs), says)
    assert "quarantine" not in line  # no pointer to a quarantine file that does not exist
    assert not (tmp_path / "out").exists()


def test_every_row_quarantined_names_the_reasons_and_the_file(tmp_path: Path) -> None:
    logs = tmp_path / "logs.csv"
    logs.write_text("user,item,rating\nu1,,5\n,i2,3\n")
    q = tmp_path / "q.jsonl"
    line = one_line_error(run("extract", str(logs), "--quarantine", str(q)), 1, "all 2 rows were quarantined")
    assert "missing item: 1" in line and "missing user: 1" in line and str(q) in line and q.is_file()


def test_missing_inputs_exit_2(tmp_path: Path, profiles_file: Path) -> None:
    nosuch = str(tmp_path / "nosuch.csv")
    one_line_error(run("extract", nosuch), 2, "nosuch.csv")
    one_line_error(run("train", nosuch), 2, "nosuch.csv")
    one_line_error(run("train", str(profiles_file), "--catalog", nosuch), 2, "nosuch.csv")
    assert run("report", nosuch, "--all", "-o", str(tmp_path / "r.html")).exit_code == 2
    assert run("train", nosuch, "--profiles", nosuch).exit_code == 2


def test_profiles_of_other_users(tmp_path: Path, profiles_file: Path, example_logs_dir: Path) -> None:
    logs = str(example_logs_dir / "events.csv")
    other = tmp_path / "other.jsonl"
    other.write_text(profiles_file.read_text().replace('"user_id":"u0', '"user_id":"x0'))
    res = run("train", logs, "--profiles", str(other), "-o", str(tmp_path / "model"))
    one_line_error(res, 1, "0 of 24 profiles match users in the logs", "x001", "u001")
    assert not (tmp_path / "model").exists()


def test_read_profiles_of_a_missing_path_raises() -> None:
    with pytest.raises(InputNotFoundError, match=r"profiles file not found: typo\.jsonl"):
        interests.read_profiles("typo.jsonl")
    with pytest.raises(FileNotFoundError):  # a FileNotFoundError too
        read_profiles(Path("typo.jsonl"))
    assert read_errors("typo.errors.jsonl") == []  # a run without errors writes no errors file


def test_read_profiles_format_errors_are_input_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("[1, 2]\n")
    with pytest.raises(InputFormatError, match="a JSON array"):
        read_profiles(path)


def test_a_run_without_errors_writes_no_errors_file(example_logs_dir: Path, tmp_path: Path) -> None:
    from interests.ingest import read_logs
    from interests.llm.fake import FakeBackend, schema_answer
    from interests.profile.extract import extract_profiles, sibling_path

    def valid(request, attempt):  # type: ignore[no-untyped-def]
        return json.dumps(schema_answer(request.schema(), summary="Likes the things in the log.")), "stop"

    logs = read_logs(example_logs_dir / "events.csv", catalog=example_logs_dir / "catalog.jsonl")
    out = tmp_path / "p.jsonl"
    errors = sibling_path(out, "errors")
    res = extract_profiles(logs, output=out, backend=FakeBackend(valid), limit=3)
    assert res.profiles == 3 and res.errors == 0 and not errors.exists()
    res = extract_profiles(logs, output=out, backend=FakeBackend(lambda r, a: ("{}", "stop")), limit=5)
    assert res.errors == 2 and len(read_errors(errors)) == 2  # written once a user failed
    res = extract_profiles(logs, output=out, backend=FakeBackend(valid), limit=5, retry_errors=True)
    assert res.profiles == 2 and read_errors(errors) == [] and len(read_profiles(out)) == 5


def test_report_takes_the_log_options_and_comma_separated_users(
    tmp_path: Path, profiles_file: Path, example_logs_dir: Path
) -> None:
    renamed = tmp_path / "events.csv"  # columns only --map finds
    text = (example_logs_dir / "events.csv").read_text()
    renamed.write_text(text.replace("user,item,", "who,what,", 1))
    out = tmp_path / "r.md"
    args = ["report", str(profiles_file), "--user", "u001,u002", "--logs", str(renamed), "-o", str(out)]
    line = one_line_error(run(*args), 1, "events.csv", "no column for user", "--map user=COLUMN")
    assert "who, what" in line
    res = run(*args, "--map", "user=who,item=what", "--tz", "Europe/Paris", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"output": str(out), "format": "md", "users": 2, "profiles": 24}
    page = out.read_text()
    assert "u001" in page and "u002" in page and "u003" not in page
