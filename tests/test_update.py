"""interests update: exact statistics without the model, new words only where the hierarchy changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from interests.events import Catalog, Event, UserHistory
from interests.llm.base import GenRequest
from interests.llm.fake import FakeBackend, schema_answer
from interests.profile.extract import extract_profiles, sibling_path
from interests.profile.store import read_profiles
from interests.profile.update import read_history, update_profiles
from interests.synthetic import generate_planted_b
from interests.synthetic.profiles import planted_histories

DAY = 86400.0


def _namer(catalog: Catalog) -> Any:
    """A model that names every group after its first cited item's categories (names grounding keeps)."""

    def script(request: GenRequest, attempt: int) -> tuple[str, str]:
        answer = schema_answer(request.schema(), n_items=1)
        for key, group in answer.items():
            if not key.startswith("d"):
                continue
            first = None
            for t_key, slot in group.items():
                if t_key.startswith("t"):
                    cats = catalog.get_item(slot["items"][0]).categories
                    slot["name"] = cats[-1]
                    first = first or cats
            group["name"] = first[0]
        answer["summary"] = "Spends most of the time on " + answer["d1"]["name"] + " lately."
        return json.dumps(answer), "stop"

    return script


@pytest.fixture
def planted(tmp_path: Path) -> tuple[dict[str, UserHistory], Catalog, Path]:
    data = generate_planted_b(n_users=6, categories=True)
    histories = dict(planted_histories(data))
    out = tmp_path / "profiles.jsonl"
    res = extract_profiles(
        histories, catalog=data.catalog, output=out, backend=FakeBackend(_namer(data.catalog))
    )
    assert res.profiles == 6
    return histories, data.catalog, out


def _grown(h: UserHistory, item_ids: list[str], start: float | None = None) -> UserHistory:
    t = (start or max(e.ts or 0.0 for e in h.events)) + DAY
    more = [Event(h.user_id, i, t + k * 3600, 5.0) for k, i in enumerate(item_ids)]
    return UserHistory(h.user_id, [*h.events, *more])


def _topic_items(out: Path, user: str) -> list[list[str]]:
    p = next(p for p in read_profiles(out) if p.user_id == user)
    return [t.item_ids for d in p.domains for t in d.topics]


def test_an_unchanged_history_calls_no_model_and_writes_nothing(planted: Any) -> None:
    histories, catalog, out = planted
    before = out.read_bytes()
    backend = FakeBackend(_namer(catalog))
    res = update_profiles(histories, profiles=out, catalog=catalog, backend=backend)
    assert (res.unchanged, res.exact, res.llm, res.new) == (6, 0, 0, 0)
    assert backend.calls == []
    assert out.read_bytes() == before
    assert read_history(res.history_path) == []


def test_more_events_in_the_same_groups_recompute_the_statistics_and_keep_the_words(planted: Any) -> None:
    histories, catalog, out = planted
    old = {p.user_id: p for p in read_profiles(out)}
    uid = next(iter(histories))
    items = _topic_items(out, uid)[0][:2]  # two more events on items of the user's first topic
    histories[uid] = _grown(histories[uid], items)
    backend = FakeBackend(_namer(catalog))
    res = update_profiles(histories, profiles=out, catalog=catalog, backend=backend)
    assert (res.unchanged, res.exact, res.llm) == (5, 1, 0) and res.llm_calls_avoided == 1
    assert backend.calls == []  # no LLM call: the groups did not change
    new = {p.user_id: p for p in read_profiles(out)}
    assert len(new) == 6 and list(new) == list(old)  # one line a user, same order
    p, q = old[uid], new[uid]
    assert q.stats.n_events == p.stats.n_events + 2
    assert q.provenance.made_by == "update-exact" and q.provenance.events_digest != p.provenance.events_digest
    assert [(d.key, d.name) for d in q.domains] == [(d.key, d.name) for d in p.domains]
    assert any(d.name_source == "model" for d in q.domains)  # the model's words were carried over
    assert q.summary == p.summary and p.provenance.summary_source == "model"
    assert q.domains[0].topics[0].sentiment.n_ratings >= p.domains[0].topics[0].sentiment.n_ratings
    hist = read_history(res.history_path, uid)
    assert len(hist) == 1 and hist[0]["valid_from"] == p.provenance.valid_from
    assert (
        hist[0]["valid_to"] == q.provenance.valid_from == hist[0]["profile"]["provenance"]["valid_to"]
        and hist[0]["profile"]["user_id"] == uid
    )
    # a second run finds nothing to do
    again = update_profiles(histories, profiles=out, catalog=catalog, backend=backend)
    assert again.unchanged == 6 and backend.calls == []


