"""Run history in DynamoDB, and the two transactions that make the trigger exactly-once.

**Claim** (one ``TransactWriteItems``):
  0. put the run, keyed by (schedule, scheduled time), if it does not exist — the
     dedupe that absorbs at-least-once delivery and split-schedule double fires;
  1. on the schedule: set the running marker and count the history record, on the
     condition that it still exists, is ACTIVE (scheduled fires only) and — under the
     ``skip`` overlap policy — has no live running marker;
  2. for stateless schedules, put the run's fresh thread.

**Finish** (one ``TransactWriteItems``): the terminal run record (only from
``running``), the schedule's counters (``consecutive_failures`` added to or reset in the
same update) / ``last_run_at`` / running marker and any system pause, the thread
(deleted, or its new state written) and the owner's daily usage rollup
(``dynamodb_spend``; a skip's transaction adds it too). Counters, history and usage
therefore always agree. If the schedule was deleted mid-run, the run and thread are
still finished without it. ``last_run_at`` never moves backwards: when overlapping runs
finish out of order, the older one is counted without touching it.

**Reads are owner-scoped by key.** A run's partition is (tenant, user, schedule) and
its thread index entry is (tenant, user, thread); every read takes the caller's
:class:`~chalicelib.domain.models.Principal`, so another user's runs are never read,
not read-then-filtered.

**Reads are bounded** (``dynamodb_codec.READ_PAGES`` pages, ``KEPT_BYTES`` kept): a
run list skips its offset undecoded, keeps at most that many bytes of runs, and reads
at most that many pages. The LangGraph lists (``schedule_page``, ``thread_page``) end
a page early at the bound and say so; ``list_for_schedule`` (Shannon's fixed page
windows of at most 100 runs) answers its whole window or a ReadLimitError.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.adapters import dynamodb_codec as codec
from chalicelib.adapters.dynamodb_codec import (
    READ_BOUND,
    ReadBound,
    TransactionCancelled,
    aws_errors_unavailable,
    is_conditional_failure,
    item_bytes,
    query_items,
    transact,
)
from chalicelib.adapters.dynamodb_spend import rollup_update
from chalicelib.adapters.dynamodb_table import GSI1, GSI2
from chalicelib.domain.enums import OverlapPolicy, PausedBy, RunStatus, RunTrigger, ScheduleStatus
from chalicelib.domain.errors import ReadLimitError
from chalicelib.domain.models import Principal, Run, Schedule, Usage
from chalicelib.domain.ports import ClaimOutcome, ClaimRequest, FailureStreak, FinishRequest

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

# Finish transactions retried when a racing writer changes the schedule between two of
# them; after these the run is counted without touching last_run_at or the marker.
_FINISH_RETRIES = 3


class DynamoDBRunStore:
    def __init__(
        self, client: DynamoDBClient, table_name: str, *, bound: ReadBound = READ_BOUND
    ) -> None:
        self._client = client
        self._table = table_name
        self._bound = bound

    def _schedule_key(self, schedule: Schedule) -> dict[str, Any]:
        return {
            "pk": codec.s(codec.user_pk(schedule.tenant_id, schedule.user_id)),
            "sk": codec.s(codec.schedule_sk(schedule.id)),
        }

    # --- claim ------------------------------------------------------------------------------

    @aws_errors_unavailable
    def claim(self, request: ClaimRequest) -> ClaimOutcome:
        run, schedule = request.run, request.schedule
        conditions = ["attribute_exists(pk)"]
        values: dict[str, Any] = {":one": codec.n(1)}
        names: dict[str, str] = {"#hc": "history_count"}
        update = "ADD #hc :one"
        names["#st"] = "status"
        values[":active"] = codec.s(ScheduleStatus.ACTIVE.value)
        if run.trigger is RunTrigger.SCHEDULE:
            conditions.append("#st = :active")
        else:
            # Run-now may run a schedule its user paused, never one the system paused
            # (checked by the API too; this holds against a pause landing in between).
            conditions.append("(#st = :active OR paused_by <> :system)")
            values[":system"] = codec.s(PausedBy.SYSTEM.value)
        if request.enforce_no_overlap:
            conditions.append("(attribute_not_exists(running_until) OR running_until < :now)")
            values[":now"] = codec.s(codec.ts(run.started_at or run.created_at))
            values[":rid"] = codec.s(run.run_id)
            values[":until"] = codec.s(codec.ts(request.running_until))
            update += " SET running_run_id = :rid, running_until = :until"
        items: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": codec.run_to_item(run),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": self._schedule_key(schedule),
                    "UpdateExpression": update,
                    "ConditionExpression": " AND ".join(conditions),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ]
        if request.new_thread is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": codec.thread_to_item(request.new_thread),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        try:
            transact(self._client, items)
        except TransactionCancelled as exc:
            if exc.failed(0):
                return ClaimOutcome.DUPLICATE
            if exc.failed(1):
                old = exc.old_item(1)
                if old is None:
                    return ClaimOutcome.GONE
                if codec.get_s(old, "status") != ScheduleStatus.ACTIVE.value and (
                    run.trigger is RunTrigger.SCHEDULE
                    or codec.get_opt_s(old, "paused_by") == PausedBy.SYSTEM.value
                ):
                    return ClaimOutcome.PAUSED
                return ClaimOutcome.OVERLAP
            raise
        return ClaimOutcome.CLAIMED

    @aws_errors_unavailable
    def record_skip(self, schedule: Schedule, run: Run) -> bool:
        try:
            transact(
                self._client,
                [
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": codec.run_to_item(run),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": self._schedule_key(schedule),
                            "UpdateExpression": "ADD #hc :one",
                            "ConditionExpression": "attribute_exists(pk)",
                            "ExpressionAttributeNames": {"#hc": "history_count"},
                            "ExpressionAttributeValues": {":one": codec.n(1)},
                        }
                    },
                    rollup_update(self._table, run),
                ],
            )
        except TransactionCancelled:
            return False
        return True

    # --- finish -----------------------------------------------------------------------------

    @aws_errors_unavailable
    def finish(self, request: FinishRequest) -> bool:
        """Write the run's terminal record; False when it was no longer ``running``.

        Both writers of a terminal record — the trigger and the reconciler ending a run
        whose trigger stopped reporting — go through here, and the record is written
        only over a ``running`` one, so exactly one of two racing writers records the
        outcome (and counts it); the other learns it lost from the False. The
        reconciler's write also needs the stuck index key its Query saw (False when a
        heartbeat moved it since).
        """
        if request.schedule is None:
            return self._finish_alone(request)
        run_item = self._terminal_put(request)
        # The usage rollup rides with the thread items: in every finish transaction.
        thread_items = [*self._thread_items(request), rollup_update(self._table, request.run)]
        try:
            transact(self._client, [run_item, self._schedule_update(request), *thread_items])
            return True
        except TransactionCancelled as exc:
            if exc.failed(0):
                return False  # already finished (e.g. ended by the reconciler)
            old = exc.old_item(1)
        # A later fire finished first, or holds the running marker now: count this run,
        # rebuilding the schedule update from the item the failed condition returned —
        # last_run_at only if it is still older, the marker only if it is still ours.
        # Another writer may change the schedule again in between, so this retries, a
        # bounded number of times, and then counts the run touching neither.
        for _ in range(_FINISH_RETRIES):
            if old is None:
                # The schedule was deleted mid-run: finish the run and its thread alone.
                return self._finish_alone(request)
            stored_last = old.get("last_run_at", {}).get("S")
            marker = old.get("running_run_id", {}).get("S")
            schedule_item = self._schedule_update(
                request,
                move_last_run_at=stored_last is None
                or stored_last <= codec.ts(request.run.scheduled_time),
                release_marker=marker in (None, request.run.run_id),
            )
            try:
                transact(self._client, [run_item, schedule_item, *thread_items])
                return True
            except TransactionCancelled as exc:
                if exc.failed(0):
                    return False
                old = exc.old_item(1)
        if old is None:
            return self._finish_alone(request)
        schedule_item = self._schedule_update(request, move_last_run_at=False, release_marker=False)
        try:
            transact(self._client, [run_item, schedule_item, *thread_items])
        except TransactionCancelled as exc:
            if exc.failed(0):
                return False
            return self._finish_alone(request)  # only attribute_exists(pk) can have failed
        return True

    @aws_errors_unavailable
    def heartbeat(self, run: Run, *, at: datetime, spent: Usage, stuck_after: datetime) -> bool:
        """Record that ``run``'s trigger is alive, with its spend so far (one UpdateItem).

        Moves the run's stuck index key (``gsi2sk``) to ``stuck_after``; written only
        while the run is ``running`` — False when it is not (the reconciler ended it, or
        the finish landed first), so a heartbeat never revives a finished run.
        """
        try:
            self._client.update_item(
                TableName=self._table,
                Key={
                    "pk": codec.s(codec.runs_pk(run.tenant_id, run.user_id, run.schedule_id)),
                    "sk": codec.s(codec.run_sk(run)),
                },
                UpdateExpression=(
                    "SET #at = :at, #cost = :cost, #in = :in, #out = :out, gsi2sk = :sk"
                ),
                ConditionExpression="attribute_exists(pk) AND #st = :running",
                ExpressionAttributeNames={
                    "#st": "status",
                    "#at": codec.HEARTBEAT_AT,
                    "#cost": codec.HEARTBEAT_COST,
                    "#in": codec.HEARTBEAT_INPUT_TOKENS,
                    "#out": codec.HEARTBEAT_OUTPUT_TOKENS,
                },
                ExpressionAttributeValues={
                    ":running": codec.s(RunStatus.RUNNING.value),
                    ":at": codec.s(codec.ts(at)),
                    ":cost": codec.n(spent.cost_usd),
                    ":in": codec.n(spent.input_tokens),
                    ":out": codec.n(spent.output_tokens),
                    ":sk": codec.s(f"{codec.ts(stuck_after)}#{run.run_id}"),
                },
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    def _schedule_update(
        self,
        request: FinishRequest,
        *,
        move_last_run_at: bool = True,
        release_marker: bool = True,
    ) -> TransactWriteItemTypeDef:
        """Counters, running marker and any system pause of the finish transaction.

        ``last_run_at`` only moves forward: the update is conditioned on the stored
        value being older than this run's fire time, and when overlapping runs finish
        out of order the later-finishing older run is written again without it (one
        more transaction, only in that case). Likewise the running marker is removed
        only while it is this run's: a run that outlived its marker (a later fire
        claimed the schedule after ``running_until``) must not release the later
        run's claim, or a third fire would overlap it.
        """
        run, schedule = request.run, request.schedule
        assert schedule is not None
        names: dict[str, str] = {"#tr": "total_runs", "#c": _counter(run.status)}
        values: dict[str, Any] = {":one": codec.n(1)}
        sets: list[str] = []
        condition = "attribute_exists(pk)"
        if move_last_run_at:
            names["#last"] = "last_run_at"
            values[":last"] = codec.s(codec.ts(run.scheduled_time))
            values[":null"] = codec.s("NULL")
            sets.append("#last = :last")
            condition += (
                " AND (attribute_not_exists(#last) OR attribute_type(#last, :null)"
                " OR #last <= :last)"
            )
        adds = ["#tr :one", "#c :one"]
        if request.failure_streak is FailureStreak.EXTEND:
            names["#cf"] = "consecutive_failures"
            adds.append("#cf :one")
        elif request.failure_streak is FailureStreak.RESET:
            names["#cf"] = "consecutive_failures"
            values[":zero"] = codec.n(0)
            sets.append("#cf = :zero")
        removes: list[str] = []
        if schedule.overlap_policy is OverlapPolicy.SKIP and release_marker:
            names["#rr"] = "running_run_id"
            names["#ru"] = "running_until"
            values[":rid"] = codec.s(run.run_id)
            removes += ["#rr", "#ru"]
            condition += " AND (attribute_not_exists(#rr) OR #rr = :rid)"
        if request.pause_reason is not None:
            names.update({"#st": "status", "#ver": "version"})
            values.update(
                {
                    ":paused": codec.s(ScheduleStatus.PAUSED.value),
                    ":at": codec.s(codec.ts(request.now)),
                    ":reason": codec.s(request.pause_reason),
                    ":by": codec.s(PausedBy.SYSTEM.value),
                }
            )
            sets += [
                "#st = :paused",
                "paused_at = :at",
                "pause_reason = :reason",
                "paused_by = :by",
                "updated_at = :at",
                "#ver = #ver + :one",
            ]
        expression = f"ADD {', '.join(adds)}"
        if sets:
            expression += f" SET {', '.join(sets)}"
        if removes:
            expression += f" REMOVE {', '.join(removes)}"
        return {
            "Update": {
                "TableName": self._table,
                "Key": self._schedule_key(schedule),
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _terminal_put(self, request: FinishRequest) -> TransactWriteItemTypeDef:
        """The run's terminal record, written only over a ``running`` one.

        For the reconciler, also only while the run's stuck index key is the one its
        Query saw (``seen_stuck_after``): gsi2 is eventually consistent, so a heartbeat
        may have moved the key after the Query read it, and the run is then alive.
        """
        run = request.run
        condition = "attribute_exists(pk) AND #st = :running"
        values = {":running": codec.s(RunStatus.RUNNING.value)}
        if request.seen_stuck_after is not None:
            condition += " AND gsi2sk = :seen"
            values[":seen"] = codec.s(f"{codec.ts(request.seen_stuck_after)}#{run.run_id}")
        return {
            "Put": {
                "TableName": self._table,
                "Item": codec.run_to_item(run),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#st": "status"},
                "ExpressionAttributeValues": values,
            }
        }

    def _thread_items(self, request: FinishRequest) -> list[TransactWriteItemTypeDef]:
        run = request.run
        if request.delete_thread_id is not None:
            return [
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": {
                            "pk": codec.s(codec.threads_pk(run.tenant_id, run.user_id)),
                            "sk": codec.s(request.delete_thread_id),
                        },
                    }
                }
            ]
        if request.thread is not None:
            return [
                {"Put": {"TableName": self._table, "Item": codec.thread_to_item(request.thread)}}
            ]
        return []

    def _finish_alone(self, request: FinishRequest) -> bool:
        try:
            transact(
                self._client,
                [
                    self._terminal_put(request),
                    *self._thread_items(request),
                    rollup_update(self._table, request.run),
                ],
            )
        except TransactionCancelled:
            return False  # already finished
        return True

    @aws_errors_unavailable
    def record_webhook(self, run: Run, status: str) -> None:
        """Set ``webhook_status`` on a finished run (not on one that no longer exists)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={
                    "pk": codec.s(codec.runs_pk(run.tenant_id, run.user_id, run.schedule_id)),
                    "sk": codec.s(codec.run_sk(run)),
                },
                UpdateExpression="SET webhook_status = :w",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":w": codec.s(status)},
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise

    # --- reads ------------------------------------------------------------------------------

    @aws_errors_unavailable
    def list_for_schedule(
        self, principal: Principal, schedule_id: str, *, offset: int, limit: int
    ) -> list[Run]:
        """The caller's runs of one schedule (deleted schedules included), newest first:
        the whole window (ReadLimitError if it lies beyond the read bound)."""
        return self._page(self._schedule_query(principal, schedule_id), offset, limit)[0]

    @aws_errors_unavailable
    def schedule_page(
        self,
        principal: Principal,
        schedule_id: str,
        *,
        offset: int,
        limit: int,
        where: Callable[[Run], bool] | None = None,
    ) -> tuple[list[Run], bool]:
        """Like ``list_for_schedule``, only runs matching ``where``, and a page the read
        bound may end early: (runs, whether it did)."""
        query = self._schedule_query(principal, schedule_id)
        return self._page(query, offset, limit, where=where, partial=True)

    @aws_errors_unavailable
    def thread_page(
        self,
        principal: Principal,
        thread_id: str,
        *,
        offset: int,
        limit: int,
        statuses: frozenset[RunStatus] | None = None,
        where: Callable[[Run], bool] | None = None,
    ) -> tuple[list[Run], bool]:
        """The runs on the caller's thread ``thread_id``, newest first — only those in
        ``statuses`` (filtered by DynamoDB) and matching ``where`` — and whether the read
        bound ended the page early."""
        if statuses is not None and not statuses:
            return [], False
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": GSI1,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": _thread_runs_pk(principal, thread_id)},
            "ScanIndexForward": False,
        }
        if statuses is not None:
            placeholders = {
                f":s{i}": codec.s(status.value) for i, status in enumerate(sorted(statuses))
            }
            query["FilterExpression"] = f"#st IN ({', '.join(placeholders)})"
            query["ExpressionAttributeNames"] = {"#st": "status"}
            query["ExpressionAttributeValues"].update(placeholders)
        return self._page(query, offset, limit, where=where, partial=True)

    def _schedule_query(self, principal: Principal, schedule_id: str) -> dict[str, Any]:
        pk = codec.runs_pk(principal.tenant_id, principal.user_id, schedule_id)
        return {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": codec.s(pk)},
            "ScanIndexForward": False,
        }

    def _page(
        self,
        query: dict[str, Any],
        offset: int,
        limit: int,
        *,
        where: Callable[[Run], bool] | None = None,
        partial: bool = False,
    ) -> tuple[list[Run], bool]:
        """Matches ``offset`` to ``offset + limit`` of a Query, within the read bound.

        Skipped runs are dropped undecoded when there is no ``where``. A ``partial`` page
        ends early (cut) once :data:`~dynamodb_codec.KEPT_BYTES` are kept or the pages
        run out with a run kept; otherwise running out of pages is a ReadLimitError.
        """
        wanted = offset + limit
        items = query_items(
            self._client,
            max_items=wanted if where is None else None,
            # Matches of ``where`` may be sparse: full pages, as before the read bound.
            page_size=min(wanted, 1000) if where is None else 1000,
            max_pages=self._bound.pages,
            **query,
        )
        out: list[Run] = []
        kept_bytes, skipped = 0, 0
        try:
            for item in items:
                if where is None and skipped < offset:
                    skipped += 1
                    continue
                run = codec.item_to_run(item)
                if where is not None and not where(run):
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                out.append(run)
                kept_bytes += item_bytes(item)
                if len(out) >= limit:
                    break
                if partial and kept_bytes >= self._bound.kept_bytes:
                    return out, True
        except ReadLimitError:
            if not partial or not out:
                raise
            return out, True
        return out, False

    @aws_errors_unavailable
    def load_fire(
        self,
        tenant_id: str,
        user_id: str,
        schedule_id: str,
        scheduled_time: datetime,
        trigger: RunTrigger,
        run_id: str,
        extra_keys: Sequence[dict[str, Any]] = (),
    ) -> tuple[Schedule | None, Run | None, list[dict[str, Any]]]:
        """The schedule and any existing run of this fire, in one consistent BatchGetItem,
        with the items of ``extra_keys`` (the owner's cap overrides: free in calls).

        A redelivered fire is recognised here with a single read instead of a failed
        claim transaction (which would cost write capacity on three items).
        """
        schedule_key = {
            "pk": codec.s(codec.user_pk(tenant_id, user_id)),
            "sk": codec.s(codec.schedule_sk(schedule_id)),
        }
        run_key = {
            "pk": codec.s(codec.runs_pk(tenant_id, user_id, schedule_id)),
            "sk": codec.s(codec.run_sort_key(scheduled_time, trigger, run_id)),
        }
        request: dict[str, Any] = {
            self._table: {
                "Keys": [schedule_key, run_key, *extra_keys],
                "ConsistentRead": True,
            }
        }
        found: list[dict[str, Any]] = []
        for _ in range(5):
            response = self._client.batch_get_item(RequestItems=request)
            found.extend(dict(i) for i in response.get("Responses", {}).get(self._table, []))
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                break
        schedule = next(
            (codec.item_to_schedule(i) for i in found if codec.get_s(i, "type") == "schedule"),
            None,
        )
        run = next((codec.item_to_run(i) for i in found if codec.get_s(i, "type") == "run"), None)
        extras = [i for i in found if codec.get_s(i, "type") not in ("schedule", "run")]
        return schedule, run, extras

    @aws_errors_unavailable
    def stuck(self, now: datetime, *, limit: int) -> list[Run]:
        """Running runs whose ``stuck_after`` has passed (gsi2 shards; no Scan)."""
        out: list[Run] = []
        for shard in range(codec.SHARDS):
            query: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": GSI2,
                "KeyConditionExpression": "gsi2pk = :pk AND gsi2sk < :now",
                "ExpressionAttributeValues": {
                    ":pk": codec.s(codec.running_gsi_pk(shard)),
                    ":now": codec.s(codec.ts(now)),
                },
                "Limit": limit,
            }
            page = self._client.query(**query)
            out.extend(codec.item_to_run(dict(i)) for i in page.get("Items", []))
        return out[:limit]

    # --- reads for the LangGraph façade -------------------------------------------------------

    @aws_errors_unavailable
    def find_on_thread(self, principal: Principal, thread_id: str, run_id: str) -> Run | None:
        """The run ``run_id`` among a thread's runs: the thread's GSI Query, filtered on the id.

        Run ids of scheduled fires are uuid5 (not time-ordered), so the GSI sort key
        (created time) cannot locate one directly; a thread's runs are few pages.
        """
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": GSI1,
            "KeyConditionExpression": "gsi1pk = :pk",
            "FilterExpression": "run_id = :rid",
            "ExpressionAttributeValues": {
                ":pk": _thread_runs_pk(principal, thread_id),
                ":rid": codec.s(run_id),
            },
        }
        # Only the match is transferred, so this may read as many pages as a count.
        try:
            for item in query_items(self._client, max_pages=self._bound.count_pages, **query):
                return codec.item_to_run(item)
        except ReadLimitError as exc:
            raise ReadLimitError(
                f"finding run {run_id} would read more than the {self._bound.count_pages} MB"
                " of this thread's runs one request reads: list the thread's runs instead"
            ) from exc
        return None


def _thread_runs_pk(principal: Principal, thread_id: str) -> AttributeValueTypeDef:
    return codec.s(codec.thread_runs_gsi_pk(principal.tenant_id, principal.user_id, thread_id))


def _counter(status: RunStatus) -> str:
    return "successful_runs" if status.counts_as_success else "failed_runs"
