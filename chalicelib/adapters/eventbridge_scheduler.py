"""EventBridge Scheduler: one schedule per translated ``cron()`` expression.

Every entry is written whole — ``UpdateSchedule`` resets any field it is not given —
from a :class:`~chalicelib.domain.ports.SchedulerEntry` built from the DynamoDB
record. The target is the trigger Lambda with our own JSON ``Input`` (ids plus the
``<aws.scheduler.*>`` context attributes), the scheduler role, the DLQ, a small
retry policy (a delivery hours late would be a surprise run), and
``FlexibleTimeWindow`` OFF. Names are deterministic (``sched-<uuid>[-<n>]``) and
never contain user text. moto validates none of this, so the cron engine and the
request models validate everything before we get here.

Every failure to reach the service — an AWS error (``ClientError``) and equally a
connection failure, timeout or other botocore error (``BotoCoreError``) — becomes
:class:`~chalicelib.domain.errors.SchedulingUnavailableError`, so the service
compensates its DynamoDB write and the façades answer 503.

``update`` is an upsert that tolerates concurrent writers: ``UpdateSchedule`` on a
missing entry falls back to ``CreateSchedule``, and a create that meets an entry
another writer created meanwhile (``ConflictException``) goes back to updating it.
``differences`` reads an entry back (``GetSchedule``) and names every field that is
not what the record says, for the reconciler's whole-entry comparison
(``ListSchedules`` returns only names and states).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import SchedulingUnavailableError
from chalicelib.domain.ports import SchedulerEntry

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

UPSERT_ATTEMPTS = 4
END_DATE_TOLERANCE_SECONDS = 1.0
"""EndDate is compared to the second: the Scheduler need not keep sub-second precision."""


F = TypeVar("F", bound=Callable[..., Any])


def _unreachable_is_unavailable(method: F) -> F:
    """A botocore error (no connection, timeout…) is the Scheduler being unavailable."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except BotoCoreError as exc:
            raise SchedulingUnavailableError(f"EventBridge Scheduler: {exc}") from exc

    return cast("F", wrapper)


class EventBridgeSchedulerGateway:
    def __init__(
        self,
        client: EventBridgeSchedulerClient,
        *,
        group_name: str,
        target_arn: str,
        role_arn: str,
        dead_letter_arn: str,
        retry_attempts: int,
        max_event_age_seconds: int,
    ) -> None:
        self._client = client
        self._group = group_name
        self._target_arn = target_arn
        self._role_arn = role_arn
        self._dlq_arn = dead_letter_arn
        self._retry_attempts = retry_attempts
        self._max_age = max_event_age_seconds

    def request(self, entry: SchedulerEntry) -> dict[str, Any]:
        """The complete Create/UpdateSchedule request for ``entry``."""
        target: dict[str, Any] = {
            "Arn": self._target_arn,
            "RoleArn": self._role_arn,
            "Input": entry.input,
            "RetryPolicy": {
                "MaximumRetryAttempts": self._retry_attempts,
                "MaximumEventAgeInSeconds": self._max_age,
            },
        }
        if self._dlq_arn:
            target["DeadLetterConfig"] = {"Arn": self._dlq_arn}
        request: dict[str, Any] = {
            "Name": entry.name,
            "GroupName": self._group,
            "ScheduleExpression": entry.expression,
            "ScheduleExpressionTimezone": entry.timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED" if entry.enabled else "DISABLED",
            "Target": target,
            "Description": entry.description[:512],
            "ActionAfterCompletion": "NONE",
        }
        if entry.end_date is not None:
            request["EndDate"] = entry.end_date
        return request

    @_unreachable_is_unavailable
    def create(self, entry: SchedulerEntry) -> None:
        try:
            self._client.create_schedule(**self.request(entry))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ConflictException":
                # A retried create whose first attempt landed: make it match the record.
                self.update(entry)
                return
            raise SchedulingUnavailableError(f"CreateSchedule {entry.name}: {code}") from exc

    @_unreachable_is_unavailable
    def update(self, entry: SchedulerEntry) -> None:
        """Write the whole entry, creating it if it is missing (an upsert)."""
        request = self.request(entry)
        for _ in range(UPSERT_ATTEMPTS):
            try:
                self._client.update_schedule(**request)
                return
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code != "ResourceNotFoundException":
                    message = f"UpdateSchedule {entry.name}: {code}"
                    raise SchedulingUnavailableError(message) from exc
            try:
                self._client.create_schedule(**request)
                return
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code != "ConflictException":  # created meanwhile: update it
                    message = f"CreateSchedule {entry.name}: {code}"
                    raise SchedulingUnavailableError(message) from exc
        raise SchedulingUnavailableError(f"UpdateSchedule {entry.name}: kept changing")

    @_unreachable_is_unavailable
    def differences(self, entry: SchedulerEntry) -> list[str]:
        """The fields of the stored entry that differ from ``entry`` (``["missing"]`` if absent)."""
        try:
            actual = self._client.get_schedule(Name=entry.name, GroupName=self._group)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ResourceNotFoundException":
                return ["missing"]
            raise SchedulingUnavailableError(f"GetSchedule {entry.name}: {code}") from exc
        wanted = self.request(entry)
        have: dict[str, Any] = dict(actual)
        wanted_target, have_target = wanted["Target"], dict(have.get("Target") or {})
        differing = [
            key
            for key in ("ScheduleExpression", "State", "FlexibleTimeWindow")
            if have.get(key) != wanted[key]
        ]
        if (have.get("ScheduleExpressionTimezone") or "UTC") != wanted[
            "ScheduleExpressionTimezone"
        ]:
            differing.append("ScheduleExpressionTimezone")
        if not _same_instant(have.get("EndDate"), wanted.get("EndDate")):
            differing.append("EndDate")
        differing += [
            f"Target.{key}"
            for key in ("Arn", "RoleArn", "Input", "RetryPolicy", "DeadLetterConfig")
            if have_target.get(key) != wanted_target.get(key)
        ]
        return differing

    @_unreachable_is_unavailable
    def target_input(self, name: str) -> str | None:
        """The entry's ``Target.Input`` (None if the entry is gone)."""
        try:
            found = self._client.get_schedule(Name=name, GroupName=self._group)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ResourceNotFoundException":
                return None
            raise SchedulingUnavailableError(f"GetSchedule {name}: {code}") from exc
        return found.get("Target", {}).get("Input")

    @_unreachable_is_unavailable
    def list_states(self) -> dict[str, bool]:
        """Every entry of the group: name → enabled (ListSchedules, 100 a page)."""
        states: dict[str, bool] = {}
        kwargs: dict[str, Any] = {"GroupName": self._group, "MaxResults": 100}
        try:
            while True:
                page = self._client.list_schedules(**kwargs)
                for summary in page.get("Schedules", []):
                    states[summary["Name"]] = summary.get("State") == "ENABLED"
                token = page.get("NextToken")
                if not token:
                    return states
                kwargs["NextToken"] = token
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            raise SchedulingUnavailableError(f"ListSchedules: {code}") from exc

    @_unreachable_is_unavailable
    def delete(self, name: str) -> None:
        try:
            self._client.delete_schedule(Name=name, GroupName=self._group)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ResourceNotFoundException":
                return
            raise SchedulingUnavailableError(f"DeleteSchedule {name}: {code}") from exc


def _same_instant(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs((a - b).total_seconds()) < END_DATE_TOLERANCE_SECONDS
