"""Extraction on a Ray cluster (issue 13): a local cluster with 2 CPUs, started here.

The orchestration (partitions, a killed actor, resume) is tested with the
scripted backend; the real vLLM engine runs in two actors in the ``engine``
test, against the single-process run of the same users.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EXAMPLES, expected_exit, extract_examples_cmd
from interests.cli import cli

from interests.ingest import read_logs
from interests.llm.fake import FakeBackend, schema_answer
from interests.profile.extract import extract_profiles, sibling_path
from interests.profile.store import iter_jsonl, read_errors, read_profiles
from interests.scale.ray_connect import check_address
from interests.scale.ray_extract import partition_of


def test_partitions_are_stable_across_processes():
    """BLAKE2b, not the salted hash(): another interpreter (hash seed) puts users in the same place."""
    users = [f"u{i:03d}" for i in range(200)]
    here = [partition_of(u, 7) for u in users]
    code = (
        f"from interests.scale.ray_extract import partition_of;print([partition_of(u, 7) for u in {users!r}])"
    )
    there = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert json.loads(there.stdout) == here
    assert set(here) == set(range(7))  # every partition used
    assert partition_of("u001", 2) == partition_of("u001", 2) and 0 <= partition_of("", 3) < 3


def test_importing_interests_does_not_import_ray():
    code = (
        "import sys, interests, interests.scale, interests.scale.ray_extract; from interests.cli import cli;"
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ray_addresses_are_checked():
    for ok in ("local", "auto", "ray://head:10001", "10.0.0.1:6379", "head-node.local:6379"):
        assert check_address(ok) == ok
    assert check_address("") == "local" and check_address(None) is None
    runner = CliRunner()
    events = str(EXAMPLES / "events.csv")
    # a log file swallowed by --ray is caught while parsing, with the way out
    res = runner.invoke(cli, ["extract", "--ray", events])
    assert res.exit_code == 2 and "not a Ray address" in res.output and "--ray=ADDRESS" in res.output
    res = runner.invoke(cli, ["extract", events, "--actors", "2"])
    assert res.exit_code == 2 and "go with --ray" in res.output


def test_without_ray_the_option_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    res = CliRunner().invoke(
        cli, ["extract", str(EXAMPLES / "events.csv"), "-o", str(tmp_path / "p.jsonl"), "--ray"]
    )
    assert res.exit_code == 1 and "pip install 'interests[ray]'" in res.output
    assert not (tmp_path / "p.jsonl").exists()  # failed before reading or writing anything


# -- a local cluster ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster with 2 CPUs, shut down (with every worker) at the end of the module."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _system_config={"worker_niceness": 0})
    # the scripted backends below live in this test module, which Ray's workers cannot import
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def logs(example_logs_dir):
    return read_logs(example_logs_dir / "events.csv", catalog=example_logs_dir / "catalog.jsonl")


def _valid(request, attempt):
    return json.dumps(schema_answer(request.schema(), summary="Likes the things in the log.")), "stop"


class SlowFake:
    """Each actor's backend: the scripted answer after ``seconds`` a user.

    ``poison``: that user's batch kills the actor's process. ``hang``: actor 0's
    first incarnation creates this file when it starts its first batch, then
    hangs inside it (so a test knows the actor is mid-batch when it kills it).
    """

    def __init__(self, seconds: float = 0.0, poison: str | None = None, hang: str | None = None) -> None:
        self.seconds, self.poison, self.hang = seconds, poison, hang

    def __call__(self, index: int) -> FakeBackend:
        def script(request, attempt):
            if request.key == self.poison:
                os.kill(os.getpid(), signal.SIGKILL)  # the actor's process dies inside the batch
            if self.hang and index == 0:
                try:
                    os.close(os.open(self.hang, os.O_CREAT | os.O_EXCL))
                    time.sleep(600)  # killed before this ends
                except FileExistsError:
                    pass  # the restarted actor: works normally
            time.sleep(self.seconds)
            return _valid(request, attempt)

        return FakeBackend(script)


def _records(out: Path) -> list[str]:
    return [d["user_id"] for d in iter_jsonl(out)] + [
        d["user_id"] for d in iter_jsonl(sibling_path(out, "errors"))
    ]


def _hierarchy(p) -> tuple:
    """What the data decides: nodes, their items, weights, rating sentiment, time patterns and counts."""
    return (
        tuple(
            (
                d.key,
                round(d.weight, 6),
                d.sentiment.rating,
                tuple(
                    (t.key, round(t.weight, 6), tuple(sorted(t.item_ids)), t.sentiment.rating)
                    for t in d.topics
                ),
            )
            for d in p.domains
        ),
        p.time_patterns.model_dump(),
        p.stats.model_dump(),
    )


def test_two_actors_write_every_user_once_as_one_process_does(cluster, logs, tmp_path):
    from interests.scale.ray_extract import extract_profiles_ray

    single = tmp_path / "single.jsonl"
    extract_profiles(logs, output=single, backend=FakeBackend(_valid), batch_size=4)
    out = tmp_path / "ray.jsonl"
    res = extract_profiles_ray(logs, output=out, backend=SlowFake(), actors=2, batch_size=4)
    ids = _records(out)
    assert sorted(ids) == sorted(logs.histories) and len(ids) == len(set(ids))
    assert res.profiles == len(logs.histories) and res.errors == 0 and res.actors == 2
    assert sum(res.partition_sizes) == len(logs.histories) and min(res.partition_sizes) > 0
    assert res.backend == "fake" and res.valid_first_try == res.profiles
    by_user = {p.user_id: p for p in read_profiles(single)}
    for p in read_profiles(out):  # same shared groups, rating scale and reference time as one process
        assert _hierarchy(p) == _hierarchy(by_user[p.user_id]), p.user_id
        assert p.summary == by_user[p.user_id].summary
    # the item groups of the run are saved next to the profiles, as a single-process run saves them
    assert (
        sibling_path(out, "groups", ".json").read_text()
        == sibling_path(single, "groups", ".json").read_text()
    )


def test_a_killed_actor_loses_no_user_and_duplicates_none(cluster, logs, tmp_path):
    import ray

    from interests.scale.ray_extract import extract_profiles_ray

    out, hang = tmp_path / "p.jsonl", tmp_path / "actor0-in-batch"
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = extract_profiles_ray(
                logs,
                output=out,
                backend=SlowFake(0.05, hang=str(hang)),
                actors=2,
                batch_size=2,
                name_prefix="killtest",
            )
        except BaseException as exc:  # reported by the assertion below
            box["error"] = exc

    driver = threading.Thread(target=run)
    driver.start()
    deadline = time.monotonic() + 120
    while (
        not hang.exists() and driver.is_alive() and time.monotonic() < deadline
    ):  # actor 0 is inside a batch
        time.sleep(0.05)
    assert hang.exists(), box.get("error")
    ray.kill(ray.get_actor("killtest-0"), no_restart=False)  # a crash: Ray restarts the actor
    driver.join(300)
    assert not driver.is_alive() and "error" not in box, box.get("error")
    res = box["result"]
    ids = _records(out)
    assert sorted(ids) == sorted(logs.histories) and len(ids) == len(set(ids))
    assert res.actor_failures == 1 and res.profiles == len(logs.histories)


def test_a_batch_that_kills_its_actor_becomes_error_records(cluster, logs, tmp_path):
    from interests.scale.ray_extract import BATCH_DEATHS, extract_profiles_ray

    out = tmp_path / "p.jsonl"
    res = extract_profiles_ray(logs, output=out, backend=SlowFake(poison="u003"), actors=2, batch_size=1)
    ids = _records(out)
    assert sorted(ids) == sorted(logs.histories) and len(ids) == len(set(ids))
    [err] = read_errors(sibling_path(out, "errors"))
    assert err.user_id == "u003" and "died" in err.reason
    assert res.actor_failures == BATCH_DEATHS and res.profiles == len(logs.histories) - 1


def test_a_rerun_resumes_a_single_process_run_without_duplicates(cluster, logs, tmp_path):
    from interests.scale.ray_extract import extract_profiles_ray

    out = tmp_path / "p.jsonl"
    extract_profiles(logs, output=out, backend=FakeBackend(_valid), limit=10)
    with out.open("a") as f:  # a writer killed mid-line
        f.write('{"schema_version":"1.0","user_id":"u0')
    res = extract_profiles_ray(logs, output=out, backend=SlowFake(), actors=2, batch_size=3)
    assert res.users_skipped == 10 and res.profiles == len(logs.histories) - 10
    ids = _records(out)
    assert sorted(ids) == sorted(logs.histories) and len(ids) == len(set(ids))
    again = extract_profiles_ray(logs, output=out, backend=SlowFake(), actors=2)
    assert again.users_skipped == len(logs.histories) and again.attempted == 0 and again.actors == 0
    assert len(_records(out)) == len(logs.histories)


# -- the real engine in two actors --------------------------------------------------------------

#: one user (one batch) an actor: each actor starts its own engine on the CPU (about a minute each, side
#: by side), and the dispatch itself is tested above with scripted backends. `--limit` rather than
#: `--user`: all users are read, so the data set's latest time (the profiles' `as_of`) and rating scale
#: are those of the single-process run over every user
RAY_USERS = 2


@pytest.mark.engine
def test_two_engine_actors_give_the_single_process_hierarchy(cluster, logs, engine_profiles, tmp_path):
    """`interests extract --ray ADDRESS --actors 2` joins the test's cluster; greedy decoding, same users."""
    out = tmp_path / "profiles.jsonl"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    cmd = extract_examples_cmd(out, "--limit", str(RAY_USERS), "--batch-size", "1")
    cmd += ["--ray", cluster, "--actors", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1500)
    errors = sibling_path(out, "errors")
    assert proc.returncode == expected_exit(errors), proc.stderr[-3000:]
    assert "ray: 2 actors" in proc.stderr
    ids = _records(out)
    first = list(logs.histories)[:RAY_USERS]
    assert sorted(ids) == sorted(first) and len(ids) == len(set(ids))
    single = {p.user_id: p for p in read_profiles(engine_profiles)}
    profiles = read_profiles(out)
    assert {p.user_id for p in profiles} == set(first) & set(single), proc.stderr[-2000:]
    same_words = 0
    for p in profiles:
        ref = single[p.user_id]
        assert p.provenance.backend == "vllm" and p.provenance.model == ref.provenance.model
        assert _hierarchy(p) == _hierarchy(ref), p.user_id
        same_words += p.summary == ref.summary and [d.name for d in p.domains] == [
            d.name for d in ref.domains
        ]
    print(f"profiles with the single-process run's words: {same_words}/{len(profiles)}")


