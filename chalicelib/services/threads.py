"""ThreadService: threads, and the read side of runs, for the LangGraph façade.

A thread is a conversation: the agent state (``values``) that thread-bound crons
accumulate, plus client metadata. Threads are created by clients
(``POST /threads``) or by the run engine (one per fire of a stateless cron, with
``cron_id`` in its metadata). This service owns the thread use cases and the run
look-ups LangGraph clients make (runs of a thread, one run, the runs of a cron);
run *execution* stays in :mod:`chalicelib.services.runs`.

Design decisions:

* **Deleting a thread deletes its crons first**, through :class:`ScheduleService`
  (so each cron's EventBridge entries go with it), and the thread last. If a step
  fails the thread is still there and the delete can simply be retried; the other
  order could leave crons firing at a missing thread. The runs of the thread are
  *kept*: they are the tenant's run history (cost, outcome) and stay visible through
  the Shannon façade; through the LangGraph API they become unreachable, as there.
* **Search order.** Thread ids minted by agentcron are UUIDv7, so the table's sort
  key (the thread id) is creation order, and the default order — newest first — is a
  Query that stops as soon as ``offset + limit + 1`` threads matched, instead of
  reading the caller's whole partition. A thread created with a client-chosen id
  (any UUID version) sorts by that id in this default order. An explicit
  ``sort_by`` other than ``thread_id`` (``created_at``, ``updated_at``,
  ``state_updated_at``, ``status``) is exact: every match is read and sorted.
* **Reads are bounded** (the stores' read bounds, ``dynamodb_codec.READ_PAGES`` and
  ``KEPT_BYTES``): a page whose reads reach them ends early, and the caller is told
  ``more`` (LangGraph's ``X-Pagination-Next`` then names the offset it stopped at);
  a request that cannot answer at all within them — an offset deeper than the
  pages reach, a ``sort_by`` or filtered count over more than they hold — is a
  :class:`~chalicelib.domain.errors.ReadLimitError` (a 4xx), never a timeout.
* **Filters** are evaluated here, not in DynamoDB: metadata and values are stored as
  JSON strings, and containment (JSONB ``@>`` semantics, see :func:`json_contains`)
  has no DynamoDB expression. Expired threads (TTL) are filtered by the store.
* **Checkpoints.** agentcron keeps one state per thread, not a checkpoint history.
  :meth:`ThreadService.state` names that state with a deterministic checkpoint id
  derived from (thread id, state version), so two reads of the same state agree and
  every new state gets a new id.
* **Runs of a cron** (``POST /runs/search`` with ``metadata.cron_id``) are one Query
  on the cron's run partition, keyed by tenant, user and cron id — so it keeps working
  after the cron is deleted (its run history outlives it) and costs no extra read.
  Another user's cron id is simply an empty partition: an empty list, never an error
  that would confirm the id exists.
* **Isolation is in the keys.** Every store read here takes the caller's principal and
  is a key lookup or Query on the caller's own partition (threads, runs by cron, runs
  by thread), so no method can forget the owner check.
* **Thread ids are per user.** A client may choose its thread ids, and two users of
  one tenant may choose the same one: they get two separate threads, each with its
  own state and runs, neither aware of the other (``POST /threads`` answers 200 for
  the second user, not 409 — a 409 would confirm that someone else holds the id).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.domain.enums import RunStatus, ThreadStatus
from chalicelib.domain.errors import (
    ConflictError,
    ReadLimitError,
    RunNotFoundError,
    ScheduleNotFoundError,
)
from chalicelib.domain.models import (
    JSONObject,
    Principal,
    Run,
    Thread,
    check_thread_metadata,
    new_id,
)
from chalicelib.domain.ports import Clock

if TYPE_CHECKING:
    from chalicelib.adapters.dynamodb_runs import DynamoDBRunStore
    from chalicelib.adapters.dynamodb_threads import DynamoDBThreadStore
    from chalicelib.services.schedules import ScheduleService

CHECKPOINT_NAMESPACE = uuid.UUID("8d6f3b0e-52a4-4a0c-9a51-3c1f0f6a2b77")
"""uuid5 namespace of agentcron's checkpoint ids (one per thread state version)."""


