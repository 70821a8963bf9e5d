"""Ingestion: interaction logs and item catalogues -> validated per-user histories.

    from interests.ingest import read_logs
    logs = read_logs("examples/logs/events.csv", catalog="examples/logs/catalog.jsonl")
    logs.report.summary()

Reads CSV/TSV (delimiter sniffed, with or without header), JSON Lines and
Parquet, plain or compressed, from files, directories or stdin, streaming.
Every row is used, counted as a duplicate, filtered out, or quarantined with
its file, line and reason. See ``docs/logs.md``.
"""

from __future__ import annotations

from .catalog import categories_of, read_catalog
from .logs import Logs, read_logs
from .mapping import CatalogMapping, ColumnMapping
from .partition import PartitionedLogs, partition_logs, user_partition
from .quarantine import REASONS, IngestError, Quarantine
from .readers import MAX_LINE_CHARS, expand_paths
from .report import IngestReport
from .stream import EventStream, event_kind, iter_events
from .timeparse import TimeParser, parse_time

__all__ = [
    "MAX_LINE_CHARS",
    "REASONS",
    "CatalogMapping",
    "ColumnMapping",
    "EventStream",
    "IngestError",
    "IngestReport",
    "Logs",
    "PartitionedLogs",
    "Quarantine",
    "TimeParser",
    "categories_of",
    "event_kind",
    "expand_paths",
    "iter_events",
    "parse_time",
    "partition_logs",
    "read_catalog",
    "read_logs",
    "user_partition",
]
