"""Shared fixtures. Slow ones run the real vLLM engine on the CPU (marked ``engine``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from interests.schema import Provenance

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "logs"


def data_dir() -> Path:
    """The shared real data sets (``$INTERESTS_DATA_DIR`` or ``<repo>/../shared/data``)."""
    return Path(os.environ.get("INTERESTS_DATA_DIR", ROOT.parent / "shared" / "data"))


def interests_cmd(*args: str) -> list[str]:
    """The installed console script, run by this interpreter's environment."""
    return [str(Path(sys.executable).with_name("interests")), *args]


def expected_exit(errors_path: Path) -> int:
    """What `interests extract` / `update` exit with: 1 when any user ended in an error record, else 0."""
    return 1 if errors_path.exists() and errors_path.read_text(encoding="utf-8").strip() else 0


def extract_examples_cmd(out: Path, *extra: str) -> list[str]:
    """`interests extract` over the example logs and catalogue into ``out``."""
    events, catalog = str(EXAMPLES / "events.csv"), str(EXAMPLES / "catalog.jsonl")
    return interests_cmd("extract", events, "--catalog", catalog, "-o", str(out), *extra)


def make_provenance(**over: Any) -> Provenance:
    """A Provenance for profiles built by hand in tests."""
    fields: dict[str, Any] = {
        "model": "m",
        "backend": "fake",
        "prompt_template": "default",
        "prompt_hash": "h",
        "created_at": "2026-01-01T00:00:00Z",
        "events_used": 3,
        "events_total": 3,
        "truncated": False,
    }
    return Provenance(**(fields | over))


@pytest.fixture(scope="session")
def example_logs_dir() -> Path:
    """examples/logs: events.csv, catalog.jsonl and the planted truth.json."""
    assert (EXAMPLES / "events.csv").is_file(), "run: python examples/make_logs.py"
    return EXAMPLES


@pytest.fixture(scope="session")
def engine_run(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """`interests extract` on the example logs with the real vLLM engine and embedded model."""
    out = tmp_path_factory.mktemp("engine") / "profiles.jsonl"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2"}
    proc = subprocess.run(
        extract_examples_cmd(out),
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    proc.output_path = out  # type: ignore[attr-defined]
    return proc


@pytest.fixture(scope="session")
def engine_profiles(engine_run: subprocess.CompletedProcess[str]) -> Path:
    """profiles.jsonl written by the real engine for every example user."""
    errors = engine_run.output_path.with_name("profiles.errors.jsonl")  # type: ignore[attr-defined]
    assert engine_run.returncode == expected_exit(errors), engine_run.stderr[-3000:]
    return engine_run.output_path  # type: ignore[attr-defined,no-any-return]
