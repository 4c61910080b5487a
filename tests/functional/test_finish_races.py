"""Finish transactions racing other writers of the schedule item.

A run's finish counts it on the schedule in the same transaction as its terminal
record. When another fire changes the schedule between the trigger's finish attempts
(moving ``last_run_at`` or claiming the running marker), the retry rebuilds the
schedule update from the item the failed condition returned; the run is still counted
exactly once, never stored uncounted. The race is staged with a botocore hook on the
real client writing the schedule item just before the trigger's third transaction.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.adapters import dynamodb_codec as codec
from chalicelib.domain.enums import RunStatus
from tests.functional.test_heartbeat import ALICE, NINE, Stepper, fire, make, the_run


def test_a_claim_between_two_finish_attempts_still_counts_the_run(
    container: Any, clock: Any
) -> None:
    sched = make(container)
    clock.set(NINE + timedelta(seconds=1))
    table = container.settings.TABLE_NAME
    key = {
        "pk": codec.s(codec.user_pk(ALICE.tenant_id, ALICE.user_id)),
        "sk": codec.s(codec.schedule_sk(sched.id)),
    }

    def set_schedule(expression: str, value: str) -> None:
        container.dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression=expression,
            ExpressionAttributeValues={":v": codec.s(value)},
        )

    def later_fire_finished(_ctx: Any) -> None:
        set_schedule("SET last_run_at = :v", "2026-01-15T09:30:00.000000Z")

    transactions: list[int] = []

    def later_fire_claims(**_: Any) -> None:
        transactions.append(1)
        if len(transactions) == 3:  # claim, finish (fails on last_run_at), its retry
            set_schedule("SET running_run_id = :v", "later-run")

    container.dynamodb.meta.events.register(
        "before-call.dynamodb.TransactWriteItems", later_fire_claims, unique_id="claim-race"
    )
    fire(container, Stepper(later_fire_finished), sched)

    after = container.schedule_store.get(ALICE, sched.id)
    assert the_run(container, sched).status is RunStatus.SUCCESS
    assert (after.total_runs, after.successful_runs, after.history_count) == (1, 1, 1)
    assert after.last_run_at == NINE + timedelta(minutes=30)  # not moved back
    stored = container.dynamodb.get_item(TableName=table, Key=key)["Item"]
    assert stored["running_run_id"] == codec.s("later-run")  # the later claim kept
    assert len(transactions) == 4
