"""What the LLM writes: a compact draft profile, with a schema made per user.

The draft holds only what a model must decide (names, grouping, evidence,
attributes, the reading of review text). Weights, sentiment from ratings and
time patterns are computed, not asked for (see :mod:`interests.profile.grounding`).

:func:`draft_model` builds a pydantic model per user whose ``item_ids`` are a
``Literal`` of that user's own item ids, so the JSON Schema given to the
constrained decoder (in-process vLLM or a server through instructor) lists
them as an ``enum`` and the decoder cannot cite an item the user never
touched. Length limits keep the output short and stop a tiny model from
repeating itself until ``max_tokens``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

MAX_DOMAINS = 4
MAX_TOPICS = 3
MAX_ITEMS_PER_TOPIC = 4
MAX_ATTRIBUTES = 2
#: items a skeleton slot cites as its best examples
SLOT_ITEMS = 2
NAME_LEN = (3, 40)
SUMMARY_LEN = (20, 200)
# plain words: no brackets, braces or digits (tiny models otherwise list ids and dates)
SUMMARY_PATTERN = r"^[^\[\]{}<>0-9]+$"
NAME_PATTERN = r"^[^\[\]{}<>]+$"

_STRICT = ConfigDict(extra="forbid")
# ``Literal[...]`` built from runtime values (typed ``Any`` so type checkers accept the subscript)
_LITERAL: Any = Literal


class DraftAttribute(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=2, max_length=20)
    value: str = Field(min_length=1, max_length=40)


def draft_model(
    item_ids: Sequence[str], *, with_text: bool = False, domain_names: Sequence[str] | None = None
) -> type[BaseModel]:
    """The draft-profile model for one user, citing only ``item_ids``.

    With ``domain_names`` (the categories of the user's own items), L1 names
    are chosen from them, so a domain is named after something the user did.
    """
    if not item_ids:
        raise ValueError("a user needs at least one item to cite")
    ids: Any = _LITERAL[tuple(dict.fromkeys(item_ids))]
    topic_fields: dict[str, Any] = {
        "name": (str, Field(min_length=NAME_LEN[0], max_length=NAME_LEN[1], pattern=NAME_PATTERN)),
        "item_ids": (list[ids], Field(min_length=1, max_length=MAX_ITEMS_PER_TOPIC)),
        "attributes": (list[DraftAttribute], Field(max_length=MAX_ATTRIBUTES)),
    }
    if with_text:
        topic_fields["text_sentiment"] = (Literal["positive", "neutral", "negative", "mixed"], ...)
    topic = create_model("DraftTopic", __config__=_STRICT, **topic_fields)
    names = list(dict.fromkeys(n for n in (domain_names or []) if n.strip()))
    domain_name: Any = (
        (_LITERAL[tuple(names)], ...)
        if names
        else (str, Field(min_length=NAME_LEN[0], max_length=NAME_LEN[1], pattern=NAME_PATTERN))
    )
    domain = create_model(
        "DraftDomain",
        __config__=_STRICT,
        name=domain_name,
        topics=(list[topic], Field(min_length=1, max_length=MAX_TOPICS)),  # type: ignore[valid-type]
    )
    return create_model(
        "DraftProfile",
        __config__=_STRICT,
        summary=(str, Field(min_length=SUMMARY_LEN[0], max_length=SUMMARY_LEN[1], pattern=SUMMARY_PATTERN)),
        domains=(list[domain], Field(min_length=1, max_length=MAX_DOMAINS)),  # type: ignore[valid-type]
    )


@dataclass
class Slot:
    """One L2 group of the skeleton as the decoder sees it."""

    item_ids: Sequence[str]  # the group's items shown in the prompt: the only ones it may cite
    attributes: Sequence[str] = ()  # "name: value" pairs those items carry
    with_text: bool = False  # the user wrote text about these items


def skeleton_model(groups: Sequence[Sequence[Slot]]) -> type[BaseModel]:
    """The draft model of a skeleton: one fixed slot per group, in order (``d1.t1``, ``d1.t2``, ...).

    Every slot is required, so the decoder can neither drop nor merge nor add
    a group; each slot's ``items`` is an ``enum`` of that group's own items,
    so no group can cite another group's item; ``attributes`` are chosen from
    the values those items have. The summary comes last, after the names.
    """
    if not groups or not all(groups):
        raise ValueError("a skeleton needs at least one domain with one topic")
    name = (str, Field(min_length=NAME_LEN[0], max_length=NAME_LEN[1], pattern=NAME_PATTERN))
    domains: dict[str, Any] = {}
    for d, slots in enumerate(groups, start=1):
        topics: dict[str, Any] = {"name": name}
        for t, slot in enumerate(slots, start=1):
            if not slot.item_ids:
                raise ValueError(f"group d{d}.t{t} has no item to cite")
            ids: Any = _LITERAL[tuple(dict.fromkeys(slot.item_ids))]
            fields: dict[str, Any] = {
                "name": name,
                "items": (list[ids], Field(min_length=1, max_length=SLOT_ITEMS)),
            }
            if slot.attributes:
                values: Any = _LITERAL[tuple(dict.fromkeys(slot.attributes))]
                fields["attributes"] = (list[values], Field(max_length=MAX_ATTRIBUTES))
            if slot.with_text:
                fields["text_sentiment"] = (Literal["positive", "neutral", "negative", "mixed"], ...)
            topics[f"t{t}"] = (create_model(f"Slot_d{d}_t{t}", __config__=_STRICT, **fields), ...)
        domains[f"d{d}"] = (create_model(f"Group_d{d}", __config__=_STRICT, **topics), ...)
    summary = (str, Field(min_length=SUMMARY_LEN[0], max_length=SUMMARY_LEN[1], pattern=SUMMARY_PATTERN))
    return create_model("SkeletonDraft", __config__=_STRICT, **domains, summary=summary)


def draft_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema sent to the decoder for a draft model."""
    return model.model_json_schema()


__all__ = [
    "MAX_DOMAINS",
    "MAX_ITEMS_PER_TOPIC",
    "MAX_TOPICS",
    "DraftAttribute",
    "Slot",
    "draft_model",
    "draft_schema",
    "skeleton_model",
]
