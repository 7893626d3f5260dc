"""Find the time a question is about ("yesterday", "last week", "in March", "on 2024-03-05").

Memory search uses it to favour records whose ``occurred_at`` falls in that window: a question
like "what did we decide last week?" shares few words with the turns that answer it, but their
dates give them away. This is a small, pure function of the query and a reference time, with no
language model and no dependencies, so it is cheap enough for every search and easy to test. It
recognises English expressions only; anything it does not recognise gives ``None`` (no bias).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["TimeWindow", "time_window"]

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_UNITS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "month": 30, "months": 30, "year": 365}
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}

_ISO = re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b")
_MONTH_DAY = re.compile(
    rf"\b{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>\d{{4}}))?", re.I
)
_DAY_MONTH = re.compile(
    rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+(?P<year>\d{{4}}))?\b",
    re.I,
)
_MONTH_ONLY = re.compile(
    rf"\b(?P<how>in|during|of|since|last)\s+{_MONTH}(?:\s+(?P<year>\d{{4}}))?\b", re.I
)
_YEAR = re.compile(r"\b(?:in|during)\s+(?P<year>(?:19|20)\d{2})\b", re.I)
_AGO = re.compile(
    r"\b(?P<n>\d+|a|an|one|two|three|four|five|six)\s+(?P<unit>days?|weeks?|months?|year)\s+ago\b",
    re.I,
)
_BARE_MONTH = re.compile(rf"{_MONTH}(?:,?\s+(?P<year>\d{{4}}))?\b", re.I)
_RANGE_OPENING = re.compile(r"\b(?:between|from)\s", re.I)
_RANGE = re.compile(
    # Each end at most 30 characters ("the 3rd of September, 2023" is 26): unbounded, a query of
    # many "from"s took time growing with its square (40 ms at the 4,000-character limit).
    r"\b(?:between|from)\s+(?P<first>[^,;?!]{1,30}?)\s+(?:and|to|until|till|through)\s+"
    r"(?P<last>[^;?!]{1,30})",
    re.I,
)
_RELATIVE = re.compile(
    r"\b(?P<word>today|tonight|yesterday|last night"
    r"|(?:last|this|past)\s+(?:week|month|year|weekend))\b",
    re.I,
)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """``[start, end)`` in aware UTC."""

    start: datetime
    end: datetime

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _month_window(year: int, month: int) -> TimeWindow:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return TimeWindow(start, end)


def _latest_year(month: int, day: int, now: datetime) -> int:
    """The year of the latest ``month``/``day`` not after ``now`` (questions ask about the past)."""
    return now.year if (month, day) <= (now.month, now.day) else now.year - 1


def _date_window(year: int, month: int, day: int) -> TimeWindow | None:
    try:
        start = datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None
    return TimeWindow(start, start + timedelta(days=1))


def _point(text: str) -> tuple[int | None, int, int | None] | None:
    """``(year, month, day)`` of the date ``text`` starts with; year and day may be unknown."""
    text = re.sub(r"^\s*the\s+", "", text, flags=re.I).strip()
    if found := _ISO.match(text):
        return int(found["y"]), int(found["m"]), int(found["d"])
    for pattern in (_MONTH_DAY, _DAY_MONTH):
        if found := pattern.match(text):
            year = int(found["year"]) if found["year"] else None
            return year, _MONTHS[found["month"].lower()], int(found["day"])
    if found := _BARE_MONTH.match(text):
        year = int(found["year"]) if found["year"] else None
        return year, _MONTHS[found["month"].lower()], None
    return None


def _range(first: str, last: str, now: datetime) -> TimeWindow | None:
    """From the start of ``first`` to the end of ``last`` ("between August 11 and August 15 2023").

    A year said once holds for both ends; without one, the range is the most recent one that
    ends by ``now``; "until now" (or today) ends today. Either end not a date (or not a real day),
    or an end before the start: None.
    """
    start, end = _point(first), _point(last)
    if start is not None and end is None and re.match(r"\s*(?:now|today)\b", last, re.I):
        end = now.year, now.month, now.day
    if start is None or end is None:
        return None
    (y1, m1, d1), (y2, m2, d2) = start, end
    y2 = y2 or y1 or _latest_year(m2, d2 or 1, now)
    y1 = y1 or (y2 if (m1, d1 or 1) <= (m2, d2 or 1) else y2 - 1)
    opened = _date_window(y1, m1, d1) if d1 else _month_window(y1, m1)
    closed = _date_window(y2, m2, d2) if d2 else _month_window(y2, m2)
    if opened is None or closed is None or closed.end <= opened.start:
        return None
    return TimeWindow(opened.start, closed.end)


def _relative(word: str, now: datetime) -> TimeWindow:
    word = " ".join(word.lower().split())
    today = _day(now)
    if word in ("today", "tonight"):
        return TimeWindow(today, today + timedelta(days=1))
    if word in ("yesterday", "last night"):
        return TimeWindow(today - timedelta(days=1), today)
    which, unit = word.split(" ")
    if unit == "weekend":
        saturday = today - timedelta(days=(today.weekday() - 5) % 7)
        return TimeWindow(saturday, saturday + timedelta(days=2))
    if unit == "week":
        monday = today - timedelta(days=today.weekday())
        if which == "this":
            return TimeWindow(monday, monday + timedelta(days=7))
        if which == "past":
            return TimeWindow(today - timedelta(days=7), today + timedelta(days=1))
        return TimeWindow(monday - timedelta(days=7), monday)
    if unit == "month":
        if which == "past":
            return TimeWindow(today - timedelta(days=31), today + timedelta(days=1))
        this = _month_window(now.year, now.month)
        if which == "this":
            return this
        previous = this.start - timedelta(days=1)
        return _month_window(previous.year, previous.month)
    year = now.year - (which == "last")
    if which == "past":
        return TimeWindow(today - timedelta(days=366), today + timedelta(days=1))
    return TimeWindow(datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC))


def time_window(query: str, *, now: datetime | None = None) -> TimeWindow | None:
    """The period ``query`` asks about, or ``None`` when it names none.

    Relative expressions are resolved against ``now`` (default: the current time, UTC); a month
    or date without a year means its most recent occurrence. "N days/weeks ago" gives a window
    around that day, wide enough for the vagueness of such phrases.
    """
    now = datetime.now(UTC) if now is None else now.astimezone(UTC)
    for opening in _RANGE_OPENING.finditer(query):  # each one: "from Amazon between May 1 and 5"
        found = _RANGE.match(query, opening.start())
        if found and (window := _range(found["first"], found["last"], now)):
            return window
    if found := _ISO.search(query):
        return _date_window(int(found["y"]), int(found["m"]), int(found["d"]))
    for pattern in (_MONTH_DAY, _DAY_MONTH):
        if found := pattern.search(query):
            month, day = _MONTHS[found["month"].lower()], int(found["day"])
            year = int(found["year"]) if found["year"] else _latest_year(month, day, now)
            if window := _date_window(year, month, day):
                return window
    if found := _MONTH_ONLY.search(query):
        month = _MONTHS[found["month"].lower()]
        year = int(found["year"]) if found["year"] else _latest_year(month, 1, now)
        window = _month_window(year, month)
        if found["how"].lower() == "since":  # from that month up to today
            return TimeWindow(window.start, max(window.end, _day(now) + timedelta(days=1)))
        return window
    if found := _YEAR.search(query):
        year = int(found["year"])
        return TimeWindow(datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC))
    if found := _RELATIVE.search(query):
        return _relative(found["word"], now)
    if found := _AGO.search(query):
        raw = found["n"].lower()
        n = _NUMBERS[raw] if raw in _NUMBERS else int(raw)
        days = n * _UNITS[found["unit"].lower()]
        slack = max(1, days // 7)
        center = _day(now) - timedelta(days=days)
        return TimeWindow(center - timedelta(days=slack), center + timedelta(days=slack + 1))
    return None
