"""Ingestion of bad and unusual inputs: every row is used, a duplicate, filtered or quarantined."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import shutil
import sys
from pathlib import Path

import pytest

from interests.events import Catalog, Item
from interests.ingest import (
    MAX_LINE_CHARS,
    EventStream,
    IngestError,
    IngestReport,
    Quarantine,
    iter_events,
    read_logs,
)
from interests.schema import QuarantinedRow

BAD = Path(__file__).parent / "data" / "bad"


def check(report: IngestReport) -> IngestReport:
    """The counting invariant, asserted for every read in these tests."""
    assert report.rows_read == (
        report.rows_used + report.rows_quarantined + report.duplicates + report.rows_filtered
    ), report
    assert report.consistent
    assert sum(report.by_reason.values()) == report.rows_quarantined
    return report


# file -> (rows read, used, quarantined, duplicates, reasons)
CORPUS: dict[str, tuple[int, int, int, int, dict[str, int]]] = {
    "bom.csv": (2, 2, 0, 0, {}),
    "columns.csv": (5, 2, 3, 0, {"wrong number of columns": 3}),
    "duplicates.csv": (6, 4, 0, 2, {}),
    "empty.csv": (0, 0, 0, 0, {}),
    "header_only.csv": (0, 0, 0, 0, {}),
    "line_endings.csv": (4, 4, 0, 0, {}),
    "missing_ids.jsonl": (7, 2, 5, 0, {"missing user": 3, "missing item": 2}),
    "mixed_encoding.csv": (4, 2, 2, 0, {"not UTF-8": 2}),
    "bad_ratings.csv": (6, 3, 3, 0, {"bad rating": 3}),
    "semicolon.csv": (3, 2, 1, 0, {"bad rating": 1}),
    "stray_quote.csv": (5, 4, 1, 0, {"unparsable CSV row": 1}),
    "tabs.tsv": (3, 3, 0, 0, {}),
    "timestamps.csv": (12, 8, 4, 0, {"timestamp out of range": 3, "bad timestamp": 1}),
    "truncated.jsonl": (6, 3, 3, 0, {"unparsable JSON": 1, "not a JSON object": 2}),
    "unknown_items.csv": (4, 4, 0, 0, {}),
    "whitespace_text.jsonl": (2, 2, 0, 0, {}),
    "wrong_delimiter.csv": (4, 2, 2, 0, {"wrong number of columns": 2}),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_bad_corpus(name: str, tmp_path: Path) -> None:
    qpath = tmp_path / "quarantine.jsonl"
    logs = read_logs(BAD / name, quarantine=qpath)
    report = check(logs.report)
    read, used, quarantined, dups, reasons = CORPUS[name]
    assert (report.rows_read, report.rows_used, report.rows_quarantined, report.duplicates) == (
        read,
        used,
        quarantined,
        dups,
    )
    assert report.by_reason == reasons
    assert logs.n_events == used
    # the quarantine file: one QuarantinedRow per bad row, pointing at the right line
    rows = (
        [QuarantinedRow.model_validate_json(x) for x in qpath.read_text().splitlines()] if quarantined else []
    )
    assert not qpath.exists() or quarantined
    assert len(rows) == quarantined
    lines = (BAD / name).read_bytes().decode("utf-8", "backslashreplace").splitlines()
    for row in rows:
        assert row.file == str(BAD / name)
        assert row.raw == lines[row.line - 1].lstrip("\ufeff")
        assert row.reason in reasons


def test_corpus_is_covered() -> None:
    files = {p.name for p in BAD.iterdir()} - {"README.md", "catalog.csv", "headerless.csv"}
    assert files == set(CORPUS)


def test_cleaned_values() -> None:
    logs = read_logs(BAD / "whitespace_text.jsonl")
    texts = [e.text or "" for e in logs.events()]
    assert texts[0] == "lots of space"
    assert len(texts[1]) == 2000 and texts[1].endswith("…")
    ratings = read_logs(BAD / "bad_ratings.csv")
    assert [e.rating for e in ratings.events()] == [4.5, None, 3.0]
    ids = read_logs(BAD / "missing_ids.jsonl")
    assert [(e.user_id, e.item_id) for e in ids.events()] == [("u1", "i1"), ("7", "8")]


def test_timestamps() -> None:
    logs = read_logs(BAD / "timestamps.csv")
    got = {e.item_id: e.ts for e in logs["u1"].events}
    assert got == {f"i{k}": 1600000000.0 for k in range(1, 6)} | {"i6": 1599955200.0, "i7": 1599955200.0}
    assert [e.ts for e in logs["u2"].events] == [None]
    berlin = read_logs(BAD / "timestamps.csv", tz="Europe/Berlin")
    naive = {e.item_id: e.ts for e in berlin["u1"].events}
    assert naive["i5"] == 1600000000.0 - 7200  # naive time read as Berlin summer time
    assert naive["i3"] == 1600000000.0  # zone given in the value wins
    with pytest.raises(IngestError, match="time zone"):
        read_logs(BAD / "timestamps.csv", tz="Mars/Olympus")


def test_duplicates_are_exact_events() -> None:
    logs = read_logs(BAD / "duplicates.csv")
    assert [(e.text, e.ts) for e in logs["2"].events] == [
        ("will ferrell", 1445714992.0),
        ("funny", 1445714994.0),
        ("Highly quotable", 1445714996.0),
        ("funny", 1445715000.0),
    ]
    assert {e.event for e in logs.events()} == {"tag"}
    # duplicates across files count too
    both = check(read_logs([BAD / "duplicates.csv", BAD / "duplicates.csv"]).report)
    assert (both.rows_used, both.duplicates) == (4, 8)
    # dedup=False (--keep-duplicates) keeps every row, repeats included
    kept = read_logs([BAD / "duplicates.csv"] * 2, dedup=False)
    assert (check(kept.report).rows_used, kept.report.duplicates) == (12, 0)
    assert [e.text for e in kept["2"].events].count("funny") == 8


def test_duplicate_digest_tells_near_identical_events_apart() -> None:
    from interests.ingest.stream import _digest

    keys = [
        ("u", "i", 1.0, "tag", "funny", None),
        ("u", "i", 1.0, "tag", "funny ", None),
        ("u", "i", 1.0, "tag", None, None),
        ("u", "i", 1.0, "tag", "None", None),
        ("u", "i", None, "tag", "funny", None),
        ("u", "i", 1.0, "tag", "funny", 1.0),
        ("u", "i", 1.0, "tag", "funny", 10.0),
        ("ui", "", 1.0, "tag", "funny", None),
        ("u", "i", 1.0, "tag", "caf\udce9", None),  # an undecodable byte kept as a surrogate
    ]
    digests = [_digest(k) for k in keys]
    assert len(set(digests)) == len(keys) and all(0 <= d < 2**96 for d in digests)
    assert _digest(tuple(keys[0])) == digests[0]


def test_strict_catalog(tmp_path: Path) -> None:
    logs = read_logs(BAD / "unknown_items.csv", catalog=BAD / "catalog.csv", strict_catalog=True)
    assert check(logs.report).by_reason == {"unknown item": 2}
    assert [r.line for r in logs.quarantine.rows if r.reason == "unknown item"] == [3, 5]  # type: ignore[union-attr]
    loose = read_logs(BAD / "unknown_items.csv", catalog=BAD / "catalog.csv")
    assert check(loose.report).rows_used == 4 and loose.catalog is not None and len(loose.catalog) == 3
    with pytest.raises(IngestError, match="catalogue"):
        read_logs(BAD / "unknown_items.csv", strict_catalog=True)
    cat = Catalog({"i1": Item("i1")})
    assert check(read_logs(BAD / "unknown_items.csv", catalog=cat, strict_catalog=True).report).rows_used == 1


@pytest.mark.parametrize(
    ("name", "line", "reason"),
    [
        ("bad_ratings.csv", 4, "bad rating"),
        ("truncated.jsonl", 3, "unparsable JSON"),
        ("mixed_encoding.csv", 3, "not UTF-8"),
        ("columns.csv", 3, "wrong number of columns"),
    ],
)
def test_strict_names_file_and_line(name: str, line: int, reason: str, tmp_path: Path) -> None:
    with pytest.raises(IngestError) as info:
        read_logs(BAD / name, strict=True, quarantine=tmp_path / "q.jsonl")
    err = info.value
    assert (err.file, err.line, err.reason) == (str(BAD / name), line, reason)
    assert f"{BAD / name}, line {line}: {reason}" in str(err)
    assert len((tmp_path / "q.jsonl").read_text().splitlines()) == 1  # recorded before raising
    with pytest.raises(IngestError):  # a caller's non-strict quarantine: strict=True still raises
        read_logs(BAD / name, strict=True, quarantine=Quarantine())
    with pytest.raises(IngestError):
        read_logs(BAD / name, quarantine=Quarantine(strict=True))


def test_strict_passes_clean_files() -> None:
    assert check(read_logs(BAD / "tabs.tsv", strict=True).report).rows_used == 3


def test_huge_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("w") as f:
        f.write("user,item,text\nu1,i1,short\n")
        f.write("u1,i2," + "x" * (MAX_LINE_CHARS + 10) + "\n")
        f.write("u1,i3,after\n")
    q = Quarantine()
    logs = read_logs(path, quarantine=q)
    assert check(logs.report).by_reason == {"line too long": 1}
    assert [e.item_id for e in logs.events()] == ["i1", "i3"]
    assert q.rows[0].line == 3 and len(q.rows[0].raw) <= 1000


def test_headerless_positional() -> None:
    logs = read_logs(BAD / "headerless.csv", mapping="user=0,item=1,rating=2,time=3")
    assert check(logs.report).by_reason == {"bad rating": 1}
    assert [(e.user_id, e.item_id, e.rating, e.ts) for e in logs.events()] == [
        ("1", "20", 3.5, 964981247.0),
        ("1", "10", 4.0, 964982703.0),
    ]
    with pytest.raises(IngestError, match="no column for user"):
        read_logs(BAD / "headerless.csv")  # no header and no positional mapping


def test_positional_short_rows_and_json_arrays(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('["u1", "i1", 4, 1600000000]\n["u1"]\n{"user": "u2"}\n["u2", "i2", 5, 1600000100]\n')
    logs = read_logs(path, mapping="user=0,item=1,rating=2,time=3")
    assert check(logs.report).by_reason == {"wrong number of columns": 1, "not a JSON object": 1}
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("u1,i1,4,1600000000,extra ignored\nu1,i2\n")
    report = check(read_logs(csv_path, mapping="user=0,item=1,rating=2,time=3").report)
    assert (report.rows_used, report.by_reason) == (1, {"wrong number of columns": 1})


def test_missing_user_column_is_an_error() -> None:
    with pytest.raises(IngestError, match="--map user=COLUMN"):
        read_logs(BAD / "catalog.csv")
    with pytest.raises(IngestError, match="no such file"):
        read_logs(BAD / "nope.csv")


def _sample_csv() -> bytes:
    return b"user,item,rating,timestamp\nu1,i1,4,1600000000\nu2,i2,5,1600000100\n"


@pytest.mark.parametrize("name", ["events.csv.gz", "events.csv", "events.dat", "events"])
def test_gzip_detected_by_magic_bytes(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(_sample_csv()))
    assert check(read_logs(path).report).rows_used == 2


@pytest.mark.parametrize("compress", [bz2.compress, lzma.compress])
def test_other_compressions(compress: object, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(compress(b'{"user": "u1", "item": "i1"}\n'))  # type: ignore[operator]
    assert check(read_logs(path).report).rows_used == 1


def test_truncated_gzip(tmp_path: Path) -> None:
    rows = "".join(f"u{k % 7},i{k},3,{1600000000 + k}\n" for k in range(20000))
    data = gzip.compress(("user,item,rating,timestamp\n" + rows).encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    logs = read_logs(path)
    report = check(logs.report)
    assert report.by_reason == {"unreadable data": 1}
    assert 0 < report.rows_used < 20000


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from datetime import datetime, timezone

    table = pa.table(
        {
            "userId": [1, 1, 2, None],
            "movieId": [10, 20, 10, 30],
            "rating": [4.0, float("nan"), 3.5, 2.0],
            "when": [datetime(2020, 9, 13, 12, 26, 40, tzinfo=timezone.utc)] * 4,
            "unused": ["a", "b", "c", "d"],
        }
    )
    path = tmp_path / "ratings.parquet"
    pq.write_table(table, path, row_group_size=2)
    q = Quarantine()
    logs = read_logs(path, mapping="time=when", quarantine=q)
    assert check(logs.report).by_reason == {"bad rating": 1, "missing user": 1}
    assert [(e.user_id, e.item_id, e.ts) for e in logs["1"].events] == [("1", "10", 1600000000.0)]
    assert [r.line for r in q.rows] == [2, 4] and json.loads(q.rows[0].raw)["movieId"] == 20
    # a Parquet file is recognised by its magic bytes whatever its name
    shutil.copy(path, tmp_path / "ratings.bin")
    assert check(read_logs(tmp_path / "ratings.bin", mapping="time=when").report).rows_used == 2


def test_directory_with_mixed_formats(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    d = tmp_path / "logs"
    (d / "sub").mkdir(parents=True)
    (d / "a.csv").write_bytes(_sample_csv())
    (d / "sub" / "b.jsonl.gz").write_bytes(
        gzip.compress(b'{"user": "u3", "item": "i3", "rating": 2}\n{"oops\n')
    )
    pq.write_table(pa.table({"user": ["u4"], "item": ["i4"]}), d / "sub" / "c.parquet")
    (d / "d.tsv").write_text("user\titem\nu5\ti5\n")
    (d / "notes.md").write_text("# notes\n")
    (d / ".hidden.csv").write_text("user,item\nx,y\n")
    (d / "catalog.jsonl").write_text('{"item_id": "i1", "title": "One"}\n')
    (d / "truth.json").write_text('{\n "users": []\n}\n')
    (d / "items.csv").write_text("item_id,title\ni1,One\n")
    logs = read_logs(d, catalog=d / "catalog.jsonl")
    report = check(logs.report)
    assert report.files == [
        str(d / "a.csv"),
        str(d / "d.tsv"),
        str(d / "sub" / "b.jsonl.gz"),
        str(d / "sub" / "c.parquet"),
    ]
    assert (report.rows_used, report.by_reason) == (5, {"unparsable JSON": 1})
    assert set(report.skipped_files) == {
        str(d / n) for n in ("notes.md", ".hidden.csv", "catalog.jsonl", "truth.json", "items.csv")
    }
    assert "unsupported file type" in report.skipped_files[str(d / "notes.md")]
    assert logs.users() == ["u1", "u2", "u5", "u3", "u4"]


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeStdin:
        def __init__(self, data: bytes) -> None:
            self.buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", FakeStdin(_sample_csv()))
    logs = read_logs("-")
    assert check(logs.report).files == ["<stdin>"] and logs.users() == ["u1", "u2"]
    monkeypatch.setattr(sys, "stdin", FakeStdin(gzip.compress(b'{"user": "u9", "item": "i9"}\nnot json\n')))
    q = Quarantine()
    logs = read_logs("-", quarantine=q)
    assert check(logs.report).rows_used == 1 and q.rows[0].file == "<stdin>" and q.rows[0].line == 2


def test_stdin_real_pipe() -> None:
    import subprocess

    code = "from interests.ingest import read_logs; r = read_logs('-').report; print(r.rows_used, r.users)"
    out = subprocess.run([sys.executable, "-c", code], input=_sample_csv(), capture_output=True, check=True)
    assert out.stdout.split() == [b"2", b"2"]


def test_mixed_schemas_and_event_kinds(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4.0,964982703\n")
    (tmp_path / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,10,dark,964982800\n")
    (tmp_path / "reviews.jsonl").write_text(
        '{"reviewerID": "1", "asin": "10", "overall": 5, "reviewText": "Great", '
        '"unixReviewTime": 964982900}\n'
        '{"reviewerID": "1", "asin": "11", "action": "click", "unixReviewTime": 964983000}\n'
        '{"reviewerID": "1", "asin": "12", "unixReviewTime": 964983100}\n'
    )
    spec = "user=userId,item=movieId,time=timestamp,rating=rating,text=tag"
    logs = read_logs([tmp_path / "ratings.csv", tmp_path / "tags.csv"], mapping=spec)
    assert [(e.event, e.rating, e.text) for e in logs["1"].events] == [
        ("rating", 4.0, None),
        ("tag", None, "dark"),
    ]
    auto = read_logs(tmp_path)  # aliases: userId/reviewerID, movieId/asin, overall, unixReviewTime, tag
    assert check(auto.report).rows_used == 5
    assert [e.event for e in auto["1"].events] == ["rating", "tag", "review", "click", "interaction"]


def test_sorting_max_events_and_users(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    rows = ["u1,i5,5", "u1,i1,1", "u2,i0,3", "u1,i3,3", "u1,i3b,3", "u1,notime,", "u1,i2,2", "u1,i4,4"]
    path.write_text("user,item,timestamp\n" + "\n".join(rows) + "\n")
    logs = read_logs(path)
    assert [e.item_id for e in logs["u1"].events] == ["notime", "i1", "i2", "i3", "i3b", "i4", "i5"]
    capped = read_logs(path, max_events_per_user=3)
    assert [e.item_id for e in capped["u1"].events] == ["i3b", "i4", "i5"]
    assert capped["u1"].n_dropped == 4 and capped["u2"].n_dropped == 0
    assert check(capped.report).events_dropped == 4 and capped.report.rows_used == 8
    only = read_logs(path, users=["u2"])
    assert only.users() == ["u2"] and check(only.report).rows_filtered == 7
    with pytest.raises(IngestError):
        read_logs(path, max_events_per_user=0)


def test_iter_events_streams_and_event_stream_counts(tmp_path: Path) -> None:
    events = iter_events(BAD / "bad_ratings.csv")
    assert iter(events) is events  # a generator, nothing read yet
    assert [e.item_id for e in events] == ["i1", "i2", "i3"]
    stream = EventStream([BAD / "bad_ratings.csv", BAD / "duplicates.csv"])
    assert len(list(stream)) == 7
    assert check(stream.report).by_reason == {"bad rating": 3}
    text = stream.report.summary()
    assert "read 12 rows from 2 files" in text and "bad rating: 3" in text
    qpath = tmp_path / "q.jsonl"
    assert len(list(iter_events(BAD / "bad_ratings.csv", quarantine=qpath))) == 3
    assert len(qpath.read_text().splitlines()) == 3


def test_quarantine_appends_and_caps(tmp_path: Path) -> None:
    qpath = tmp_path / "deep" / "q.jsonl"
    with Quarantine(qpath) as q:
        q.add("f.csv", 3, "bad rating", b"u1,i1,\xff")
        q.add("f.csv", 4, "bad rating", "x" * 20000)
    with Quarantine(qpath) as q:
        q.add("g.csv", 1, "missing user", ",i1")
        assert q.count == 1 and q.counts_by_reason == {"missing user": 1}
    rows = [QuarantinedRow.model_validate_json(x) for x in qpath.read_text().splitlines()]
    assert [(r.file, r.line) for r in rows] == [("f.csv", 3), ("f.csv", 4), ("g.csv", 1)]
    assert rows[0].raw == "u1,i1,\\xff" and len(rows[1].raw) < 10100


def test_reading_the_same_logs_again_does_not_repeat_quarantined_rows(tmp_path: Path) -> None:
    """A resumed extract reads the logs again: each bad row stays once in the file (was 3 -> 6 -> 9)."""
    qpath = tmp_path / "q.jsonl"
    for _ in range(3):
        assert len(list(iter_events(BAD / "bad_ratings.csv", quarantine=qpath))) == 3
    assert len(qpath.read_text().splitlines()) == 3
    # a killed run's torn last line does not swallow the next row
    qpath.write_text(qpath.read_text() + '{"file": "torn')
    with Quarantine(qpath) as q:
        q.add("g.csv", 1, "missing user", ",i1")
        q.add("g.csv", 1, "missing user", ",i1")
        assert q.count == 2  # both counted for this read, written once
    lines = qpath.read_text().splitlines()
    assert len(lines) == 5 and QuarantinedRow.model_validate_json(lines[-1]).file == "g.csv"
