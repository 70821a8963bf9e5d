"""LLM profile refreshes of ``interests api``, over real HTTP on loopback, with a scripted backend.

The rule is the one of ``interests update``: exact statistics for every user
whose events changed, new words from the LLM only where the hierarchy changed
(and for users without a profile). The profiles served at the start carry the
model's words and group keys, made from the service's own histories by the
same scripted backend, so an unchanged user is unchanged to the digest.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import test_api
from click.testing import CliRunner
from test_api import KEY, SECRET, post, recs, serving

from interests.api import ProfileRefresher, create_app, llm_refresher
from interests.api.state import UserStore
from interests.events import Catalog
from interests.llm.base import GenRequest, GenResult
from interests.llm.fake import FakeBackend, schema_answer
from interests.profile.item_groups import group_items
from interests.profile.store import append_lines
from interests.profile.update import refresh_profiles

world = test_api.world  # the module-scoped fixture: a small two-tower trained on the grouped world

SOURDOUGH = [f"g3_{k}" for k in range(6)]  # six events of a domain p0 (coffee, seven events) never touched


def namer(catalog: Catalog) -> Any:
    """A model that names each group after its items' category (names grounding keeps)."""

    def script(request: GenRequest, attempt: int) -> tuple[str, str]:
        answer = schema_answer(request.schema(), n_items=1)
        for key, group in answer.items():
            if key.startswith("d"):
                for t_key, slot in group.items():
                    if t_key.startswith("t"):
                        category = catalog.get_item(slot["items"][0]).categories[0]
                        slot["name"], group["name"] = category.title() + " picks", category.title()
        answer["summary"] = "Mostly " + answer["d1"]["name"] + " lately."
        return json.dumps(answer), "stop"

    return script


class Flaky(FakeBackend):
    """Raises (with a review in the message, which must never reach a log) while ``down``."""

    down = True

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        if self.down:
            raise ConnectionError(f"server gone while reading {SECRET}")
        return super().generate(requests)


@pytest.fixture(scope="module")
def named(world: dict[str, Any]) -> dict[str, Any]:
    """Profiles with the model's words and group keys for every trained user, and their groups."""
    store = UserStore(world["model"].known, {})
    histories = {u: store.history(u) for u in store.user_ids()}
    groups = group_items(histories, world["catalog"])
    made = refresh_profiles(
        histories, {}, catalog=world["catalog"], groups=groups, backend=FakeBackend(namer(world["catalog"]))
    )
    assert not made.errors and len(made.profiles) == len(histories)
    assert made.profiles["p0"].domains[0].name_source == "model"
    return {"profiles": made.profiles, "groups": groups}


def app_with(world: dict[str, Any], named: dict[str, Any], refresher: Any, **kw: Any) -> Any:
    return create_app(
        world["model"],
        named["profiles"],
        catalog=world["catalog"],
        groups=named["groups"],
        refresher=refresher,
        **kw,
    )


def called(backend: FakeBackend) -> list[str]:
    return [r.key for call in backend.calls for r in call]


def test_a_changed_hierarchy_gets_new_words_from_the_llm(
    world: dict[str, Any], named: dict[str, Any]
) -> None:
    backend = FakeBackend(namer(world["catalog"]))
    app = app_with(world, named, llm_refresher(backend))
    with serving(app) as c:
        before = c.get("/users/p0/profile").json()
        r = post(
            c,
            [
                {"user_id": "p0", "item_id": i, "rating": 5, "timestamp": 1.7e9 + k * 3600}
                for k, i in enumerate(SOURDOUGH)
            ]
            + [{"user_id": "newbie", "item_id": "g1_0"}, {"user_id": "newbie", "item_id": "g1_1"}],
        )
        assert r.json()["refresh"] == "queued" and r.json()["users"] == {"p0": "queued", "newbie": "queued"}
        assert app.state.interests.queue.wait_idle(60)
        after = c.get("/users/p0/profile")
        newbie = c.get("/users/newbie/profile").json()
        served = recs(c, "p0", k=3)
    assert sorted(called(backend)) == ["newbie", "p0"]  # one LLM call each
    p = after.json()
    assert after.headers["x-profile-stale"] == "false"
    assert [d["key"] for d in before["domains"]] == ["coffee espresso"]
    words = {d["key"]: (d["name"], d["name_source"]) for d in p["domains"]}
    assert words == {
        "coffee espresso": ("Coffee Espresso", "model"),
        "sourdough baking": ("Sourdough Baking", "model"),
    }
    assert p["provenance"]["made_by"] == "update-llm" and p["provenance"]["backend"] == "fake"
    assert p["stats"]["n_events"] == before["stats"]["n_events"] + len(SOURDOUGH)
    assert newbie["provenance"]["made_by"] == "extract" and newbie["domains"][0]["name"] == "Jazz Records"
    assert app.state.interests.queue.refresher.counts == {"llm": 1, "new": 1}
    assert served["source"] == "known"


