"""Cleaning single cell values: ids, ratings and free text."""

from __future__ import annotations

import math
from typing import Any

MAX_TEXT_CHARS = 2_000


class FieldError(ValueError):
    """A cell value that makes its row unusable; ``reason`` is the quarantine reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clean_id(value: Any) -> str | None:
    """A user or item id as a stripped string; ``None`` when empty or not a scalar."""
    if type(value) is str:
        return value.strip() or None
    if value is None or isinstance(value, (dict, list, tuple, bool)):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            value = int(value)
    text = str(value).strip()
    return text or None


def parse_rating(value: Any, reason: str = "bad rating") -> float | None:
    """A finite float; ``None`` for an empty cell; :class:`FieldError` otherwise."""
    if type(value) is str and value:
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
            raise FieldError(reason)
    if value is None:
        return None
    if isinstance(value, bool):
        raise FieldError(reason)
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            raise FieldError(reason) from None
    if not math.isfinite(number):
        raise FieldError(reason)
    return number


def clean_text(value: Any, limit: int = MAX_TEXT_CHARS) -> str | None:
    """Strip, collapse whitespace, cap at ``limit`` characters; lists are joined."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value if v is not None)
    elif not isinstance(value, str):
        value = str(value)
    text = " ".join(value.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or None


def join_texts(values: list[Any]) -> str | None:
    """Several text columns (``text=summary+reviewText``) as one text, parts joined by ' — '."""
    parts: list[str] = []
    for v in values:
        t = clean_text(v)
        if t and t not in parts:
            parts.append(t)
    return clean_text(" — ".join(parts)) if parts else None


__all__ = ["MAX_TEXT_CHARS", "FieldError", "clean_id", "clean_text", "join_texts", "parse_rating"]
