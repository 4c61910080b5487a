"""Monthly spend caps: which caps apply to a user, and what a month is.

A deployment may set a default monthly cap per user and per tenant
(``MONTHLY_CAP_USER_USD``, ``MONTHLY_CAP_TENANT_USD``); an operator overrides either
for one tenant or one user with ``python -m chalicelib.admin set-cap``. An override
is a number (the cap) or *unlimited* (no cap, whatever the default); no override means
the default. The user's cap is resolved from the user's override, else the default;
the tenant's from the tenant's override, else the default — the two are independent
and both apply.

The month is the **UTC** calendar month (``2026-12``): one counter per user and per
tenant and month, so a run books into the month in which it started even when it
ends after midnight UTC on the last day.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal


class CapScope(enum.StrEnum):
    USER = "user"
    TENANT = "tenant"


UNLIMITED = "unlimited"


@dataclass(frozen=True)
class CapOverride:
    """An operator's override: ``monthly_usd`` None means explicitly unlimited."""

    scope: CapScope
    tenant_id: str
    user_id: str | None
    monthly_usd: Decimal | None


@dataclass(frozen=True)
class Cap:
    """A cap in force for one run's owner."""

    scope: CapScope
    monthly_usd: Decimal


@dataclass(frozen=True)
class CapDefaults:
    user_usd: Decimal | None = None
    tenant_usd: Decimal | None = None


@dataclass(frozen=True)
class CapUsage:
    """One cap with its month's counter: ``used_usd`` is spent plus held (calls in flight).

    ``refused_usd`` is the worst case of *this user's* call the cap last refused this
    month (None: none, or refused under a cap since changed). It is the user's own record
    — kept on the user's month item, never on a tenant's shared counter — so one user's
    oversized call cannot stop the other users of a tenant cap.
    """

    cap: Cap
    used_usd: Decimal
    spent_usd: Decimal
    refused_usd: Decimal | None = None

    @property
    def remaining_usd(self) -> Decimal:
        return max(self.cap.monthly_usd - self.used_usd, Decimal(0))

    @property
    def exhausted(self) -> bool:
        """Nothing left, or less left than a call of this user the cap already refused:
        the user's later fires of the month are skipped until the month ends, room is
        freed or an operator raises the cap."""
        if self.used_usd >= self.cap.monthly_usd:
            return True
        return self.refused_usd is not None and self.remaining_usd < self.refused_usd


def resolve(
    defaults: CapDefaults, user: CapOverride | None, tenant: CapOverride | None
) -> tuple[Cap, ...]:
    """The caps in force for one user: user first, then tenant (the order of reservation)."""
    caps: list[Cap] = []
    user_usd = defaults.user_usd if user is None else user.monthly_usd
    tenant_usd = defaults.tenant_usd if tenant is None else tenant.monthly_usd
    if user_usd is not None:
        caps.append(Cap(CapScope.USER, user_usd))
    if tenant_usd is not None:
        caps.append(Cap(CapScope.TENANT, tenant_usd))
    return tuple(caps)


def month_of(moment: datetime) -> str:
    """The UTC month of ``moment`` (``YYYY-MM``)."""
    return moment.astimezone(UTC).strftime("%Y-%m")


def day_of(moment: datetime) -> str:
    """The UTC day of ``moment`` (``YYYY-MM-DD``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


@dataclass
class Rollup:
    """One (day, schedule) usage row, or a sum of them."""

    cost_usd: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    runs: dict[str, int] = field(default_factory=dict)

    def add(self, other: Rollup) -> None:
        self.cost_usd += other.cost_usd
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        for status, count in other.runs.items():
            self.runs[status] = self.runs.get(status, 0) + count


@dataclass(frozen=True)
class RollupRow:
    day: str
    schedule_id: str
    usage: Rollup