def test_a_new_domain_or_a_new_user_asks_the_model_for_words(planted: Any) -> None:
    histories, catalog, out = planted
    uid = next(iter(histories))
    mine = {i for t in _topic_items(out, uid) for i in t}
    domains = {catalog.get_item(i).categories[0] for i in mine}
    fresh = [i for i in catalog if catalog.get_item(i).categories[0] not in domains][:3]
    histories[uid] = _grown(histories[uid], fresh * 4)  # 12 events on a domain the user never touched
    histories["newbie"] = UserHistory(
        "newbie", [Event("newbie", i, 1.7e9 + k, 4.0) for k, i in enumerate(fresh)]
    )
    backend = FakeBackend(_namer(catalog))
    res = update_profiles(histories, profiles=out, catalog=catalog, backend=backend)
    assert (res.unchanged, res.exact, res.llm, res.new) == (5, 0, 1, 1)
    assert any(r.startswith("new domain") for r in res.reasons)
    assert sorted(r.key for call in backend.calls for r in call) == sorted([uid, "newbie"])
    new = {p.user_id: p for p in read_profiles(out)}
    assert len(new) == 7
    assert new[uid].provenance.made_by == "update-llm" and new["newbie"].provenance.made_by == "extract"
    assert len(new[uid].domains) == len(domains) + 1


def test_an_item_gone_from_the_log_leaves_the_profile(planted: Any) -> None:
    histories, catalog, out = planted
    uid = next(iter(histories))
    first = _topic_items(out, uid)[0]
    gone = first[-1]
    histories[uid] = UserHistory(uid, [e for e in histories[uid].events if e.item_id != gone])
    res = update_profiles(histories, profiles=out, catalog=catalog, backend=FakeBackend(_namer(catalog)))
    assert res.exact + res.llm == 1 and res.unchanged == 5
    assert all(gone not in t for t in _topic_items(out, uid))


def test_refresh_and_no_llm_override_the_rule(planted: Any) -> None:
    histories, catalog, out = planted
    backend = FakeBackend(_namer(catalog))
    res = update_profiles(histories, profiles=out, catalog=catalog, backend=backend, refresh=True)
    assert res.llm == 6 and len(backend.calls) == 1
    histories["newbie"] = UserHistory("newbie", histories[next(iter(histories))].events)
    histories["newbie"] = UserHistory(
        "newbie", [Event("newbie", e.item_id, e.ts) for e in histories["newbie"].events]
    )
    quiet = FakeBackend(_namer(catalog))
    res = update_profiles(histories, profiles=out, catalog=catalog, backend=quiet, llm=False)
    assert res.new == 1 and quiet.calls == []
    p = next(p for p in read_profiles(out) if p.user_id == "newbie")
    assert p.provenance.backend == "none" and all(d.name_source == "computed" for d in p.domains)
    assert p.domains and p.provenance.events_digest


