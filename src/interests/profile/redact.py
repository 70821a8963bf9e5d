"""Remove personal data from free text before it reaches prompts and reports.

A documented set of patterns, not a library: the maintained PII libraries on
the package index either need a large NLP model at run time (Presidio,
scrubadub's name detectors) or are unmaintained and pin old dependencies
(see docs/reliability.md). What is removed:

* ``email``: e-mail addresses;
* ``url``: links that carry a query string (``?uid=...``), which is where
  tracking ids and addresses hide; a link without a query is kept;
* ``card``: 13-19 digit numbers, plain or grouped with spaces or dashes,
  that pass the Luhn check and start like a payment card (2-6);
* ``ssn``: US social security numbers written ``123-45-6789``;
* ``ip``: IPv4 addresses;
* ``phone``: phone numbers: ``+`` and 8-15 digits, or 9-15 digits in groups
  split by spaces, dots, dashes or an area code in brackets.

Each match becomes a typed placeholder such as ``[email]`` so the text stays
readable. Years, dates, ratings, prices, short numbers, ISBNs, timestamps
without separators and item ids are left alone (``tests/test_privacy.py``
holds the corpus of cases and near misses).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# a link with a query string; punctuation right after it stays
URL_QUERY = re.compile(r"\b(?:https?://|www\.)[^\s?#]+\?\S*[^\s.,;:!?)\]}'\"]", re.IGNORECASE)
CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)")
# Groups are split by one mandatory separator, so matching stays linear in the text.
PHONE = re.compile(
    r"(?<![\w.+/=-])"
    r"(?:"
    r"\+\d{8,15}"  # E.164 written without separators
    r"|\+\d{1,3}(?:[ .-]?\(\d{1,4}\)[ .-]?\d{1,8}|[ .-]\d{1,8})(?:[ .-]\d{1,8}){0,5}"  # +44 (0)20 7946 0958
    r"|(?:\(\d{1,5}\)[ .-]?|\d{1,5}[ .-])(?:\d{1,8}[ .-]){0,5}\d{2,8}"  # (555) 123-4567, 020 7946 0958
    r")"
    r"(?![\w:-]|[.,]\d)"
)
PHONE_DIGITS = (9, 15)  # national numbers; with a leading "+" from 8
CARD_FIRST_DIGITS = "23456"  # Mastercard 2/5, Amex/Diners/JCB 3, Visa 4, Discover/UnionPay 6


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


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


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
        if not any(ch.isdigit() for ch in text):
            return text
        text = CARD.sub(self._card, text)
        text = SSN.sub(self._sub("ssn"), text)
        text = IPV4.sub(self._sub("ip"), text)
        return PHONE.sub(self._phone, text)

    def _sub(self, kind: str) -> Callable[[re.Match[str]], str]:
        def repl(match: re.Match[str]) -> str:
            self.counts[kind] += 1
            return f"[{kind}]"

        return repl

    def _card(self, match: re.Match[str]) -> str:
        digits = _digits(match.group())
        if 13 <= len(digits) <= 19 and digits[0] in CARD_FIRST_DIGITS and _luhn(digits):
            self.counts["card"] += 1
            return "[card]"
        return match.group()

    def _phone(self, match: re.Match[str]) -> str:
        text = match.group()
        n = len(_digits(text))
        low = PHONE_DIGITS[0] - 1 if text.startswith("+") else PHONE_DIGITS[0]
        if low <= n <= PHONE_DIGITS[1]:
            self.counts["phone"] += 1
            return "[phone]"
        return text

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def redact(text: str | None) -> str | None:
    """Redact one string with a throw-away :class:`Redactor`."""
    return Redactor()(text)


__all__ = ["Redactor", "redact"]
