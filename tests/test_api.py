"""The recommendation service over real HTTP on loopback: uvicorn in a thread, httpx as the client.

The model is a small two-tower trained in seconds on a synthetic matrix
whose right answer is known: four interest groups of eight items, every
user takes all items of one group, the probe user ``p<g>`` misses the last
one (``g<g>_7``), which every variant ranks first.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
import uvicorn
from click.testing import CliRunner
from worlds import N_ITEMS, USERS_PER_GROUP, grouped_world, make_profile

from interests.api import check_bind, create_app
from interests.api.middleware import is_loopback
from interests.errors import ConfigError
from interests.profile.store import append_lines
from interests.recsys import TwoTower
from interests.recsys.explain import reason_lines

FAST = {"epochs": 30, "batch_size": 64, "dim": 32, "seed": 0}
KEY = "k" * 8 + "-test-key-0123456789"
SECRET = "MY-PRIVATE-REVIEW-4711 about my neighbour"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A trained, saved and re-loaded model (as ``interests api`` gets it), its catalogue and profiles."""
    histories, catalog, profiles = grouped_world()
    folder = tmp_path_factory.mktemp("api-model")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads only spin on a busy machine (60 s instead of 5)
    try:
        TwoTower(**FAST).fit(histories, catalog=catalog, profiles=profiles).save(folder)
    finally:
        torch.set_num_threads(threads)
    return {"model": TwoTower.load(folder), "folder": folder, "catalog": catalog, "profiles": profiles}


