"""The cron engine: the one place that understands cron expressions.

Everything agentcron says about a cron expression comes from here: whether it is valid, when it
fires (``next_run_at``, previews, the trigger's stale-fire check), its minimum interval, its
description and its EventBridge Scheduler translation. One module means validation, previews and
real firing cannot disagree. It is pure: no I/O, no boto3, no Chalice.

**Syntax.** Standard 5-field cron (``minute hour day-of-month month day-of-week``) with the
meaning croniter >= 7 gives it: names, ranges (reversed ones wrap), lists, steps, ``?`` read as
``*``, Sunday as 0 or 7, Vixie OR when both day fields are restricted (by croniter's rule: a field
is restricted when its *expansion* is not ``*``, so ``1-31`` or ``*/1`` in day-of-month next to a
restricted day-of-week still means OR). The macros ``@hourly`` ... ``@annually`` are accepted. So
are the specials that EventBridge can run: ``L`` and a single ``nW`` in day-of-month, ``d#n`` terms
in day-of-week, each only next to an unrestricted other day field. Fields are parsed by
``croniter.expand()``; the text is checked first so that every rejection names its reason.

**Deliberate restrictions** beyond croniter: seconds/year fields, ``@reboot``, ``TZ=`` prefixes,
``H``/``R`` hashes, croniter's ``L<d>`` (no EventBridge equivalent), ``L``/``W``/``#`` next to a
restricted other day field, ``L`` mixed with other days, ``W`` in a list or range, and ``nW`` with
n > 28: EventBridge does not document what ``31W`` does in a 30-day month (croniter clamps to the
last day), so we refuse rather than guess. Translations longer than 256 characters are refused
(a safety net: the longest translation of a 5-field expression is 238 characters).

**Fire times are enumerated by hand, not by iterating croniter**, because croniter's DST rules
differ from EventBridge Scheduler's, and EventBridge is what actually fires. In the schedule's
timezone a wall-clock time that does not exist (spring forward) is *skipped*, and one that occurs
twice (fall back) fires *once*, at its first occurrence (``fold=0``). This holds per wall-clock
time, so an hourly cron fires once in a repeated hour. We enumerate matching local dates month by
month (the matching days of a month depend only on its length and the weekday of its 1st, so they
are computed once per such "shape"), cross them with the sorted minute-of-day set, and map each
wall time to UTC with a per-day clock (one offset, or two with a cut-over point on the rare
transition day). A bisection on the first day skips times already past, so ``next_fire`` costs the
same for ``* * * * *`` as for ``@yearly``.

**Horizons.** The Gregorian calendar, weekdays included, repeats every 400 years (146,097 days =
20,871 weeks), so an expression that matches no date in 400 consecutive years matches none ever.
Searches (``next_fire``, the never-fires check) therefore look 400 years ahead; thanks to month
skipping that costs a few hundred month steps for the rarest expressions (``0 0 * 2 1#5`` fires
when February 29 is a Monday: gaps of 28 or 40 years). The never-fires check searches from
1 January of ``REFERENCE_YEAR``, so it also catches expressions whose only fire times fall in a DST
gap (``30 2 * 3 0#2`` in America/New_York).

**Minimum interval** is a property of the expression, not of "now", computed from the expanded
sets rather than by walking a year of fires: the minimum of (a) the intra-day gaps of the sorted
minute-of-day set, (b) the wrap-around gap ``first + g*24h - last``, where g is the smallest gap in
days between consecutive matching dates over a whole 400-year cycle (computed per "year type",
weekday of 1 January and leap or not: 14 year computations, then 400 cheap steps), and (c) the
*real* elapsed gap between the last fire before and the first fire at or after each
clocks-forward transition of the timezone in the ``DST_REFERENCE_YEARS`` years starting at
``REFERENCE_YEAR``. Only pairs straddling a transition differ from their wall-clock gap, and only
going forward can they shrink (going back, the real gap is the wall gap plus the shift), so (c)
is exact for every transition in that period. 28 years cover every weekday/leap-year alignment
of a rule such as "second Sunday of March", so under the timezone's current rules the result is
exact: ``30 1,3 * * *`` is 60 minutes in New York and 120 in UTC, ``0 1,3 9 3 *`` is 60 minutes in
New York because March 9 is the transition day in some years. The fixed period keeps validation
reproducible; zoneinfo extends the current rules into the future. (a) and (b) also count
wall-clock pairs that might only ever occur inside a DST gap, so any error is on the short side.
Cost: a few milliseconds; the transition scan is done once per timezone and process.
"""

from __future__ import annotations

import bisect
import calendar
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chalicelib.domain.errors import (
    CronNeverFiresError,
    IntervalTooShortError,
    InvalidCronError,
    InvalidTimezoneError,
)

__all__ = [
    "DST_REFERENCE_YEARS",
    "MAX_EVENTBRIDGE_EXPRESSION_LENGTH",
    "MAX_EXPRESSION_LENGTH",
    "MAX_TIMEZONE_LENGTH",
    "REFERENCE_YEAR",
    "SEARCH_HORIZON_YEARS",
    "CronSchedule",
    "load_timezone",
    "parse",
]

