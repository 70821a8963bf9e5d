"""The planted-B generator and the scoring of profiles by planted truth (issue 12), no engine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from interests.ingest import read_catalog
from interests.profile.store import append_lines
from interests.schema import InterestProfile, Sentiment
from interests.synthetic import (
    HIERARCHY,
    HIERARCHY_B,
    SyntheticData,
    generate,
    generate_planted_b,
    write_logs,
)
from interests.synthetic.profiles import planted_profiles
from interests.synthetic.score import score_file, score_profiles

ROOT = Path(__file__).resolve().parents[1]


def truth_of(data: SyntheticData) -> dict[str, Any]:
    return json.loads(
        json.dumps(
            {
                "users": [u.__dict__ for u in data.users],
                "item_domain": data.item_domain,
                "item_topic": data.item_topic,
            }
        )
    )


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate_planted_b()


@pytest.fixture(scope="module")
def truth(data: SyntheticData) -> dict[str, Any]:
    return truth_of(data)


# ---- the generator ---------------------------------------------------------------------------


def name_words(hierarchy: Mapping[str, Mapping[str, object]]) -> set[str]:
    """Every word of the domain and topic names, lower case, without a plural s."""
    names = [n for d, ts in hierarchy.items() for n in [d, *ts]]
    return {w.lower().rstrip("s") for n in names for w in re.findall(r"[A-Za-z]+", n)}


def test_b_vocabulary_differs_from_the_examples() -> None:
    assert not name_words(HIERARCHY) & name_words(HIERARCHY_B)
    assert len(HIERARCHY_B) == 5 and all(len(t) == 3 for t in HIERARCHY_B.values())


def test_b_is_deterministic(tmp_path: Path) -> None:
    a, b = write_logs(generate_planted_b(), tmp_path / "a"), write_logs(generate_planted_b(), tmp_path / "b")
    for kind in a:
        assert a[kind].read_bytes() == b[kind].read_bytes()
    other = write_logs(generate_planted_b(seed=2), tmp_path / "c")
    assert other["events"].read_bytes() != a["events"].read_bytes()


def test_b_catalogue_names_nothing(data: SyntheticData) -> None:
    words = name_words(HIERARCHY_B)
    assert len(data.catalog) == 5 * 3 * 15
    for item in data.catalog.values():
        assert item.categories == []
        desc = {w.lower().rstrip("s") for w in re.findall(r"[A-Za-z]+", item.description)}
        assert not desc & words, item
        assert item.attributes
    # ids do not follow the topics: the first 15 ids are not one topic
    first = sorted(data.item_topic)[:15]
    assert len({data.item_topic[i] for i in first}) > 1


def test_b_with_categories_has_the_same_titles() -> None:
    plain, with_cats = generate_planted_b(categories=False), generate_planted_b(categories=True)
    assert sorted(i.title for i in plain.catalog.values()) == sorted(
        i.title for i in with_cats.catalog.values()
    )
    assert all(
        i.categories == [with_cats.item_domain[i.item_id], with_cats.item_topic[i.item_id]]
        for i in with_cats.catalog.values()
    )


def test_b_plants_two_domains_one_rising_one_fading(data: SyntheticData) -> None:
    assert len(data.users) == 40
    span = [e.ts or 0.0 for e in data.events]
    t0, t1 = min(span), max(span)
    for user in data.users:
        assert len(user.domains) == 2
        assert {user.fading, user.rising} == set(user.domains)
        assert all(1 <= len(user.topics[d]) <= 2 for d in user.domains)
        for e in data.events:
            if e.user_id != user.user_id:
                continue
            where = ((e.ts or 0.0) - t0) / (t1 - t0)
            domain = data.item_domain[e.item_id]
            assert domain in user.domains
            assert where <= 0.42 if domain == user.fading else where >= 0.58
    assert sum(1 for u in data.users if u.disliked_topic) >= 8
    assert {u.rhythm for u in data.users} == {"evening", "weekend", "any"}


def test_default_generator_is_unchanged(tmp_path: Path) -> None:
    paths = write_logs(generate(n_users=24, seed=0), tmp_path)
    for kind in ("events", "catalog", "truth"):
        assert paths[kind].read_bytes() == (ROOT / "examples" / "logs" / paths[kind].name).read_bytes()


# ---- scoring ---------------------------------------------------------------------------------


def test_planted_profiles_score_perfectly(data: SyntheticData, truth: dict[str, Any]) -> None:
    s = score_profiles(planted_profiles(data), truth)
    assert s["users"] == s["profiles"] == 40 and s["missing_profiles"] == 0
    for key in (
        "domain_recall",
        "domain_coherence",
        "domain_coherence_nodes",
        "topic_recall",
        "topic_coherence",
        "topic_coherence_nodes",
        "domain_ratio",
        "topic_ratio",
        "names_distinct",
    ):
        assert s[key] == 1.0, key
    assert s["duplicate_domains"] == s["duplicate_topics"] == 0
    assert s["planted_domains_per_user"] == s["domains_per_profile"] == 2.0
    # planted_profiles computes by_domain trends from the events, so the planted trends are found
    assert s["trend_cases"] == 80 and s["trend_missing"] == 0
    assert s["trend_accuracy"] == s["trend_rising"] == s["trend_fading"] == 1.0
    assert s["sentiment_n"] >= 5 and s["sentiment_order"] == 1.0
    assert s["rhythm_n"] == 27 and s["rhythm_accuracy"] == 1.0


def test_lumped_domains_lose_coherence_and_recall(data: SyntheticData, truth: dict[str, Any]) -> None:
    s = score_profiles(planted_profiles(data, lump=1.0), truth)
    assert s["domain_coherence"] < 1.0 and s["domain_coherence_nodes"] < 1.0
    assert s["domain_recall"] == 0.5 and s["domains_per_profile"] == 1.0
    assert s["topic_recall"] == 1.0  # topics were kept
    assert s["trend_missing"] == 40 and s["trend_accuracy"] == 0.0  # the lumped node is steady


def test_names_do_not_matter(data: SyntheticData, truth: dict[str, Any]) -> None:
    """A node is judged by its items: renaming every node to nonsense changes no score but the name scores."""
    renamed = []
    for p in planted_profiles(data, name_noise=0.0):
        mapping = {}
        domains = []
        for k, d in enumerate(p.domains):
            mapping[d.name] = f"zz{k}"
            topics = [t.model_copy(update={"name": f"qq{k}{j}"}) for j, t in enumerate(d.topics)]
            domains.append(d.model_copy(update={"name": f"zz{k}", "topics": topics}))
        by_domain = [e.model_copy(update={"domain": mapping[e.domain]}) for e in p.time_patterns.by_domain]
        tp = p.time_patterns.model_copy(update={"by_domain": by_domain})
        renamed.append(p.model_copy(update={"domains": domains, "time_patterns": tp}))
    # the name scores are the only ones that read names: nonsense shares no word with the planted names
    assert score_profiles(renamed, truth) == score_profiles(planted_profiles(data, name_noise=0.0), truth) | {
        "mean_name_words": 1.0,
        "domain_names_planted": 0.0,
        "topic_names_planted": 0.0,
    }


def test_duplicates_sentiment_and_missing(data: SyntheticData, truth: dict[str, Any]) -> None:
    profiles = planted_profiles(data, name_noise=0.0)
    first = profiles[0]
    d0 = first.domains[0]
    copy = d0.model_copy(update={"name": d0.name.upper() + "!"})  # same items, same normalised name
    doubled = first.model_copy(update={"domains": [*first.domains, copy]})
    s = score_profiles([doubled, *profiles[1:-1]], truth)
    assert s["duplicate_domains"] == 1
    assert s["duplicate_topics"] == len(d0.topics)
    assert s["names_distinct"] < 1.0
    assert s["missing_profiles"] == 1 and s["profiles"] == 39

    # flip the sentiment of every topic node: disliked topics now rate above liked ones
    flipped = [
        p.model_copy(
            update={
                "domains": [
                    d.model_copy(
                        update={
                            "topics": [
                                t.model_copy(
                                    update={
                                        "sentiment": Sentiment(
                                            rating=-(t.sentiment.rating or 0.0), n_ratings=1
                                        )
                                    }
                                )
                                for t in d.topics
                            ]
                        }
                    )
                    for d in p.domains
                ]
            }
        )
        for p in profiles
    ]
    s = score_profiles(flipped, truth)
    assert s["sentiment_n"] >= 5 and s["sentiment_order"] == 0.0


def test_wrong_rhythm_and_trends(data: SyntheticData, truth: dict[str, Any]) -> None:
    flat = [1 / 24] * 24
    swap = {"rising": "fading", "fading": "rising", "steady": "steady"}
    broken: list[InterestProfile] = []
    for p in planted_profiles(data):
        by_domain = [e.model_copy(update={"trend": swap[e.trend]}) for e in p.time_patterns.by_domain]
        tp = p.time_patterns.model_copy(
            update={"hour_of_day": flat, "weekday": [1 / 7] * 7, "by_domain": by_domain}
        )
        broken.append(p.model_copy(update={"time_patterns": tp}))
    s = score_profiles(broken, truth)
    assert s["rhythm_accuracy"] == 0.0 and s["trend_accuracy"] == 0.0


def test_example_logs_and_file_api(tmp_path: Path) -> None:
    data = generate(n_users=24, seed=0)
    profiles_path = tmp_path / "profiles.jsonl"
    append_lines(profiles_path, planted_profiles(data))
    s = score_file(profiles_path, ROOT / "examples" / "logs" / "truth.json")
    assert s["users"] == 24 and s["domain_recall"] == 1.0 and s["topic_coherence"] == 1.0
    assert s["trend_cases"] == 24 and s["trend_accuracy"] == 1.0


def test_bench_cli(tmp_path: Path) -> None:
    script = ROOT / "bench" / "hierarchy.py"
    run = subprocess.run(
        [sys.executable, str(script), "make-logs", str(tmp_path / "logs"), "--users", "6"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "truth" in run.stdout
    catalog = [json.loads(line) for line in (tmp_path / "logs" / "catalog.jsonl").read_text().splitlines()]
    assert all(c["categories"] == [] for c in catalog)
    ingested = read_catalog(tmp_path / "logs" / "catalog.jsonl")  # what the pipeline will see
    assert len(ingested) == 225 and all(i.attributes and not i.categories for i in ingested.values())
    data = generate_planted_b(n_users=6)
    profiles_path = tmp_path / "profiles.jsonl"
    append_lines(profiles_path, planted_profiles(data))
    run = subprocess.run(
        [
            sys.executable,
            str(script),
            "score",
            str(profiles_path),
            str(tmp_path / "logs" / "truth.json"),
            "--json",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(run.stdout)["domain_recall"] == 1.0
    run = subprocess.run(
        [sys.executable, str(script), "score", str(profiles_path), str(tmp_path / "logs" / "truth.json")],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "domain_recall" in run.stdout
