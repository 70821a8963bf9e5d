"""Column mappings, timestamp parsing and catalogue reading."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from interests.ingest import (
    CatalogMapping,
    ColumnMapping,
    IngestError,
    Quarantine,
    TimeParser,
    categories_of,
    event_kind,
    read_catalog,
    read_logs,
)
from interests.ingest.values import FieldError, clean_text

BAD = Path(__file__).parent / "data" / "bad"


def test_mapping_parse_forms() -> None:
    m = ColumnMapping.parse("user=userId, item=movieId,time=timestamp,rating=rating,text=tag,event=-")
    assert (m.user, m.item, m.time, m.rating, m.text, m.event) == (
        "userId",
        "movieId",
        "timestamp",
        "rating",
        "tag",
        None,
    )
    assert ColumnMapping.parse({"user": "reviewerID", "text": "summary+reviewText"}).text_columns() == (
        "summary",
        "reviewText",
    )
    assert ColumnMapping.parse({"ts": "when", "type": "kind"}) == ColumnMapping(time="when", event="kind")
    assert ColumnMapping.parse(None) == ColumnMapping()
    m2 = ColumnMapping(user="a")
    assert ColumnMapping.parse(m2) is m2
    assert ColumnMapping.parse(m.spec()) == m
    with pytest.raises(IngestError, match="unknown field"):
        ColumnMapping.parse("usr=userId")
    with pytest.raises(IngestError, match="FIELD=COLUMN"):
        ColumnMapping.parse("userId")


def test_positional_mappings() -> None:
    assert ColumnMapping.parse("user=0,item=1,rating=2,time=3").positional
    assert not ColumnMapping.parse("user=userId").positional
    with pytest.raises(IngestError, match="mixes"):
        ColumnMapping.parse("user=0,item=movieId")
    with pytest.raises(IngestError, match="item column"):
        ColumnMapping.parse("user=0,rating=2")


def test_resolve_aliases_and_explicit_names() -> None:
    amazon = [
        "overall",
        "verified",
        "reviewTime",
        "reviewerID",
        "asin",
        "reviewText",
        "summary",
        "unixReviewTime",
    ]
    res = ColumnMapping().resolve(amazon).named(amazon)
    assert (res.user, res.item, res.time, res.rating, res.text, res.event) == (
        "reviewerID",
        "asin",
        "unixReviewTime",
        "overall",
        ("reviewText",),
        None,
    )
    res2 = ColumnMapping.parse("text=summary+reviewText+missing").resolve(amazon).named(amazon)
    assert res2.text == ("summary", "reviewText")  # a column a file lacks is just absent
    assert ColumnMapping().resolve(["UserID", "ITEM_ID"]).user == 0  # case-insensitive aliases
    assert ColumnMapping(user="uid2").resolve(["user", "item"]).user is None  # explicit means exact
    tags = ColumnMapping().resolve(["userId", "movieId", "tag", "timestamp"])
    assert tags.text_is_tag and tags.text == (2,)


def test_event_kind() -> None:
    assert event_kind(4.0, None, False) == "rating"
    assert event_kind(None, "dark", True) == "tag"
    assert event_kind(4.0, "dark", True) == "review"
    assert event_kind(None, "nice", False) == "review"
    assert event_kind(None, None, False) == "interaction"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1600000000, 1600000000.0),
        (1600000000.5, 1600000000.5),
        ("1600000000", 1600000000.0),
        ("1600000000000", 1600000000.0),  # milliseconds
        (1600000000000000, 1600000000.0),  # microseconds
        ("1600000000000000000", 1600000000.0),  # nanoseconds
        ("2020-09-13T12:26:40Z", 1600000000.0),
        ("2020-09-13T12:26:40.000+00:00", 1600000000.0),
        ("2020-09-13T14:26:40+02:00", 1600000000.0),
        ("2020-09-13 12:26:40", 1600000000.0),
        ("2020-09-13", 1599955200.0),
        ("20200913", 1599955200.0),
        ("71291201", 71291201.0),  # not a plausible YYYYMMDD: epoch seconds
        ("09 13, 2020", 1599955200.0),
        ("September 13, 2020", 1599955200.0),
        ("2020/09/13 12:26:40", 1600000000.0),
        ("Sun, 13 Sep 2020 12:26:40 GMT", 1600000000.0),
        (datetime(2020, 9, 13, 12, 26, 40, tzinfo=timezone.utc), 1600000000.0),
        (datetime(2020, 9, 13, 12, 26, 40), 1600000000.0),
        (date(2020, 9, 13), 1599955200.0),
        ("", None),
        (None, None),
    ],
)
def test_time_parser(value: object, expected: float | None) -> None:
    assert TimeParser("UTC")(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("yesterday", "bad timestamp"),
        ("nan", "bad timestamp"),
        (float("inf"), "bad timestamp"),
        (True, "bad timestamp"),
        ("2020-13-45", "bad timestamp"),
        (-1, "timestamp out of range"),
        ("1969-12-31T23:59:59Z", "timestamp out of range"),
        ("2999-01-01", "timestamp out of range"),
        (4102444800, "timestamp out of range"),
    ],
)
def test_time_parser_rejects(value: object, reason: str) -> None:
    with pytest.raises(FieldError) as info:
        TimeParser("UTC", now=1700000000)(value)
    assert info.value.reason == reason


def test_time_zones() -> None:
    assert TimeParser("America/New_York")("2020-09-13 08:26:40") == 1600000000.0
    assert TimeParser("+02:00")("2020-09-13 14:26:40") == 1600000000.0
    assert TimeParser("America/New_York")(1600000000) == 1600000000.0  # epoch is UTC anyway
    assert TimeParser("UTC", now=1600000000)(1600000000 + 86000) is not None  # within a day: allowed
    with pytest.raises(IngestError, match="IANA"):
        TimeParser("Nowhere/Land")


def test_clean_text() -> None:
    assert clean_text("  a \n\t b  ") == "a b"
    assert clean_text(["x", None, "y"]) == "x y"
    assert clean_text("   ") is None
    assert len(clean_text("z" * 5000) or "") == 2000


def test_text_from_several_columns(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(
        json.dumps(
            {"reviewerID": "a", "asin": "b", "summary": "Five Stars", "reviewText": "  Great\n gift. "}
        )
        + "\n"
        + json.dumps({"reviewerID": "a", "asin": "c", "summary": "Same", "reviewText": "Same"})
        + "\n"
    )
    logs = read_logs(path, mapping="user=reviewerID,item=asin,text=summary+reviewText")
    assert [e.text for e in logs.events()] == ["Five Stars — Great gift.", "Same"]


def test_read_catalog_csv_movielens_style() -> None:
    q = Quarantine()
    cat = read_catalog(BAD / "catalog.csv", quarantine=q)
    assert list(cat) == ["i1", "i2", "i3"]
    assert cat["i1"].title == "Alien (1979)" and cat["i1"].categories == ["Horror", "Sci-Fi"]
    assert cat["i1"].attributes == {"director": "Ridley Scott", "year": "1979"}
    assert cat["i3"].categories == [] and cat["i3"].attributes == {}
    assert [(r.line, r.reason) for r in q.rows] == [(4, "missing item")]
    assert cat.get_item("zz").label() == "zz"
    with pytest.raises(IngestError):
        read_catalog(BAD / "catalog.csv", strict=True)


def test_read_catalog_amazon_style(tmp_path: Path) -> None:
    rows = [
        {
            "asin": "B1",
            "title": "Coffee &amp; Tea Card",
            "category": ["Gift Cards", "Gift Cards"],
            "description": ["First part.", "Second <b>bold</b> part."],
            "brand": "Acme",
            "price": "$25.00",
            "rank": "2 in Gift Cards (",
            "tech1": "",
            "date": '<div class="x">junk</div>',
            "also_buy": ["B2"],
            "details": {"ASIN:": "B1"},
            "long": "w" * 300,
        },
        {"asin": "B1", "title": "dup", "feature": ["x"], "main_cat": "Grocery"},
        {"title": "no id"},
    ]
    path = tmp_path / "meta.json.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    q = Quarantine()
    cat = read_catalog(path, quarantine=q)
    item = cat["B1"]
    assert item.title == "Coffee & Tea Card"
    assert item.categories == ["Gift Cards"]
    assert item.description == "First part. Second bold part."
    assert item.attributes == {
        "brand": "Acme",
        "price": "$25.00",
        "long": "w" * 99 + "…",
        "main_cat": "Grocery",
    }
    assert q.counts_by_reason == {"missing item": 1}


def test_catalog_mapping() -> None:
    m = CatalogMapping.parse("id=movieId,genres=genres,title=name")
    assert (m.item, m.categories, m.title) == ("movieId", "genres", "name")
    assert CatalogMapping.parse(ColumnMapping(item="sku")).item == "sku"
    assert CatalogMapping.parse(ColumnMapping()) == CatalogMapping()
    assert categories_of("Action|Comedy|(no genres listed)|Action") == ["Action", "Comedy"]
    assert categories_of('["Books", "Fiction"]') == ["Books", "Fiction"]
    assert categories_of([["Books", "Fiction"], "Books"]) == ["Books", "Fiction"]
    with pytest.raises(IngestError, match="--catalog-map"):
        read_catalog(BAD / "bad_ratings.csv", mapping="item=nope")


def test_catalog_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(
        pa.table(
            {
                "item_id": ["a", "b"],
                "name": ["A (2001)", "B"],
                "genres": [["x", "y"], []],
                "pages": [100, None],
            }
        ),
        tmp_path / "items.parquet",
    )
    cat = read_catalog(tmp_path / "items.parquet")
    assert cat["a"].title == "A (2001)" and cat["a"].categories == ["x", "y"]
    assert cat["a"].attributes == {"pages": "100", "year": "2001"} and cat["b"].attributes == {}
