"""One extraction job, one backend spec, one dispatcher (issue #26)."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from pathlib import Path
from typing import Any

import pytest

import interests
from interests.errors import ConfigError
from interests.ingest import partition_logs, read_logs
from interests.llm.fake import FakeBackend
from interests.llm.server import ServerBackend
from interests.llm.spec import BackendSpec
from interests.pipeline import run_extraction
from interests.profile.extract import extract_profiles
from interests.profile.job import FIELDS, ExtractionJob
from interests.profile.partitioned import extract_partitioned
from interests.profile.store import read_profiles
from interests.profile.update import refresh_profiles
from interests.scale.ray_extract import extract_profiles_ray
from interests.synthetic import generate, write_logs

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "logs"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "batch_size must be"),
        ({"max_attempts": 0}, "max_attempts must be"),
        ({"limit": -1}, "limit must be"),
        ({"structure": "free"}, "structure must be 'data' or 'model'"),
        ({"structure": "model", "taxonomy": object()}, "taxonomy groups items for structure 'data'"),
        ({"users": "u001"}, "users is a list of user ids"),
        ({"tz": "Mars/Base"}, "unknown time zone"),
        ({"half_life_days": 0}, "half_life_days must be above 0"),
        ({"rating_scale": (5, 1)}, "rating_scale must be"),
        ({"hash_key": b""}, "hash_key must be non-empty bytes"),
    ],
)
def test_a_bad_job_fails_when_made(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ExtractionJob(**options)


def test_a_job_is_frozen_picklable_and_normalised(tmp_path: Path) -> None:
    job = ExtractionJob(output=str(tmp_path / "p.jsonl"), users=["a", "b"], rating_scale=(1, 5))
    assert job.output == tmp_path / "p.jsonl" and job.users == ("a", "b") and job.rating_scale == (1.0, 5.0)
    assert job.errors_path == tmp_path / "p.errors.jsonl"
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.batch_size = 4  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(job)) == job
    assert job.replace(batch_size=4).batch_size == 4 and job.batch_size == 32
    with pytest.raises(ConfigError):
        job.replace(batch_size=0)  # validated again
    with pytest.raises(TypeError, match=r"unexpected extraction option.*bogus"):
        ExtractionJob.of(job, bogus=1)
    assert "hash_key" not in repr(ExtractionJob(hash_key=b"secret")) and "secret" not in repr(
        ExtractionJob(hash_key=b"secret")
    )


def test_the_job_holds_every_option_the_paths_took() -> None:
    """What used to be parameters of extract_profiles, extract_profiles_ray and refresh_profiles."""
    before = {
        "output", "errors", "batch_size", "limit", "users", "max_attempts", "max_new_tokens",
        "max_items", "prompt_dir", "tz", "as_of", "redact", "retry_errors", "hash_key", "structure",
        "taxonomy", "skeleton_rules", "half_life_days", "groups", "rating_scale",
    }  # fmt: skip
    assert before <= FIELDS
    for fn in (extract_profiles, refresh_profiles, extract_partitioned, extract_profiles_ray):
        params = list(inspect.signature(fn).parameters)
        assert "job" in params and "backend" in params and not set(params) & (FIELDS - {"job"})


def test_backend_spec_builds_each_kind_and_travels() -> None:
    engine = BackendSpec.of(model="m", server=None, concurrency=3, tensor_parallel_size=2, dtype="float32")
    assert (engine.kind, engine.model, engine.tensor_parallel_size, engine.gpus) == ("engine", "m", 2, 2)
    servers = BackendSpec.of(server="http://a:8000/v1, http://b:8000/v1", served_model="x", api_key="sk-zzz")
    assert servers.kind == "server" and servers.servers == ("http://a:8000/v1", "http://b:8000/v1")
    assert servers.gpus == 0 and "sk-zzz" not in repr(servers)
    assert pickle.loads(pickle.dumps(servers)) == servers
    second = servers.build(1)
    assert isinstance(second, ServerBackend) and second.base_url.startswith("http://b:8000")
    assert servers(2).base_url.startswith("http://a:8000")  # actor i takes server i % n
    assert isinstance(BackendSpec(kind="fake").build(), FakeBackend)
    with pytest.raises(ConfigError, match="needs a server URL"):
        BackendSpec(kind="server")
    with pytest.raises(ConfigError, match="backend kind"):
        BackendSpec(kind="gpu")  # type: ignore[arg-type]


def _profiles(path: Path) -> dict[str, Any]:
    return {p.user_id: p.model_dump(exclude={"provenance"}) for p in read_profiles(path)}


def test_one_dispatcher_runs_memory_and_partitions_alike(tmp_path: Path) -> None:
    paths = write_logs(generate(n_users=10, seed=5), tmp_path / "logs")
    fake = BackendSpec(kind="fake")
    whole = read_logs(paths["events"], catalog=paths["catalog"])
    one = run_extraction(whole, ExtractionJob(output=tmp_path / "one.jsonl", batch_size=3), fake)
    split = partition_logs(paths["events"], tmp_path / "parts", parts=3, catalog=paths["catalog"])
    seen: list[int] = []
    parts = run_extraction(
        split, ExtractionJob(output=tmp_path / "split.jsonl"), fake, on_batch=lambda r, n: seen.append(n)
    )
    assert one.profiles == parts.profiles == 10 and seen and sum(seen) == 10
    assert _profiles(tmp_path / "split.jsonl") == _profiles(tmp_path / "one.jsonl")
    # the SDK's one call spills files to partitions itself, and removes the spill folder
    out = tmp_path / "sdk" / "p.jsonl"
    profiles = interests.extract(paths["events"], out, fake, catalog=paths["catalog"], partitions=2)
    assert {p.user_id for p in profiles} == set(whole.histories)
    assert _profiles(out) == _profiles(tmp_path / "one.jsonl") and not (tmp_path / "sdk" / "p.parts").exists()


def test_dispatcher_refuses_what_cannot_run(tmp_path: Path) -> None:
    logs = read_logs(EXAMPLES / "events.csv", catalog=EXAMPLES / "catalog.jsonl")
    job = ExtractionJob(output=tmp_path / "p.jsonl")
    with pytest.raises(ConfigError, match="Ray actors build their own backends"):
        run_extraction(logs, job, FakeBackend(), ray="local")
    with pytest.raises(ConfigError, match="not both"):
        interests.extract(logs, job, FakeBackend(), model="m")
    with pytest.raises(ConfigError, match="give their paths"):
        interests.extract(logs, job, FakeBackend(), partitions=2)
    assert not (tmp_path / "p.jsonl").exists()  # nothing ran


def test_a_backend_given_is_not_closed_a_spec_built_is(tmp_path: Path) -> None:
    logs = read_logs(EXAMPLES / "events.csv", catalog=EXAMPLES / "catalog.jsonl")
    closed: list[str] = []

    class Tracked(FakeBackend):
        def close(self) -> None:
            closed.append(self.model)

    given = Tracked(model="given")
    extract_profiles(logs, ExtractionJob(output=tmp_path / "a.jsonl", limit=2), given)
    assert closed == []
    made = ExtractionJob(output=tmp_path / "b.jsonl", limit=2)
    extract_profiles(logs, made, lambda i: Tracked(model="made"))
    assert closed == ["made"]


def test_the_command_calls_the_one_dispatcher() -> None:
    """`interests extract` builds a job and a spec and calls run_extraction, never a path itself."""
    import re

    source = (Path(__file__).resolve().parents[1] / "cli" / "extract.py").read_text()
    assert "run_extraction(" in source and "ExtractionJob(" in source
    assert not re.findall(r"extract_(?:profiles|partitioned)(?:_ray)?\b", source)
