"""Timestamps in the forms logs use, as UTC epoch seconds.

Accepted (first match wins):

* numbers or numeric strings: epoch seconds; milliseconds, microseconds and
  nanoseconds are recognised by magnitude (above 1e11, 1e14, 1e17);
* 8-digit strings ``YYYYMMDD`` with a year 1900-2100 (a compact date; as epoch
  seconds they would fall in August 1970, which real logs do not contain);
* ISO 8601 (``2018-06-17T12:00:00Z``, ``2018-06-17 12:00:00+02:00``, ``2018-06-17``);
* Amazon's ``06 17, 2018``, ``2018/06/17[ 12:00:00]``, ``June 17, 2018``, ``Jun 17, 2018``;
* RFC 2822 (``Sun, 17 Jun 2018 12:00:00 GMT``);
* ``datetime``/``date`` objects (from Parquet).

Times without a zone are read in the ``tz`` given (default UTC). Empty cells
are ``None``. Times before 1970 or more than a day in the future are out of
range.
"""

from __future__ import annotations

import math
import re
import time
from datetime import date, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .quarantine import REASON_TIME, REASON_TIME_RANGE, IngestError
from .values import FieldError

FUTURE_SLACK_S = 86_400.0
_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?$", re.IGNORECASE)
_FORMATS = (
    "%m %d, %Y",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%B %d, %Y",
    "%b %d, %Y",
    "%d %B %Y",
    "%d %b %Y",
)


def zone(tz: str | tzinfo | None) -> tzinfo:
    """``"UTC"``, an IANA name (``"Europe/Berlin"``) or a fixed offset (``"+02:00"``)."""
    if tz is None:
        return timezone.utc
    if isinstance(tz, tzinfo):
        return tz
    name = tz.strip()
    if name.upper() in ("UTC", "Z", "GMT", ""):
        return timezone.utc
    m = _OFFSET.match(name)
    if m:
        minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
        return timezone(timedelta(minutes=-minutes if m.group(1) == "-" else minutes))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise IngestError(
            f"unknown time zone {tz!r}: use an IANA name such as 'Europe/Berlin', 'UTC' or an offset '+02:00'"
        ) from None


def _scale(number: float) -> float:
    magnitude = abs(number)
    if magnitude >= 1e17:
        return number / 1e9
    if magnitude >= 1e14:
        return number / 1e6
    if magnitude >= 1e11:
        return number / 1e3
    return number


class TimeParser:
    """Callable: a cell value -> UTC epoch seconds, ``None`` when empty.

    Raises :class:`~interests.ingest.values.FieldError` with reason
    ``"bad timestamp"`` or ``"timestamp out of range"``.
    """

    def __init__(self, tz: str | tzinfo | None = "UTC", now: float | None = None) -> None:
        self.tz = zone(tz)
        self.max_ts = (time.time() if now is None else now) + FUTURE_SLACK_S

    def __call__(self, value: Any) -> float | None:
        if (
            type(value) is str
            and value[:1].isdigit()
            and (len(value) != 8 or not "1900" <= value[:4] <= "2100")
        ):
            try:  # fast path: epoch seconds as text
                ts = _scale(float(value))
            except ValueError:
                pass
            else:
                if 0 <= ts <= self.max_ts:
                    return ts
                if not math.isfinite(ts):
                    raise FieldError(REASON_TIME)
                raise FieldError(REASON_TIME_RANGE)
        if value is None:
            return None
        if isinstance(value, bool):
            raise FieldError(REASON_TIME)
        if isinstance(value, (int, float)):
            ts = _scale(float(value))
        elif isinstance(value, datetime):
            ts = self._aware(value).timestamp()
        elif isinstance(value, date):
            ts = datetime(value.year, value.month, value.day, tzinfo=self.tz).timestamp()
        else:
            text = str(value).strip()
            if not text:
                return None
            ts = self._parse_text(text)
        if not math.isfinite(ts):
            raise FieldError(REASON_TIME)
        if ts < 0 or ts > self.max_ts:
            raise FieldError(REASON_TIME_RANGE)
        return ts

    def _aware(self, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=self.tz)

    def _parse_text(self, text: str) -> float:
        if len(text) == 8 and text.isdigit() and "1900" <= text[:4] <= "2100":
            try:
                return self._aware(datetime.strptime(text, "%Y%m%d")).timestamp()
            except ValueError:
                pass
        if text[0].isdigit() or text[0] in "+-.":
            try:
                return _scale(float(text))
            except ValueError:
                pass
        try:
            iso = text[:-1] + "+00:00" if text[-1] in "Zz" else text
            return self._aware(datetime.fromisoformat(iso)).timestamp()
        except ValueError:
            pass
        except OverflowError:
            raise FieldError(REASON_TIME_RANGE) from None
        for fmt in _FORMATS:
            try:
                return self._aware(datetime.strptime(text, fmt)).timestamp()
            except ValueError:
                continue
        try:
            return self._aware(parsedate_to_datetime(text)).timestamp()
        except (TypeError, ValueError, IndexError):
            raise FieldError(REASON_TIME) from None


def parse_time(value: Any, tz: str = "UTC") -> float | None:
    """One-off parse (builds a :class:`TimeParser`; use one parser for many values)."""
    return TimeParser(tz)(value)


__all__ = ["TimeParser", "parse_time", "zone"]
