"""Request and response bodies (pydantic): the one source of validation and of the OpenAPI page.

Posted events are validated here, field by field, with error messages that
never repeat the value they reject (a ``text`` field is a review: personal
data that must not come back in an error or go to a log). Item ids are
checked against the model's vocabulary later, by the endpoint, so that an
unknown item is reported as *rejected* with a reason instead of failing the
whole batch.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, field_validator

MAX_ID_CHARS = 256
MAX_TEXT_CHARS = 10_000


def _id(value: Any) -> Any:
    """User and item ids: strings or integers (MovieLens ids are numbers), stripped; nothing else."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("must be a string or an integer id")
    return str(value).strip()


Id = Annotated[str, BeforeValidator(_id), Field(min_length=1, max_length=MAX_ID_CHARS)]


class EventIn(BaseModel):
    """One interaction to fold into a user's history."""

    model_config = ConfigDict(extra="forbid")

    user_id: Id
    item_id: Id
    timestamp: float | str | None = Field(
        default=None,
        description="ISO 8601 or epoch seconds (or milliseconds); default (or null): when it was received.",
    )
    rating: float | None = Field(default=None, allow_inf_nan=False)
    event: str | None = Field(default=None, max_length=64, description="Event kind, e.g. view, purchase.")
    text: str | None = Field(
        default=None, max_length=MAX_TEXT_CHARS, description="Review or tag text (never echoed back)."
    )

    @field_validator("timestamp", mode="before")
    @classmethod
    def _time(cls, value: Any) -> float | None:
        from interests.ingest.timeparse import TimeParser
        from interests.ingest.values import FieldError

        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError("must be an ISO 8601 string or epoch seconds")
        try:
            ts = TimeParser("UTC")(value)
        except FieldError as exc:
            raise ValueError(f"{exc.reason}: give ISO 8601 (2024-05-01T12:00:00Z) or epoch seconds") from None
        return ts if ts is not None and math.isfinite(ts) else None


def event_batch_model(max_events: int) -> type[BaseModel]:
    """The ``POST /events`` body, with this app's cap on events per request (in its schema too)."""
    return create_model(
        "EventBatch",
        __config__=ConfigDict(extra="forbid"),
        events=(Annotated[list[EventIn], Field(min_length=1, max_length=max_events)], ...),
    )


class Rejected(BaseModel):
    index: int = Field(description="Position of the event in the posted list.")
    user_id: str
    item_id: str
    reason: str


class EventsOut(BaseModel):
    accepted: int
    rejected: list[Rejected]
    users: dict[str, Literal["queued", "deferred"]] = Field(
        description="Profile refresh of each user with accepted events."
    )
    refresh: Literal["queued", "deferred", "none"] = Field(
        description="deferred when the refresh queue was full for any user (their profile is marked stale)."
    )


class Reason(BaseModel):
    item_id: str
    title: str
    contribution: float


class NodeReason(BaseModel):
    node: str
    contribution: float


class ItemOut(BaseModel):
    item_id: str
    score: float
    title: str | None = None
    node: str | None = Field(
        default=None,
        description="The hierarchy node the item came from: Domain > Topic of the taxonomy, the "
        "catalogue category, or the steered / explored node.",
    )
    source: Literal["history", "profile", "steering", "exploration"] = Field(
        default="history",
        description="history or profile (which of the user's inputs raised its score more), "
        "steering (drawn from a requested node) or exploration (an explore slot).",
    )
    reasons: list[str] | None = Field(default=None, description="With explain=true: text lines.")
    because: list[Reason] | None = Field(default=None, description="With explain=true: history items.")
    nodes: list[NodeReason] | None = Field(default=None, description="With explain=true: interest nodes.")


class RecommendationsOut(BaseModel):
    user_id: str
    items: list[ItemOut]
    source: Literal["known", "events", "cold"] = Field(
        description="known: a trained user (plus posted events); events: an unknown user's posted "
        "events; cold: nothing known (cold start, from ?text= when given)."
    )


class HealthOut(BaseModel):
    status: Literal["ok"]
    users: int
    items: int
    queue: int
    stale: int


class ErrorOut(BaseModel):
    detail: str


__all__ = [
    "MAX_ID_CHARS",
    "MAX_TEXT_CHARS",
    "ErrorOut",
    "EventIn",
    "EventsOut",
    "HealthOut",
    "ItemOut",
    "NodeReason",
    "Reason",
    "RecommendationsOut",
    "Rejected",
    "event_batch_model",
]
