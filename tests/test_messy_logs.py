"""Messy logs end to end: ingestion never crashes, the counts add up, and every user with a
usable event ends with a profile or an error record.

``tests/test_ingest.py`` checks each kind of bad row in isolation (``tests/data/bad``); here
the same kinds come mixed in the ways real exports go wrong (a concatenated file with a second
byte-order mark, a cut-off last line, a directory of everything), including what that corpus
lacks: a user with 50,000 events, UTF-16 and binary files, and the whole path through
extraction with the scripted backend.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from interests.events import Catalog, Item
from interests.ingest import MAX_LINE_CHARS, REASONS, IngestError, Logs, read_logs
from interests.llm.base import GenRequest
from interests.llm.fake import FakeBackend, schema_answer
from interests.profile.extract import extract_profiles, sibling_path
from interests.profile.store import iter_jsonl
from interests.schema import QuarantinedRow

T = 1_600_000_000
HEADER = "user,item,rating,timestamp,review\n"


def _valid(request: GenRequest, attempt: int) -> tuple[str, str]:
    """A valid draft (either structure) citing the first two items the prompt showed of each group."""
    summary = "Likes the things in these logs very much."
    return json.dumps(schema_answer(request.schema(), summary=summary)), "stop"


def _fails_for_some(request: GenRequest, attempt: int) -> tuple[str, str]:
    """Users whose id ends in 3 never get valid output: they end as error records."""
    return ("not json", "stop") if request.key.endswith("3") else _valid(request, attempt)


# --- the cases: each writes files into a folder and returns (paths, read_logs options) ----------

Case = Callable[[Path], tuple[list[Path], dict[str, Any]]]


def truncated_lines(d: Path) -> tuple[list[Path], dict[str, Any]]:
    a = d / "cut.csv"
    a.write_text(HEADER + f"u1,i1,4,{T},fine\nu1,i2,5,{T + 60},also fine\nu2,i3,3,{T + 120},cut he")
    b = d / "cut2.csv"  # the writer died after the user column
    b.write_text(HEADER + f"u2,i4,4,{T},ok\nu2")
    c = d / "cut.jsonl"
    c.write_text(f'{{"user": "u3", "item": "i1", "timestamp": {T}}}\n{{"user": "u3", "item": "i2", "times')
    return [a, b, c], {}


def wrong_delimiters(d: Path) -> tuple[list[Path], dict[str, Any]]:
    p = d / "delims.csv"
    p.write_text(
        HEADER + f"u1,i1,4,{T},ok\nu1;i2;4;{T};semicolons\nu1\ti3\t4\t{T}\ttabs\n"
        f"u1|i4|4|{T}|pipes\nu2,i5,2,{T},ok\n"
    )
    return [p], {}


def mixed_encodings_and_boms(d: Path) -> tuple[list[Path], dict[str, Any]]:
    p = d / "concat.csv"  # two exports glued with cat: a BOM at the start and one in the middle
    part1 = "\ufeff" + HEADER + f"u1,i1,4,{T},caf\u00e9 cr\u00e8me \u65e5\u672c\n"
    part2 = "\ufeff" + HEADER + f"u2,i2,5,{T},na\u00efve\n"
    p.write_bytes(
        part1.encode()
        + f"u1,i3,3,{T},caf\u00e9 latin-1\n".encode("latin-1")
        + f"u1,i4,3,{T},\u201ccp1252 quotes\u201d\n".encode("cp1252")
        + part2.encode()
    )
    q = d / "utf16.csv"
    q.write_bytes((HEADER + f"u9,i9,4,{T},utf-16\n").encode("utf-16"))
    return [p, q], {}


def huge_single_lines(d: Path) -> tuple[list[Path], dict[str, Any]]:
    p = d / "huge.jsonl"
    huge = json.dumps({"user": "u1", "item": "i2", "review": "x" * (MAX_LINE_CHARS + 5)})
    p.write_text(
        f'{{"user": "u1", "item": "i1", "timestamp": {T}}}\n{huge}\n'
        f'{{"user": "u1", "item": "i3", "review": "{"y" * 100_000}"}}\n'
    )
    q = d / "huge.csv"
    q.write_text(HEADER + f"u2,i1,4,{T},short\n" + f"u2,i2,4,{T},{'z' * (MAX_LINE_CHARS + 5)}\n")
    return [p, q], {}


def missing_and_extra_columns(d: Path) -> tuple[list[Path], dict[str, Any]]:
    p = d / "cols.csv"
    p.write_text(
        HEADER + f"u1,i1,4,{T},ok\nu1,i2\nu1,i3,4,{T},ok,extra,more\nu1,i4,4\n,i5,4,{T},no user\n"
        f"u2,,4,{T},no item\nu2,i6,4,{T},ok\n"
    )
    q = d / "cols.jsonl"
    q.write_text(
        '{"user": "u3", "item": "i1", "extra": {"nested": [1, 2]}, "more": null}\n'
        '{"item": "i2"}\n{"user": "u3"}\n["u3", "i3"]\n'
    )
    return [p, q], {}


def nan_and_empty_ratings(d: Path) -> tuple[list[Path], dict[str, Any]]:
    p = d / "ratings.csv"
    p.write_text(
        HEADER
        + "".join(
            f"u1,i{k},{r},{T + k},\n"
            for k, r in enumerate(["4", "", "NaN", "nan", "inf", "-", "N/A", "4,5", " 3 "])
        )
    )
    q = d / "ratings.jsonl"
    q.write_text(
        "".join(
            f'{{"user": "u2", "item": "i{k}", "rating": {r}}}\n'
            for k, r in enumerate(["NaN", "null", '""', "Infinity", "-Infinity", "4.5", '"5"', "true"])
        )
    )
    return [p, q], {}


def odd_timestamps(d: Path) -> tuple[list[Path], dict[str, Any]]:
    p = d / "times.csv"
    rows = [
        T,
        4_102_444_800 + 86400 * 365 * 50,
        -86400,
        0,
        "1969-07-20T20:17:40Z",
        "2999-01-01",
        "1899-12-31",
        "",
        "yesterday",
        T * 1000,
        T * 1_000_000,
    ]
    p.write_text(HEADER + "".join(f"u1,i{k},4,{t},\n" for k, t in enumerate(rows)))
    return [p], {}


def duplicate_events(d: Path) -> tuple[list[Path], dict[str, Any]]:
    p = d / "dups.csv"
    p.write_text(HEADER + f"u1,i1,4,{T},same\n" * 3 + f"u1,i1,4,{T + 1},later\nu1,i2,4,{T},x\n")
    q = d / "dups.jsonl"  # the same event again, in another format
    q.write_text(
        json.dumps({"user": "u1", "item": "i1", "rating": 4, "timestamp": T, "review": "same"}) + "\n"
    )
    return [p, q], {}


def unknown_items(d: Path) -> tuple[list[Path], dict[str, Any]]:
    p = d / "events.csv"
    p.write_text(HEADER + f"u1,i1,4,{T},known\nu1,zz9,4,{T + 1},unknown\nu2,zz8,2,{T},unknown only\n")
    cat = Catalog({"i1": Item("i1", "Known item", ["Things"])})
    return [p], {"catalog": cat}


def unknown_items_strict(d: Path) -> tuple[list[Path], dict[str, Any]]:
    paths, opts = unknown_items(d)
    return paths, {**opts, "strict_catalog": True}


def empty_files(d: Path) -> tuple[list[Path], dict[str, Any]]:
    (d / "empty.csv").write_bytes(b"")
    (d / "empty.jsonl").write_bytes(b"")
    (d / "blank.csv").write_text("\n\n   \n")
    (d / "header.csv").write_text(HEADER)
    return [d / "empty.csv", d / "empty.jsonl", d / "header.csv"], {}


def directory_with_mixed_formats(d: Path) -> tuple[list[Path], dict[str, Any]]:
    root = d / "logs"
    (root / "2024" / "deep").mkdir(parents=True)
    (root / "a.csv").write_text(HEADER + f"u1,i1,4,{T},ok\nu1,i2,bad,{T},\n")
    (root / "b.tsv").write_text("user\titem\trating\nu2\ti1\t5\nu2\ti3\n")
    (root / "2024" / "c.jsonl.gz").write_bytes(
        gzip.compress(f'{{"user": "u3", "item": "i2", "timestamp": {T}}}\n{{not json\n'.encode())
    )
    (root / "2024" / "deep" / "d.csv").write_text("userId,movieId,rating,timestamp\n4,i1,4.0,964982703\n")
    (root / "2024" / "empty.csv").write_bytes(b"")
    (root / "utf16.csv").write_bytes((HEADER + f"u9,i9,4,{T},\n").encode("utf-16"))
    (root / "junk.csv").write_bytes(b"\x00\x01\x02\xff\xfe\n\x00\n")
    (root / "README.md").write_text("# not a log\n")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"user": ["u5", None], "item": ["i5", "i6"]}), root / "e.parquet")
    except ImportError:
        pass
    return [root], {}


CASES: dict[str, Case] = {
    f.__name__: f
    for f in (
        truncated_lines,
        wrong_delimiters,
        mixed_encodings_and_boms,
        huge_single_lines,
        missing_and_extra_columns,
        nan_and_empty_ratings,
        odd_timestamps,
        duplicate_events,
        unknown_items,
        unknown_items_strict,
        empty_files,
        directory_with_mixed_formats,
    )
}


def _read(paths: list[Path], opts: dict[str, Any], qpath: Path) -> Logs | None:
    """read_logs, reading the files one by one when a whole-file error (UTF-16, binary) stops it."""
    try:
        return read_logs(paths, quarantine=qpath, **opts)
    except IngestError as exc:
        # a file that is not a log at all is refused with its name, never with a traceback
        assert any(str(p) in str(exc) for p in paths), exc
        return None


def check_counts(logs: Logs, qpath: Path) -> list[QuarantinedRow]:
    r = logs.report
    assert r.rows_read == r.rows_used + r.rows_quarantined + r.duplicates + r.rows_filtered, r
    assert sum(r.by_reason.values()) == r.rows_quarantined
    assert logs.n_events + r.events_dropped == r.rows_used
    rows = [QuarantinedRow.model_validate(d) for d in iter_jsonl(qpath)]
    assert len(rows) == r.rows_quarantined
    for row in rows:
        assert row.file and row.line >= 1 and row.reason in REASONS, row
    return rows


def check_extraction(logs: Logs, out: Path) -> tuple[int, int]:
    res = extract_profiles(
        logs, output=out, backend=FakeBackend(_fails_for_some), batch_size=4, max_attempts=2
    )
    records = [d["user_id"] for d in iter_jsonl(out)] + [
        d["user_id"] for d in iter_jsonl(sibling_path(out, "errors"))
    ]
    users = [u for u, h in logs.histories.items() if h.events]
    assert sorted(records) == sorted(users)  # every user exactly once
    assert (res.profiles, res.errors) == (
        sum(not u.endswith("3") for u in users),
        sum(u.endswith("3") for u in users),
    )
    return res.profiles, res.errors


@pytest.mark.parametrize("name", list(CASES))
def test_messy_case(name: str, tmp_path: Path) -> None:
    paths, opts = CASES[name](tmp_path)
    qpath = tmp_path / "out" / "quarantine.jsonl"
    logs = _read(paths, opts, qpath)
    if logs is None:  # refused as a whole (a UTF-16 file given by name): read the other files
        readable = [p for p in paths if _read([p], opts, tmp_path / f"probe-{p.name}.jsonl") is not None]
        qpath.unlink(missing_ok=True)
        logs = read_logs(readable, quarantine=qpath, **opts)
    rows = check_counts(logs, qpath)
    profiles, errors = (
        check_extraction(logs, tmp_path / "out" / "profiles.jsonl") if logs.histories else (0, 0)
    )
    r = logs.report
    print(
        f"{name}: read {r.rows_read}, used {r.rows_used}, quarantined {r.rows_quarantined} {r.by_reason}, "
        f"duplicates {r.duplicates}, skipped files {len(r.skipped_files)}; {len(logs.histories)} users -> "
        f"{profiles} profiles + {errors} error records; quarantine lines {len(rows)}"
    )


def test_expected_outcomes(tmp_path: Path) -> None:
    """What the cases above must do, beyond not crashing."""

    def run(case: Case, first: int | None = None, **extra: Any) -> Logs:
        d = tmp_path / case.__name__
        d.mkdir()
        paths, opts = case(d)
        logs = read_logs(paths[:first], quarantine=d / "q.jsonl", **{**opts, **extra})
        check_counts(logs, d / "q.jsonl")
        return logs

    cut = run(truncated_lines)
    assert cut.report.by_reason == {"wrong number of columns": 1, "unparsable JSON": 1}
    assert [e.text for e in cut["u2"].events if e.item_id == "i3"] == ["cut he"]  # a cut text is still text
    delims = run(wrong_delimiters)
    assert delims.report.by_reason == {"wrong number of columns": 3} and delims.report.rows_used == 2
    # UTF-16 with a byte-order mark (Excel's "Unicode text") is read like UTF-8
    u16 = read_logs(mixed_encodings_and_boms(tmp_path)[0][1])
    assert [(e.item_id, e.rating, e.text) for e in u16["u9"].events] == [("i9", 4.0, "utf-16")]
    enc = run(mixed_encodings_and_boms, first=1)
    # the Latin-1 row and the cp1252 row are quarantined; the second header (after a BOM) is not data
    assert enc.report.by_reason.get("not UTF-8") == 2
    assert {e.item_id for e in enc.events()} >= {"i1", "i2"}
    huge = run(huge_single_lines)
    assert huge.report.by_reason == {"line too long": 2}
    assert len(next(e.text for e in huge["u1"].events if e.item_id == "i3") or "") <= 2000
    cols = run(missing_and_extra_columns)
    assert cols.report.by_reason == {
        "wrong number of columns": 3,
        "missing user": 2,
        "missing item": 2,
        "not a JSON object": 1,
    }
    ratings = run(nan_and_empty_ratings)
    assert {e.rating for e in ratings.events()} <= {None, 3.0, 4.0, 4.5, 5.0}
    assert all(r == r for e in ratings.events() if (r := e.rating) is not None)  # no NaN kept
    times = run(odd_timestamps)
    assert times.report.by_reason.get("timestamp out of range", 0) >= 3
    assert all(e.ts is None or 0 <= e.ts < 4_102_444_800 + 86400 * 365 * 50 for e in times.events())
    dups = run(duplicate_events)
    assert (dups.report.rows_used, dups.report.duplicates) == (3, 3)
    loose, strict = run(unknown_items), run(unknown_items_strict)
    assert loose.report.rows_used == 3 and strict.report.by_reason == {"unknown item": 2}
    assert strict.users() == ["u1"]
    empty = run(empty_files)
    assert (empty.report.rows_read, len(empty.histories)) == (0, 0)
    mixed = run(directory_with_mixed_formats)
    skipped = mixed.report.skipped_files
    assert any("junk" in k for k in skipped) and any("README" in k for k in skipped)
    assert not any("utf16" in k for k in skipped)
    assert {"u1", "u2", "u3", "4", "u9"} <= set(mixed.users())


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_logs_with_a_bad_sequence(codec: str, tmp_path: Path) -> None:
    """UTF-16 (either byte order, told by the byte-order mark), CSV and JSON Lines: every row is
    read; a row with an undecodable sequence (a lone surrogate) is quarantined with its line, the
    rows after it are still read."""
    bom = b"\xff\xfe" if codec.endswith("le") else b"\xfe\xff"
    lone = b"\x00\xd8" if codec.endswith("le") else b"\xd8\x00"
    csv_path = tmp_path / "excel.csv"
    csv_path.write_bytes(
        bom
        + (HEADER + f"u1,i1,4,{T},caf\u00e9\r\nu1,i2,3,{T},").encode(codec)
        + lone
        + f"x\r\nu2,i3,5,{T},ok\r\n".encode(codec)
    )
    jl = tmp_path / "events.jsonl"
    jl.write_bytes(bom + f'{{"user": "u3", "item": "i4", "timestamp": {T}}}\n'.encode(codec))
    q = tmp_path / "q.jsonl"
    logs = read_logs([csv_path, jl], quarantine=q)
    rows = check_counts(logs, q)
    assert [(r.file, r.line, r.reason) for r in rows] == [(str(csv_path), 3, "not UTF-8")]
    assert {u: [(e.item_id, e.text) for e in logs[u].events] for u in logs.users()} == {
        "u1": [("i1", "caf\u00e9")],
        "u2": [("i3", "ok")],
        "u3": [("i4", None)],
    }


def test_user_with_50000_events(tmp_path: Path) -> None:
    """One heavy user next to light ones: a per-user cap keeps memory bounded, counts stay exact,
    and the profile says how much of the history it was built from."""
    path = tmp_path / "heavy.csv"
    n = 50_000
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user", "item", "rating", "timestamp", "review"])
        for k in range(n):
            w.writerow(["heavy", f"i{k % 700}", 1 + k % 5, T + 60 * k, "great" if k % 97 == 0 else ""])
        for u in ("light1", "light2", "light3"):
            w.writerow([u, "i1", 4, T, "fine"])
    cap = 300
    logs = read_logs(path, max_events_per_user=cap)
    check_counts(logs, tmp_path / "none.jsonl")
    heavy = logs["heavy"]
    assert len(heavy.events) == cap and heavy.n_dropped == n - cap
    assert [e.ts for e in heavy.events] == [T + 60 * k for k in range(n - cap, n)]  # the most recent
    assert logs.report.rows_used == n + 3 and logs.report.events_dropped == n - cap
    out = tmp_path / "profiles.jsonl"
    assert check_extraction(logs, out) == (3, 1)  # light3 ends with an error record by design
    [p] = [d for d in iter_jsonl(out) if d["user_id"] == "heavy"]
    assert p["provenance"]["events_total"] == n and p["provenance"]["truncated"] is True
    assert p["provenance"]["events_used"] <= cap
