"""The real vLLM engine on the CPU with the embedded model, end to end through the CLI."""

from __future__ import annotations

import csv

import pytest
from conftest import EXAMPLES

from interests.profile.store import iter_jsonl
from interests.schema import InterestProfile

pytestmark = pytest.mark.engine


def _own_items() -> dict[str, set[str]]:
    own: dict[str, set[str]] = {}
    with (EXAMPLES / "events.csv").open() as f:
        for row in csv.DictReader(f):
            own.setdefault(row["user"], set()).add(row["item"])
    return own


def _n_events() -> dict[str, int]:
    with (EXAMPLES / "events.csv").open() as f:
        rows = [r["user"] for r in csv.DictReader(f)]
    return {u: rows.count(u) for u in set(rows)}


def test_every_example_user_gets_a_grounded_profile_or_an_error(engine_run, engine_profiles):
    own, n_events = _own_items(), _n_events()
    profiles = [InterestProfile.model_validate(d) for d in iter_jsonl(engine_profiles)]
    errors = list(iter_jsonl(engine_profiles.with_name("profiles.errors.jsonl")))
    ids = [p.user_id for p in profiles] + [e["user_id"] for e in errors]
    assert sorted(ids) == sorted(own), "every user exactly once"
    assert len(profiles) >= 0.8 * len(own), engine_run.stderr[-2000:]
    for p in profiles:
        assert p.item_ids() <= own[p.user_id], f"{p.user_id} cites items it never touched"
        assert p.domains and all(t.item_ids for d in p.domains for t in d.topics)
        assert abs(sum(d.weight for d in p.domains) - 1.0) < 0.01
        assert p.provenance.backend == "vllm" and p.provenance.model == "smollm2-135m"
        assert p.stats.n_events == n_events[p.user_id] and p.stats.n_items == len(own[p.user_id])
    for e in errors:
        assert e["reason"] and e["stage"] in {"prompt", "generate", "validate", "ground"}
    # the summary line the CLI prints
    assert f"{len(profiles)} profiles" in engine_run.stderr
    assert "output tokens/s" in engine_run.stderr


def test_the_hierarchy_holds_with_the_embedded_model(engine_profiles):
    """Floors of issue 12 on the example logs, scored by the planted truth of the items each node cites."""
    import json

    from interests.synthetic.score import score_profiles

    profiles = [InterestProfile.model_validate(d) for d in iter_jsonl(engine_profiles)]
    truth = json.loads((EXAMPLES / "truth.json").read_text())
    s = score_profiles(profiles, truth)
    print("hierarchy on engine profiles:", {k: s[k] for k in sorted(s) if not isinstance(s[k], dict)})
    assert s["domain_recall"] >= 0.9 and s["domain_coherence"] >= 0.95, s
    assert s["topic_recall"] >= 0.8 and s["duplicate_topics"] == 0 and s["duplicate_domains"] == 0, s
    assert s["trend_accuracy"] >= 0.9 and s["rhythm_accuracy"] == 1.0, s
    assert s["sentiment_order"] is None or s["sentiment_order"] == 1.0, s
    for p in profiles:
        assert p.provenance.structure == "data"
        # the model named some groups; the rest kept their computed names (and say so)
        assert all(d.name_source in {"model", "computed"} for d in p.domains)
    named = [d.name_source == "model" for p in profiles for d in p.domains]
    print(f"domain names kept from the model: {sum(named)}/{len(named)}")


def test_path_string_catalogue_with_the_embedded_model(tmp_path):
    """Issue 24: a planted log whose catalogue writes ``Domain > Topic`` strings (and a shared root), through
    the CLI with the real engine: one domain node per planted domain, names in the catalogue's words."""
    import subprocess

    from conftest import expected_exit, interests_cmd

    from interests.synthetic import generate_planted_b, write_logs
    from interests.synthetic.score import score_file

    paths = write_logs(generate_planted_b(n_users=8, shape="path", events_per_user=(20, 30)), tmp_path)
    out = tmp_path / "profiles.jsonl"
    proc = subprocess.run(
        interests_cmd("extract", str(paths["events"]), "--catalog", str(paths["catalog"]), "-o", str(out)),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == expected_exit(out.with_name("profiles.errors.jsonl")), proc.stderr[-2000:]
    s = score_file(out, paths["truth"])
    print("path strings with the engine:", s)
    assert s["profiles"] >= 7 and s["split_domains"] <= 0.05 and s["domain_coherence"] >= 0.95, s
    assert abs(s["domains_per_profile"] - s["planted_domains_per_user"]) <= 0.2, s
    assert s["counter_names"] == 0 and s["dump_names"] == 0 and s["names_distinct"] == 1.0, s
    # the model keeps the catalogue's word or a name about the group: most names still share the planted word
    assert s["domain_names_planted"] >= 0.9 and s["topic_names_planted"] >= 0.8, s
