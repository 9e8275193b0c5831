"""Timestamps as Step Functions reads them (Choice Timestamp* rules, Wait states).

Step Functions parses timestamps as "ISO-8601 extended offset date-time"
strings (its error messages say so): ``2016-03-14T01:59:00Z``,
``2016-03-14T01:59:00.123456789+01:00``. Precisely:

* the date is ``YYYY-MM-DD`` and must exist (no 30 February);
* the separator is ``T`` (either case), never a space;
* the time is ``HH:MM``, optionally ``:SS`` and then a fraction of up to nine
  digits (nanoseconds); hours 00-23, no leap second;
* an offset is required: ``Z`` (either case) or ``+HH``, ``+HH:MM`` or
  ``+HH:MM:SS`` (or ``-``), at most 18 hours.

Only years 0001-9999 are accepted (what :class:`datetime` can hold).
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

__all__ = ["parse_timestamp", "timestamp_nanos"]

_TIMESTAMP = re.compile(
    r"""(\d{4})-(\d{2})-(\d{2})
        [Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{0,9}))?)?
        (?:[Zz]|([+-])(\d{2})(?::(\d{2})(?::(\d{2}))?)?)
    """,
    re.VERBOSE | re.ASCII,
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MAX_OFFSET = 18 * 3600


def _parse(text: str) -> tuple[date, int, int, int, int, int] | None:
    """(date, hour, minute, second, nanosecond, offset seconds), or None."""
    match = _TIMESTAMP.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, oh, om, os_ = match.groups()
    try:
        day_ = date(int(year), int(month), int(day))
    except ValueError:
        return None
    hour_, minute_, second_ = int(hour), int(minute), int(second or 0)
    if hour_ > 23 or minute_ > 59 or second_ > 59:
        return None
    nanos = int((fraction or "").ljust(9, "0"))
    offset = 0
    if sign is not None:
        parts = int(oh), int(om or 0), int(os_ or 0)
        if parts[1] > 59 or parts[2] > 59:
            return None
        offset = parts[0] * 3600 + parts[1] * 60 + parts[2]
        if offset > _MAX_OFFSET:
            return None
        if sign == "-":
            offset = -offset
    return day_, hour_, minute_, second_, nanos, offset


def timestamp_nanos(text: str) -> int | None:
    """Nanoseconds since the Unix epoch, or None if ``text`` is not a timestamp.

    Exact to the nanosecond, so two timestamps that differ only past the
    microseconds still compare as different instants.
    """
    parsed = _parse(text)
    if parsed is None:
        return None
    day, hour, minute, second, nanos, offset = parsed
    seconds = (
        (day.toordinal() - _EPOCH_ORDINAL) * 86400 + hour * 3600 + minute * 60 + second - offset
    )
    return seconds * 1_000_000_000 + nanos


def parse_timestamp(text: str) -> datetime | None:
    """An aware datetime (fraction cut to microseconds), or None if not a timestamp."""
    parsed = _parse(text)
    if parsed is None:
        return None
    day, hour, minute, second, nanos, offset = parsed
    return datetime(
        day.year, day.month, day.day, hour, minute, second, nanos // 1000,
        tzinfo=timezone(timedelta(seconds=offset)),
    )
