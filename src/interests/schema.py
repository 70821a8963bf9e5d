"""The public data format: hierarchical interest profiles and error records.

These pydantic models are the single source of truth for the JSON written to
``profiles.jsonl``, the JSON Schema printed by ``interests schema``, the
reports, and (through :mod:`interests.profile.draft`) the schema given to the LLM's
constrained decoder.

Hierarchy:

* L1 ``Domain``: a coarse interest domain ("Science fiction films").
* L2 ``Topic``: a topic inside a domain, with the user's own items as evidence
  and the attributes behind it (director, brand, price band, ...).
* L3: ``Sentiment`` per node and per profile, and ``TimePatterns`` computed
  exactly from the timestamps.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Final = "1.3"
#: versions this code reads: 1.1 added ``key``/``name_source`` on nodes and ``provenance.structure``;
#: 1.2 added ``provenance.events_digest``/``last_event_at``/``made_by`` (what ``interests update`` reads);
#: 1.3 added ``provenance.data_from``/``data_to``/``valid_from``/``valid_to`` (versions, ``profile --at``)
SchemaVersion = Literal["1.0", "1.1", "1.2", "1.3"]
MadeBy = Literal["extract", "update-exact", "update-llm"]
NameSource = Literal["model", "computed"]

TextSentiment = Literal["positive", "neutral", "negative", "mixed"]
Trend = Literal["rising", "steady", "fading"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sentiment(_Strict):
    """Sentiment toward a node (or the whole profile).

    ``rating`` is computed from explicit ratings: the mean rating of the
    node's evidence mapped linearly from the data set's rating scale onto
    -1..1 (``None`` when no evidence item was rated). ``text`` is the model's
    reading of review text where the user wrote some (``None`` otherwise).
    """

    rating: float | None = Field(default=None, ge=-1.0, le=1.0)
    n_ratings: int = Field(default=0, ge=0)
    text: TextSentiment | None = None


class Attribute(_Strict):
    """A name/value pair behind a topic, e.g. ``director = Ridley Scott``."""

    name: str
    value: str


class Topic(_Strict):
    """L2: a topic inside a domain, grounded in the user's own items."""

    name: str
    weight: float = Field(
        ge=0.0, le=1.0, description="share of the domain's events (structure 'data') or cited items ('model')"
    )
    sentiment: Sentiment = Field(default_factory=Sentiment)
    item_ids: list[str] = Field(min_length=1, description="evidence: ids of the user's own items")
    attributes: list[Attribute] = Field(default_factory=list)
    key: str | None = Field(default=None, description="the data group behind the node (structure 'data')")
    name_source: NameSource | None = Field(
        default=None, description="'model' when the LLM's name passed grounding, 'computed' for the fallback"
    )


class Domain(_Strict):
    """L1: a coarse interest domain."""

    name: str
    weight: float = Field(
        ge=0.0,
        le=1.0,
        description="share of the profile's events (structure 'data') or cited items ('model')",
    )
    sentiment: Sentiment = Field(default_factory=Sentiment)
    topics: list[Topic] = Field(min_length=1)
    key: str | None = Field(default=None, description="the data group behind the node (structure 'data')")
    name_source: NameSource | None = Field(
        default=None, description="'model' when the LLM's name passed grounding, 'computed' for the fallback"
    )


class DomainTrend(_Strict):
    """L3 time pattern of one domain."""

    domain: str
    trend: Trend
    slope: float = Field(description="change in the domain's share of activity per year")
    n_events: int = Field(ge=0)
    first_seen: str | None = None
    last_seen: str | None = None
    cadence_days: float | None = Field(default=None, description="median days between the domain's events")


