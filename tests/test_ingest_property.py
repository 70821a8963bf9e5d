"""Property: for any mix of valid and invalid rows, written as CSV or JSON Lines,
every valid row is used (or is an exact duplicate of a used one), every invalid
row is quarantined with the right reason, and the counts add up."""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interests.ingest import Quarantine, read_logs

USERS = ["u1", "u2", "user 3", "ü4", "5"]
ITEMS = ["i1", "i2", "item,3", 'i"4', "5"]
TEXT = st.text(alphabet=st.sampled_from([*"ab é,;\"'\n\t|{}", "日"]), max_size=12)
# up to 2023 (never in the future); 8-digit numbers that read as YYYYMMDD dates are dates
TS = st.integers(min_value=0, max_value=1_700_000_000).filter(lambda t: not 19_000_101 <= t <= 21_001_231)
RATING = st.one_of(
    st.none(), st.floats(min_value=-10, max_value=10, allow_nan=False).map(lambda x: round(x, 3))
)
INVALID = {
    "missing user": {"user": ""},
    "missing item": {"item": " "},
    "bad rating": {"rating": "abc"},
    "bad rating (nan)": {"rating": "nan"},
    "bad timestamp": {"timestamp": "not a time"},
    "timestamp out of range": {"timestamp": "4000000000"},
    "timestamp out of range (past)": {"timestamp": "-100"},
    "not UTF-8": {"text": "café au lait"},  # written as latin-1
    "wrong number of columns": {"_extra": True},  # an extra cell: bad in CSV, an ignored key in JSON
}


@st.composite
def rows(draw: st.DrawFn) -> list[tuple[str | None, dict[str, Any]]]:
    """(expected reason or None when valid, row) pairs."""
    n = draw(st.integers(min_value=0, max_value=25))
    out: list[tuple[str | None, dict[str, Any]]] = []
    for _ in range(n):
        ts = draw(TS)
        row: dict[str, Any] = {
            "user": draw(st.sampled_from(USERS)),
            "item": draw(st.sampled_from(ITEMS)),
            "rating": draw(RATING),
            "timestamp": draw(
                st.sampled_from([str(ts), datetime.fromtimestamp(ts, timezone.utc).isoformat()])
            ),
            "text": draw(TEXT),
            "_ts": float(ts),
        }
        kind = draw(st.sampled_from([None, None, None, *INVALID]))
        if kind is not None:
            row.update(INVALID[kind])
            kind = kind.split(" (")[0]
        out.append((kind, row))
    return out


def _write(path: Path, data: list[tuple[str | None, dict[str, Any]]]) -> None:
    cols = ["user", "item", "rating", "timestamp", "text"]
    out = io.BytesIO()
    if path.suffix == ".csv":
        out.write(b"user,item,rating,timestamp,text\r\n")
    for reason, row in data:
        if path.suffix == ".csv":
            buf = io.StringIO()
            cells = ["" if row[c] is None else row[c] for c in cols]
            csv.writer(buf).writerow([*cells, "extra"] if row.get("_extra") else cells)
            line = buf.getvalue()
        else:
            line = (
                json.dumps(
                    {c: row[c] for c in cols} | ({"extra": 1} if row.get("_extra") else {}),
                    ensure_ascii=False,
                )
                + "\n"
            )
        out.write(line.encode("latin-1" if reason == "not UTF-8" else "utf-8"))
    path.write_bytes(out.getvalue())


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    text = " ".join(row["text"].split()) or None
    rating = row["rating"]
    return (row["user"], row["item"], row["_ts"], None if rating is None else float(rating), text)


@settings(
    max_examples=int(os.environ.get("INGEST_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=rows())
def test_every_valid_row_is_used(data: list[tuple[str | None, dict[str, Any]]], tmp_path: Path) -> None:
    for suffix in (".csv", ".jsonl"):
        if suffix == ".jsonl":
            data = [(None if r == "wrong number of columns" else r, row) for r, row in data]
        valid = [row for reason, row in data if reason is None]
        expected_reasons = Counter(reason for reason, _ in data if reason is not None)
        expected_keys = {_key(row) for row in valid}
        path = tmp_path / f"events{suffix}"
        _write(path, data)
        q = Quarantine()
        logs = read_logs(path, quarantine=q)
        r = logs.report
        assert r.rows_read == len(data)
        assert r.rows_read == r.rows_used + r.rows_quarantined + r.duplicates + r.rows_filtered
        assert r.by_reason == dict(expected_reasons)
        assert q.count == r.rows_quarantined
        got = {(e.user_id, e.item_id, e.ts, e.rating, e.text) for e in logs.events()}
        assert got == expected_keys
        assert r.rows_used == len(expected_keys) and r.rows_used + r.duplicates == len(valid)
        for h in logs.histories.values():
            times = [e.ts or 0.0 for e in h.events]
            assert times == sorted(times)