@dataclass(frozen=True)
class ThreadQuery:
    """Filters and order of a thread search or count (every filter optional)."""

    metadata: JSONObject | None = None
    values: JSONObject | None = None
    ids: Sequence[str] | None = None
    status: ThreadStatus | None = None
    sort_by: str | None = None
    """None or ``thread_id``: store order; else one of ``status``, ``created_at``,
    ``updated_at``, ``state_updated_at`` (validated by the façade)."""
    descending: bool = True

    def matches(self, thread: Thread) -> bool:
        if self.ids is not None and thread.thread_id not in self.ids:
            return False
        if self.status is not None and thread.status is not self.status:
            return False
        if self.metadata and not json_contains(thread.metadata, self.metadata):
            return False
        return not self.values or json_contains(thread.values or {}, self.values)

    @property
    def filtered(self) -> bool:
        return bool(self.ids is not None or self.status is not None or self.metadata or self.values)


@dataclass(frozen=True)
class ThreadState:
    """The current state of a thread, as one (synthetic) checkpoint."""

    thread: Thread
    checkpoint_id: str | None
    """None while the thread has no state yet (no run has written ``values``)."""


@dataclass(frozen=True)
class RunFilter:
    """Extra conditions on a run search (statuses in the domain's vocabulary)."""

    statuses: frozenset[RunStatus] | None = None
    predicate: Callable[[Run], bool] | None = field(default=None, compare=False)

    def matches(self, run: Run) -> bool:
        if self.statuses is not None and run.status not in self.statuses:
            return False
        return self.predicate is None or self.predicate(run)

    @property
    def active(self) -> bool:
        return self.statuses is not None or self.predicate is not None


