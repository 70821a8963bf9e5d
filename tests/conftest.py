"""Shared fixtures. Slow ones run the real vLLM engine on the CPU (marked ``engine``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "logs"


def data_dir() -> Path:
    """The shared real data sets (``$INTERESTS_DATA_DIR`` or ``<repo>/../shared/data``)."""
    return Path(os.environ.get("INTERESTS_DATA_DIR", ROOT.parent / "shared" / "data"))


def interests_cmd(*args: str) -> list[str]:
    """The installed console script, run by this interpreter's environment."""
    return [str(Path(sys.executable).with_name("interests")), *args]


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
        interests_cmd(
            "extract",
            str(EXAMPLES / "events.csv"),
            "--catalog",
            str(EXAMPLES / "catalog.jsonl"),
            "-o",
            str(out),
        ),
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
    assert engine_run.returncode == 0, engine_run.stderr[-3000:]
    return engine_run.output_path  # type: ignore[attr-defined,no-any-return]
