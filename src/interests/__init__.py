"""interests: hierarchical interest profiles from interaction logs, written by an open LLM.

The SDK mirrors the CLI: one call per command, and one public function per pipeline stage::

    import interests
    logs = interests.read_logs("examples/logs/events.csv", catalog="examples/logs/catalog.jsonl")
    profiles = interests.extract(logs, output="out/profiles.jsonl")
    model = interests.train(logs, profiles=profiles)
    interests.recommend(model, ["u001"], k=5, explain=True)
    job = interests.ExtractionJob(output="out/profiles.jsonl", batch_size=16)  # every option, checked once
    result = interests.run_extraction(logs, job, interests.BackendSpec(model="smollm2-135m"))  # the counts

Heavy dependencies (torch, vLLM) are imported only when a stage needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "InterestProfile": "interests.schema",
    "Domain": "interests.schema",
    "Topic": "interests.schema",
    "Sentiment": "interests.schema",
    "TimePatterns": "interests.schema",
    "ErrorRecord": "interests.schema",
    "Event": "interests.events",
    "Item": "interests.events",
    "Catalog": "interests.events",
    "UserHistory": "interests.events",
    "ColumnMapping": "interests.ingest",
    "Logs": "interests.ingest",
    "read_logs": "interests.ingest",
    "read_catalog": "interests.ingest",
    "compute_signals": "interests.profile.signals",
    "group_items": "interests.profile.item_groups",
    "build_skeleton": "interests.profile.skeleton",
    "SkeletonRules": "interests.profile.skeleton",
    "render_prompt": "interests.profile.prompting",
    "extract_profiles": "interests.profile.extract",
    "ExtractResult": "interests.profile.extract",
    "ExtractionJob": "interests.profile.job",
    "update_profiles": "interests.profile.update",
    "UpdateResult": "interests.profile.update",
    "read_profiles": "interests.profile.store",
    "profile_at": "interests.profile.versions",
    "profile_versions": "interests.profile.versions",
    "read_errors": "interests.profile.store",
    "extract": "interests.pipeline",
    "run_extraction": "interests.pipeline",
    "train": "interests.pipeline",
    "recommend": "interests.pipeline",
    "TwoTower": "interests.recsys.recommender",
    "fit_two_tower": "interests.recsys.select",
    "evaluate": "interests.recsys.evaluate",
    "VLLMBackend": "interests.llm",
    "ServerBackend": "interests.llm",
    "BackendSpec": "interests.llm.spec",
    "prepare_model": "interests.llm.weights",
    "build_taxonomy": "interests.taxonomy",
    "apply_taxonomy": "interests.taxonomy",
    "Taxonomy": "interests.taxonomy",
    "context": "interests.profile.context",
    "render_context": "interests.profile.context",
    "render_report": "interests.report",
    "write_report": "interests.report",
    "forget": "interests.forgetting",
    "ForgetReceipt": "interests.forgetting",
    "InterestsError": "interests.errors",
    "ConfigError": "interests.errors",
    "BackendError": "interests.errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover  (re-exported lazily through __getattr__)
    from .errors import InterestsError  # noqa: F401
    from .events import Catalog, Event, Item, UserHistory  # noqa: F401
    from .schema import (  # noqa: F401
        Domain,
        ErrorRecord,
        InterestProfile,
        Sentiment,
        TimePatterns,
        Topic,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'interests' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
