"""The cron engine: syntax, rejections, translations, DST, minimum interval, and properties.

The property tests compare the engine with two independent references: the EventBridge
evaluator of ``chalicelib.local.eventbridge_cron`` fed with the engine's own translations (the
union of the translated schedules, deduplicated as agentcron's claim does, must fire exactly
when the engine says), and croniter itself in UTC, where its DST handling plays no part.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest
from croniter import CroniterBadDateError, croniter
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chalicelib.domain.cron import CronSchedule, load_timezone, parse
from chalicelib.domain.errors import (
    CronNeverFiresError,
    IntervalTooShortError,
    InvalidCronError,
    InvalidTimezoneError,
)
from chalicelib.local.eventbridge_cron import EventBridgeCron

NY = "America/New_York"
LONDON = "Europe/London"
SHANGHAI = "Asia/Shanghai"
LORD_HOWE = "Australia/Lord_Howe"
TIMEZONES = [NY, LONDON, SHANGHAI, LORD_HOWE, "UTC"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))


def iso(moments: list[datetime]) -> list[str]:
    return [moment.isoformat() for moment in moments]


# --- translations -------------------------------------------------------------------------------

DAILY = ("cron(0 0 * * ? *)",)

TRANSLATIONS = [
    # the seed's examples
    ("0 9 * * *", ("cron(0 9 * * ? *)",)),
    ("0 */4 * * *", ("cron(0 0,4,8,12,16,20 * * ? *)",)),
    ("0 0 * * 1", ("cron(0 0 ? * MON *)",)),
    ("30 8 1 * *", ("cron(30 8 1 * ? *)",)),
    ("0 12 * * 1-5", ("cron(0 12 ? * MON-FRI *)",)),
    ("0 0 1,15 * *", ("cron(0 0 1,15 * ? *)",)),
    # lists, ranges, steps, names
    ("* * * * *", ("cron(* * * * ? *)",)),
    ("5-59/20 * * * *", ("cron(5,25,45 * * * ? *)",)),
    ("0,30 9-17 * * *", ("cron(0,30 9-17 * * ? *)",)),
    ("0 22-2 * * *", ("cron(0 0-2,22,23 * * ? *)",)),
    ("0 0 */10 * *", ("cron(0 0 1,11,21,31 * ? *)",)),
    ("0 0 1 jan,jul *", ("cron(0 0 1 1,7 ? *)",)),
    ("0 0 1 */3 *", ("cron(0 0 1 1,4,7,10 ? *)",)),
    ("0 0 1 1-6 *", ("cron(0 0 1 1-6 ? *)",)),
    ("0 0 1 JAN-JAN *", ("cron(0 0 1 * ? *)",)),  # croniter: an equal-bound range is the cycle
    ("59/15 * * * *", ("cron(59 * * * ? *)",)),  # croniter 7: {max}/{step} is just {max}
    ("0 9 * * MON-FRI", ("cron(0 9 ? * MON-FRI *)",)),
    ("0 9 * * mon,wed,fri", ("cron(0 9 ? * MON,WED,FRI *)",)),
    # Sunday as 0 or 7, wrapped ranges become lists, '?' reads as '*'
    ("0 9 * * 0", ("cron(0 9 ? * SUN *)",)),
    ("0 9 * * 7", ("cron(0 9 ? * SUN *)",)),
    ("0 9 * * 0,7", ("cron(0 9 ? * SUN *)",)),
    ("0 0 * * 5-7", ("cron(0 0 ? * SUN,FRI,SAT *)",)),
    ("0 0 * * sat-mon", ("cron(0 0 ? * SUN,MON,SAT *)",)),
    ("0 0 * * */2", ("cron(0 0 ? * SUN,TUE,THU,SAT *)",)),
    ("* * * * 6/1", ("cron(* * ? * SAT *)",)),
    ("0 9 ? * 1", ("cron(0 9 ? * MON *)",)),
    ("0 9 1 * ?", ("cron(0 9 1 * ? *)",)),
    ("0 0 ? * ?", DAILY),
    ("0 0 * * 0-6", DAILY),
    ("0 0 ? * 0-6", DAILY),
    ("0 0 1-31 * *", DAILY),
    # Vixie OR: two schedules, or one daily when a side covers every day
    ("0 9 1 * 1", ("cron(0 9 1 * ? *)", "cron(0 9 ? * MON *)")),
    ("0 0 1,15 * 1", ("cron(0 0 1,15 * ? *)", "cron(0 0 ? * MON *)")),
    (
        "0 0 */2 * 1-5",
        ("cron(0 0 1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31 * ? *)", "cron(0 0 ? * MON-FRI *)"),
    ),
    ("0 0 1 * 0-6", DAILY),
    ("0 0 1-31 * 1", DAILY),
    ("0 0 */1 * 1", DAILY),
    ("0 0 31 2 1", ("cron(0 0 ? 2 MON *)",)),  # the 31st of February side never fires
    # specials
    ("0 0 L * *", ("cron(0 0 L * ? *)",)),
    ("0 0 L 2 ?", ("cron(0 0 L 2 ? *)",)),
    ("0 0 15W * *", ("cron(0 0 15W * ? *)",)),
    ("0 0 W15 * ?", ("cron(0 0 15W * ? *)",)),
    ("0 0 * * 5#3", ("cron(0 0 ? * FRI#3 *)",)),
    ("0 0 ? * 7#1", ("cron(0 0 ? * SUN#1 *)",)),
    ("0 0 * * mon#1,fri#3", ("cron(0 0 ? * MON#1 *)", "cron(0 0 ? * FRI#3 *)")),
    ("0 0 * * 1#1,1#5", ("cron(0 0 ? * MON#1 *)", "cron(0 0 ? * MON#5 *)")),
    # macros
    ("@hourly", ("cron(0 * * * ? *)",)),
    ("@daily", DAILY),
    ("@midnight", DAILY),
    ("@weekly", ("cron(0 0 ? * SUN *)",)),
    ("@monthly", ("cron(0 0 1 * ? *)",)),
    ("@yearly", ("cron(0 0 1 1 ? *)",)),
    ("@annually", ("cron(0 0 1 1 ? *)",)),
    ("@Daily", DAILY),
    # blanks around and between fields
    ("  0   9 * *\t* ", ("cron(0 9 * * ? *)",)),
]


@pytest.mark.parametrize(("expression", "eventbridge"), TRANSLATIONS)
def test_translation(expression: str, eventbridge: tuple[str, ...]) -> None:
    schedule = parse(expression)
    assert schedule.eventbridge == eventbridge
    assert schedule.expression == expression
    for translated in eventbridge:
        EventBridgeCron.parse(translated)  # the oracle accepts every translation


def test_translation_is_independent_of_timezone() -> None:
    assert parse("0 9 * * 1-5", NY).eventbridge == parse("0 9 * * 1-5", SHANGHAI).eventbridge
    assert parse("0 9 * * 1-5", NY).timezone == NY


# --- rejections ---------------------------------------------------------------------------------

SIX_FIELDS = (
    "6-field (seconds) expressions are not supported; "
    "use 5 fields: minute hour day-of-month month day-of-week"
)
SEVEN_FIELDS = (
    "7-field (seconds and year) expressions are not supported; "
    "use 5 fields: minute hour day-of-month month day-of-week"
)
# The longest translation there is: runs of two in every numeric field.
LONGEST = " ".join(
    [
        ",".join(str(m) for m in range(60) if m % 3 != 2),
        ",".join(str(h) for h in range(24) if h % 3 != 2),
        ",".join(str(d) for d in range(1, 32) if d % 3 != 0),
        "1,2,4,5,7,8,10,11",
        "*",
    ]
)

REJECTIONS = [
    ("", "the expression is empty"),
    ("   ", "the expression is empty"),
    ("* * * *", "expected 5 fields, got 4"),
    ("*", "expected 5 fields, got 1"),
    ("0 0 9 * * *", SIX_FIELDS),
    ("0 0 9 * * * 2026", SEVEN_FIELDS),
    ("* * * * * * * *", "expected 5 fields, got 8"),
    ("@reboot", "@reboot is not supported"),
    ("@every 5m", "unknown macro '@every 5m'"),
    ("TZ=UTC 0 9 * * *", "put the timezone in the timezone field"),
    ("CRON_TZ=Europe/London 0 9 * * *", "put the timezone in the timezone field"),
    ("61 * * * *", "minute value 61 is out of range 0-59"),
    ("0 24 * * *", "hour value 24 is out of range 0-23"),
    ("0 0 32 * *", "day-of-month value 32 is out of range 1-31"),
    ("0 0 0 * *", "day-of-month value 0 is out of range 1-31"),
    ("0 0 * 13 *", "month value 13 is out of range 1-12"),
    ("0 0 * 0 *", "month value 0 is out of range 1-12"),
    ("0 0 * * 8", "day-of-week value 8 is out of range 0-7"),
    ("0 0-60 * * *", "hour value 60 is out of range 0-23"),
    ("*/0 * * * *", "step 0 in the minute field: a step must be greater than 0"),
    ("0 1-5/0 * * *", "step 0 in the hour field"),
    ("H * * * *", "hashed ('H') and random ('R') values are not supported"),
    ("H/15 * * * *", "hashed ('H')"),
    ("0 H(0-5) * * *", "hashed ('H')"),
    ("R * * * *", "random ('R')"),
    ("0 0 * * L5", "has no EventBridge equivalent"),
    ("0 0 * * 5L", "has no EventBridge equivalent"),
    ("0 0 * * L", "has no EventBridge equivalent"),
    ("0 0 L * 5", "'L' cannot be combined with a restricted day-of-week"),
    ("0 0 L * 1-5", "'L' cannot be combined with a restricted day-of-week"),
    ("0 9 15W * 1", "'W' cannot be combined with a restricted day-of-week"),
    ("0 0 1 * 1#2", "'#' cannot be combined with a restricted day-of-month"),
    ("0 0 1,L * *", "'L' cannot be combined with other day-of-month values"),
    ("0 0 L-3 * *", "'L' (last day of the month) must stand alone"),
    ("0 0 1-L * *", "'L' (last day of the month) must stand alone"),
    ("0 0 LW * *", "'L' (last day of the month) must stand alone"),
    ("0 0 1,15W * *", "'W' (nearest weekday) takes a single day"),
    ("0 0 1-15W * *", "'W' (nearest weekday) takes a single day"),
    ("0 0 31W * *", "use a day from 1 to 28"),
    ("0 0 * * 1#2,3", "'d#n' terms cannot be mixed with plain day-of-week values"),
    ("0 0 * * 1#6", "the occurrence after '#' must be from 1 to 5"),
    ("0 0 * * 1-3#2", "'#' takes a weekday and an occurrence 1-5"),
    ("0 ? * * *", "'?' is only allowed in the day-of-month and day-of-week fields"),
    ("0 0 ?,1 * *", "'?' must stand alone in the day-of-month field"),
    ("a * * * *", "minute value 'a' is not a number"),
    ("0 0 * foo *", "unknown month 'FOO'"),
    ("0 0 * * funday", "unknown day-of-week 'FUNDAY'"),
    ("0 0 * mon *", "unknown month 'MON'"),
    ("1-2-3 * * * *", "'1-2-3' is not a valid minute value, range or step"),
    ("0,,5 * * * *", "empty value in the minute field"),
    ("-5 * * * *", "is not a valid minute value"),
    ("0\u00a09 * * * *", "unexpected whitespace U+00A0"),
    ("0\u00a09\u00a0*\u00a0*\u00a0*", "unexpected whitespace U+00A0"),
    ("0 0 * * ５", "unexpected character"),
    ("0 0 1# * *", "is not a valid day-of-month value"),
    ("0 " * 600, "longer than 1024 characters"),
]


@pytest.mark.parametrize(("expression", "reason"), REJECTIONS)
def test_rejection(expression: str, reason: str) -> None:
    with pytest.raises(InvalidCronError) as raised:
        parse(expression)
    assert not isinstance(raised.value, CronNeverFiresError)
    assert reason in raised.value.reason
    assert raised.value.expression == expression
    assert raised.value.field == "cron_expression"


def test_longest_translation_fits_eventbridge() -> None:
    # So the 256-character rule is a safety net: no 5-field expression reaches it.
    (translated,) = parse(LONGEST).eventbridge
    assert len(translated) == 238


def test_six_field_message_is_exact() -> None:
    with pytest.raises(InvalidCronError) as raised:
        parse("*/30 * * * * *")
    assert raised.value.reason == SIX_FIELDS


@pytest.mark.parametrize(
    ("expression", "timezone"),
    [
        ("0 9 31 2 *", "UTC"),
        ("0 0 30 2 *", "UTC"),
        ("0 0 31 4,6,9,11 *", "UTC"),
        ("0 0 30,31 feb *", "UTC"),
        # Well-formed, but every fire falls in New York's spring-forward gap.
        ("30 2 * 3 0#2", NY),
    ],
)
def test_never_fires(expression: str, timezone: str) -> None:
    with pytest.raises(CronNeverFiresError) as raised:
        parse(expression, timezone)
    assert raised.value.reason == "never fires"


def test_dst_gap_only_expression_is_valid_where_the_gap_does_not_exist() -> None:
    fire = parse("30 2 * 3 0#2", "UTC").next_fire(utc(2026, 1, 1))
    assert fire == utc(2026, 3, 8, 2, 30)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 0 29 2 *", utc(2026, 1, 1), utc(2028, 2, 29)),
        ("0 0 29 2 *", utc(2096, 3, 1), utc(2104, 2, 29)),  # 2100 is not a leap year
        # February with five Mondays: February 29 on a Monday.
        ("0 0 * 2 1#5", utc(2026, 1, 1), utc(2044, 2, 29)),
        ("0 0 * 2 1#5", utc(2072, 3, 1), utc(2112, 2, 29)),  # a 40-year gap
    ],
)
def test_rare_expressions_fire(expression: str, after: datetime, expected: datetime) -> None:
    assert parse(expression).next_fire(after) == expected


# --- timezones ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["UTC", NY, LORD_HOWE, "Etc/GMT+5", "US/Eastern", "EST5EDT"])
def test_timezone_accepted(name: str) -> None:
    assert load_timezone(name).key == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "local",
        "localtime",
        "posixrules",
        "Factory",
        "america/new_york",
        "utc",
        "Mars/Olympus_Mons",
        "../etc/passwd",
        "/usr/share/zoneinfo/UTC",
        "America/../UTC",
        "posix/UTC",
        "right/UTC",
        "America/New_York ",
        "A" * 51,
    ],
)
def test_timezone_rejected(name: str) -> None:
    with pytest.raises(InvalidTimezoneError) as raised:
        load_timezone(name)
    assert raised.value.timezone == name
    with pytest.raises(InvalidTimezoneError):
        parse("0 9 * * *", name)


# --- fire times ---------------------------------------------------------------------------------


def test_next_fire_is_aware_in_the_schedule_timezone() -> None:
    fire = parse("0 9 * * *", SHANGHAI).next_fire(utc(2026, 1, 1))
    assert fire is not None
    assert fire.isoformat() == "2026-01-01T09:00:00+08:00"
    assert fire.tzinfo == ZoneInfo(SHANGHAI)


def test_next_fire_is_strictly_after() -> None:
    schedule = parse("0 9 * * *", SHANGHAI)
    assert schedule.next_fire(local(SHANGHAI, 2026, 1, 1, 9)) == local(SHANGHAI, 2026, 1, 2, 9)
    assert schedule.next_fire(local(SHANGHAI, 2026, 1, 1, 8, 59, 59)) == local(
        SHANGHAI, 2026, 1, 1, 9
    )


def test_next_fires_and_fires_between() -> None:
    schedule = parse("0 */6 * * *")
    assert iso(schedule.next_fires(utc(2026, 1, 1), 3)) == [
        "2026-01-01T06:00:00+00:00",
        "2026-01-01T12:00:00+00:00",
        "2026-01-01T18:00:00+00:00",
    ]
    assert schedule.next_fires(utc(2026, 1, 1), 0) == []
    # start excluded, end included
    between = list(schedule.fires_between(utc(2026, 1, 1, 6), utc(2026, 1, 2, 0)))
    assert between == [utc(2026, 1, 1, 12), utc(2026, 1, 1, 18), utc(2026, 1, 2)]
    assert list(schedule.fires_between(utc(2026, 1, 2), utc(2026, 1, 1))) == []


def test_naive_datetimes_are_refused() -> None:
    schedule = parse("0 9 * * *")
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_fire(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.fires_at(datetime(2026, 1, 1, 9))


def test_vixie_or_fires_on_either_day() -> None:
    # 2026-06-15 is both a Monday and the 15th: it fires once.
    fires = parse("0 0 1,15 * 1").fires_between(utc(2026, 5, 31), utc(2026, 6, 16))
    assert [fire.day for fire in fires] == [1, 8, 15]


def test_specials_fire_where_expected() -> None:
    assert parse("0 0 L 2 *").next_fires(utc(2027, 1, 1), 2) == [
        utc(2027, 2, 28),
        utc(2028, 2, 29),
    ]
    # 2026-08-15 is a Saturday, 2026-03-15 a Sunday, 2026-08-01 a Saturday.
    assert parse("0 0 15W 8 *").next_fire(utc(2026, 1, 1)) == utc(2026, 8, 14)
    assert parse("0 0 15W 3 *").next_fire(utc(2026, 1, 1)) == utc(2026, 3, 16)
    assert parse("0 0 1W 8 *").next_fire(utc(2026, 1, 1)) == utc(2026, 8, 3)
    assert parse("0 0 * * 5#3").next_fire(utc(2026, 3, 1)) == utc(2026, 3, 20)


# --- DST ----------------------------------------------------------------------------------------

DST_CASES = [
    # New York springs forward 2026-03-08 02:00 -> 03:00: 02:30 does not exist and is skipped.
    (
        "30 2 * * *",
        NY,
        (2026, 3, 7),
        (2026, 3, 10),
        ["2026-03-07T02:30:00-05:00", "2026-03-09T02:30:00-04:00"],
    ),
    # New York falls back 2026-11-01 02:00 -> 01:00: 01:30 happens twice and fires once, first.
    (
        "30 1 * * *",
        NY,
        (2026, 10, 31, 12),
        (2026, 11, 2, 12),
        ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
    ),
    # Hourly across the fall-back: the repeated 01:00 does not fire again.
    (
        "0 * * * *",
        NY,
        (2026, 11, 1, 0),
        (2026, 11, 1, 3),
        ["2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"],
    ),
    # Hourly across the spring-forward: 02:00 does not exist.
    (
        "0 * * * *",
        NY,
        (2026, 3, 8, 0),
        (2026, 3, 8, 4),
        ["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"],
    ),
    # Lord Howe shifts by 30 minutes. Spring forward 2026-10-04 02:00 -> 02:30.
    (
        "*/15 * * * *",
        LORD_HOWE,
        (2026, 10, 4, 1, 30),
        (2026, 10, 4, 2, 45),
        ["2026-10-04T01:45:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00"],
    ),
    # Lord Howe falls back 2026-04-05 02:00 -> 01:30: 01:30 and 01:45 fire once.
    (
        "*/15 * * * *",
        LORD_HOWE,
        (2026, 4, 5, 1, 15),
        (2026, 4, 5, 2, 15),
        [
            "2026-04-05T01:30:00+11:00",
            "2026-04-05T01:45:00+11:00",
            "2026-04-05T02:00:00+10:30",
            "2026-04-05T02:15:00+10:30",
        ],
    ),
    # London springs forward 2026-03-29 01:00 -> 02:00 and falls back 2026-10-25 02:00 -> 01:00.
    (
        "30 1 * * *",
        LONDON,
        (2026, 3, 28),
        (2026, 3, 31),
        ["2026-03-28T01:30:00+00:00", "2026-03-30T01:30:00+01:00"],
    ),
    (
        "30 1 * * *",
        LONDON,
        (2026, 10, 24, 12),
        (2026, 10, 26, 12),
        ["2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00"],
    ),
    # Shanghai has no DST.
    (
        "0 9 * * *",
        SHANGHAI,
        (2026, 3, 7),
        (2026, 3, 9),
        ["2026-03-07T09:00:00+08:00", "2026-03-08T09:00:00+08:00"],
    ),
]


@pytest.mark.parametrize(("expression", "timezone", "start", "end", "expected"), DST_CASES)
def test_dst(
    expression: str,
    timezone: str,
    start: tuple[int, ...],
    end: tuple[int, ...],
    expected: list[str],
) -> None:
    schedule = parse(expression, timezone)
    # start < fire <= end, both local wall times (fold=0)
    start_at = local(timezone, *start)
    end_at = local(timezone, *end)
    fires = list(schedule.fires_between(start_at, end_at))
    assert iso(fires) == expected
    assert all(fire.tzinfo == ZoneInfo(timezone) and fire.fold == 0 for fire in fires)


def test_repeated_time_fires_at_its_first_occurrence() -> None:
    fire = parse("30 1 1 11 *", NY).next_fire(utc(2026, 10, 1))
    assert fire is not None
    assert fire.astimezone(UTC) == utc(2026, 11, 1, 5, 30)


# --- fires_at -----------------------------------------------------------------------------------

FIRES_AT = [
    ("0 9 * * *", NY, utc(2026, 6, 1, 13), True),
    ("0 9 * * *", NY, local(NY, 2026, 6, 1, 9), True),
    ("0 9 * * *", NY, local(SHANGHAI, 2026, 6, 1, 21), True),
    ("0 9 * * *", NY, utc(2026, 6, 1, 13, 0, 0, 500_000), True),  # sub-second part ignored
    ("0 9 * * *", NY, utc(2026, 6, 1, 13, 0, 30), False),
    ("0 9 * * *", NY, utc(2026, 6, 1, 13, 1), False),
    ("0 9 * * *", NY, utc(2026, 6, 1, 9), False),  # 09:00 UTC is not 09:00 in New York
    ("0 10 * * *", NY, utc(2026, 6, 1, 13), False),  # a stale fire of the previous definition
    ("0 9 * * 1-5", NY, utc(2026, 6, 6, 13), False),  # a Saturday
    ("0 9 * * 1-5", NY, utc(2026, 6, 5, 13), True),
    ("30 1 * * *", NY, utc(2026, 11, 1, 5, 30), True),  # first 01:30 of the fall-back
    ("30 1 * * *", NY, utc(2026, 11, 1, 6, 30), False),  # second 01:30: not a fire time
    ("0 0 1,15 * 1", "UTC", utc(2026, 6, 8), True),  # OR: a Monday
    ("0 0 1,15 * 1", "UTC", utc(2026, 6, 9), False),
    ("0 0 L * *", "UTC", utc(2026, 2, 28), True),
    ("0 0 L * *", "UTC", utc(2026, 3, 30), False),
]


@pytest.mark.parametrize(("expression", "timezone", "instant", "expected"), FIRES_AT)
def test_fires_at(expression: str, timezone: str, instant: datetime, expected: bool) -> None:
    assert parse(expression, timezone).fires_at(instant) is expected


# --- minimum interval ---------------------------------------------------------------------------

MIN_INTERVALS = [
    ("0 * * * *", "UTC", timedelta(minutes=60)),
    ("*/15 * * * *", "UTC", timedelta(minutes=15)),
    ("*/7 * * * *", "UTC", timedelta(minutes=4)),  # :56 -> :00
    ("* * * * *", NY, timedelta(minutes=1)),
    ("0,30 0 * * *", "UTC", timedelta(minutes=30)),
    ("0 9 * * 1", "UTC", timedelta(days=7)),
    ("0 23 * * *", "UTC", timedelta(hours=24)),
    ("0 0,23 * * *", "UTC", timedelta(hours=1)),  # 23:00 -> 00:00 across midnight
    ("30 1,3 * * *", NY, timedelta(hours=1)),  # 01:30 EST -> 03:30 EDT on spring-forward day
    ("30 1,3 * * *", "UTC", timedelta(hours=2)),
    ("30 1,3 * * *", SHANGHAI, timedelta(hours=2)),
    ("0 12 * * *", NY, timedelta(hours=23)),
    ("0 9 * * 1", NY, timedelta(days=7, hours=-1)),
    ("45 1,2 * * *", LORD_HOWE, timedelta(minutes=30)),  # a 30-minute shift
    ("45 1,2 * * *", "UTC", timedelta(minutes=60)),
    ("0 1,3 9 3 *", NY, timedelta(hours=1)),  # March 9 is the transition day in some years
    ("0 0 1 * *", "UTC", timedelta(days=28)),
    ("0 0 L * *", "UTC", timedelta(days=28)),
    ("0 0 1,15 * 1", "UTC", timedelta(days=1)),
    ("0 0 29 2 *", "UTC", timedelta(days=1461)),
    ("0 0 * 2 1#5", "UTC", timedelta(days=4382)),  # 12 years across a century's lost leap day
    ("@yearly", "UTC", timedelta(days=365)),
]


@pytest.mark.parametrize(("expression", "timezone", "expected"), MIN_INTERVALS)
def test_min_interval(expression: str, timezone: str, expected: timedelta) -> None:
    assert parse(expression, timezone).min_interval() == expected


def test_min_interval_check() -> None:
    parse("0 * * * *").check_min_interval(60)
    parse("@daily").check_min_interval(24 * 60)
    with pytest.raises(IntervalTooShortError) as raised:
        parse("*/15 * * * *").check_min_interval(60)
    assert (raised.value.min_minutes, raised.value.actual_minutes) == (60, 15)
    with pytest.raises(IntervalTooShortError) as raised:
        parse("30 1,3 * * *", NY).check_min_interval(90)
    assert raised.value.actual_minutes == 60
    parse("* * * * *").check_min_interval(0)
    parse("* * * * *").check_min_interval(-5)


def test_min_interval_does_not_depend_on_now() -> None:
    # Shannon compared the next two fires after "now", so 0,30 0 * * * passed at 00:10 and
    # failed at 12:00. Here the gap is a property of the expression.
    with pytest.raises(IntervalTooShortError) as raised:
        parse("0,30 0 * * *").check_min_interval(60)
    assert raised.value.actual_minutes == 30


# --- description and caching ----------------------------------------------------------------------

DESCRIPTIONS = [
    ("0 9 * * 1-5", "At 09:00 AM, Monday through Friday"),
    ("0 9 * * *", "At 09:00 AM"),
    ("*/15 * * * *", "Every 15 minutes"),
    ("0 0 L * *", "At 12:00 AM, on the last day of the month"),
    ("0 0 W15 * *", "At 12:00 AM, on the weekday nearest day 15 of the month"),
    ("0 9 1 * 1", "At 09:00 AM, on day 1 of the month, or on Monday"),
    ("0 0 1 * 0-6", "At 12:00 AM"),
    ("0 0 * * 0,7", "At 12:00 AM, only on Sunday"),
    ("@weekly", "At 12:00 AM, only on Sunday"),
    (
        "0 0 * * mon#1,fri#3",
        "At 12:00 AM, on the first Monday of the month; "
        "and at 12:00 AM, on the third Friday of the month",
    ),
]


@pytest.mark.parametrize(("expression", "description"), DESCRIPTIONS)
def test_describe(expression: str, description: str) -> None:
    assert parse(expression).describe() == description


def test_parse_is_cached() -> None:
    assert parse("0 9 * * 1-5", NY) is parse("0 9 * * 1-5", NY)
    assert parse("0 9 * * 1-5", NY) is not parse("0 9 * * 1-5", LONDON)


# --- properties ---------------------------------------------------------------------------------


def _join(values: list[int]) -> str:
    return ",".join(str(value) for value in values)


def _field(low: int, high: int, *, step_floor: int) -> st.SearchStrategy[str]:
    """Values, lists, (wrapped) ranges and steps of one numeric field."""
    value = st.integers(low, high)
    return st.one_of(
        value.map(str),
        st.lists(value, min_size=2, max_size=3, unique=True).map(_join),
        st.tuples(value, value).map(lambda pair: f"{pair[0]}-{pair[1]}"),
        st.tuples(value, value, st.integers(step_floor, high)).map(
            lambda triple: f"{triple[0]}-{triple[1]}/{triple[2]}"
        ),
        st.integers(step_floor, high).map(lambda step: f"*/{step}"),
        st.tuples(value, st.integers(step_floor, high)).map(lambda pair: f"{pair[0]}/{pair[1]}"),
    )


# Hours 1-3 are where the DST transitions of the test zones happen.
HOURS = st.one_of(
    _field(0, 23, step_floor=6),
    st.sampled_from(["1", "2", "1,3", "0-3", "1-2", "22-2/2", "0,2", "2,3"]),
)
MINUTES = st.one_of(_field(0, 59, step_floor=15), st.sampled_from(["0", "30", "0,30", "45"]))
DENSE_MINUTES = st.sampled_from(["*", "*/5", "*/10", "0-29", "10-50/7", "45-15"])
DENSE_HOURS = st.sampled_from(["*", "*/2", "0-5", "20-4", "1-3"])
MONTHS = st.one_of(
    st.just("*"),
    _field(1, 12, step_floor=2),
    st.sampled_from(["jan", "feb", "mar-apr", "oct-nov", "nov-feb", "jan-jan", "*/3"]),
)
PLAIN_DOM = st.one_of(
    _field(1, 31, step_floor=5), st.sampled_from(["1-31", "*/1", "29", "30,31", "31"])
)
PLAIN_DOW = st.one_of(
    _field(0, 7, step_floor=2),
    st.sampled_from(["mon-fri", "sat,sun", "fri-mon", "0,7", "sun", "0-6", "6/1", "*/2"]),
)
NTH = st.lists(
    st.tuples(st.sampled_from(["0", "3", "7", "mon", "fri"]), st.integers(1, 5)),
    min_size=1,
    max_size=2,
).map(lambda terms: ",".join(f"{day}#{nth}" for day, nth in terms))
MACROS = st.sampled_from(["@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly"])


@st.composite
def day_fields(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(st.sampled_from(["any", "dom", "dow", "or", "last", "nearest", "nth"]))
    unrestricted = st.sampled_from(["*", "?"])
    if kind == "any":
        return draw(unrestricted), draw(unrestricted)
    if kind == "dom":
        return draw(PLAIN_DOM), draw(unrestricted)
    if kind == "dow":
        return draw(unrestricted), draw(PLAIN_DOW)
    if kind == "or":
        return draw(PLAIN_DOM), draw(PLAIN_DOW)
    if kind == "last":
        return "L", draw(unrestricted)
    if kind == "nearest":
        day = draw(st.integers(1, 28))
        return draw(st.sampled_from([f"{day}W", f"W{day}"])), draw(unrestricted)
    return draw(unrestricted), draw(NTH)


@st.composite
def expressions(draw: st.DrawFn, *, dense: bool = True) -> str:
    if draw(st.integers(0, 19)) == 0:
        return draw(MACROS)
    if dense and draw(st.integers(0, 5)) == 0:
        minutes, hours = draw(DENSE_MINUTES), draw(DENSE_HOURS)
    else:
        minutes, hours = draw(MINUTES), draw(HOURS)
    dom, dow = draw(day_fields())
    return f"{minutes} {hours} {dom} {draw(MONTHS)} {dow}"


def _parse_or_reject(expression: str, timezone: str) -> CronSchedule:
    try:
        return parse(expression, timezone)
    except CronNeverFiresError:
        assume(False)
        raise


def _fires_per_day(expression: str) -> int:
    expanded, _ = croniter.expand(expression)
    minutes = 60 if expanded[0] == ["*"] else len(expanded[0])
    hours = 24 if expanded[1] == ["*"] else len(expanded[1])
    return minutes * hours


@functools.cache
def _transitions(timezone: str, year: int) -> tuple[datetime, ...]:
    """Local-offset changes of ``timezone`` in ``year``, to the hour, by brute force."""
    tz = ZoneInfo(timezone)

    def offset(moment: datetime) -> timedelta | None:
        return moment.astimezone(tz).utcoffset()

    found: list[datetime] = []
    day = utc(year, 1, 1)
    while day.year == year:
        following = day + timedelta(days=1)
        if offset(following) != offset(day):
            hour = day
            while offset(hour) == offset(day):
                hour += timedelta(hours=1)
            found.append(hour)
        day = following
    return tuple(found)


FIRE_BUDGET = 1_500  # fires compared per example, to keep the file fast


def _windows(expression: str, timezone: str, year: int) -> list[tuple[datetime, datetime]]:
    """One local calendar year when that is cheap enough, else a few days around each DST
    transition of that year (and a few ordinary days)."""
    per_day = _fires_per_day(expression)
    if per_day * 366 <= FIRE_BUDGET:
        return [(local(timezone, year, 1, 1), local(timezone, year + 1, 1, 1))]
    half = timedelta(days=max(1, FIRE_BUDGET // (per_day * 6)))
    centres = [*_transitions(timezone, year), utc(year, 6, 10, 12)]
    return [(centre - half, centre + half) for centre in centres]


def _oracle(schedule: CronSchedule, start: datetime, end: datetime) -> list[datetime]:
    tz = ZoneInfo(schedule.timezone)
    union = {
        fire.astimezone(UTC)
        for translated in schedule.eventbridge
        for fire in EventBridgeCron.parse(translated).fires_between(start, end, tz)
    }
    return sorted(union)  # dedupe = agentcron's claim on (schedule, scheduled_time)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    expression=expressions(),
    timezone=st.sampled_from(TIMEZONES),
    year=st.sampled_from([2025, 2026, 2027, 2028]),
    position=st.floats(0, 1),
)
def test_engine_fires_exactly_like_its_eventbridge_translation(
    expression: str, timezone: str, year: int, position: float
) -> None:
    schedule = _parse_or_reject(expression, timezone)
    tz = ZoneInfo(timezone)
    for start, end in _windows(expression, timezone, year):
        ours = list(schedule.fires_between(start, end))
        instants = [fire.astimezone(UTC) for fire in ours]
        assert instants == _oracle(schedule, start, end)
        assert all(fire.tzinfo is tz and fire.fold == 0 for fire in ours)

        # fires_at: every fire is one; a minute or an hour off is one only if it is listed
        # (an hour after a fall-back fire is the repeated wall time, which is not a fire).
        listed = set(instants)
        for instant in instants[:20]:
            assert schedule.fires_at(instant)
            for delta in (timedelta(minutes=-1), timedelta(minutes=1), timedelta(hours=1)):
                if start < instant + delta <= end:
                    assert schedule.fires_at(instant + delta) is (instant + delta in listed)

        gaps = [later - earlier for earlier, later in pairwise(instants)]
        if gaps:
            assert schedule.min_interval() <= min(gaps)

        # next_fire from anywhere in the window: fires_between's first, and the oracle's next.
        after = start + (end - start) * position
        expected = next(schedule.fires_between(after, after + timedelta(days=50 * 366)), None)
        assert schedule.next_fire(after) == expected
        later_fires = [instant for instant in instants if instant > after]
        if later_fires:
            assert expected is not None
            # In UTC: PEP 495 makes a repeated-hour time unequal to any other zone's datetime.
            assert expected.astimezone(UTC) == later_fires[0]
        oracle = [
            EventBridgeCron.parse(translated).next_fire(after, tz)
            for translated in schedule.eventbridge
        ]
        assert expected == min((fire for fire in oracle if fire is not None), default=None)

        # The backward walk (used for DST gaps in min_interval) mirrors the forward one.
        past_end = end.astimezone(UTC).replace(tzinfo=None) + timedelta(seconds=1)
        backward = [utc_fire for _, utc_fire in islice(schedule._backward(past_end), 5)]
        tail = [instant.replace(tzinfo=None) for instant in reversed(instants[-5:])]
        assert backward[: len(tail)] == tail
    schedule.describe()  # never raises


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    minutes=MINUTES,
    hours=HOURS,
    dow=st.one_of(st.sampled_from(["*", "?"]), PLAIN_DOW),
    timezone=st.sampled_from(TIMEZONES),
)
def test_min_interval_is_the_smallest_gap_of_a_year(
    minutes: str, hours: str, dow: str, timezone: str
) -> None:
    # With any day of the month and every month, the fire pattern around each DST transition is
    # the same every year, so one year's fires show the true minimum.
    expression = f"{minutes} {hours} * * {dow}"
    schedule = _parse_or_reject(expression, timezone)
    start, end = local(timezone, 2026, 1, 1), local(timezone, 2027, 1, 1)
    fires = [fire.astimezone(UTC) for fire in schedule.fires_between(start, end)]
    assert schedule.min_interval() == min(b - a for a, b in pairwise(fires))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    expression=expressions(),
    start=st.datetimes(datetime(2025, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)),
)
def test_engine_agrees_with_croniter_in_utc(expression: str, start: datetime) -> None:
    # croniter is the authority on what an expression means; in UTC its DST rules play no part.
    schedule = _parse_or_reject(expression, "UTC")
    iterator = croniter(expression, start)
    try:
        expected = [iterator.get_next(datetime) for _ in range(12)]
    except CroniterBadDateError:  # croniter gives up on gaps over 50 years
        assume(False)
    assert schedule.next_fires(start, 12) == expected


def _day_count(year: int) -> int:
    return 366 if calendar.isleap(year) else 365


def _every_fire(schedule: CronSchedule, year: int) -> Iterator[datetime]:
    tz = ZoneInfo(schedule.timezone)
    return schedule.fires_between(
        datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)
    )


def test_daily_fires_once_a_day_through_dst_years() -> None:
    for timezone in TIMEZONES:
        for year in (2026, 2027):
            fires = list(_every_fire(parse("0 12 * * *", timezone), year))
            assert len(fires) == _day_count(year)
