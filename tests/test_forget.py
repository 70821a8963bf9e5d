"""interests forget: a user leaves no trace in any file under the working folder; the others stay as before.

One world (``tests/forget_world.py``) is built once: extract (raw and hashed
ids, an error record, quarantined rows), update (replaced versions), the
taxonomy, a trained model, reports and an API run with posted events. Every
test works on a copy. "No trace" is checked by reading every file under the
working folder as bytes (Parquet also as a table), not a list of known
artifacts: a new kind of file that forget does not reach fails the test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from forget_world import FAILS, KEY, build_world, needles, occurrences, secret
from interests.cli import cli

import interests
from interests.errors import ConfigError
from interests.profile.privacy import KEY_ENV, hash_user_id
from interests.profile.store import iter_jsonl

GONE = ["u001", FAILS, "u004"]  # u001: posted events through the API and has a report of its own


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_world(tmp_path_factory.mktemp("forget-world"), n_users=12, api_users=4)


@pytest.fixture
def world(built: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "w"
    shutil.copytree(built["root"], root)
    return {**built, "root": root, "work": root / "work", "logs": root / "logs", "model": root / "work/model",
            "profiles": root / "work/profiles.jsonl"}  # fmt: skip


def lines_by_user(path: Path) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for line in path.read_bytes().splitlines(keepends=True):
        out.setdefault(str(json.loads(line).get("user_id")), []).append(line)
    return out


def digests(folder: Path) -> dict[str, str]:
    return {
        str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.rglob("*"))
        if f.is_file()
    }


def top20(model_dir: Path, users: list[str]) -> dict[str, list[str]]:
    from interests.recsys import TwoTower

    model = TwoTower.load(model_dir)
    return {u: [r.item_id for r in model.recommend_items(u, k=20)] for u in users}


def test_forget_leaves_no_trace_and_keeps_the_others(world: dict[str, Any]) -> None:
    work, users = world["work"], world["users"]
    kept = [u for u in users if u not in GONE]
    assert set(occurrences(work, needles(GONE))) >= {
        "profiles.jsonl",
        "profiles.history.jsonl",
        "profiles.errors.jsonl",
        "profiles.quarantine.jsonl",
        "profiles.events.jsonl",
        "hashed/profiles.jsonl",
        "taxonomy/user_vectors.parquet",
        "model/config.json",
        "report.html",
        "u001.md",
    }  # fmt: skip  (the world holds them everywhere: the check below is not vacuous)
    jsonl = ["profiles.jsonl", "profiles.history.jsonl", "profiles.errors.jsonl", "hashed/profiles.jsonl"]
    before = {f: lines_by_user(work / f) for f in jsonl}
    recs_before = top20(world["model"], kept)

    res = CliRunner().invoke(
        cli, ["forget", *GONE, "--from", str(work), "--hash-user-ids", "--json"], env={KEY_ENV: KEY.decode()}
    )
    assert res.exit_code == 0, res.output
    receipt = json.loads(res.stdout)
    assert receipt["changed"] and receipt["left"] == {} and receipt["rows"] > 0

    assert occurrences(work, needles(GONE)) == {}
    gone_ids = {*GONE, *(hash_user_id(g, KEY) for g in GONE)}
    for f in jsonl:  # every other user's lines byte for byte, in the same order
        after = lines_by_user(work / f)
        assert list(after) == [u for u in before[f] if u not in gone_ids]
        assert all(after[u] == before[f][u] for u in after)
    assert occurrences(work, kept[:1])  # the others are still there
    from interests.recsys import TwoTower

    model = TwoTower.load(world["model"])
    assert not set(GONE) & set(model.known.user_ids) and len(model.known.user_ids) == len(users) - 3
    assert model.forgotten and model.forgotten["users"] == 3 and model.forgotten["retrain"]
    assert len(model.state.feats.has_profile) == len(model.known.user_ids)
    assert top20(world["model"], kept) == recs_before  # rows dropped, weights kept: the same lists
    out = CliRunner().invoke(cli, ["recommend", str(world["model"]), "--user", kept[0], "--json"])
    assert out.exit_code == 0 and "forgotten from this model" in out.stderr

    # idempotent: nothing to do, no file rewritten
    snapshot = digests(work)
    again = CliRunner().invoke(
        cli, ["forget", *GONE, "--from", str(work), "--hash-user-ids"], env={KEY_ENV: KEY.decode()}
    )
    assert again.exit_code == 0 and "nothing to forget" in again.stderr
    assert digests(work) == snapshot


def test_update_extract_and_api_restart_do_not_bring_them_back(world: dict[str, Any]) -> None:
    from interests.ingest import read_logs
    from interests.llm.fake import FakeBackend
    from interests.profile.extract import extract_profiles
    from interests.profile.update import update_profiles

    work, logs = world["work"], world["logs"]
    interests.forget(GONE, [work], hash_key=KEY)
    # the owner purges the source logs (forget reports them when given: they are not its to rewrite)
    sources = [logs / "events.csv", logs / "more.csv"]
    assert set(interests.forget(GONE, sources).left) == {str(f) for f in sources}
    for name in ("events.csv", "more.csv"):
        f = logs / name
        rows = f.read_text().splitlines(keepends=True)
        f.write_text("".join(r for r in rows if r.split(",")[0] not in GONE))
    assert interests.forget(GONE, sources).left == {}
    read = read_logs([logs / "events.csv", logs / "more.csv"], catalog=str(logs / "catalog.jsonl"))
    update_profiles(read, profiles=world["profiles"], llm=False)
    extract_profiles(read, output=world["profiles"], backend=FakeBackend())  # a resumed extract
    extract_profiles(read, output=work / "hashed/profiles.jsonl", backend=FakeBackend(), hash_key=KEY)
    from interests.api import create_app
    from interests.profile.store import read_profiles
    from interests.recsys import TwoTower

    events_log = work / "profiles.events.jsonl"
    app = create_app(TwoTower.load(world["model"]), read_profiles(world["profiles"]), events_log=events_log)
    assert not set(GONE) & set(app.state.interests.store.user_ids())
    app.state.interests.queue.close()
    assert occurrences(work, needles(GONE)) == {}
    # a retrain over the purged logs replaces the marked model and says so; the new one carries no mark
    logs_args = ["--logs", str(logs / "events.csv"), "--logs", str(logs / "more.csv")]
    res = CliRunner().invoke(
        cli,
        ["train", *logs_args, "--catalog", str(logs / "catalog.jsonl"), "--profiles", str(world["profiles"]),
         "-o", str(world["model"]), "--epochs", "1", "--quarantine", str(work / "train.quarantine.jsonl")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "had been forgotten from" in res.stderr and TwoTower.load(world["model"]).forgotten is None
    assert occurrences(work, needles(GONE)) == {}


def test_a_crash_between_files_leaves_old_or_new_files_and_a_rerun_finishes(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from interests.recsys import TwoTower

    real = os.replace
    # renames in order: 1 the model's journal (not written: the old model stays), 2 its weights, 3 its
    # config (the journal is written: the model is refused until a re-run finishes it), 4.. JSON Lines
    for crash_at in (1, 2, 3, 5):
        work = world["root"] / f"crash{crash_at}"
        shutil.copytree(world["work"], work)

        def replace(src: Any, dst: Any, calls: dict[str, int] = {"n": 0}, at: int = crash_at) -> None:  # noqa: B006
            calls["n"] += 1
            if calls["n"] == at:
                raise KeyboardInterrupt("killed")  # what SIGTERM raises in the command
            real(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(KeyboardInterrupt):
            interests.forget(GONE, [work], hash_key=KEY)
        monkeypatch.setattr(os, "replace", real)
        for f in work.rglob("*.jsonl"):  # no torn file: every line of every file parses
            data = f.read_bytes()
            assert data.endswith(b"\n") or not data
            assert len(list(iter_jsonl(f))) == data.count(b"\n")
        try:
            model = TwoTower.load(work / "model")
            n = len(model.known.user_ids)  # the old model or the new one, never a mix
            assert n == len(model.state.feats.has_profile)
            assert n == len(world["users"]) - (3 if crash_at > 3 else 0)
        except ConfigError as exc:
            assert crash_at in (2, 3) and "interrupted" in str(exc)
        receipt = interests.forget(GONE, [work], hash_key=KEY)
        assert receipt.changed and receipt.left == {} and occurrences(work, needles(GONE)) == {}
        model = TwoTower.load(work / "model")
        assert len(model.known.user_ids) == len(model.state.feats.has_profile) == len(world["users"]) - 3
        assert not interests.forget(GONE, [work], hash_key=KEY).changed


def test_delete_user_in_the_api(world: dict[str, Any]) -> None:
    from interests.api import create_app
    from interests.profile.store import read_profiles
    from interests.recsys import TwoTower

    work, profiles = world["work"], world["profiles"]
    events_log = work / "profiles.events.jsonl"
    key = "k" * 32
    user, other = world["users"][0], world["users"][1]  # both posted events in the world's API run

    def app(api_key: str | None) -> Any:
        return create_app(
            TwoTower.load(world["model"]),
            read_profiles(profiles),
            events_log=events_log,
            api_key=api_key,
            forget_paths=[profiles, world["model"]],
        )

    keyless = app(None)
    with TestClient(keyless) as c:  # a keyless app reached from off loopback: refused
        assert c.delete(f"/users/{user}").status_code == 403
    with TestClient(keyless, client=("127.0.0.1", 5000)) as c:  # loopback without a key: allowed
        r = c.delete(f"/users/{other}")
        assert r.status_code == 200 and r.json()["forgotten"]
    served = app(key)
    with TestClient(served) as c:
        assert c.delete(f"/users/{user}").status_code == 401
        assert c.get(f"/users/{user}/profile", headers={"X-API-Key": key}).status_code == 200
        item = served.state.interests.model.known.item_ids[1]
        c.post("/events", json={"events": [{"user_id": user, "item_id": item, "text": "again zq"}]},
               headers={"X-API-Key": key})  # fmt: skip
        r = c.delete(f"/users/{user}", headers={"X-API-Key": key})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["forgotten"] and body["memory"]["trained_row"] == 1 and body["memory"]["profile"] == 1
        assert {Path(f["path"]).name for f in body["files"]} >= {"profiles.events.jsonl", "profiles.jsonl"}
        assert c.get(f"/users/{user}/profile", headers={"X-API-Key": key}).status_code == 404
        recs = c.get(f"/users/{user}/recommendations", headers={"X-API-Key": key}).json()
        assert recs["source"] == "cold"
        again = c.delete(f"/users/{user}", headers={"X-API-Key": key}).json()
        assert not again["forgotten"] and again["files"] == []
        served.state.interests.queue.wait_idle(10)
        assert served.state.interests.store.profile(user) is None  # a refresh in flight did not revive it
    for name in ("profiles.events.jsonl", "profiles.jsonl", "model/config.json"):  # what it was given
        assert name not in occurrences(work, [user, other, secret(user), secret(other)])


def test_partition_files_are_cleaned_and_unknown_formats_are_reported(
    example_logs_dir: Path, tmp_path: Path
) -> None:
    from interests.ingest.partition import partition_logs

    out = tmp_path / "out"
    partition_logs(example_logs_dir / "events.csv", out / "profiles.parts", parts=3)
    (out / "export.csv").write_text("user,item\nu001,i1\nu0010,i2\n")  # a file of yours: not rewritten
    (out / "notes.md").write_text("# notes\nu001 asked to be forgotten\n")  # not a report of ours
    res = CliRunner().invoke(cli, ["forget", "u001", "--from", str(out)])
    assert res.exit_code == 1 and "2 file(s) still name a user" in res.output
    assert "export.csv" in res.output and "notes.md" in res.output
    assert set(occurrences(out, ["u001"])) == {"export.csv", "notes.md"}  # the partitions hold none
    assert "u0010" in (out / "export.csv").read_text()  # ids are matched whole, not as a prefix
    rows = [json.loads(line) for f in sorted((out / "profiles.parts").glob("*.jsonl")) for line in f.open()]
    assert rows and {r[0] for r in rows} >= {"u002", "u003"} and "u001" not in {r[0] for r in rows}


def test_sigkill_at_any_point_leaves_whole_files_and_a_rerun_finishes(world: dict[str, Any]) -> None:
    """``interests forget`` in a process killed by SIGKILL at points spread over its run."""
    import signal
    import subprocess
    import sys
    import time

    from interests.recsys import TwoTower

    run = [sys.executable, "-c", "from interests.cli import cli; cli()", "forget", *GONE, "--hash-user-ids"]
    env = {**os.environ, KEY_ENV: KEY.decode(), "OMP_NUM_THREADS": "1"}
    probe = world["root"] / "probe"
    shutil.copytree(world["work"], probe)
    t0 = time.monotonic()
    subprocess.run([*run, "--from", str(probe)], env=env, check=True, capture_output=True)
    full = time.monotonic() - t0
    for n, share in enumerate((0.6, 0.85, 0.97)):
        work = world["root"] / f"kill{n}"
        shutil.copytree(world["work"], work)
        proc = subprocess.Popen(
            [*run, "--from", str(work)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(full * share)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for f in work.rglob("*.jsonl"):
            data = f.read_bytes()
            assert (data.endswith(b"\n") or not data) and len(list(iter_jsonl(f))) == data.count(b"\n")
        try:
            model = TwoTower.load(work / "model")
            assert len(model.known.user_ids) == len(model.state.feats.has_profile)
        except ConfigError as exc:
            assert "interrupted" in str(exc)
        done = subprocess.run([*run, "--from", str(work)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert occurrences(work, needles(GONE)) == {}


def test_pseudonyms_without_the_key_fail_rather_than_pass(world: dict[str, Any]) -> None:
    work = world["work"]
    res = CliRunner().invoke(cli, ["forget", *GONE, "--from", str(work)], env={KEY_ENV: ""})
    assert res.exit_code == 1 and "--hash-user-ids" in res.output and "hashed/profiles.jsonl" in res.output
    assert set(occurrences(work, needles(GONE))) == {"hashed/profiles.jsonl", "hashed/profiles.errors.jsonl"}
    res = CliRunner().invoke(
        cli, ["forget", *GONE, "--from", str(work), "--hash-user-ids"], env={KEY_ENV: ""}
    )
    assert res.exit_code == 1 and "INTERESTS_HASH_KEY" in res.output  # no key: refused, nothing guessed
    res = CliRunner().invoke(
        cli, ["forget", *GONE, "--from", str(work), "--hash-user-ids"], env={KEY_ENV: KEY.decode()}
    )
    assert res.exit_code == 0, res.output
    assert occurrences(work, needles(GONE)) == {}
