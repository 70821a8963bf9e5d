"""What ingestion did, in numbers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class IngestReport:
    """Counts of one ingestion run.

    Every row read is used, a duplicate, filtered out (``users=``) or
    quarantined: ``rows_read == rows_used + rows_quarantined + duplicates + rows_filtered``.
    ``events_dropped`` (older events over ``max_events_per_user``) are part of
    ``rows_used``. Blank lines and header lines are not rows.
    """

    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_used: int = 0
    rows_quarantined: int = 0
    duplicates: int = 0
    rows_filtered: int = 0
    users: int = 0
    items: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    skipped_files: dict[str, str] = field(default_factory=dict)
    events_dropped: int = 0
    seconds: float = 0.0

    @property
    def consistent(self) -> bool:
        """Whether the counts add up (they always should)."""
        return self.rows_read == self.rows_used + self.rows_quarantined + self.duplicates + self.rows_filtered

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One paragraph for people, e.g. for the CLI."""
        parts = [
            f"read {self.rows_read:,} rows from {len(self.files)} file{'s' if len(self.files) != 1 else ''}: "
            f"{self.rows_used:,} used, {self.rows_quarantined:,} quarantined, {self.duplicates:,} duplicates"
        ]
        if self.rows_filtered:
            parts[0] += f", {self.rows_filtered:,} of other users"
        parts.append(f"{self.users:,} users, {self.items:,} items")
        if self.events_dropped:
            parts.append(f"{self.events_dropped:,} older events over the per-user cap summarised")
        if self.by_reason:
            reasons = ", ".join(
                f"{r}: {n:,}" for r, n in sorted(self.by_reason.items(), key=lambda kv: -kv[1])
            )
            parts.append(f"quarantined because {reasons}")
        if self.skipped_files:
            parts.append(f"{len(self.skipped_files)} files skipped")
        return "; ".join(parts) + f" ({self.seconds:.1f}s)"


__all__ = ["IngestReport"]
