"""Remove personal data from free text before it reaches prompts and reports.

A documented set of patterns (no maintained library on the package index
does this without a large NLP model; see docs/reliability.md): e-mail
addresses, phone numbers, card-like numbers (Luhn-checked) and URLs that
carry a query string. Each match becomes a typed placeholder such as
``[email]`` so the text stays readable.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
URL_QUERY = re.compile(r"\b(?:https?://|www\.)[^\s?#]+\?[^\s]+", re.IGNORECASE)
CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
PHONE = re.compile(r"(?<![\w.])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]?\d{3,4}\b")


def _luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass
class Redactor:
    """Applies the patterns and counts what it removed, by kind."""

    enabled: bool = True
    counts: Counter[str] = field(default_factory=Counter)

    def __call__(self, text: str | None) -> str | None:
        if not text or not self.enabled:
            return text
        text = EMAIL.sub(self._sub("email"), text)
        text = URL_QUERY.sub(self._sub("url"), text)
        text = CARD.sub(self._card, text)
        return PHONE.sub(self._sub("phone"), text)

    def _sub(self, kind: str):  # type: ignore[no-untyped-def]
        def repl(match: re.Match[str]) -> str:
            self.counts[kind] += 1
            return f"[{kind}]"

        return repl

    def _card(self, match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            self.counts["card"] += 1
            return "[card]"
        return match.group()

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def redact(text: str | None) -> str | None:
    """Redact one string with a throw-away :class:`Redactor`."""
    return Redactor()(text)


__all__ = ["Redactor", "redact"]
