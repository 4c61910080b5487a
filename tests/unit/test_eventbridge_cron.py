"""The independent EventBridge ``cron()`` evaluator: what it accepts and when it fires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from chalicelib.local.eventbridge_cron import EventBridgeCron

UTC_ZONE = ZoneInfo("UTC")
NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(expression: str, start: datetime, end: datetime, tz: ZoneInfo = UTC_ZONE) -> list[str]:
    return [
        fire.isoformat() for fire in EventBridgeCron.parse(expression).fires_between(start, end, tz)
    ]


REJECTED = [
    ("cron(0 9 1 * MON *)", "exactly one of day-of-month and day-of-week must be '?'"),
    ("cron(0 9 * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
    ("cron(0 9 ? * ? *)", "exactly one of day-of-month and day-of-week must be '?'"),
    ("cron(0 9 * * ?)", "takes 6 fields"),
    ("cron(0 9 * * ? * *)", "takes 6 fields"),
    ("0 9 * * ? *", "not a cron(...) expression"),
    ("rate(5 minutes)", "not a cron(...) expression"),
    ("at(2026-01-01T00:00:00)", "not a cron(...) expression"),
    ("cron(60 9 * * ? *)", "minutes value 60 is outside 0-59"),
    ("cron(0 24 * * ? *)", "hours value 24 is outside 0-23"),
    ("cron(0 9 0 * ? *)", "day-of-month value 0 is outside 1-31"),
    ("cron(0 9 32 * ? *)", "day-of-month value 32 is outside 1-31"),
    ("cron(0 9 * 13 ? *)", "month value 13 is outside 1-12"),
    ("cron(0 9 ? * 0 *)", "day-of-week value 0 is outside 1-7"),
    ("cron(0 9 ? * 8 *)", "day-of-week value 8 is outside 1-7"),
    ("cron(0 9 * * ? 1969)", "year value 1969 is outside 1970-2199"),
    ("cron(0 9 * * ? 2200)", "year value 2200 is outside 1970-2199"),
    ("cron(0 9 ? * FRI-MON *)", "reversed range 'FRI-MON'"),
    ("cron(30-10 9 * * ? *)", "reversed range '30-10'"),
    ("cron(0 9 ? * MON/2 *)", "'/' is not allowed in the day-of-week field"),
    ("cron(0 9 ? * 3#1,6#3 *)", "only one 'd#n' term"),
    ("cron(0 9 ? * 3#6 *)", "the occurrence must be 1-5"),
    ("cron(0 9 LW * ? *)", "unsupported day-of-month 'LW'"),
    ("cron(0 9 1,15W * ? *)", "unsupported day-of-month"),
    ("cron(0 9 ? * MON,L *)", "unsupported day-of-week"),
    ("cron(0 */0 * * ? *)", "invalid increment '0'"),
    ("cron(? 9 * * ? *)", "'?' is not allowed in the minutes field"),
    ("cron(0,,5 9 * * ? *)", "empty term in the minutes field"),
    ("cron(0 9 * FOO ? *)", "invalid month value 'FOO'"),
    ("cron(0 9 ? * FUN *)", "invalid day-of-week value 'FUN'"),
    ("cron(" + "0," * 130 + "0 9 * * ? *)", "longer than 256 characters"),
]


@pytest.mark.parametrize(("expression", "message"), REJECTED)
def test_rejected(expression: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        EventBridgeCron.parse(expression)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 9 * * ? *)",
        "cron(0/15 * ? * MON-FRI *)",
        "cron(0 9 L * ? *)",
        "cron(0 9 15W * ? *)",
        "cron(0 9 ? * FRI#3 *)",
        "cron(0 9 ? * 6L *)",
        "cron(0 9 ? * L *)",
        "cron(0 9 1 JAN-MAR ? 2026-2030)",
        "cron(5,25,45 0-2,22,23 */10 1,7 ? */2)",
        " cron(0 9 * * ? *) ",
        "cron(0 9 * * ? *)".lower(),
    ],
)
def test_accepted(expression: str) -> None:
    assert EventBridgeCron.parse(expression).expression == expression


# --- semantics ----------------------------------------------------------------------------------


def test_one_is_sunday() -> None:
    start, end = utc(2026, 3, 1), utc(2026, 3, 15)
    sundays = [
        "2026-03-01T09:00:00+00:00",
        "2026-03-08T09:00:00+00:00",
        "2026-03-15T09:00:00+00:00",
    ]
    assert fires("cron(0 9 ? * 1 *)", start - timedelta(days=1), end + timedelta(days=1)) == sundays
    assert (
        fires("cron(0 9 ? * SUN *)", start - timedelta(days=1), end + timedelta(days=1)) == sundays
    )
    assert fires("cron(0 9 ? * 7 *)", start, end) == [
        "2026-03-07T09:00:00+00:00",
        "2026-03-14T09:00:00+00:00",
    ]


def test_weekday_range() -> None:
    got = fires("cron(0 12 ? * MON-FRI *)", utc(2026, 3, 1), utc(2026, 3, 8))
    assert [day[:10] for day in got] == [f"2026-03-0{day}" for day in range(2, 7)]


def test_last_day_of_month() -> None:
    assert fires("cron(0 0 L * ? *)", utc(2026, 1, 15), utc(2026, 4, 15)) == [
        "2026-01-31T00:00:00+00:00",
        "2026-02-28T00:00:00+00:00",
        "2026-03-31T00:00:00+00:00",
    ]
    assert EventBridgeCron.parse("cron(0 0 L 2 ? *)").next_fire(utc(2027, 3, 1), UTC_ZONE) == utc(
        2028, 2, 29
    )


@pytest.mark.parametrize(
    ("expression", "month", "expected_day"),
    [
        ("cron(0 0 15W * ? *)", 3, 16),  # 2026-03-15 is a Sunday: the Monday after
        ("cron(0 0 15W * ? *)", 8, 14),  # 2026-08-15 is a Saturday: the Friday before
        ("cron(0 0 15W * ? *)", 4, 15),  # a Wednesday: itself
        ("cron(0 0 1W * ? *)", 8, 3),  # the 1st is a Saturday: Monday the 3rd, not July 31
        ("cron(0 0 31W * ? *)", 5, 29),  # the 31st is a Sunday: Friday the 29th, not June 1
    ],
)
def test_nearest_weekday(expression: str, month: int, expected_day: int) -> None:
    fire = EventBridgeCron.parse(expression).next_fire(
        utc(2026, month, 1) - timedelta(hours=1), UTC_ZONE
    )
    assert fire == utc(2026, month, expected_day)


def test_nearest_weekday_of_a_missing_day_does_not_fire() -> None:
    # April has no 31st; documented as our reading (EventBridge does not say).
    fire = EventBridgeCron.parse("cron(0 0 31W 4 ? *)").next_fire(utc(2026, 1, 1), UTC_ZONE)
    assert fire is None


def test_nth_and_last_weekday() -> None:
    third_fridays = fires("cron(0 0 ? * FRI#3 *)", utc(2026, 1, 1), utc(2026, 4, 1))
    assert [day[:10] for day in third_fridays] == ["2026-01-16", "2026-02-20", "2026-03-20"]
    fifth_mondays = fires("cron(0 0 ? * 2#5 *)", utc(2026, 1, 1), utc(2026, 7, 1))
    assert [day[:10] for day in fifth_mondays] == ["2026-03-30", "2026-06-29"]
    last_fridays = fires("cron(0 0 ? * 6L *)", utc(2026, 1, 1), utc(2026, 4, 1))
    assert [day[:10] for day in last_fridays] == ["2026-01-30", "2026-02-27", "2026-03-27"]
    saturdays = fires("cron(0 0 ? * L *)", utc(2026, 3, 1), utc(2026, 3, 15))
    assert [day[:10] for day in saturdays] == ["2026-03-07", "2026-03-14"]


def test_steps_ranges_and_lists() -> None:
    assert fires("cron(0/20 9 * * ? *)", utc(2026, 1, 1), utc(2026, 1, 1, 10)) == [
        "2026-01-01T09:00:00+00:00",
        "2026-01-01T09:20:00+00:00",
        "2026-01-01T09:40:00+00:00",
    ]
    assert fires("cron(5-59/20 9 * * ? *)", utc(2026, 1, 1), utc(2026, 1, 1, 10)) == [
        "2026-01-01T09:05:00+00:00",
        "2026-01-01T09:25:00+00:00",
        "2026-01-01T09:45:00+00:00",
    ]
    tenth_days = fires(
        "cron(0 0 */10 1 ? *)", utc(2026, 1, 1) - timedelta(hours=1), utc(2026, 2, 1)
    )
    assert [day[8:10] for day in tenth_days] == ["01", "11", "21", "31"]
    assert fires("cron(0 0 1 JAN,JUL ? *)", utc(2026, 1, 2), utc(2027, 1, 2)) == [
        "2026-07-01T00:00:00+00:00",
        "2027-01-01T00:00:00+00:00",
    ]


def test_year_field() -> None:
    cron = EventBridgeCron.parse("cron(0 0 1 1 ? 2027,2029)")
    assert cron.next_fire(utc(2026, 6, 1), UTC_ZONE) == utc(2027, 1, 1)
    assert cron.next_fire(utc(2027, 1, 1), UTC_ZONE) == utc(2029, 1, 1)
    assert cron.next_fire(utc(2029, 1, 1), UTC_ZONE) is None
    last = EventBridgeCron.parse("cron(0 0 31 12 ? *)")
    assert last.next_fire(utc(2199, 1, 1), UTC_ZONE) == utc(2199, 12, 31)
    assert last.next_fire(utc(2199, 12, 31), UTC_ZONE) is None


def test_next_fire_is_strictly_after_and_in_the_timezone() -> None:
    cron = EventBridgeCron.parse("cron(0 9 * * ? *)")
    shanghai = ZoneInfo("Asia/Shanghai")
    fire = cron.next_fire(datetime(2026, 1, 1, 9, tzinfo=shanghai), shanghai)
    assert fire is not None
    assert fire.isoformat() == "2026-01-02T09:00:00+08:00"
    assert fire.tzinfo is shanghai
    assert cron.next_fire(utc(2026, 1, 1, 0, 59, 59), shanghai) == datetime(
        2026, 1, 1, 9, tzinfo=shanghai
    )


def test_minutely_next_fire_skips_to_the_next_minute() -> None:
    cron = EventBridgeCron.parse("cron(* * * * ? *)")
    assert cron.next_fire(utc(2026, 6, 1, 12, 30, 15), NY) == utc(2026, 6, 1, 12, 31)
    assert cron.next_fire(utc(2026, 6, 1, 12, 30), NY) == utc(2026, 6, 1, 12, 31)


def test_rare_schedule_is_found_far_ahead() -> None:
    cron = EventBridgeCron.parse("cron(0 0 29 2 ? *)")
    assert cron.next_fire(utc(2096, 3, 1), UTC_ZONE) == utc(2104, 2, 29)


def test_naive_datetimes_are_refused() -> None:
    cron = EventBridgeCron.parse("cron(0 9 * * ? *)")
    with pytest.raises(ValueError, match="timezone-aware"):
        cron.next_fire(datetime(2026, 1, 1), UTC_ZONE)
    with pytest.raises(ValueError, match="timezone-aware"):
        list(cron.fires_between(utc(2026, 1, 1), datetime(2026, 1, 2), UTC_ZONE))


# --- DST ----------------------------------------------------------------------------------------


def test_spring_forward_skips_the_missing_time() -> None:
    assert fires("cron(30 2 * * ? *)", utc(2026, 3, 7), utc(2026, 3, 10), NY) == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-09T02:30:00-04:00",
    ]


def test_fall_back_fires_once_at_the_first_occurrence() -> None:
    assert fires("cron(30 1 * * ? *)", utc(2026, 10, 31, 12), utc(2026, 11, 2, 12), NY) == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]
    assert fires("cron(0 * * * ? *)", utc(2026, 11, 1, 4, 30), utc(2026, 11, 1, 8), NY) == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T02:00:00-05:00",
        "2026-11-01T03:00:00-05:00",
    ]


def test_next_fire_from_inside_a_repeated_hour() -> None:
    cron = EventBridgeCron.parse("cron(0,30 * * * ? *)")
    # 01:10 EST is the second pass through 01:xx: 01:30 already fired at its first occurrence.
    second_pass = datetime(2026, 11, 1, 1, 10, tzinfo=NY, fold=1)
    fire = cron.next_fire(second_pass, NY)
    assert fire is not None
    assert fire.isoformat() == "2026-11-01T02:00:00-05:00"


def test_lord_howe_half_hour_shifts() -> None:
    spring = fires("cron(0/15 * * * ? *)", utc(2026, 10, 3, 15), utc(2026, 10, 3, 16), LORD_HOWE)
    assert spring == [
        "2026-10-04T01:45:00+10:30",
        "2026-10-04T02:30:00+11:00",
        "2026-10-04T02:45:00+11:00",
        "2026-10-04T03:00:00+11:00",
    ]
    autumn = fires(
        "cron(0/15 * * * ? *)", utc(2026, 4, 4, 14, 15), utc(2026, 4, 4, 15, 45), LORD_HOWE
    )
    assert autumn == [
        "2026-04-05T01:30:00+11:00",
        "2026-04-05T01:45:00+11:00",
        "2026-04-05T02:00:00+10:30",
        "2026-04-05T02:15:00+10:30",
    ]


def test_london() -> None:
    assert fires("cron(30 1 * * ? *)", utc(2026, 3, 28), utc(2026, 3, 31), LONDON) == [
        "2026-03-28T01:30:00+00:00",
        "2026-03-30T01:30:00+01:00",
    ]
