from __future__ import annotations

from datetime import UTC, datetime

import pytest

from threadline.memory._temporal import TimeWindow, time_window

NOW = datetime(2024, 6, 12, 15, 30, tzinfo=UTC)  # a Wednesday


def day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("what did I say yesterday?", day(2024, 6, 11), day(2024, 6, 12)),
        ("anything today", day(2024, 6, 12), day(2024, 6, 13)),
        ("what did we plan last week", day(2024, 6, 3), day(2024, 6, 10)),
        ("this week's plan", day(2024, 6, 10), day(2024, 6, 17)),
        ("last month we talked about", day(2024, 5, 1), day(2024, 6, 1)),
        ("when did I go hiking in March?", day(2024, 3, 1), day(2024, 4, 1)),
        ("in September", day(2023, 9, 1), day(2023, 10, 1)),  # most recent September
        ("in March 2022", day(2022, 3, 1), day(2022, 4, 1)),
        ("on 2023-02-05", day(2023, 2, 5), day(2023, 2, 6)),
        ("on May 3rd", day(2024, 5, 3), day(2024, 5, 4)),
        ("on 3 May 2021", day(2021, 5, 3), day(2021, 5, 4)),
        ("on December 25", day(2023, 12, 25), day(2023, 12, 26)),
        ("during 2019", day(2019, 1, 1), day(2020, 1, 1)),
        ("two weeks ago", day(2024, 5, 27), day(2024, 6, 1)),
        ("3 days ago", day(2024, 6, 8), day(2024, 6, 11)),
        ("since March", day(2024, 3, 1), day(2024, 6, 13)),  # up to today, not March alone
        # Ranges: a year said once holds for both ends (not "August 11" of the current year).
        ("where was I between August 11 and August 15 2023?", day(2023, 8, 11), day(2023, 8, 16)),
        ("between March 3 and March 10", day(2024, 3, 3), day(2024, 3, 11)),
        ("from May to July 2023", day(2023, 5, 1), day(2023, 8, 1)),
        ("from 2024-01-02 to 2024-01-05", day(2024, 1, 2), day(2024, 1, 6)),
        ("between December 20 and January 3", day(2023, 12, 20), day(2024, 1, 4)),
        ("between the 3rd of May and the 5th of May", day(2024, 5, 3), day(2024, 5, 6)),
        ("what did I do from March until now?", day(2024, 3, 1), day(2024, 6, 13)),
        ("what did I buy from Amazon between May 1 and May 5?", day(2024, 5, 1), day(2024, 5, 6)),
    ],
)
def test_time_expressions(query: str, start: datetime, end: datetime) -> None:
    assert time_window(query, now=NOW) == TimeWindow(start, end)


@pytest.mark.parametrize(
    "query",
    [
        "what is my favourite food",
        "when did I adopt the cat",
        "may I ask",
        "2024-13-45 is no date",
        "how long from home to work",
        "between 2 and 3 pm",
        "between 30 February and 3 March 2023",  # no such day: no bias rather than a guess
    ],
)
def test_no_period_gives_none(query: str) -> None:
    assert time_window(query, now=NOW) is None


def test_window_membership_is_half_open() -> None:
    window = TimeWindow(day(2024, 1, 1), day(2024, 1, 2))
    assert day(2024, 1, 1) in window
    assert day(2024, 1, 2) not in window
    assert "2024-01-01" not in window