MAX_TIMEZONE_LENGTH: Final = 50  # ScheduleExpressionTimezone limit (botocore model)
MAX_EVENTBRIDGE_EXPRESSION_LENGTH: Final = 256  # ScheduleExpression limit
MAX_EXPRESSION_LENGTH: Final = 1024  # far above any sensible cron; bounds the parse cache
REFERENCE_YEAR: Final = 2026
DST_REFERENCE_YEARS: Final = 28  # the weekday/leap-year cycle within 1901-2099
SEARCH_HORIZON_YEARS: Final = 400  # one Gregorian cycle
_GREGORIAN_CYCLE_DAYS: Final = 146_097
_LAST_SEARCH_YEAR: Final = 9_998  # datetime stops at 9999; keep a day of slack
# Offsets are sampled this often to find transitions; tzdata has no two transitions this close.
_TRANSITION_SAMPLING: Final = timedelta(days=14)
_ONE_DAY: Final = timedelta(days=1)
_ONE_SECOND: Final = timedelta(seconds=1)
_NEVER: Final = 2 * 86_400  # a wall-clock second no day reaches

# --- timezones --------------------------------------------------------------------------------

_TZ_NAME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*")
# Present in tz databases but not places: "Factory" has no meaningful offset, "localtime" and
# "posixrules" are host-dependent links, posix/ and right/ are duplicate trees (right/ counts
# leap seconds, which no scheduler does).
_NOT_A_PLACE: Final = frozenset({"Factory", "localtime", "posixrules"})


@functools.cache
def _published_zone_names() -> frozenset[str] | None:
    """Names in the tzdata package's zone list: exact case, no host-specific links."""
    try:
        from importlib import resources

        text = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):  # tzdata is a runtime dependency; stay usable without
        return None
    return frozenset(text.split())


