"""Usage, caps in force and the 30-day forecast, for the façades.

**Usage** is read from the daily rollups the finish (and skip) transactions write
(``dynamodb_spend``): one Query of the caller's own usage partition covers the window
and the month to date, so a user only ever reads their own spend, and no Scan is needed.
Days and months are UTC.

**Caps in force** come from ``ScheduleService.caps`` (one BatchGetItem of the caller's
two override items, cached per container for ``CAPS_CACHE_SECONDS``; the create/update
warning uses the same cache), then one BatchGetItem of their month counters. (The
trigger never uses this cache: it reads the overrides with each fire.)

**Forecast.** The fires of the next 30 days come from the cron engine
(:func:`~chalicelib.services.schedules.count_fires`, so DST gaps and repeats are
counted as EventBridge fires them) and stop at the schedule's ``end_time``. The worst
case is fires × the per-run budget (capped by the deployment's maximum, as the trigger
caps it). The expected cost is fires × the mean cost of the schedule's recent runs
that ran (skipped and still-running ones excluded); None without such history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from chalicelib.domain.caps import Cap, CapUsage, Rollup, month_of
from chalicelib.domain.enums import RunStatus
from chalicelib.domain.errors import InvalidRequestError
from chalicelib.domain.models import Principal, Run
from chalicelib.domain.ports import Clock
from chalicelib.services.schedules import count_fires

if TYPE_CHECKING:
    from chalicelib.adapters.dynamodb_spend import DynamoDBSpendStore

HISTORY_RUNS = 20
"""How many of a schedule's latest runs the expected cost is averaged over."""
MAX_WINDOW_DAYS = 366


@dataclass(frozen=True)
class Forecast:
    fires: int
    max_cost_usd: Decimal
    expected_cost_usd: Decimal | None


@dataclass
class UsageGroup:
    key: str
    usage: Rollup
    month_to_date_usd: Decimal = Decimal(0)
    daily: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class UsageReport:
    first_day: date
    last_day: date
    group_by: str
    month: str
    month_to_date_usd: Decimal
    total: Rollup
    groups: list[UsageGroup]
    caps: list[CapUsage]


class UsageService:
    def __init__(
        self,
        *,
        spend: DynamoDBSpendStore,
        clock: Clock,
        caps: Callable[[Principal], tuple[Cap, ...]],
        max_budget_usd: Decimal,
    ) -> None:
        self._spend = spend
        self._clock = clock
        self._caps = caps
        self._max_budget = max_budget_usd

    # --- forecast -------------------------------------------------------------------------

    def _budget(self, budget: Decimal) -> Decimal:
        return min(budget, self._max_budget)

    def forecast(
        self,
        expression: str,
        timezone: str,
        budget_usd: Decimal,
        end_time: datetime | None,
        history: Sequence[Run],
        now: datetime | None = None,
    ) -> Forecast:
        fires = count_fires(expression, timezone, now or self._clock.now(), end_time)
        ran = [
            r.usage.cost_usd
            for r in history
            if r.status.is_terminal and r.status is not RunStatus.SKIPPED
        ][:HISTORY_RUNS]
        expected = None
        if ran:
            expected = (sum(ran, Decimal(0)) / len(ran) * fires).quantize(Decimal("0.000001"))
        return Forecast(
            fires=fires,
            max_cost_usd=self._budget(budget_usd) * fires,
            expected_cost_usd=expected,
        )

    # --- usage ----------------------------------------------------------------------------

    def window(self, first: date | None, last: date | None, days: int | None) -> tuple[date, date]:
        """The requested UTC days (default: the last 30 days, today included)."""
        today = self._clock.now().date()
        last = last or today
        if first is None:
            try:
                first = last - timedelta(days=(days or 30) - 1)
            except OverflowError:
                raise InvalidRequestError("to is out of range", field="to") from None
        if first > last:
            raise InvalidRequestError("from must not be after to", field="from")
        if (last - first).days + 1 > MAX_WINDOW_DAYS:
            raise InvalidRequestError(f"at most {MAX_WINDOW_DAYS} days per request", field="to")
        return first, last

    def usage(self, principal: Principal, first: date, last: date, group_by: str) -> UsageReport:
        now = self._clock.now()
        month = month_of(now)
        month_start = now.date().replace(day=1)
        rows = self._spend.rollups(
            principal.tenant_id,
            principal.user_id,
            min(first, month_start).isoformat(),
            max(last, now.date()).isoformat(),
        )
        lo, hi = first.isoformat(), last.isoformat()
        total = Rollup()
        groups: dict[str, UsageGroup] = {}
        month_to_date = Decimal(0)
        mtd_by_schedule: dict[str, Decimal] = {}
        for row in rows:
            if row.day >= month_start.isoformat() and row.day <= now.date().isoformat():
                month_to_date += row.usage.cost_usd
                mtd_by_schedule[row.schedule_id] = (
                    mtd_by_schedule.get(row.schedule_id, Decimal(0)) + row.usage.cost_usd
                )
            if not lo <= row.day <= hi:
                continue
            total.add(row.usage)
            key = row.day if group_by == "day" else row.schedule_id
            group = groups.setdefault(key, UsageGroup(key=key, usage=Rollup()))
            group.usage.add(row.usage)
            if group_by == "schedule":
                group.daily[row.day] = group.daily.get(row.day, Decimal(0)) + row.usage.cost_usd
        for key, group in groups.items():
            if group_by == "schedule":
                group.month_to_date_usd = mtd_by_schedule.get(key, Decimal(0))
        caps = self._caps(principal)
        return UsageReport(
            first_day=first,
            last_day=last,
            group_by=group_by,
            month=month,
            month_to_date_usd=month_to_date,
            total=total,
            groups=sorted(groups.values(), key=lambda g: g.key),
            caps=self._spend.usage(caps, principal.tenant_id, principal.user_id, month),
        )