DRIVER = """
import json, sys, time
from interests.ingest import read_logs
from interests.llm.fake import FakeBackend, schema_answer
from interests.scale.ray_extract import extract_profiles_ray

class Slow:
    def __call__(self, index):
        def script(request, attempt):
            time.sleep(0.3)
            return json.dumps(schema_answer(request.schema())), "stop"
        return FakeBackend(script)

if __name__ == "__main__":
    from interests.cli.common import friendly_errors, sigterm_as_interrupt

    logs = read_logs(sys.argv[1] + "/events.csv", catalog=sys.argv[1] + "/catalog.jsonl")
    with friendly_errors(), sigterm_as_interrupt():  # as every `interests` command runs
        extract_profiles_ray(
            logs, output=sys.argv[2], backend=Slow(), actors=2, batch_size=2, address="local"
        )
"""


#: Ray's per-node agents of a local cluster notice a dead raylet only after a minute or two (seen: about
#: 100 s); they hold no actor or engine
SLOW_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def _session_pids(sid: int, *, agents: bool = True) -> list[int]:
    """Processes of the session ``sid`` (the driver and all it started), Ray's agents included or not."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,sid=,args="], capture_output=True, text=True, check=True)
    pids = []
    for line in out.stdout.splitlines():
        pid, s, args = line.split(None, 2)
        if int(s) == sid and (agents or not args.startswith(SLOW_AGENTS)):
            pids.append(int(pid))
    return pids


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_killed_driver_takes_its_cluster_along_and_the_rerun_finishes(cluster, logs, tmp_path, sig):
    """SIGKILL or SIGTERM to the driver mid-run: nothing of its cluster is left; a re-run completes the file.

    SIGTERM is a Ctrl-C for the command (exit status 130, actors stopped, cluster shut down by the driver).
    """
    from interests.scale.ray_extract import extract_profiles_ray

    out = tmp_path / "p.jsonl"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(script), str(EXAMPLES), str(out)], start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while len(_records(out)) < 4 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None and 4 <= len(_records(out)) < len(logs.histories), "not mid-run"
        os.kill(proc.pid, sig)
        status = proc.wait(60)
        assert status == (130 if sig == signal.SIGTERM else -signal.SIGKILL)
        deadline = time.monotonic() + 60
        while _session_pids(proc.pid, agents=False) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _session_pids(proc.pid, agents=False) == [], (
            "actors, engines or the raylet outlived the driver"
        )
    finally:
        for pid in _session_pids(proc.pid):  # only what this test started
            os.kill(pid, signal.SIGKILL)
    before = _records(out)
    res = extract_profiles_ray(logs, output=out, backend=SlowFake(), actors=2, batch_size=4)
    assert res.users_skipped == len(before) and res.attempted == len(logs.histories) - len(before)
    ids = _records(out)
    assert sorted(ids) == sorted(logs.histories) and len(ids) == len(set(ids))
