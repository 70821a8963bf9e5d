"""The two real data sets read through the public path (skipped when the data is absent).

The data directory is ``$INTERESTS_DATA_DIR`` or ``<repo>/../shared/data``.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

from interests.ingest import read_logs

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("INTERESTS_DATA_DIR") or REPO.parent / "shared" / "data")
MOVIELENS = DATA / "ml-latest-small"
GIFT_CARDS = DATA / "amazon-gift-cards"

ML_MAP = "user=userId,item=movieId,time=timestamp,rating=rating,text=tag"
GIFT_MAP = "user=reviewerID,item=asin,time=unixReviewTime,rating=overall,text=summary+reviewText"


@pytest.mark.skipif(not (MOVIELENS / "ratings.csv").exists(), reason=f"no MovieLens data in {DATA}")
def test_movielens_small() -> None:
    start = time.perf_counter()
    logs = read_logs(
        [MOVIELENS / "ratings.csv", MOVIELENS / "tags.csv"], mapping=ML_MAP, catalog=MOVIELENS / "movies.csv"
    )
    seconds = time.perf_counter() - start
    r = logs.report
    assert r.rows_read == r.rows_used + r.rows_quarantined + r.duplicates + r.rows_filtered
    assert (r.rows_read, r.rows_used, r.rows_quarantined, r.duplicates) == (104_519, 104_519, 0, 0)
    assert (r.users, r.items) == (610, 9_742)
    assert Counter(e.event for e in logs.events()) == {"rating": 100_836, "tag": 3_683}
    assert logs.catalog is not None and len(logs.catalog) == 9_742
    toy = logs.catalog["1"]
    assert toy.title == "Toy Story (1995)" and toy.attributes["year"] == "1995"
    assert toy.categories == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    ratings = {e.rating for e in logs.events() if e.rating is not None}
    assert min(ratings) == 0.5 and max(ratings) == 5.0
    times = [e.ts for e in logs.events() if e.ts is not None]
    assert len(times) == 104_519 and 827e6 < min(times) and max(times) < 1.54e9  # 1996 .. 2018
    # user 2 tagged movie 60756 three times, seconds apart: three events, not duplicates
    assert [e.text for e in logs["2"].events if e.item_id == "60756" and e.event == "tag"] == [
        "will ferrell",
        "funny",
        "Highly quotable",
    ]  # sorted by time
    assert seconds < 60, f"MovieLens small took {seconds:.1f}s"
    print(f"\nMovieLens small: {r.summary()}")


@pytest.mark.skipif(not (MOVIELENS / "ratings.csv").exists(), reason=f"no MovieLens data in {DATA}")
def test_movielens_directory_without_mapping() -> None:
    logs = read_logs(MOVIELENS, catalog=MOVIELENS / "movies.csv")
    r = logs.report
    assert [Path(f).name for f in r.files] == ["ratings.csv", "tags.csv"]
    assert "links.csv" in " ".join(r.skipped_files) and r.rows_used == 104_519 and r.users == 610


@pytest.mark.skipif(not (GIFT_CARDS / "Gift_Cards_5.json.gz").exists(), reason=f"no gift card data in {DATA}")
def test_amazon_gift_cards() -> None:
    start = time.perf_counter()
    logs = read_logs(
        GIFT_CARDS / "Gift_Cards_5.json.gz", mapping=GIFT_MAP, catalog=GIFT_CARDS / "meta_Gift_Cards.json.gz"
    )
    seconds = time.perf_counter() - start
    r = logs.report
    assert r.rows_read == r.rows_used + r.rows_quarantined + r.duplicates + r.rows_filtered
    assert (r.rows_read, r.rows_used, r.rows_quarantined, r.duplicates) == (2_972, 2_972, 0, 0)
    assert (r.users, r.items) == (458, 148)
    assert logs.catalog is not None and len(logs.catalog) == 1_547
    assert all(e.item_id in logs.catalog for e in logs.events())  # the metadata covers every item
    assert {e.event for e in logs.events()} == {"review"}
    assert {e.rating for e in logs.events()} <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert sum(1 for e in logs.events() if e.text and " — " in e.text) > 2_000  # summary — reviewText
    item = logs.catalog["B001GXRQW0"]
    assert item.title == "Amazon.com Gift Cards" and item.categories == ["Gift Cards"]
    assert item.attributes.get("brand") == "Amazon"
    assert seconds < 30
    strict = read_logs(
        GIFT_CARDS / "Gift_Cards_5.json.gz",
        mapping=GIFT_MAP,
        catalog=GIFT_CARDS / "meta_Gift_Cards.json.gz",
        strict=True,
        strict_catalog=True,
    )
    assert strict.report.rows_used == 2_972
    print(f"\nAmazon gift cards: {r.summary()}")
