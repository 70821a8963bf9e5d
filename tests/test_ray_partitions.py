"""Logs larger than memory on a Ray cluster (issue 13): partitions, one after another, to one actor pool.

The local 2-CPU cluster, the scripted actor backend and the record helpers are
those of ``test_ray.py``; no real engine runs here.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import EXAMPLES
from interests.cli import cli
from test_ray import SlowFake, _records, _valid, cluster  # noqa: F401  (cluster: the fixture)

from interests.ingest import partition_logs, read_logs, user_partition
from interests.llm.fake import FakeBackend
from interests.profile.extract import extract_profiles, sibling_path
from interests.profile.partitioned import extract_partitioned
from interests.profile.store import read_errors, read_profiles

PARTS = 3


class CountingFake(SlowFake):
    """``SlowFake`` that appends a line to ``starts`` each time an actor builds its backend (starts)."""

    def __init__(self, starts: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.starts = starts

    def __call__(self, index: int) -> FakeBackend:
        fd = os.open(self.starts, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, f"{index} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
        return super().__call__(index)


def _starts(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(scope="module")
def ray_here(cluster):  # noqa: F811
    """``test_ray``'s cluster, with this module's backends sent by value too."""
    import ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return cluster


def _split(tmp_path: Path, name: str = "parts") -> Any:
    return partition_logs(
        EXAMPLES / "events.csv", tmp_path / name, parts=PARTS, catalog=EXAMPLES / "catalog.jsonl"
    )


def _profiles(path: Path) -> dict[str, dict[str, Any]]:
    return {p.user_id: p.model_dump(exclude={"provenance"}) for p in read_profiles(path)}


def _once(out: Path, users: Any) -> None:
    ids = _records(out)
    assert sorted(ids) == sorted(users) and len(ids) == len(set(ids))


def test_partitions_on_two_actors_give_the_profiles_of_one_engine(ray_here, tmp_path):
    """Every user once, the same profiles and item groups as one engine (and as a run in memory);
    the two actors start once for the three partitions."""
    from interests.scale.ray_extract import RayExtractResult, extract_partitioned_ray

    whole = read_logs(EXAMPLES / "events.csv", catalog=EXAMPLES / "catalog.jsonl")
    memory = tmp_path / "memory" / "p.jsonl"
    extract_profiles(whole, output=memory, backend=FakeBackend(_valid), batch_size=4)
    split = _split(tmp_path)
    one = tmp_path / "one" / "p.jsonl"
    extract_partitioned(split, output=one, backend=FakeBackend(_valid), batch_size=4)

    out, starts = tmp_path / "ray" / "p.jsonl", tmp_path / "starts"
    seen: list[int] = []
    res = extract_partitioned_ray(
        split,
        output=out,
        backend=CountingFake(str(starts)),
        actors=2,
        batch_size=4,
        on_batch=lambda r, n: seen.append(r.attempted),
    )
    _once(out, whole.histories)
    assert isinstance(res, RayExtractResult) and res.actors == 2 and res.actor_failures == 0
    assert res.profiles == len(whole.histories) and res.errors == 0 and res.backend == "fake"
    assert sum(res.partition_sizes) == len(whole.histories) and len(res.actor_start_seconds) == 2
    assert seen == sorted(seen) and seen[-1] == len(whole.histories)  # running totals across partitions
    assert _starts(starts) == 2  # one engine per actor for the whole job, not per partition
    assert _profiles(out) == _profiles(one) == _profiles(memory)
    groups = [sibling_path(p, "groups", ".json").read_text() for p in (out, one, memory)]
    assert groups[0] == groups[1] and json.loads(groups[0]) == json.loads(groups[2])


def test_a_rerun_resumes_with_or_without_ray_and_a_dead_actor_loses_only_its_batch(ray_here, tmp_path):
    """A run without Ray cut short, resumed on the actors (one of which a batch kills three times),
    then again: every user once, and the finished job starts no actor."""
    from interests.scale.ray_extract import BATCH_DEATHS, RayExtractors, extract_partitioned_ray

    split = _split(tmp_path)
    users = [u for part in split for u in part.histories]
    out, starts = tmp_path / "p.jsonl", tmp_path / "starts"
    extract_partitioned(split, output=out, backend=FakeBackend(_valid), limit=10)
    with out.open("a") as f:  # a writer killed mid-line
        f.write('{"schema_version":"1.0","user_id":"u0')
    poison = users[-1]  # in the last partition: the actors have served the others by then
    with RayExtractors(backend=CountingFake(str(starts), poison=poison), actors=2, users=len(users)) as pool:
        res = extract_partitioned(split, output=out, batch_size=1, extract=pool.extract)
        assert len(pool.pool) == 2
    _once(out, users)
    assert res.users_skipped == 10 and res.attempted == len(users) - 10
    [err] = read_errors(sibling_path(out, "errors"))
    assert err.user_id == poison and "died" in err.reason
    assert res.actor_failures == BATCH_DEATHS and res.profiles == len(users) - 11
    assert _starts(starts) == 2 + BATCH_DEATHS  # the first two, and the restarts of a killed actor

    again = extract_partitioned_ray(split, output=out, backend=CountingFake(str(starts)), actors=2)
    assert again.users_skipped == len(users) and again.attempted == 0 and again.actors == 0
    assert _starts(starts) == 2 + BATCH_DEATHS and len(_records(out)) == len(users)
    plain = extract_partitioned(split, output=out, backend=FakeBackend(_valid))
    assert plain.users_skipped == len(users) and plain.attempted == 0


def test_cli_partitions_on_ray(ray_here, tmp_path, monkeypatch):
    """`interests extract --partitions 3 --ray ADDRESS --actors 2`: the profiles of a run in memory,
    the spill folder removed, the actors started once; the same command again adds nothing."""
    import interests.cli.extract as extract_cli

    starts = tmp_path / "starts"
    monkeypatch.setattr(extract_cli, "_backend_spec", lambda opts: FakeBackend(_valid))
    args = ["extract", str(EXAMPLES / "events.csv"), "--catalog", str(EXAMPLES / "catalog.jsonl")]
    ray_args = ["--partitions", str(PARTS), "--ray", ray_here, "--actors", "2", "--json"]
    runner = CliRunner()
    one = runner.invoke(cli, [*args, "-o", str(tmp_path / "one.jsonl")])
    assert one.exit_code == 0, one.output
    monkeypatch.setattr(extract_cli, "_backend_spec", lambda opts: CountingFake(str(starts)))
    res = runner.invoke(cli, [*args, "-o", str(tmp_path / "ray.jsonl"), *ray_args])
    assert res.exit_code == 0, res.output
    assert f"spilled to {PARTS} partitions" in res.output and "ray: 2 actors" in res.output
    counts = json.loads(res.stdout[res.stdout.index("{") :])
    assert counts["profiles"] == 24 and counts["actors"] == 2 and counts["actor_failures"] == 0
    _once(tmp_path / "ray.jsonl", read_logs(EXAMPLES / "events.csv").histories)
    assert _profiles(tmp_path / "ray.jsonl") == _profiles(tmp_path / "one.jsonl")
    assert not (tmp_path / "ray.parts").exists() and _starts(starts) == 2
    again = runner.invoke(cli, [*args, "-o", str(tmp_path / "ray.jsonl"), *ray_args])
    assert again.exit_code == 0 and "24 already done" in again.output and _starts(starts) == 2


def _fail_some(bad: set[str]) -> Any:
    def script(request: Any, attempt: int) -> tuple[str, str]:
        return ("not json", "stop") if request.key in bad else _valid(request, attempt)

    return script


def test_retry_errors_keeps_the_records_of_earlier_partitions(tmp_path):
    """--retry-errors drops the old error records once, not before each partition (which lost the
    new records of the partitions before)."""
    split = _split(tmp_path)
    firsts = {next(iter(part.histories)) for part in split}  # one user in each partition
    assert {user_partition(u, PARTS) for u in firsts} == set(range(PARTS))
    out = tmp_path / "p.jsonl"
    extract_partitioned(split, output=out, backend=FakeBackend(_fail_some(firsts)), max_attempts=1)
    errors = sibling_path(out, "errors")
    assert {e.user_id for e in read_errors(errors)} == firsts
    still = set(sorted(firsts)[:2])  # fail again; the third now works
    res = extract_partitioned(
        split, output=out, backend=FakeBackend(_fail_some(still)), max_attempts=1, retry_errors=True
    )
    assert res.attempted == len(firsts) and res.errors == len(still)
    assert {e.user_id for e in read_errors(errors)} == still and len(read_errors(errors)) == len(still)
    _once(out, [u for part in split for u in part.histories])