def load_timezone(name: str) -> ZoneInfo:
    """Return the IANA timezone ``name`` or raise :class:`InvalidTimezoneError`.

    Names are case-sensitive (``america/new_york`` is refused even on case-insensitive file
    systems), at most 50 characters (EventBridge's limit), and must be in tzdata's published zone
    list when the tzdata package is present; deprecated aliases such as ``US/Eastern`` are in it
    and accepted. Paths, ``localtime``, ``posixrules``, ``Factory`` and the ``posix/`` and
    ``right/`` trees are refused.
    """
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= MAX_TIMEZONE_LENGTH
        or _TZ_NAME_RE.fullmatch(name) is None
        or name in _NOT_A_PLACE
        or name.startswith(("posix/", "right/"))
    ):
        raise InvalidTimezoneError(str(name))
    published = _published_zone_names()
    if published is not None and name not in published:
        raise InvalidTimezoneError(name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidTimezoneError(name) from None


def _utcoffset(moment: datetime) -> timedelta:
    offset = moment.utcoffset()
    if offset is None:  # only naive datetimes have none, and we never build those here
        raise ValueError("expected an aware datetime")
    return offset


def _offset_at(tz: ZoneInfo, utc: datetime) -> timedelta:
    """The UTC offset of ``tz`` at the naive-UTC instant ``utc``."""
    return _utcoffset(utc.replace(tzinfo=UTC).astimezone(tz))


def _to_utc(moment: datetime, argument: str) -> datetime:
    """Naive UTC for an aware datetime; internal instants are naive UTC so that comparisons
    never fall into Python's same-tzinfo rule, which ignores ``fold``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{argument} must be a timezone-aware datetime")
    return moment.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class _DayClock:
    """How the wall-clock seconds of one local date map to UTC.

    Wall seconds below ``cut`` use offset ``pre``; from ``resume`` on, ``post``. On a
    spring-forward day ``[cut, resume)`` is the gap (times that do not exist: skipped). On a
    fall-back day ``cut`` is where the repeated span ends, so repeated times keep ``pre``: their
    first occurrence. A day without a transition has ``cut = resume = _NEVER``.
    """

    midnight: datetime  # naive local 00:00 of the date
    pre: timedelta
    post: timedelta
    cut: int
    resume: int

    def instant(self, second: int) -> datetime | None:
        if second < self.cut:
            return self.midnight + timedelta(seconds=second) - self.pre
        if second < self.resume:
            return None
        return self.midnight + timedelta(seconds=second) - self.post

    def first_index_after(self, times: tuple[int, ...], after: datetime) -> int:
        """Index of the first of ``times`` whose instant is after ``after`` (naive UTC); may
        point at a skipped time, which the caller passes over."""
        before_cut = bisect.bisect_right(times, (after + self.pre - self.midnight).total_seconds())
        if before_cut < len(times) and times[before_cut] < self.cut:
            return before_cut
        return max(
            bisect.bisect_right(times, (after + self.post - self.midnight).total_seconds()),
            bisect.bisect_left(times, self.resume),
        )

    def end_index_before(self, times: tuple[int, ...], before: datetime) -> int:
        """One past the index of the last of ``times`` whose instant is before ``before``."""
        late = bisect.bisect_left(times, (before + self.post - self.midnight).total_seconds())
        if late > 0 and times[late - 1] >= self.resume:
            return late
        return min(
            bisect.bisect_left(times, (before + self.pre - self.midnight).total_seconds()),
            bisect.bisect_left(times, self.cut),
        )


def _day_clock(tz: ZoneInfo, day: date) -> _DayClock:
    midnight = datetime(day.year, day.month, day.day)
    start = midnight.replace(tzinfo=tz)
    end = (midnight + _ONE_DAY).replace(tzinfo=tz)
    # A gap or overlap touching either midnight shows up as fold=0 and fold=1 disagreeing.
    offsets = {
        _utcoffset(start),
        _utcoffset(start.replace(fold=1)),
        _utcoffset(end),
        _utcoffset(end.replace(fold=1)),
    }
    if len(offsets) == 1:
        offset = offsets.pop()
        return _DayClock(midnight, offset, offset, _NEVER, _NEVER)
    return _transition_clock(tz, day, min(offsets), max(offsets))


@functools.lru_cache(maxsize=2048)
def _transition_clock(tz: ZoneInfo, day: date, low: timedelta, high: timedelta) -> _DayClock:
    """The clock of a day with a transition, found by bisecting UTC seconds (cached: transition
    days are few and the minimum-interval check revisits them)."""
    midnight = datetime(day.year, day.month, day.day)
    first = midnight - high - _ONE_SECOND
    last = midnight + _ONE_DAY - low + _ONE_SECOND
    pre, post = _offset_at(tz, first), _offset_at(tz, last)
    if pre == post:  # two transitions cancelling out within a day: not in tzdata since 1900s
        return _DayClock(midnight, pre, pre, _NEVER, _NEVER)
    lo, hi = 0, int((last - first).total_seconds())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_at(tz, first + timedelta(seconds=mid)) == pre:
            lo = mid
        else:
            hi = mid
    switch = first + timedelta(seconds=hi)
    cut = int((switch + pre - midnight).total_seconds())
    resume = int((switch + post - midnight).total_seconds())
    return _DayClock(midnight, pre, post, cut, max(cut, resume))


def _reference_transitions(tz: ZoneInfo) -> tuple[datetime, ...]:
    """UTC instants (naive) at which ``tz`` changes offset in the DST reference period."""
    found: list[datetime] = []
    moment = datetime(REFERENCE_YEAR, 1, 1)
    end = datetime(REFERENCE_YEAR + DST_REFERENCE_YEARS, 1, 1)
    offset = _offset_at(tz, moment)
    while moment < end:
        probe = moment + _TRANSITION_SAMPLING
        if _offset_at(tz, probe) == offset:
            moment = probe
            continue
        lo, hi = 0, int(_TRANSITION_SAMPLING.total_seconds())
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _offset_at(tz, moment + timedelta(seconds=mid)) == offset:
                lo = mid
            else:
                hi = mid
        moment += timedelta(seconds=hi)
        offset = _offset_at(tz, moment)
        if moment < end:
            found.append(moment)
    return tuple(found)


@functools.lru_cache(maxsize=256)
def _forward_transitions(tz: ZoneInfo) -> tuple[datetime, ...]:
    """The reference transitions where clocks go forward: only there can a real gap be shorter
    than its wall-clock gap (going back, the real gap is the wall gap plus the shift)."""
    return tuple(
        switch
        for switch in _reference_transitions(tz)
        if _offset_at(tz, switch) > _offset_at(tz, switch - _ONE_SECOND)
    )


# --- syntax -------------------------------------------------------------------------------------

_MINUTE, _HOUR, _DOM, _MONTH, _DOW = range(5)
_FIELD_NAMES: Final = ("minute", "hour", "day-of-month", "month", "day-of-week")
_BOUNDS: Final = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_MONTH_NAMES: Final = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_DOW_NAMES: Final = {
    name: number for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}
_EVENTBRIDGE_DAY_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # 1..7 there
_MACROS: Final = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_FIELDS_HINT: Final = "use 5 fields: minute hour day-of-month month day-of-week"
_TZ_PREFIX_RE: Final = re.compile(r"(?:cron_)?tz\s*=", re.IGNORECASE)
_ASCII_BLANKS: Final = " \t\r\n"
_FIELD_SPLIT_RE: Final = re.compile(r"[ \t]+")
_ALLOWED_CHAR_RE: Final = re.compile(r"[0-9a-z*?,/#\-]")
_HASH_RE: Final = re.compile(r"[hr](?:\([0-9]+-[0-9]+\))?(?:/[0-9]+)?")
_TERM_RE: Final = re.compile(
    r"(?:\*|(?P<low>[0-9]+|[a-z]+)(?:-(?P<high>[0-9]+|[a-z]+))?)(?:/(?P<step>[0-9]+))?"
)
_NEAREST_RE: Final = re.compile(r"([0-9]+)w|w([0-9]+)")
_DOM_SPECIALS_RE: Final = re.compile(r"[0-9lw,*/\-]+")
_NTH_RE: Final = re.compile(r"(?P<day>[a-z]+(?:-[a-z]+)?|[0-9]+)#(?P<nth>[0-9]+)")
_MAX_NEAREST_DAY: Final = 28


class _Invalid(Exception):
    """Internal: carries the reason; :func:`parse` turns it into :class:`InvalidCronError`.

    ``unsupported`` marks expressions that are valid cron (croniter accepts them) but
    that agentcron refuses because EventBridge Scheduler cannot run them as meant.
    """

    def __init__(self, reason: str, *, unsupported: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unsupported = unsupported


def _value(index: int, token: str) -> int:
    name = _FIELD_NAMES[index]
    low, high = _BOUNDS[index]
    if token.isdigit():
        number = int(token)
        if not low <= number <= high:
            hint = " (0 and 7 are Sunday)" if index == _DOW else ""
            raise _Invalid(f"{name} value {number} is out of range {low}-{high}{hint}")
        return number
    names = _MONTH_NAMES if index == _MONTH else _DOW_NAMES if index == _DOW else {}
    if token in names:
        return names[token]
    if index == _MONTH:
        raise _Invalid(f"unknown month {token.upper()!r}: use 1-12 or JAN-DEC")
    if index == _DOW:
        raise _Invalid(f"unknown day-of-week {token.upper()!r}: use 0-7 or SUN-SAT")
    raise _Invalid(f"{name} value {token!r} is not a number")


def _check_field(index: int, text: str) -> int | None:
    """Validate one lower-cased field; return the day of a ``nW`` term, if any."""
    name = _FIELD_NAMES[index]
    terms = text.split(",")
    for term in terms:
        if not term:
            raise _Invalid(f"empty value in the {name} field (check the commas)")
        if _HASH_RE.fullmatch(term):
            raise _Invalid("hashed ('H') and random ('R') values are not supported")
        for char in term:
            if _ALLOWED_CHAR_RE.fullmatch(char) is None:
                raise _Invalid(f"unexpected character {char!r} in the {name} field")
    if "?" in text:
        if index not in (_DOM, _DOW):
            raise _Invalid("'?' is only allowed in the day-of-month and day-of-week fields")
        if text != "?":
            raise _Invalid(f"'?' must stand alone in the {name} field")
        return None
    # Only digits and separators around the letter: "jul" in day-of-month is a wrong field, not L.
    specials = _DOM_SPECIALS_RE.fullmatch(text) is not None if index == _DOM else False
    if specials and "l" in text:
        if text == "l":
            return None
        if len(terms) > 1:
            raise _Invalid(
                "'L' cannot be combined with other day-of-month values", unsupported=True
            )
        raise _Invalid(
            "'L' (last day of the month) must stand alone in the day-of-month field",
            unsupported=True,
        )
    if specials and "w" in text:
        match = _NEAREST_RE.fullmatch(text)
        if match is None:
            raise _Invalid(
                "'W' (nearest weekday) takes a single day, e.g. 15W; "
                "it cannot be used in a list, range or step",
                unsupported=True,
            )
        day = int(match.group(1) or match.group(2))
        if not 1 <= day <= 31:
            raise _Invalid(f"day-of-month value {day} is out of range 1-31")
        if day > _MAX_NEAREST_DAY:
            raise _Invalid(
                f"'{day}W' is not supported: what 'W' does in months without day {day} is "
                f"undocumented for EventBridge; use a day from 1 to {_MAX_NEAREST_DAY}",
                unsupported=True,
            )
        return day
    if index == _DOW and "l" in text:  # no weekday name contains an 'l'
        raise _Invalid(
            "'L' in the day-of-week field (croniter's 'L5' = last Friday of the month) "
            "has no EventBridge equivalent",
            unsupported=True,
        )
    if index == _DOW and "#" in text:
        for term in terms:
            match = _NTH_RE.fullmatch(term)
            if match is None:
                if "#" in term:
                    raise _Invalid("'#' takes a weekday and an occurrence 1-5, e.g. FRI#3 or 5#3")
                raise _Invalid(
                    "'d#n' terms cannot be mixed with plain day-of-week values", unsupported=True
                )
            for token in match["day"].split("-"):
                _value(index, token)
            if not 1 <= int(match["nth"]) <= 5:
                raise _Invalid("the occurrence after '#' must be from 1 to 5, e.g. FRI#3")
        return None
    for term in terms:
        match = _TERM_RE.fullmatch(term)
        if match is None:
            raise _Invalid(f"{term.upper()!r} is not a valid {name} value, range or step")
        for token in (match["low"], match["high"]):
            if token is not None:
                _value(index, token)
        if match["step"] is not None and int(match["step"]) == 0:
            raise _Invalid(f"step 0 in the {name} field: a step must be greater than 0")
    return None


def _split_fields(expression: str) -> tuple[str, list[str]]:
    """Return the 5-field text actually evaluated (macros expanded) and its lower-cased fields."""
    text = expression.strip(_ASCII_BLANKS)
    if not text:
        raise _Invalid("the expression is empty")
    for char in text:
        if char.isspace() and char not in " \t":
            raise _Invalid(
                f"unexpected whitespace U+{ord(char):04X}; separate fields with plain spaces"
            )
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise _Invalid(f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    if _TZ_PREFIX_RE.match(text):
        raise _Invalid(
            "TZ= and CRON_TZ= prefixes are not supported; put the timezone in the timezone field"
        )
    if text.startswith("@"):
        macro = text.lower()
        if macro == "@reboot":
            raise _Invalid("@reboot is not supported: schedules fire on a clock, not at boot")
        if macro not in _MACROS:
            known = ", ".join(sorted(_MACROS))
            raise _Invalid(f"unknown macro {text!r}; use one of {known}")
        text = _MACROS[macro]
    fields = _FIELD_SPLIT_RE.split(text.lower())
    if len(fields) == 6:
        raise _Invalid(
            f"6-field (seconds) expressions are not supported; {_FIELDS_HINT}", unsupported=True
        )
    if len(fields) == 7:
        raise _Invalid(
            f"7-field (seconds and year) expressions are not supported; {_FIELDS_HINT}",
            unsupported=True,
        )
    if len(fields) != 5:
        raise _Invalid(f"expected 5 fields, got {len(fields)}; {_FIELDS_HINT}")
    return text, fields


# --- semantics ----------------------------------------------------------------------------------


def _nearest_weekday(day: int, first_weekday: int, length: int) -> int:
    """Croniter's and Quartz's ``W``: the weekday nearest ``day``, never leaving the month."""
    weekday = (first_weekday + day - 1) % 7  # Monday = 0
    if weekday == 5:
        return day - 1 if day > 1 else day + 2
    if weekday == 6:
        return day + 1 if day < length else day - 2
    return day


@dataclass(frozen=True, slots=True)
class _Rule:
    """An expression reduced to sets. Weekdays are cron's (0 = Sunday)."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    dom: frozenset[int] | None  # None: unrestricted
    dom_last: bool
    dom_nearest: int | None
    dow: frozenset[int] | None  # None: unrestricted
    nth: frozenset[tuple[int, int]]  # (weekday, occurrence); empty unless '#' was used
    union: bool  # Vixie OR between the two day fields
    times: tuple[int, ...] = field(init=False)  # wall-clock seconds of day, sorted
    _shapes: dict[tuple[int, int], tuple[int, ...]] = field(
        init=False, default_factory=dict, compare=False, repr=False
    )
    _years: dict[tuple[int, bool], tuple[int, int, int | None] | None] = field(
        init=False, default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        times = sorted(hour * 3600 + minute * 60 for hour in self.hours for minute in self.minutes)
        object.__setattr__(self, "times", tuple(times))

    def days_of_shape(self, first_weekday: int, length: int) -> tuple[int, ...]:
        """Matching days of a month whose 1st falls on ``first_weekday`` (Monday = 0)."""
        key = (first_weekday, length)
        days = self._shapes.get(key)
        if days is None:
            days = tuple(d for d in range(1, length + 1) if self._matches(d, first_weekday, length))
            self._shapes[key] = days
        return days

    def _matches(self, day: int, first_weekday: int, length: int) -> bool:
        weekday = (first_weekday + day) % 7  # Sunday = 0, as in cron
        dom_ok: bool | None = None
        if self.dom_last:
            dom_ok = day == length
        elif self.dom_nearest is not None:
            dom_ok = day == _nearest_weekday(self.dom_nearest, first_weekday, length)
        elif self.dom is not None:
            dom_ok = day in self.dom
        dow_ok: bool | None = None
        if self.nth:
            dow_ok = (weekday, (day - 1) // 7 + 1) in self.nth
        elif self.dow is not None:
            dow_ok = weekday in self.dow
        if self.union:
            return bool(dom_ok or dow_ok)
        return dom_ok is not False and dow_ok is not False

    def month_days(self, year: int, month: int) -> tuple[int, ...]:
        first_weekday, length = calendar.monthrange(year, month)
        return self.days_of_shape(first_weekday, length)

    def ever_matches(self) -> bool:
        """Exact: every (month, weekday of the 1st, leap) combination occurs in the calendar."""
        for month in self.months:
            lengths = (28, 29) if month == 2 else (calendar.monthrange(2001, month)[1],)
            for length in lengths:
                if any(self.days_of_shape(first, length) for first in range(7)):
                    return True
        return False

    def year_summary(self, year: int) -> tuple[int, int, int | None] | None:
        """(first, last, smallest inner gap) of the matching days of ``year`` as 0-based
        day-of-year numbers, None if none match; cached per year type (weekday of 1 January,
        leap or not), of which there are 14."""
        key = (calendar.weekday(year, 1, 1), calendar.isleap(year))
        if key not in self._years:
            found: list[int] = []
            for month in self.months:
                before = (date(year, month, 1) - date(year, 1, 1)).days
                first_weekday, length = calendar.monthrange(year, month)
                found.extend(before + d - 1 for d in self.days_of_shape(first_weekday, length))
            inner = min((b - a for a, b in pairwise(found)), default=None)
            self._years[key] = (found[0], found[-1], inner) if found else None
        return self._years[key]

    def min_day_gap(self) -> int:
        """Smallest gap in days between consecutive matching dates, over a Gregorian cycle."""
        best: int | None = None
        first: int | None = None
        previous: int | None = None
        for year in range(REFERENCE_YEAR, REFERENCE_YEAR + SEARCH_HORIZON_YEARS):
            summary = self.year_summary(year)
            if summary is None:
                continue
            first_day, last_day, inner = summary
            base = date(year, 1, 1).toordinal()
            for gap in (inner, None if previous is None else base + first_day - previous):
                if gap is not None and (best is None or gap < best):
                    best = gap
            if best == 1:
                return 1
            if first is None:
                first = base + first_day
            previous = base + last_day
        if first is None or previous is None:
            raise ValueError("the rule matches no date")  # parse() rejects these first
        wrap = first + _GREGORIAN_CYCLE_DAYS - previous
        return wrap if best is None else min(best, wrap)

    def iter_days(self, start: date, last_year: int) -> Iterator[date]:
        year, month_floor, day_floor = start.year, start.month, start.day
        while year <= last_year:
            for month in self.months:
                if month < month_floor:
                    continue
                for day in self.month_days(year, month):
                    if month == month_floor and day < day_floor:
                        continue
                    yield date(year, month, day)
                month_floor, day_floor = 0, 0
            year, month_floor, day_floor = year + 1, 0, 0

    def iter_days_backward(self, start: date, first_year: int) -> Iterator[date]:
        year, month_ceiling, day_ceiling = start.year, start.month, start.day
        while year >= first_year:
            for month in reversed(self.months):
                if month > month_ceiling:
                    continue
                for day in reversed(self.month_days(year, month)):
                    if month == month_ceiling and day > day_ceiling:
                        continue
                    yield date(year, month, day)
                month_ceiling, day_ceiling = 13, 32
            year, month_ceiling, day_ceiling = year - 1, 13, 32


def _numbers(values: list[object], low: int, high: int) -> tuple[int, ...]:
    if values == ["*"]:
        return tuple(range(low, high + 1))
    return tuple(sorted({int(str(value)) for value in values}))


def _build_rule(text: str, fields: list[str]) -> _Rule:
    nearest = None
    for index, field_text in enumerate(fields):
        found = _check_field(index, field_text)
        if found is not None:
            nearest = found
    from croniter import CroniterError, croniter  # ~60 ms to import: only when parsing

    try:
        expanded, nth_map = croniter.expand(text)
    except (CroniterError, ValueError) as exc:
        raise _Invalid(f"not a valid cron expression ({exc})") from None
    dom_values, dow_values = expanded[_DOM], expanded[_DOW]
    dom_restricted, dow_restricted = dom_values != ["*"], dow_values != ["*"]
    dom_last = dom_values == ["l"]
    nth = frozenset(
        (int(weekday), int(occurrence))
        for weekday, occurrences in nth_map.items()
        for occurrence in occurrences
    )
    if dom_restricted and dow_restricted:
        for present, what, other in (
            (dom_last, "'L'", "day-of-week"),
            (nearest is not None, "'W'", "day-of-week"),
            (bool(nth), "'#'", "day-of-month"),
        ):
            if present:
                raise _Invalid(
                    f"{what} cannot be combined with a restricted {other}: EventBridge needs "
                    f"the other day field to be '*' or '?'",
                    unsupported=True,
                )
    plain_dom = dom_restricted and not dom_last and nearest is None
    return _Rule(
        minutes=_numbers(expanded[_MINUTE], 0, 59),
        hours=_numbers(expanded[_HOUR], 0, 23),
        months=_numbers(expanded[_MONTH], 1, 12),
        dom=frozenset(_numbers(dom_values, 1, 31)) if plain_dom else None,
        dom_last=dom_last,
        dom_nearest=nearest,
        dow=frozenset(_numbers(dow_values, 0, 6)) if dow_restricted and not nth else None,
        nth=nth,
        union=dom_restricted and dow_restricted,
    )


# --- EventBridge translation --------------------------------------------------------------------


def _runs(values: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in sorted(set(values)):
        if runs and runs[-1][1] == value - 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _compress(values: tuple[int, ...] | frozenset[int], low: int, high: int) -> str:
    if set(values) == set(range(low, high + 1)):
        return "*"
    return _join_runs(_runs(list(values)), str)


def _join_runs(runs: list[tuple[int, int]], render: Callable[[int], str]) -> str:
    parts: list[str] = []
    for first, last in runs:
        if last - first >= 2:
            parts.append(f"{render(first)}-{render(last)}")
        else:
            parts.extend(render(value) for value in range(first, last + 1))
    return ",".join(parts)


def _eventbridge_day_name(number: int) -> str:
    return _EVENTBRIDGE_DAY_NAMES[number - 1]


def _eventbridge_days(weekdays: frozenset[int]) -> str:
    # EventBridge numbers weekdays 1-7 from Sunday, so cron's wrapped ranges come out as lists.
    return _join_runs(_runs([weekday % 7 + 1 for weekday in weekdays]), _eventbridge_day_name)


def _translate(rule: _Rule) -> tuple[str, ...]:
    minutes = _compress(rule.minutes, 0, 59)
    hours = _compress(rule.hours, 0, 23)
    months = _compress(rule.months, 1, 12)

    def cron(dom: str, dow: str) -> str:
        return f"cron({minutes} {hours} {dom} {months} {dow} *)"

    if rule.dom_last:
        return (cron("L", "?"),)
    if rule.dom_nearest is not None:
        return (cron(f"{rule.dom_nearest}W", "?"),)
    if rule.nth:
        terms = sorted(rule.nth, key=lambda term: (term[0] % 7, term[1]))
        return tuple(
            cron("?", f"{_EVENTBRIDGE_DAY_NAMES[weekday]}#{occurrence}")
            for weekday, occurrence in terms
            if _side_matches(rule, nth=frozenset({(weekday, occurrence)}))
        )
    every_dom = rule.dom is None or rule.dom == frozenset(range(1, 32))
    every_dow = rule.dow is None or rule.dow == frozenset(range(7))
    if (every_dom and every_dow) or (rule.union and (every_dom or every_dow)):
        return (cron("*", "?"),)
    if not rule.union:
        if not every_dom and rule.dom is not None:
            return (cron(_compress(rule.dom, 1, 31), "?"),)
        if rule.dow is not None:
            return (cron("?", _eventbridge_days(rule.dow)),)
    # Vixie OR: one schedule per side; days matching both fire twice and the claim on
    # (schedule, scheduled_time) dedupes. A side that can never match (the 31st in February
    # only) is dropped: the other side alone is the same schedule.
    sides: list[str] = []
    if rule.dom is not None and _side_matches(rule, dom=rule.dom):
        sides.append(cron(_compress(rule.dom, 1, 31), "?"))
    if rule.dow is not None:
        sides.append(cron("?", _eventbridge_days(rule.dow)))
    return tuple(sides)


def _side_matches(
    rule: _Rule,
    *,
    dom: frozenset[int] | None = None,
    nth: frozenset[tuple[int, int]] = frozenset(),
) -> bool:
    side = _Rule(
        minutes=(0,),
        hours=(0,),
        months=rule.months,
        dom=dom,
        dom_last=False,
        dom_nearest=None,
        dow=None,
        nth=nth,
        union=False,
    )
    return side.ever_matches()


# --- the schedule ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CronSchedule:
    """A validated cron expression in a timezone. Build it with :func:`parse`.

    Every datetime argument must be timezone-aware; results are aware datetimes in the schedule's
    timezone (``tzinfo`` is its ``ZoneInfo``, ``fold=0``). Compare them with datetimes of other
    zones in UTC (``.astimezone(UTC)``): by PEP 495 a time in a repeated hour is never equal to a
    datetime of another zone, even at the same instant.
    """

    expression: str
    timezone: str
    eventbridge: tuple[str, ...]
    _rule: _Rule = field(repr=False, compare=False)
    _tz: ZoneInfo = field(repr=False, compare=False)
    _described: tuple[str, ...] = field(repr=False, compare=False)

    # -- enumeration ------------------------------------------------------------------------

    def _forward(self, after: datetime) -> Iterator[tuple[datetime, datetime]]:
        """(local, naive UTC) fires strictly after the naive-UTC ``after``, within the horizon."""
        tz, times = self._tz, self._rule.times
        local_after = after.replace(tzinfo=UTC).astimezone(tz)
        # Start a day early: a fall-back at midnight runs the wall clock back into yesterday.
        start = local_after.date() - _ONE_DAY
        last_year = min(start.year + SEARCH_HORIZON_YEARS, _LAST_SEARCH_YEAR)
        for day in self._rule.iter_days(start, last_year):
            clock = _day_clock(tz, day)
            for index in range(clock.first_index_after(times, after), len(times)):
                second = times[index]
                instant = clock.instant(second)
                if instant is not None:
                    yield self._local(day, second), instant

    def _backward(self, before: datetime) -> Iterator[tuple[datetime, datetime]]:
        """(local, naive UTC) fires strictly before the naive-UTC ``before``, latest first."""
        tz, times = self._tz, self._rule.times
        local_before = before.replace(tzinfo=UTC).astimezone(tz)
        start = local_before.date() + _ONE_DAY
        first_year = max(start.year - SEARCH_HORIZON_YEARS, 2)
        for day in self._rule.iter_days_backward(start, first_year):
            clock = _day_clock(tz, day)
            for index in range(clock.end_index_before(times, before) - 1, -1, -1):
                second = times[index]
                instant = clock.instant(second)
                if instant is not None:
                    yield self._local(day, second), instant

    def _local(self, day: date, second: int) -> datetime:
        return datetime(
            day.year, day.month, day.day, second // 3600, second // 60 % 60, tzinfo=self._tz
        )

    # -- public API -------------------------------------------------------------------------

    def next_fire(self, after: datetime) -> datetime | None:
        """The first fire strictly after ``after``; None if none within 400 years (which, after
        :func:`parse` accepted the expression, only a DST gap swallowing every fire can cause)."""
        for local, _ in self._forward(_to_utc(after, "after")):
            return local
        return None

    def next_fires(self, after: datetime, count: int) -> list[datetime]:
        """Up to ``count`` fires strictly after ``after``, chronological."""
        fires: list[datetime] = []
        if count <= 0:
            return fires
        for local, _ in self._forward(_to_utc(after, "after")):
            fires.append(local)
            if len(fires) >= count:
                break
        return fires

    def fires_between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Fires ``t`` with ``start < t <= end``, chronological."""
        start_utc, end_utc = _to_utc(start, "start"), _to_utc(end, "end")
        for local, instant in self._forward(start_utc):
            if instant > end_utc:
                return
            yield local

    def fires_at(self, instant: datetime) -> bool:
        """Whether ``instant`` (any timezone; sub-second part ignored) is exactly a fire time.

        The trigger uses this to drop stale EventBridge fires (an old definition still firing
        after an update). The second occurrence of a repeated wall time is not a fire time.
        """
        utc = _to_utc(instant, "instant").replace(microsecond=0)
        local = utc.replace(tzinfo=UTC).astimezone(self._tz)
        if local.second:
            return False
        second = local.hour * 3600 + local.minute * 60
        day = local.date()
        if local.month not in self._rule.months:
            return False
        if day.day not in self._rule.month_days(day.year, day.month):
            return False
        index = bisect.bisect_left(self._rule.times, second)
        if index == len(self._rule.times) or self._rule.times[index] != second:
            return False
        return _day_clock(self._tz, day).instant(second) == utc

    def min_interval(self) -> timedelta:
        """The smallest real time between two consecutive fires over a full cycle (module doc)."""
        return self._min_interval

    @functools.cached_property
    def _min_interval(self) -> timedelta:
        times = self._rule.times
        day_gap = self._rule.min_day_gap()
        best = day_gap * 86_400 + times[0] - times[-1]
        for earlier, later in pairwise(times):
            best = min(best, later - earlier)
        if best > 60:  # a minute is the floor: fires are whole minutes apart
            for switch in _forward_transitions(self._tz):
                before = next(self._backward(switch), None)
                after = next(self._forward(switch - _ONE_SECOND), None)
                if before is not None and after is not None:
                    best = min(best, int((after[1] - before[1]).total_seconds()))
        return timedelta(seconds=best)

    def check_min_interval(self, min_minutes: int) -> None:
        """Raise :class:`IntervalTooShortError` if fires can be closer than ``min_minutes``.

        ``min_minutes <= 0`` disables the check.
        """
        if min_minutes <= 0:
            return
        actual = self.min_interval()
        if actual < timedelta(minutes=min_minutes):
            raise IntervalTooShortError(
                min_minutes, actual.total_seconds() / 60, expression=self.expression
            )

    def describe(self) -> str:
        """A human-readable description in English (cron-descriptor), e.g.
        ``At 09:00 AM, Monday through Friday``."""
        return self._description

    @functools.cached_property
    def _description(self) -> str:
        from cron_descriptor import Options, get_description  # ~60 ms to import: only here

        options = Options(locale_code="en_US", use_24hour_time_format=False)
        try:
            parts = [get_description(text, options) for text in self._described]
        except Exception:  # a describer gap must never turn a valid schedule into an error
            return f"Cron expression {self.expression.strip()!r}"
        head, *rest = parts
        return "; and ".join([head, *(part[:1].lower() + part[1:] for part in rest)])


def _misread(index: int, text: str) -> bool:
    """Whether cron-descriptor would misread a plain field: croniter reads an equal-bound range
    (``jan-jan``, ``5-5``) as the whole cycle, and ``0,7`` would be "Sunday and Sunday"."""
    names = _MONTH_NAMES if index == _MONTH else _DOW_NAMES if index == _DOW else {}

    def number(token: str) -> int:
        value = names[token] if token in names else int(token)
        return value % 7 if index == _DOW else value

    seen: list[int] = []
    for term in text.split(","):
        bounds = [
            number(token) for token in term.split("/")[0].split("-") if token not in ("*", "?")
        ]
        if len(bounds) == 2 and bounds[0] == bounds[1]:
            return True
        seen.extend(bounds)
    return len(seen) != len(set(seen))


def _described(fields: list[str], rule: _Rule, translations: tuple[str, ...]) -> tuple[str, ...]:
    """What cron-descriptor is given: the evaluated fields in upper case (it reads ``L`` but not
    ``l``), ``W15`` spelled ``15W``, fields it would misread spelled out from the expansion, an
    OR with an every-day side as plain daily (it would say "on day 1 of the month, Sunday through
    Saturday") or without its never-matching side, and several ``#`` terms one by one (it garbles
    lists of them)."""
    canonical = {
        _MINUTE: _compress(rule.minutes, 0, 59),
        _HOUR: _compress(rule.hours, 0, 23),
        _MONTH: _compress(rule.months, 1, 12),
    }
    if not rule.dom_last and rule.dom_nearest is None:
        canonical[_DOM] = "*" if rule.dom is None else _compress(rule.dom, 1, 31)
    if not rule.nth:
        canonical[_DOW] = "*" if rule.dow is None else _compress(rule.dow, 0, 6)
    fields = [
        canonical[index] if index in canonical and _misread(index, text) else text.upper()
        for index, text in enumerate(fields)
    ]
    if rule.dom_nearest is not None:
        fields[_DOM] = f"{rule.dom_nearest}W"
    elif len(rule.nth) > 1:
        return tuple(
            " ".join([*fields[:_DOW], f"{_EVENTBRIDGE_DAY_NAMES[weekday]}#{occurrence}"])
            for weekday, occurrence in sorted(rule.nth, key=lambda term: (term[0] % 7, term[1]))
        )
    elif rule.union and len(translations) == 1:
        daily = translations[0].split()[2] == "*"
        fields[_DOM] = "*"
        if daily:
            fields[_DOW] = "*"
    return (" ".join(fields),)


def parse(expression: str, timezone: str = "UTC") -> CronSchedule:
    """Validate ``expression`` in ``timezone`` and return its :class:`CronSchedule`.

    Raises :class:`InvalidTimezoneError`, :class:`InvalidCronError` (with a specific ``reason``)
    or :class:`CronNeverFiresError`. Results are cached per (expression, timezone): every read of
    every schedule computes a ``next_run_at``.
    """
    if not isinstance(timezone, str):
        raise InvalidTimezoneError(str(timezone))
    if not isinstance(expression, str):
        raise InvalidCronError(str(expression), "the expression must be a string")
    return _parse(expression, timezone)


@functools.lru_cache(maxsize=4096)
def _parse(expression: str, timezone: str) -> CronSchedule:
    tz = load_timezone(timezone)
    try:
        text, fields = _split_fields(expression)
        rule = _build_rule(text, fields)
        if not rule.ever_matches():
            raise CronNeverFiresError(expression)
        translations = _translate(rule)
        for translation in translations:
            if len(translation) > MAX_EVENTBRIDGE_EXPRESSION_LENGTH:
                raise _Invalid(
                    f"its EventBridge translation {translation!r} is {len(translation)} "
                    f"characters long; EventBridge allows {MAX_EVENTBRIDGE_EXPRESSION_LENGTH}",
                    unsupported=True,
                )
    except _Invalid as invalid:
        raise InvalidCronError(
            expression, invalid.reason, unsupported=invalid.unsupported
        ) from None
    schedule = CronSchedule(
        expression=expression,
        timezone=timezone,
        eventbridge=translations,
        _rule=rule,
        _tz=tz,
        _described=_described(fields, rule, translations),
    )
    # The calendar check above is exact; this one catches fires that all fall in a DST gap.
    if schedule.next_fire(datetime(REFERENCE_YEAR, 1, 1, tzinfo=UTC)) is None:
        raise CronNeverFiresError(expression)
    return schedule