def test_a_killed_update_finishes_on_the_rerun_with_each_user_once(planted: Any) -> None:
    histories, catalog, out = planted
    users = list(histories)
    for uid in users:
        mine = {i for t in _topic_items(out, uid) for i in t}
        domains = {catalog.get_item(i).categories[0] for i in mine}
        fresh = [i for i in catalog if catalog.get_item(i).categories[0] not in domains][:3]
        histories[uid] = _grown(histories[uid], fresh * 4)
    calls = {"n": 0}
    namer = _namer(catalog)

    def dies_on_third_batch(request: GenRequest, attempt: int) -> tuple[str, str]:
        return namer(request, attempt)

    class Dying(FakeBackend):
        def generate(self, requests: list[GenRequest]) -> Any:
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt("killed")
            return super().generate(requests)

    with pytest.raises(KeyboardInterrupt):
        update_profiles(
            histories, profiles=out, catalog=catalog, backend=Dying(dies_on_third_batch), batch_size=2
        )
    staged = sibling_path(out, "update")
    assert len(read_profiles(staged)) == 4  # two batches finished before the kill
    backend = FakeBackend(namer)
    res = update_profiles(histories, profiles=out, catalog=catalog, backend=backend, batch_size=2)
    assert res.merged == 4 and res.llm == 2  # the rerun merged what was done and did only the rest
    assert sum(len(c) for c in backend.calls) == 2
    ids = [p.user_id for p in read_profiles(out)]
    assert sorted(ids) == sorted(users) and len(ids) == len(set(ids))
    hist = read_history(sibling_path(out, "history"))
    assert sorted(h["user_id"] for h in hist) == sorted(users)  # each replaced version once
    assert not staged.exists()


def test_cli_update_reads_new_log_rows_and_reports_what_it_did(
    tmp_path: Path, example_logs_dir: Path
) -> None:
    from click.testing import CliRunner
    from interests.cli import cli

    from interests.ingest import read_logs

    events, catalog = example_logs_dir / "events.csv", example_logs_dir / "catalog.jsonl"
    out = tmp_path / "profiles.jsonl"
    extract_profiles(read_logs([str(events)], catalog=str(catalog)), output=out, backend=FakeBackend())
    before = {p.user_id: p for p in read_profiles(out)}
    rows = events.read_text(encoding="utf-8").splitlines()
    user, item = rows[1].split(",")[:2]
    grown = tmp_path / "events.csv"  # the same log and one new row for one user
    grown.write_text(
        "\n".join([*rows, f"{user},{item},5,2023-12-01T10:00:00+00:00,,view"]) + "\n", encoding="utf-8"
    )
    res = CliRunner().invoke(
        cli,
        ["update", str(grown), "--catalog", str(catalog), "--profiles", str(out), "--no-llm", "--json"],
    )
    assert res.exit_code == 0, res.output
    counts = json.loads(res.stdout)
    assert counts["users_seen"] == len(before) and counts["unchanged"] == len(before) - 1
    assert counts["exact"] + counts["llm"] == 1 and counts["errors"] == 0
    after = {p.user_id: p for p in read_profiles(out)}
    assert after[user].stats.n_events == before[user].stats.n_events + 1
    assert "1 updated without the model" in res.stderr or counts["llm"] == 1


def test_a_half_life_weighs_recent_events_more_and_is_recorded(planted: Any) -> None:
    from interests.profile.skeleton_grounding import event_mass

    histories, catalog, out = planted
    h = histories[next(iter(histories))]
    flat = event_mass(h.events)
    decayed = event_mass(h.events, half_life_days=30.0)
    assert flat == {i: float(sum(e.item_id == i for e in h.events)) for i in flat}
    last = h.events[-1]
    old = min(h.events, key=lambda e: e.ts or 0.0)
    assert decayed[last.item_id] > 0.9 and decayed[old.item_id] < flat[old.item_id]
    # planted B: every user's first domain fades, the second rises; a half-life tips the weights
    res = update_profiles(
        histories, profiles=out, catalog=catalog, llm=False, refresh=True, half_life_days=30.0
    )
    assert res.exact + res.llm == 6
    for p in read_profiles(out):
        assert p.provenance.half_life_days == 30.0
        rising = [d for d, t in zip(p.domains, p.time_patterns.by_domain, strict=True) if t.trend == "rising"]
        fading = [d for d, t in zip(p.domains, p.time_patterns.by_domain, strict=True) if t.trend == "fading"]
        if rising and fading:
            assert rising[0].weight > fading[0].weight
        assert abs(sum(d.weight for d in p.domains) - 1.0) < 0.01