@contextlib.contextmanager
def serving(app: Any) -> Iterator[httpx.Client]:
    """``app`` under uvicorn on a free loopback port, in a thread; yields a client bound to it."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


def app_for(world: dict[str, Any], **kw: Any) -> Any:
    return create_app(world["model"], world["profiles"], catalog=world["catalog"], **kw)


def recs(client: httpx.Client, user: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"/users/{user}/recommendations", params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def ids(body: dict[str, Any]) -> list[str]:
    return [x["item_id"] for x in body["items"]]


def post(client: httpx.Client, events: list[dict[str, Any]], **kw: Any) -> httpx.Response:
    return client.post("/events", json={"events": events}, **kw)


def test_known_user_gets_exactly_model_recommend(world: dict[str, Any]) -> None:
    model = world["model"]
    with serving(app_for(world)) as c:
        for user in ["p0", "p1", "p2", "p3", "u1_3"]:
            for diverse in (0.0, 0.5):
                body = recs(c, user, k=6, diverse=diverse)
                want, scores = model.recommend(user, k=6, diverse=diverse)
                assert body["source"] == "known" and body["user_id"] == user
                assert ids(body) == list(want)
                assert np.allclose([x["score"] for x in body["items"]], scores, atol=1e-5)
        assert ids(recs(c, "p2", k=1)) == ["g2_7"]  # the withheld item, as in test_recsys
        assert recs(c, "p2", k=1)["items"][0]["title"] == "trail running item 7"


def keep_profiles(users: list[str]) -> None:
    """A refresher that changes nothing: tests of fold-in alone."""


def test_posted_events_change_recommendations_at_once(world: dict[str, Any]) -> None:
    app = app_for(world, refresher=keep_profiles)
    store = app.state.interests.store
    posted = [f"g2_{k}" for k in range(N_ITEMS - 1)]
    with serving(app) as c:
        before = ids(recs(c, "p0", k=5))
        # the group the user took leads; g2_7 may sit lower in the top 5 (it does on some CPUs' numerics)
        assert before[0] == "g0_7"
        r = post(c, [{"user_id": "p0", "item_id": i, "rating": 5} for i in posted])
        assert r.status_code == 200 and r.json()["accepted"] == len(posted)
        assert r.json()["users"] == {"p0": "queued"}
        after = recs(c, "p0", k=5)
    assert after["source"] == "known"
    assert after["items"][0]["item_id"] == "g2_7"  # the user's newest interest leads
    assert not set(posted) & set(ids(after))  # posted items count as seen
    assert store.n_events("p0") == N_ITEMS - 1 + len(posted)


def test_unknown_users_cold_start_and_events(world: dict[str, Any]) -> None:
    model = world["model"]
    with serving(app_for(world)) as c:
        cold = recs(c, "nobody", k=5)
        assert cold["source"] == "cold"
        assert ids(cold) == list(model.recommend_new([], k=5)[0])
        described = recs(c, "nobody", k=5, text="sourdough baking")
        assert described["source"] == "cold"
        assert ids(described) == list(model.recommend_new([], text="sourdough baking", k=5)[0])
        post(c, [{"user_id": "newbie", "item_id": f"g3_{k}", "timestamp": 1.7e9 + k} for k in range(4)])
        warm = recs(c, "newbie", k=4)
        assert warm["source"] == "events"
        assert set(ids(warm)) == {f"g3_{k}" for k in range(4, N_ITEMS)}  # the rest of the group


def test_explanations_add_up_to_the_served_score(world: dict[str, Any]) -> None:
    app = app_for(world, refresher=keep_profiles)
    scorer, store = app.state.interests.scorer, app.state.interests.store
    with serving(app) as c:
        known = recs(c, "p1", k=3, explain="true")
        top = known["items"][0]
        assert top["item_id"] == "g1_7" and top["reasons"][0].startswith("because: ")
        assert {b["item_id"] for b in top["because"]} <= {f"g1_{k}" for k in range(N_ITEMS)}
        for item in known["items"]:  # only what raised the score is a reason
            assert item["reasons"] == reason_lines(item)
            assert all(b["contribution"] > 0 for b in item["because"])
        post(c, [{"user_id": "p1", "item_id": "g3_0"}, {"user_id": "p1", "item_id": "g3_1"}])
        folded = recs(c, "p1", k=3, explain="true")
    snap = store.snapshot("p1")
    row = scorer.row(snap)
    for item in folded["items"]:
        ex = scorer.explain(snap, row, item["item_id"])
        assert ex.score == pytest.approx(item["score"], abs=1e-4)  # the score that was served
        assert abs(ex.offset + sum(ex.groups.values()) - ex.score) < 1e-4
        assert any(h in ("g3_0", "g3_1") for h, _ in ex.history)  # posted events drive it too


def test_profile_endpoint(world: dict[str, Any]) -> None:
    with serving(app_for(world)) as c:
        r = c.get("/users/p2/profile")
        assert r.status_code == 200 and r.json()["user_id"] == "p2"
        assert r.json()["domains"][0]["name"] == "Trail Running"
        assert r.headers["x-profile-stale"] == "false"
        missing = c.get("/users/nobody/profile")
    assert missing.status_code == 404 and "no profile for user 'nobody'" in missing.json()["detail"]


def test_context_endpoint(world: dict[str, Any]) -> None:
    from interests.llm.tokens import TextTokens
    from interests.profile.context import context

    count = TextTokens()
    with serving(app_for(world)) as c:
        r = c.get("/users/p2/context", params={"tokens": 64})
        md = c.get("/users/p2/context", params={"tokens": 512, "format": "markdown"})
        js = c.get("/users/p2/context", params={"tokens": 512, "format": "json"})
        small = c.get("/users/p2/context", params={"tokens": 5})
        missing = c.get("/users/nobody/context")
        bad = c.get("/users/p2/context", params={"format": "yaml"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["context"] == context(world["profiles"]["p2"], tokens=64, tokenizer=count)
    assert body["tokens"] == count(body["context"]) <= body["budget"] == 64
    assert body["context"].splitlines()[1].startswith("- Trail Running: 100%")
    assert md.json()["context"].startswith("**Interests of user p2**") and md.json()["lines_dropped"] == 0
    assert json.loads(js.json()["context"])["domains"][0]["name"] == "Trail Running"
    assert small.status_code == 422 and "over the budget of 5" in small.json()["detail"]
    assert missing.status_code == 404 and "no profile for user 'nobody'" in missing.json()["detail"]
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b'{"events": [{"user_id": "p0", "item_id": "g0_1", "text": "' + SECRET.encode() + b'"', 400, "JSON"),
        (b"not json at all " + SECRET.encode(), 400, "not valid JSON"),
        ({"events": [{"user_id": "p0", "text": SECRET}]}, 422, "events[0].item_id: Field required"),
        ({"events": [{"item_id": "g0_1", "text": SECRET}]}, 422, "events[0].user_id: Field required"),
        ({"events": [{"user_id": "p0", "item_id": "g0_1", "rating": SECRET}]}, 422, "rating"),
        ({"events": [{"user_id": "p0", "item_id": "g0_1", "timestamp": SECRET}]}, 422, "timestamp"),
        ({"events": [{"user_id": {"a": 1}, "item_id": "g0_1", "text": SECRET}]}, 422, "user_id"),
        ({"events": [{"user_id": "p0", "item_id": "g0_1", "text": SECRET, "colour": "red"}]}, 422, "colour"),
        ({"events": {"user_id": "p0", "text": SECRET}}, 422, "events"),
        ({"events": []}, 422, "at least 1"),
        ([SECRET], 422, "body"),
    ],
)
def test_malformed_bodies_are_4xx_and_never_echo_text(
    world: dict[str, Any], body: Any, status: int, says: str
) -> None:
    app = app_for(world)
    with serving(app) as c:
        r = (
            c.post("/events", content=body, headers={"content-type": "application/json"})
            if isinstance(body, bytes)
            else c.post("/events", json=body)
        )
    assert r.status_code == status, r.text
    assert says in r.json()["detail"]
    assert "MY-PRIVATE-REVIEW" not in r.text
    assert app.state.interests.store.n_posted("p0") == 0


def test_unknown_items_are_rejected_with_a_reason(world: dict[str, Any]) -> None:
    app = app_for(world)
    with serving(app) as c:
        r = post(
            c,
            [
                {"user_id": "p0", "item_id": "g1_1", "text": SECRET},
                {"user_id": "p0", "item_id": "no-such-item", "text": SECRET},
            ],
        )
        bad_query = c.get("/users/p0/recommendations", params={"k": 0})
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 1
    assert body["rejected"] == [
        {"index": 1, "user_id": "p0", "item_id": "no-such-item", "reason": body["rejected"][0]["reason"]}
    ]
    assert "unknown item" in body["rejected"][0]["reason"] and "retrain" in body["rejected"][0]["reason"]
    assert "MY-PRIVATE-REVIEW" not in r.text
    assert app.state.interests.store.n_posted("p0") == 1
    assert bad_query.status_code == 422 and "query.k" in bad_query.json()["detail"]


def test_body_and_event_count_limits(world: dict[str, Any]) -> None:
    app = app_for(world, max_body_bytes=2000, max_events=5)
    store = app.state.interests.store
    one = {"user_id": "p0", "item_id": "g1_1"}
    with serving(app) as c:
        big = post(c, [{**one, "text": "x" * 3000}])
        chunks = [
            json.dumps({"events": [{**one, "text": "y" * 3000}]}).encode()[i : i + 500]
            for i in range(0, 3100, 500)
        ]
        chunked = c.post("/events", content=iter(chunks), headers={"content-type": "application/json"})
        many = post(c, [one] * 6)
        five = post(c, [one] * 5)
    assert big.status_code == 413 and "2000 bytes" in big.json()["detail"]
    assert "content-length" not in chunked.request.headers  # really chunked: caught by bytes read
    assert chunked.status_code == 413
    assert many.status_code == 413 and "at most 5" in many.json()["detail"]
    assert five.status_code == 200 and five.json()["accepted"] == 5
    assert store.n_posted("p0") == 5


def test_api_key_guards_everything_but_healthz(world: dict[str, Any]) -> None:
    with serving(app_for(world, api_key=KEY)) as c:
        assert c.get("/users/p0/recommendations").status_code == 401
        assert (
            c.get("/users/p0/recommendations", headers={"Authorization": "Bearer wrong-key"}).status_code
            == 401
        )
        assert c.get("/users/p0/recommendations", headers={"X-API-Key": KEY[:-1]}).status_code == 401
        assert c.get("/metrics").status_code == 401
        assert c.get("/docs").status_code == 401
        assert post(c, [{"user_id": "p0", "item_id": "g0_1"}]).status_code == 401
        assert (
            c.get("/users/p0/recommendations", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        )
        assert c.get("/users/p0/profile", headers={"X-API-Key": KEY}).status_code == 200
        health = c.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert c.get("/openapi.json", headers={"X-API-Key": KEY}).status_code == 200


def test_refuses_to_bind_a_public_address_without_a_key(world: dict[str, Any], tmp_path: Path) -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert is_loopback(host)
        check_bind(host, None)
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.com"):
        assert not is_loopback(host)
        with pytest.raises(ConfigError, match="API key"):
            check_bind(host, None)
        check_bind(host, KEY)
    with pytest.raises(ConfigError, match="at least 16"):
        check_bind("127.0.0.1", "short")
    from interests.cli import cli

    profiles = tmp_path / "profiles.jsonl"
    append_lines(profiles, list(world["profiles"].values()))
    res = CliRunner().invoke(
        cli, ["api", str(world["folder"]), "--profiles", str(profiles), "--host", "0.0.0.0"], env={}
    )
    assert res.exit_code == 1 and "refusing to listen on 0.0.0.0" in res.output


def test_concurrent_posts_for_one_user_lose_no_event(world: dict[str, Any], tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    app = app_for(world, events_log=log)
    store = app.state.interests.store
    before = store.n_events("p3")
    errors: list[str] = []
    with serving(app) as c:

        def worker(n: int) -> None:
            for j in range(25):
                r = post(c, [{"user_id": "p3", "item_id": f"g{(n + j) % 4}_{j % 8}", "rating": n}])
                if r.status_code != 200 or r.json()["accepted"] != 1:
                    errors.append(r.text)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        served = recs(c, "p3", k=3)
    assert not errors
    assert store.n_events("p3") == before + 200 and store.n_posted("p3") == 200
    assert len(log.read_text().splitlines()) == 200
    assert served["source"] == "known"
    assert log.stat().st_mode & 0o077 == 0  # reviews in it: readable by the owner only


def test_restart_replays_the_events_log(world: dict[str, Any], tmp_path: Path) -> None:
    log = tmp_path / "profiles.events.jsonl"
    first = app_for(world, events_log=log, refresher=keep_profiles)
    events = [
        {"user_id": "p1", "item_id": f"g0_{k}", "timestamp": f"2024-05-0{k + 1}T12:00:00Z"} for k in range(3)
    ]
    events += [{"user_id": "late", "item_id": "g2_1", "rating": 4.5, "text": SECRET}]
    with serving(first) as c:
        assert post(c, events).json()["accepted"] == 4
        want_p1, want_late = recs(c, "p1", k=5), recs(c, "late", k=5)
    with log.open("a") as f:
        f.write('{"user_id": "p1", "item_id": "g0_')  # torn by a kill
    second = app_for(world, events_log=log, refresher=keep_profiles)
    store = second.state.interests.store
    assert store.n_posted("p1") == 3 and store.n_posted("late") == 1
    assert store.history("late").events[0].text == SECRET  # kept for the profile refresh
    with serving(second) as c:
        assert recs(c, "p1", k=5) == want_p1 and recs(c, "late", k=5) == want_late
        assert c.get("/healthz").json()["users"] == 4 * USERS_PER_GROUP + 1


def test_metrics_count_requests_latency_and_events(world: dict[str, Any]) -> None:
    app = app_for(world)
    with serving(app) as c:
        for _ in range(3):
            recs(c, "p0", k=2)
        post(c, [{"user_id": "p0", "item_id": "g1_0"}, {"user_id": "p0", "item_id": "nope"}])
        c.get("/users/nobody/profile")
        c.get("/no/such/path")
        text = c.get("/metrics").text
    other = app_for(world).state.interests.metrics.render()[0].decode()

    def value(line_start: str) -> float:
        line = next(x for x in text.splitlines() if x.startswith(line_start))
        return float(line.rsplit(" ", 1)[1])

    route = 'route="/users/{user_id}/recommendations"'
    assert value(f'interests_api_requests_total{{method="GET",{route},status="200"}}') == 3
    assert value(f"interests_api_request_seconds_count{{{route}}}") == 3
    assert (
        value('interests_api_requests_total{method="GET",route="/users/{user_id}/profile",status="404"}') == 1
    )
    assert value('interests_api_requests_total{method="GET",route="unmatched",status="404"}') == 1
    assert value('interests_api_events_total{outcome="accepted"}') == 1
    assert value('interests_api_events_total{outcome="rejected"}') == 1
    assert "interests_api_refresh_queue_depth" in text and "interests_api_stale_users" in text
    assert "p0" not in text and "nobody" not in text  # user ids are never label values
    assert 'status="200"' not in other  # every app has its own registry


def test_full_refresh_queue_defers_and_never_fails(world: dict[str, Any]) -> None:
    entered, release = threading.Event(), threading.Event()
    seen: list[list[str]] = []

    def slow_refresher(users: list[str]) -> None:
        seen.append(list(users))
        entered.set()
        release.wait(10)

    app = app_for(world, refresher=slow_refresher, queue_size=1, stale_retry_s=0.05)
    service = app.state.interests
    with serving(app) as c:
        assert post(c, [{"user_id": "u0_1", "item_id": "g1_0"}]).json()["refresh"] == "queued"
        assert entered.wait(10)  # the worker is busy with u0_1
        assert post(c, [{"user_id": "u0_2", "item_id": "g1_0"}]).json()["refresh"] == "queued"
        full = post(c, [{"user_id": "u0_3", "item_id": "g1_0"}, {"user_id": "u0_2", "item_id": "g1_1"}])
        assert full.status_code == 200
        assert full.json()["users"] == {"u0_3": "deferred", "u0_2": "queued"}  # u0_2 already waits
        assert full.json()["refresh"] == "deferred" and full.json()["accepted"] == 2
        assert c.get("/healthz").json()["queue"] == 1
        assert service.store.is_stale("u0_3")
        assert c.get("/users/u0_3/profile").headers["x-profile-stale"] == "true"
        assert recs(c, "u0_3", k=3)["source"] == "known" and service.store.n_posted("u0_3") == 1
        release.set()
        deadline = time.monotonic() + 10
        while not any("u0_3" in batch for batch in seen) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert seen[0] == ["u0_1"] and ["u0_2"] in seen
    assert any("u0_3" in batch for batch in seen)  # deferred, then retried from the stale set


def test_refreshed_profiles_are_served_and_used(world: dict[str, Any]) -> None:
    holder: list[Any] = []

    def refresher(users: list[str]) -> None:
        store = holder[0].state.interests.store
        store.set_profiles(
            {u: make_profile(u, 3, ["g3_0"], summary="Now only bakes sourdough.") for u in users}
        )

    app = app_for(world, refresher=refresher)
    holder.append(app)
    with serving(app) as c:
        post(c, [{"user_id": "p0", "item_id": "g3_0"}])
        assert app.state.interests.queue.wait_idle(10)
        profile = c.get("/users/p0/profile").json()
        served = recs(c, "p0", k=3)
    assert profile["summary"] == "Now only bakes sourdough."
    scorer, store = app.state.interests.scorer, app.state.interests.store
    snap = store.snapshot("p0")
    assert snap.profile is not None and snap.profile.summary == "Now only bakes sourdough."
    assert scorer.cache.get("p0", snap.version) is not None  # the row in use was built from it
    assert served["source"] == "known"


def test_default_refresher_recomputes_profiles_without_an_llm(world: dict[str, Any]) -> None:
    pytest.importorskip("interests.profile.update")
    app = app_for(world)
    with serving(app) as c:
        old = c.get("/users/p2/profile").json()
        post(c, [{"user_id": "p2", "item_id": "g2_7", "rating": 5}, {"user_id": "p2", "item_id": "g1_0"}])
        assert app.state.interests.queue.wait_idle(60)
        new = c.get("/users/p2/profile").json()
    assert new["stats"]["n_events"] == old["stats"]["n_events"] + 2
    assert "g2_7" in {i for d in new["domains"] for t in d["topics"] for i in t["item_ids"]}
    assert not app.state.interests.store.is_stale("p2")


def test_item_vectors_are_computed_once_and_the_encoder_loads_at_start(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """profile_wins (each item's source) reads the item tower's output computed once, not per row,
    and the text encoder of profiles is loaded by create_app, not by a request (#16)."""
    from interests.recsys.explain import profile_wins

    model = TwoTower.load(world["folder"])
    assert model.state.encoder.loaded is None
    app = create_app(model, world["profiles"], catalog=world["catalog"], refresher=keep_profiles)
    assert model.state.encoder.loaded is not None
    scorer, store = app.state.interests.scorer, app.state.interests.store
    rows = [scorer.row(store.snapshot(u)) for u in ("p0", "p1", "u2_1")]
    want = [profile_wins(model.state, r.query, r.feats) for r in rows]
    assert any(w.any() for w in want) and any((~w).any() for w in want)

    def again() -> None:
        raise AssertionError("item vectors recomputed")

    monkeypatch.setattr(model.state.net, "item_vectors", again)
    with serving(app) as c:
        post(c, [{"user_id": "p1", "item_id": "g0_0"}])
        body = recs(c, "p1", k=8)
        assert {x["source"] for x in recs(c, "p0", k=8)["items"]} <= {"history", "profile"}
    row = scorer.cached(store.snapshot("p1"))
    assert row is not None
    assert np.array_equal(row.extra["profile_wins"], profile_wins(model.state, row.query, row.feats))
    sources = [
        "profile" if row.extra["profile_wins"][model.known.item_index[x["item_id"]]] else "history"
        for x in body["items"]
    ]
    assert [x["source"] for x in body["items"]] == sources
    for r, w in zip(rows, want, strict=True):
        assert np.array_equal(profile_wins(model.state, r.query, r.feats), w)