def test_events_that_only_shift_statistics_call_no_llm(world: dict[str, Any], named: dict[str, Any]) -> None:
    backend = FakeBackend(namer(world["catalog"]))
    app = app_with(world, named, llm_refresher(backend))
    with serving(app) as c:
        before = c.get("/users/p2/profile").json()
        post(c, [{"user_id": "p2", "item_id": "g2_7", "rating": 3, "timestamp": 1.7e9}])  # its own group
        assert app.state.interests.queue.wait_idle(60)
        after = c.get("/users/p2/profile").json()
    assert backend.calls == []
    assert after["stats"]["n_events"] == before["stats"]["n_events"] + 1
    assert "g2_7" in {i for d in after["domains"] for t in d["topics"] for i in t["item_ids"]}
    assert after["provenance"]["made_by"] == "update-exact"
    assert [(d["name"], d["name_source"]) for d in after["domains"]] == [("Trail Running", "model")]
    assert after["summary"] == before["summary"]  # the model's words were kept
    assert app.state.interests.queue.refresher.counts == {"exact": 1}

    forced = FakeBackend(namer(world["catalog"]))  # --refresh: new words for every changed user
    app = app_with(world, named, llm_refresher(forced, refresh=True))
    with serving(app) as c:
        post(c, [{"user_id": "p2", "item_id": "g2_7", "rating": 3, "timestamp": 1.7e9}])
        assert app.state.interests.queue.wait_idle(60)
        assert c.get("/users/p2/profile").json()["provenance"]["made_by"] == "update-llm"
    assert called(forced) == ["p2"]


