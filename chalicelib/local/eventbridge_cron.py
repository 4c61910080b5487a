"""An independent evaluator of EventBridge Scheduler ``cron()`` expressions.

The local dispatcher uses it to fire schedules exactly as EventBridge Scheduler would, and the
tests use it as an oracle for the cron engine's translations. To be a real second opinion it is
written from EventBridge's documentation
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html), and shares no
code with ``chalicelib.domain.cron`` and nothing with croniter.

Syntax: ``cron(minutes hours day-of-month month day-of-week year)``

=============  ===========================  ======================
field          values                       special characters
=============  ===========================  ======================
minutes        0-59                         ``, - * /``
hours          0-23                         ``, - * /``
day-of-month   1-31                         ``, - * / ? L W``
month          1-12 or JAN-DEC              ``, - * /``
day-of-week    1-7 or SUN-SAT (1 = SUN)     ``, - * ? L #``
year           1970-2199                    ``, - * /``
=============  ===========================  ======================

Exactly one of day-of-month and day-of-week is ``?``; the other fields combine with AND. ``a/n``
means a, a+n, ... up to the field's maximum (``*/n`` starts at the minimum). ``L`` alone in
day-of-month is the month's last day; ``nW`` the weekday (Mon-Fri) nearest day n, never leaving
the month; ``d#n`` the n-th weekday d (n = 1-5); only one ``#`` term is allowed.

Where the documentation is silent we choose the stricter or the Quartz reading (EventBridge's
syntax is Quartz's) and say so:

- ``L`` alone in day-of-week: "the last day of the week", i.e. Saturday (Quartz: ``L`` = 7).
- ``dL`` in day-of-week: the last weekday d of the month (Quartz); the AWS page does not spell
  it out. agentcron never emits it.
- ``nW`` where the month has no day n: no fire that month (undocumented; agentcron never emits a
  day above 28). ``LW``, ``L-n`` and ``/`` in day-of-week are not in the AWS page: rejected.
- A reversed range (``FRI-MON``) is rejected: the page does not say whether it wraps.
- Whitespace between fields may be any run of blanks.

Time zones follow Scheduler's documented DST behaviour: a wall-clock time that does not exist
(spring forward) is skipped, and one that occurs twice (fall back) fires once, at its first
occurrence. A wall time is resolved by a round trip through UTC: if ``fold=0`` does not come back
unchanged, the time does not exist.

``next_fire`` skips whole years, months and days that cannot match, and on the first day skips
wall times that are certainly past without resolving them, so it costs little even for
``cron(* * * * ? *)``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

__all__ = ["EventBridgeCron"]

MAX_EXPRESSION_LENGTH: Final = 256
FIRST_YEAR: Final = 1970
LAST_YEAR: Final = 2199
_MONTH_NAMES: Final = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
_DAY_NAMES: Final = {
    name: number
    for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)
}
_SATURDAY: Final = 7
_NO_NAMES: Final[dict[str, int]] = {}
_EXPRESSION_RE: Final = re.compile(r"cron\((?P<body>[^()]*)\)")
_NEAREST_RE: Final = re.compile(r"(?P<day>[0-9]{1,2})W")
_LAST_OF_RE: Final = re.compile(r"(?P<day>[0-9]|[A-Z]{3})L")
_NTH_RE: Final = re.compile(r"(?P<day>[0-9]|[A-Z]{3})#(?P<nth>[0-9])")
# Offsets are sampled this far either side of a search start to bound how far the wall clock
# can be from the start's own; tzdata has no two transitions this close together.
_OFFSET_PROBE: Final = timedelta(days=2)


def _number(token: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    if token in names:
        return names[token]
    if not token.isascii() or not token.isdigit():
        raise ValueError(f"invalid {field} value {token!r}")
    value = int(token)
    if not low <= value <= high:
        raise ValueError(f"{field} value {value} is outside {low}-{high}")
    return value


def _values(
    text: str,
    low: int,
    high: int,
    field: str,
    *,
    names: dict[str, int] = _NO_NAMES,
    steps: bool = True,
) -> frozenset[int]:
    """Parse a field made of ``, - * /`` terms."""
    found: set[int] = set()
    for term in text.split(","):
        if not term:
            raise ValueError(f"empty term in the {field} field")
        base, slash, step_text = term.partition("/")
        step = 1
        if slash:
            if not steps:
                raise ValueError(f"'/' is not allowed in the {field} field")
            if not step_text.isascii() or not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"invalid increment {step_text!r} in the {field} field")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            start_text, _, end_text = base.partition("-")
            first = _number(start_text, low, high, names, field)
            last = _number(end_text, low, high, names, field)
            if first > last:
                raise ValueError(f"reversed range {base!r} in the {field} field")
        else:
            first = _number(base, low, high, names, field)
            last = high if slash else first
        found.update(range(first, last + 1, step))
    return frozenset(found)


def _eventbridge_weekday(day: date) -> int:
    return (day.weekday() + 1) % 7 + 1  # Monday is 0 in Python and 2 in EventBridge


def _nearest_weekday(year: int, month: int, day: int, length: int) -> int | None:
    if day > length:
        return None
    weekday = calendar.weekday(year, month, day)  # Monday = 0
    if weekday == 5:  # Saturday: the Friday before, unless that is last month
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: the Monday after, unless that is next month
        return day + 1 if day < length else day - 2
    return day


def _offset(moment: datetime) -> timedelta:
    return moment.utcoffset() or timedelta(0)


def _resolve(wall: datetime, tz: ZoneInfo) -> datetime | None:
    """The instant EventBridge fires for naive local ``wall``: None in a DST gap; the first
    occurrence of a repeated time."""
    back = wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)
    if back.replace(tzinfo=None) != wall:
        return None
    return back


@dataclass(frozen=True)
class EventBridgeCron:
    """A parsed EventBridge ``cron()`` expression; timezone-independent until evaluated."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    # Exactly one of the two day rules is in force: ``day_of_month`` when day-of-week is '?'.
    use_day_of_month: bool
    days_of_month: frozenset[int]
    last_day_of_month: bool
    nearest_weekday_to: int | None
    days_of_week: frozenset[int]  # EventBridge numbering, 1 = SUN
    last_weekday_of_month: int | None  # 'dL'
    nth_weekday: tuple[int, int] | None  # 'd#n' as (d, n)

    @classmethod
    def parse(cls, expression: str) -> EventBridgeCron:
        """Parse ``cron(...)``; raise :class:`ValueError` for what EventBridge would reject."""
        if len(expression) > MAX_EXPRESSION_LENGTH:
            raise ValueError(f"expression longer than {MAX_EXPRESSION_LENGTH} characters")
        match = _EXPRESSION_RE.fullmatch(expression.strip())
        if match is None:
            raise ValueError(f"not a cron(...) expression: {expression!r}")
        fields = match["body"].upper().split()
        if len(fields) != 6:
            raise ValueError(
                f"cron() takes 6 fields (minutes hours day-of-month month day-of-week year), "
                f"got {len(fields)}"
            )
        minute_text, hour_text, dom_text, month_text, dow_text, year_text = fields
        for text, field in (
            (minute_text, "minutes"),
            (hour_text, "hours"),
            (month_text, "month"),
            (year_text, "year"),
        ):
            if "?" in text:
                raise ValueError(f"'?' is not allowed in the {field} field")
        if (dom_text == "?") == (dow_text == "?"):
            raise ValueError("exactly one of day-of-month and day-of-week must be '?'")

        days_of_month: frozenset[int] = frozenset()
        last_day = False
        nearest: int | None = None
        if dom_text != "?":
            nearest_match = _NEAREST_RE.fullmatch(dom_text)
            if dom_text == "L":
                last_day = True
            elif nearest_match is not None:
                nearest = _number(nearest_match["day"], 1, 31, _NO_NAMES, "day-of-month")
            elif "L" in dom_text or "W" in dom_text:
                raise ValueError(f"unsupported day-of-month {dom_text!r}: use L or nW alone")
            else:
                days_of_month = _values(dom_text, 1, 31, "day-of-month")

        days_of_week: frozenset[int] = frozenset()
        last_weekday: int | None = None
        nth: tuple[int, int] | None = None
        if dow_text != "?":
            last_match = _LAST_OF_RE.fullmatch(dow_text)
            nth_match = _NTH_RE.fullmatch(dow_text)
            if dow_text == "L":
                days_of_week = frozenset({_SATURDAY})
            elif last_match is not None:
                last_weekday = _number(last_match["day"], 1, 7, _DAY_NAMES, "day-of-week")
            elif nth_match is not None:
                weekday = _number(nth_match["day"], 1, 7, _DAY_NAMES, "day-of-week")
                occurrence = int(nth_match["nth"])
                if not 1 <= occurrence <= 5:
                    raise ValueError(f"'#{occurrence}': the occurrence must be 1-5")
                nth = (weekday, occurrence)
            elif "#" in dow_text:
                raise ValueError("only one 'd#n' term is allowed in day-of-week, and alone")
            elif "L" in dow_text:
                raise ValueError(f"unsupported day-of-week {dow_text!r}: use L or dL alone")
            else:
                days_of_week = _values(dow_text, 1, 7, "day-of-week", names=_DAY_NAMES, steps=False)

        return cls(
            expression=expression,
            minutes=_values(minute_text, 0, 59, "minutes"),
            hours=_values(hour_text, 0, 23, "hours"),
            months=_values(month_text, 1, 12, "month", names=_MONTH_NAMES),
            years=_values(year_text, FIRST_YEAR, LAST_YEAR, "year"),
            use_day_of_month=dom_text != "?",
            days_of_month=days_of_month,
            last_day_of_month=last_day,
            nearest_weekday_to=nearest,
            days_of_week=days_of_week,
            last_weekday_of_month=last_weekday,
            nth_weekday=nth,
        )

    # -- evaluation ---------------------------------------------------------------------------

    def _day_matches(self, day: date, length: int) -> bool:
        if self.use_day_of_month:
            if self.last_day_of_month:
                return day.day == length
            if self.nearest_weekday_to is not None:
                return day.day == _nearest_weekday(
                    day.year, day.month, self.nearest_weekday_to, length
                )
            return day.day in self.days_of_month
        weekday = _eventbridge_weekday(day)
        if self.nth_weekday is not None:
            wanted, occurrence = self.nth_weekday
            return weekday == wanted and (day.day - 1) // 7 + 1 == occurrence
        if self.last_weekday_of_month is not None:
            return weekday == self.last_weekday_of_month and day.day + 7 > length
        return weekday in self.days_of_week

    def _days(self, start: date) -> Iterator[date]:
        """Matching dates from ``start`` on, skipping years and months that cannot match."""
        months = sorted(self.months)
        for year in range(max(start.year, FIRST_YEAR), LAST_YEAR + 1):
            if year not in self.years:
                continue
            for month in months:
                if (year, month) < (start.year, start.month):
                    continue
                length = calendar.monthrange(year, month)[1]
                first = start.day if (year, month) == (start.year, start.month) else 1
                for day_number in range(first, length + 1):
                    day = date(year, month, day_number)
                    if self._day_matches(day, length):
                        yield day

    def _times(self) -> list[tuple[int, int]]:
        return sorted((hour, minute) for hour in self.hours for minute in self.minutes)

    def _fires_after(self, after: datetime, tz: ZoneInfo) -> Iterator[datetime]:
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError("datetimes must be timezone-aware")
        after_utc = after.astimezone(UTC)
        local = after_utc.astimezone(tz)
        wall_after = local.replace(tzinfo=None)
        # A wall time more than the local offset swing before `after` cannot be after it.
        offset = _offset(local)
        swing = max(
            abs(_offset((after_utc + delta).astimezone(tz)) - offset)
            for delta in (-_OFFSET_PROBE, _OFFSET_PROBE)
        )
        earliest_wall = wall_after - swing - timedelta(minutes=1)
        times = self._times()
        # The day before too: a fall-back at midnight runs the wall clock back into it.
        for day in self._days(local.date() - timedelta(days=1)):
            for hour, minute in times:
                wall = datetime(day.year, day.month, day.day, hour, minute)
                if wall < earliest_wall:
                    continue
                fire = _resolve(wall, tz)
                if fire is not None and fire.astimezone(UTC) > after_utc:
                    yield fire

    def next_fire(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        """The first fire strictly after ``after``, as an aware datetime in ``tz``; None when
        the expression has no fire left before the end of 2199."""
        return next(self._fires_after(after, tz), None)

    def fires_between(self, start: datetime, end: datetime, tz: ZoneInfo) -> Iterator[datetime]:
        """Fires ``t`` with ``start < t <= end``, chronological, aware in ``tz``."""
        if end.tzinfo is None or end.utcoffset() is None:
            raise ValueError("datetimes must be timezone-aware")
        end_utc = end.astimezone(UTC)
        for fire in self._fires_after(start, tz):
            if fire.astimezone(UTC) > end_utc:
                return
            yield fire