class TimePatterns(_Strict):
    """L3: rhythm, recency and trends, computed exactly from timestamps."""

    timezone: str = "UTC"
    hour_of_day: list[float] = Field(min_length=24, max_length=24, description="share of events")
    weekday: list[float] = Field(min_length=7, max_length=7, description="Monday first")
    first_seen: str | None = None
    last_seen: str | None = None
    as_of: str | None = Field(default=None, description="reference time for recency")
    recency_days: float | None = None
    active_days: int = 0
    n_sessions: int = 0
    median_session_events: float | None = None
    median_gap_days: float | None = Field(default=None, description="between sessions")
    by_domain: list[DomainTrend] = Field(default_factory=list)


class CategoryShare(_Strict):
    name: str
    count: int
    share: float


class Stats(_Strict):
    """Exact statistics of the events the profile was built from."""

    n_events: int
    n_items: int
    n_rated: int = 0
    mean_rating: float | None = None
    rating_scale: tuple[float, float] | None = None
    n_with_text: int = 0
    event_types: dict[str, int] = Field(default_factory=dict)
    top_categories: list[CategoryShare] = Field(default_factory=list)
    evidence_coverage: float = Field(
        default=0.0, ge=0.0, le=1.0, description="share of the user's items cited as evidence"
    )


class Provenance(_Strict):
    model: str
    backend: str
    server: str | None = None
    prompt_template: str
    prompt_hash: str
    created_at: str
    events_used: int
    events_total: int
    truncated: bool
    attempts: int = 1
    structure: Literal["data", "model"] = Field(
        default="model",
        description="'data': groups computed from the data, named by the model; 'model': the model grouped",
    )
    summary_source: Literal["model", "computed"] = Field(
        default="model", description="'computed' when the model's summary failed the soundness checks"
    )
    names_replaced: int = Field(
        default=0, ge=0, description="domain/topic names grounding replaced by the evidence's categories"
    )
    package_version: str = ""
    events_digest: str | None = Field(
        default=None,
        description="SHA-256 of the events the profile was built from; `interests update` compares it",
    )
    last_event_at: str | None = Field(default=None, description="time of the newest of those events (UTC)")
    half_life_days: float | None = Field(
        default=None, description="older events were decayed in the node weights with this half-life"
    )
    made_by: MadeBy = Field(
        default="extract",
        description="'extract'; 'update-exact': statistics recomputed, the previous words kept; "
        "'update-llm': the hierarchy changed enough for new words",
    )
    data_from: str | None = Field(
        default=None, description="event time of the oldest event the profile covers"
    )
    data_to: str | None = Field(default=None, description="event time of the newest event the profile covers")
    valid_from: str | None = Field(default=None, description="wall time this version was written")
    valid_to: str | None = Field(
        default=None, description="wall time a newer version replaced it (null: the current version)"
    )


class InterestProfile(_Strict):
    """A user's hierarchical interest profile (one line of ``profiles.jsonl``)."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    user_id: str
    summary: str
    domains: list[Domain]
    sentiment: Sentiment
    time_patterns: TimePatterns
    stats: Stats
    provenance: Provenance

    def item_ids(self) -> set[str]:
        """Every item cited as evidence anywhere in the profile."""
        return {i for d in self.domains for t in d.topics for i in t.item_ids}


class ErrorRecord(_Strict):
    """A user for whom no profile could be made (one line of the errors file)."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    user_id: str
    stage: Literal["ingest", "prompt", "generate", "validate", "ground"]
    reason: str
    attempts: int = 0
    raw_output: str | None = None
    created_at: str


class QuarantinedRow(_Strict):
    """An input row that could not be used (one line of the quarantine file)."""

    file: str
    line: int
    reason: str
    raw: str


def profile_json_schema() -> dict[str, object]:
    """The JSON Schema of :class:`InterestProfile` (what ``interests schema`` prints)."""
    return InterestProfile.model_json_schema()


__all__ = [
    "SCHEMA_VERSION",
    "Attribute",
    "CategoryShare",
    "Domain",
    "DomainTrend",
    "ErrorRecord",
    "InterestProfile",
    "Provenance",
    "QuarantinedRow",
    "Sentiment",
    "Stats",
    "TimePatterns",
    "Topic",
    "profile_json_schema",
]