def test_a_failing_llm_marks_the_user_stale_and_the_service_keeps_answering(
    world: dict[str, Any],
    named: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = Flaky(namer(world["catalog"]))
    app = app_with(world, named, llm_refresher(backend), stale_retry_s=0.5)
    store = app.state.interests.store
    caplog.set_level(logging.DEBUG)
    with serving(app) as c:
        before = c.get("/users/p0/profile").json()
        events = [
            {"user_id": "p0", "item_id": i, "text": SECRET, "timestamp": 1.7e9 + k}
            for k, i in enumerate(SOURDOUGH)
        ]
        r = post(c, [*events, {"user_id": "p2", "item_id": "g2_7", "rating": 3, "timestamp": 1.7e9}])
        assert r.status_code == 200 and r.json()["refresh"] == "queued"
        assert app.state.interests.queue.wait_idle(60)
        assert store.is_stale("p0") and not store.is_stale("p2")  # the exact refresh did not need the LLM
        stale = c.get("/users/p0/profile")
        assert stale.headers["x-profile-stale"] == "true" and stale.json() == before  # the previous profile
        assert c.get("/users/p2/profile").json()["provenance"]["made_by"] == "update-exact"
        assert recs(c, "p0", k=3)["source"] == "known"
        assert c.get("/healthz").json()["status"] == "ok"
        metrics = c.get("/metrics").text
        assert 'interests_api_refreshes_total{outcome="error"} 1.0' in metrics
        assert 'interests_api_refreshes_total{outcome="ok"} 1.0' in metrics
        backend.down = False  # the server is back: the stale user is retried and gets its words
        deadline = time.monotonic() + 30
        while store.is_stale("p0") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.interests.queue.wait_idle(60)
        fixed = c.get("/users/p0/profile")
    assert fixed.headers["x-profile-stale"] == "false"
    assert fixed.json()["provenance"]["made_by"] == "update-llm"
    assert "sourdough baking" in {d["key"] for d in fixed.json()["domains"]}
    assert "ConnectionError" in caplog.text  # the error's type is logged ...
    assert "MY-PRIVATE-REVIEW" not in caplog.text  # ... never its message, which quotes a review


def test_cli_api_llm_options(world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from interests.cli import cli

    import interests.api

    served: list[Any] = []
    monkeypatch.setattr(interests.api, "serve", lambda app, host, port: served.append(app), raising=False)
    profiles = tmp_path / "profiles.jsonl"
    append_lines(profiles, list(world["profiles"].values()))
    base = ["api", str(world["folder"]), "--profiles", str(profiles)]
    env = {"INTERESTS_API_KEY": KEY}  # the service's key: never sent to the LLM server

    res = CliRunner().invoke(cli, base, env=env)
    assert res.exit_code == 0, res.output
    plain = served[-1].state.interests.queue.refresher
    assert isinstance(plain, ProfileRefresher) and not plain.llm
    assert "profile refreshes: statistics only" in res.output

    server = ["--server", "http://127.0.0.1:9/v1", "--served-model", "m", "--max-model-len", "2048"]
    res = CliRunner().invoke(cli, [*base, *server, "--weight-shift", "0.3"], env=env)
    assert res.exit_code == 0, res.output
    refresher = served[-1].state.interests.queue.refresher
    assert refresher.llm and refresher.weight_shift == 0.3 and not refresher.refresh
    assert refresher._engine is None  # made in the refresh thread, when a user first needs words
    engine = refresher.engine()
    assert (engine.name, engine.model, engine.max_model_len, engine.api_key) == ("server", "m", 2048, "EMPTY")
    assert "new words from http://127.0.0.1:9/v1" in res.output

    res = CliRunner().invoke(
        cli, [*base, *server, "--refresh"], env={**env, "INTERESTS_SERVER_API_KEY": "llm-key"}
    )
    assert res.exit_code == 0, res.output
    refresher = served[-1].state.interests.queue.refresher
    assert refresher.refresh and refresher.engine().api_key == "llm-key"

    res = CliRunner().invoke(cli, [*base, "--refresh"], env=env)
    assert res.exit_code == 2 and "give --model or --server" in res.output


def refreshed_in(
    process: bool, world: dict[str, Any], users: list[str], named: dict[str, Any] | None = None
) -> tuple[Any, ProfileRefresher]:
    """A store with the same posted events, refreshed by the default refresher in a thread or a child
    (``named``: its profiles and a copy of its groups; else the world's, grouped on the first refresh)."""
    import copy

    from interests.api import default_refresher
    from interests.api.state import Posted

    profiles = named["profiles"] if named else world["profiles"]
    groups = copy.deepcopy(named["groups"]) if named else None
    store = UserStore(world["model"].known, profiles)
    store.add(
        [Posted("p0", i, 1.7e9 + k * 3600, 5.0, "view", SECRET) for k, i in enumerate(SOURDOUGH)]
        + [Posted("p2", "g2_7", 1.7e9, 3.0), Posted("newbie", "g1_0", 1.7e9), Posted("newbie", "g1_1", 1.7e9)]
    )
    refresher = default_refresher(store, world["catalog"], groups, process=process)
    refresher(users)
    return store, refresher


def test_the_child_process_refreshes_exactly_as_the_thread(
    world: dict[str, Any], named: dict[str, Any]
) -> None:
    """The default refresher computes in a child process (off the service's GIL, #16): the same
    profiles and change kinds as in the refresh thread, with the app's groups or grouping itself."""
    import os

    users = ["p0", "p2", "newbie", "u1_1"]  # a new domain, a shift, a new user, no change
    for groups in (named, None):
        thread, plain = refreshed_in(False, world, users, groups)
        child, refresher = refreshed_in(True, world, users, groups)
        try:
            assert plain._child is None and refresher._child is not None
            assert refresher._child.pid != os.getpid()
            if groups is not None:
                assert refresher.counts == {"llm": 1, "exact": 1, "new": 1, "unchanged": 1}
            else:
                assert refresher.groups is None and plain.groups is not None  # grouped over there
            assert refresher.counts == plain.counts
            for u in users:
                want, got = thread.profile(u), child.profile(u)
                assert want is not None and got is not None
                same = {"provenance": {"created_at", "valid_from"}}  # the clock
                assert got.model_dump(exclude=same) == want.model_dump(exclude=same), u
            assert child.stale == thread.stale == set()
            assert [child.version(u) for u in users] == [thread.version(u) for u in users]
        finally:
            refresher.close()


def test_a_killed_child_fails_its_batch_and_a_new_one_takes_the_next(world: dict[str, Any]) -> None:
    import os
    import signal

    from interests.api.refresh_child import ChildDied
    from interests.api.state import Posted

    store, refresher = refreshed_in(True, world, ["p2"])
    try:
        child = refresher._child
        assert child is not None
        os.kill(child.pid, signal.SIGKILL)
        child._proc.wait(10)
        store.add([Posted("p1", "g0_0", 1.7e9)])
        with pytest.raises(ChildDied):  # the queue marks the batch stale and retries it later
            refresher(["p1"])
        assert refresher._child is None
        n = store.profile("p1").stats.n_events  # type: ignore[union-attr]
        refresher(["p1"])  # a new child, grouped again from every user
        assert refresher._child is not None and refresher._child.pid != child.pid
        assert store.profile("p1").stats.n_events == n + 1  # type: ignore[union-attr]
    finally:
        refresher.close()
    assert refresher._child is None and child._proc.poll() is not None


def test_a_served_app_closes_its_child_on_shutdown(world: dict[str, Any]) -> None:
    app = create_app(world["model"], world["profiles"], catalog=world["catalog"])
    with serving(app) as c:
        post(c, [{"user_id": "p2", "item_id": "g2_7", "rating": 5}])
        assert app.state.interests.queue.wait_idle(60)
        assert c.get("/users/p2/profile").json()["provenance"]["made_by"] == "update-exact"
        refresher = app.state.interests.queue.refresher
        child = refresher._child
        assert child is not None and child._proc.poll() is None
    assert refresher._child is None and child._proc.wait(10) is not None