class ThreadService:
    def __init__(
        self,
        *,
        threads: DynamoDBThreadStore,
        runs: DynamoDBRunStore,
        crons: ScheduleService,
        clock: Clock,
        id_factory: Callable[[], str] = new_id,
    ) -> None:
        self._threads = threads
        self._runs = runs
        self._crons = crons
        self._clock = clock
        self._new_id = id_factory

    # --- threads ----------------------------------------------------------------------------

    def create(
        self,
        principal: Principal,
        *,
        thread_id: str | None = None,
        metadata: JSONObject | None = None,
        if_exists: str = "raise",
        ttl_minutes: float | None = None,
    ) -> Thread:
        """Create an idle thread with no state.

        Raises:
            InvalidRequestError: ``metadata`` is over its size budget (64 KiB, see
                ``chalicelib.domain.limits``): the thread's state must still fit next to it.
            ConflictError: ``thread_id`` is taken and ``if_exists`` is not ``do_nothing``.
                (Another user's thread with that id is indistinguishable from a free
                id: threads are keyed by tenant and user.)
        """
        check_thread_metadata(metadata or {})
        now = self._clock.now()
        thread = Thread(
            thread_id=thread_id or self._new_id(),
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            metadata=dict(metadata or {}),
            status=ThreadStatus.IDLE,
            created_at=now,
            updated_at=now,
            state_updated_at=now,
            expires_at=None if ttl_minutes is None else now + timedelta(minutes=ttl_minutes),
        )
        try:
            self._threads.create(thread)
        except ConflictError:
            if if_exists == "do_nothing":
                return self._threads.get(principal, thread.thread_id)
            raise
        return thread

    def get(self, principal: Principal, thread_id: str) -> Thread:
        """The caller's thread (ThreadNotFoundError otherwise)."""
        return self._threads.get(principal, thread_id)

    def state(self, principal: Principal, thread_id: str) -> ThreadState:
        thread = self._threads.get(principal, thread_id)
        checkpoint = (
            None
            if thread.values is None
            else str(uuid.uuid5(CHECKPOINT_NAMESPACE, f"{thread.thread_id}|{thread.version}"))
        )
        return ThreadState(thread=thread, checkpoint_id=checkpoint)

    def delete(self, principal: Principal, thread_id: str) -> list[str]:
        """Delete the thread's crons, then the thread; returns the deleted cron ids.

        Raises:
            ThreadNotFoundError: the caller has no such thread (nothing is deleted).
        """
        self._threads.get(principal, thread_id)
        deleted: list[str] = []
        for schedule in self._crons.list_for_user(principal):
            if schedule.thread_id == thread_id:
                try:
                    self._crons.delete(principal, schedule.id)
                except ScheduleNotFoundError:
                    continue  # deleted concurrently: the outcome we want
                deleted.append(schedule.id)
        self._threads.delete(principal, thread_id)
        return deleted

    def search(
        self, principal: Principal, query: ThreadQuery, *, offset: int, limit: int
    ) -> tuple[list[Thread], bool]:
        """One page of matching threads and whether more follow."""
        predicate = query.matches if query.filtered else None
        if query.sort_by in (None, "thread_id"):
            # Store order: stop reading as soon as the page and one extra row are known
            # (or every requested id was found).
            keep = limit + 1
            if query.ids is not None:
                keep = min(keep, len(set(query.ids)) - offset)
            found, cut = self._threads.search(
                principal, predicate, skip=offset, keep=keep, newest_first=query.descending
            )
            if cut:
                return found, True  # the read bound ended the page: the rest follows
            return found[:limit], len(found) > limit
        try:
            every, _ = self._threads.search(principal, predicate, keep=None)
        except ReadLimitError as exc:
            raise ReadLimitError(
                f"sort_by {query.sort_by} reads every matching thread, and there are more"
                " than one request reads: search in thread_id order (the default) instead"
            ) from exc
        ordered = sort_threads(every, query.sort_by, descending=query.descending)
        page = ordered[offset : offset + limit + 1]
        return page[:limit], len(page) > limit

    def count(self, principal: Principal, query: ThreadQuery) -> int:
        return self._threads.count(principal, query.matches if query.filtered else None)

    # --- runs -------------------------------------------------------------------------------

    def runs(
        self,
        principal: Principal,
        thread_id: str,
        *,
        offset: int,
        limit: int,
        where: RunFilter | None = None,
    ) -> tuple[list[Run], bool]:
        """The thread's runs, newest first (ThreadNotFoundError for a foreign thread), and
        whether the read bound ended the page early.

        A status filter is evaluated by DynamoDB, any other condition here, as the store
        reads (within its read bound).
        """
        self._threads.get(principal, thread_id)
        if where is None or not where.active:
            return self._runs.thread_page(principal, thread_id, offset=offset, limit=limit)
        return self._runs.thread_page(
            principal,
            thread_id,
            offset=offset,
            limit=limit,
            statuses=where.statuses,
            where=where.predicate,
        )

    def run(self, principal: Principal, thread_id: str, run_id: str) -> Run:
        """One run of the caller's thread (ThreadNotFoundError / RunNotFoundError)."""
        self._threads.get(principal, thread_id)
        run = self._runs.find_on_thread(principal, thread_id, run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    def cron_runs(
        self,
        principal: Principal,
        cron_id: str,
        *,
        offset: int,
        limit: int,
        where: RunFilter | None = None,
    ) -> tuple[list[Run], bool]:
        """The runs of one of the caller's crons (deleted ones included), newest first,
        and whether the read bound ended the page early.

        Unfiltered, this is one page of one Query; ``where`` is evaluated as the store
        reads (within its read bound).
        """
        matches = None if where is None or not where.active else where.matches
        return self._runs.schedule_page(
            principal, cron_id, offset=offset, limit=limit, where=matches
        )


def sort_threads(threads: list[Thread], sort_by: str, *, descending: bool) -> list[Thread]:
    """Sort by one thread attribute; missing values last when ascending (as PostgreSQL does)."""

    def key(thread: Thread) -> tuple[bool, Any, str]:
        value: Any = getattr(thread, sort_by)
        if isinstance(value, ThreadStatus):
            value = value.value
        return (value is None, value if value is not None else "", thread.thread_id)

    if descending:
        # NULLS FIRST when descending: reversing the ascending order gives exactly that.
        return sorted(threads, key=key, reverse=True)
    return sorted(threads, key=key)


def json_contains(container: Any, subset: Any) -> bool:
    """PostgreSQL JSONB containment (``container @> subset``).

    Objects match when every key of ``subset`` is in ``container`` with a contained
    value (nested objects match as subsets); arrays match when every element of
    ``subset`` is contained in some element of ``container``; scalars must be equal,
    and JSON types must agree (``true`` is not ``1``).
    """
    if isinstance(subset, dict):
        return isinstance(container, dict) and all(
            key in container and json_contains(container[key], value)
            for key, value in subset.items()
        )
    if isinstance(subset, list):
        if not isinstance(container, list):
            return False
        return all(any(json_contains(item, wanted) for item in container) for wanted in subset)
    if isinstance(container, dict | list):
        return False
    if isinstance(subset, bool) or isinstance(container, bool):
        return isinstance(subset, bool) and isinstance(container, bool) and subset is container
    return bool(container == subset)
