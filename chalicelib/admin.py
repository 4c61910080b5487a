"""Operator commands: ``python -m chalicelib.admin <command>``.

    create-key --tenant T --user U [--description TEXT]   mint a key (printed once)
    list-keys --tenant T                                  key ids, owners, state
    revoke-key --tenant T --key-id ID                     revoke (effective within
                                                          API_KEY_CACHE_SECONDS)
    set-cap --tenant T [--user U] (--monthly-usd X | --unlimited | --clear)
                                                          override the monthly spend
                                                          cap of a tenant or one user
                                                          (--clear: back to the default)
    show-caps --tenant T [--user U]                       defaults, overrides, and
                                                          (with --user) the caps in
                                                          force and this month's use
    bootstrap                                             create the table and the
                                                          schedule group if missing
    failed-fires --stage S [--json]                       what sits in the Scheduler's
                                                          dead-letter queue and the
                                                          trigger's failure queue
    redrive --stage S                                     re-deliver them through the
                                                          trigger (idempotent; late
                                                          fires are recorded as skipped)

They use the same settings as the deployment (``TABLE_NAME``, ``AWS_REGION`` …) and the
usual AWS credential chain; against the local stack set
``AWS_ENDPOINT_URL=http://127.0.0.1:<moto port>`` (``make run`` prints it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib import observability
from chalicelib.dependencies import Container, container
from chalicelib.domain.errors import AgentcronError
from chalicelib.observability import configure_logging


def main(argv: Sequence[str] | None = None, deps: Container | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-key", help="mint an API key for a tenant's user")
    create.add_argument("--tenant", required=True)
    create.add_argument("--user", required=True)
    create.add_argument("--description", default="")
    listing = commands.add_parser("list-keys", help="list a tenant's keys")
    listing.add_argument("--tenant", required=True)
    revoke = commands.add_parser("revoke-key", help="revoke a key by its id")
    revoke.add_argument("--tenant", required=True)
    revoke.add_argument("--key-id", required=True)
    cap = commands.add_parser("set-cap", help="override a tenant's or a user's monthly cap")
    cap.add_argument("--tenant", required=True)
    cap.add_argument("--user", help="the user's cap (default: the tenant's)")
    value = cap.add_mutually_exclusive_group(required=True)
    value.add_argument("--monthly-usd", type=_usd, help="the cap in USD per UTC month")
    value.add_argument("--unlimited", action="store_true", help="no cap, whatever the default")
    value.add_argument("--clear", action="store_true", help="remove the override")
    show = commands.add_parser("show-caps", help="monthly caps of a tenant (and a user)")
    show.add_argument("--tenant", required=True)
    show.add_argument("--user")
    commands.add_parser("bootstrap", help="create the table and schedule group if missing")
    for name, text in (
        ("failed-fires", "list the fires in the two failure queues"),
        ("redrive", "re-deliver the failed fires through the trigger"),
    ):
        queues = commands.add_parser(name, help=text)
        queues.add_argument("--stage", help="the deployment (default: STAGE of the settings)")
        queues.add_argument("--dlq-url", help="the Scheduler dead-letter queue's URL")
        queues.add_argument("--failures-url", help="the trigger's failure queue's URL")
        queues.add_argument("--limit", type=int, default=100)
        if name == "failed-fires":
            queues.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    # stdout is the commands' output (``--json`` is parsed by scripts): logs go to stderr.
    configure_logging()
    previous = observability.redirect(sys.stderr)
    try:
        return _run(args, deps)
    finally:
        observability.redirect(previous)


def _run(args: argparse.Namespace, deps: Container | None) -> int:
    c = deps or (
        container() if getattr(args, "stage", None) is None else stage_container(args.stage)
    )
    try:
        if args.command == "create-key":
            key, record = c.api_keys.mint(args.tenant, args.user, description=args.description)
            print(f"key_id: {record.key_id}")
            print(f"tenant: {record.tenant_id}  user: {record.user_id}")
            print(f"api key (shown once): {key}")
        elif args.command == "list-keys":
            for record in c.api_keys.list_for_tenant(args.tenant):
                state = "revoked" if record.revoked_at else "active"
                print(
                    f"{record.key_id}  {record.user_id}  {state}  "
                    f"{record.created_at.isoformat()}  {record.description}"
                )
        elif args.command == "revoke-key":
            if not c.api_keys.revoke(args.tenant, args.key_id):
                print(f"no active key {args.key_id} for tenant {args.tenant}", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}")
        elif args.command == "set-cap":
            _set_cap(c, args)
        elif args.command == "show-caps":
            _show_caps(c, args)
        elif args.command == "bootstrap":
            from chalicelib.adapters.dynamodb_table import create_schedule_group, create_table

            create_table(c.dynamodb, c.settings.TABLE_NAME)
            create_schedule_group(c.scheduler, c.settings.SCHEDULE_GROUP)
            print(f"table {c.settings.TABLE_NAME} and group {c.settings.SCHEDULE_GROUP} ready")
        elif args.command in ("failed-fires", "redrive"):
            return _failed_fires(c, args)
    except AgentcronError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _usd(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError("a cap is a number of USD ≥ 0")
    return value


def _set_cap(c: Container, args: argparse.Namespace) -> None:
    from chalicelib.domain.caps import CapOverride, CapScope
    from chalicelib.services.auth import check_identifier

    check_identifier("tenant", args.tenant)
    if args.user:
        check_identifier("user", args.user)
    who = f"user {args.user} of tenant {args.tenant}" if args.user else f"tenant {args.tenant}"
    if args.clear:
        c.spend_store.clear_override(args.tenant, args.user)
        print(f"{who}: override cleared (the deployment default applies)")
        return
    scope = CapScope.USER if args.user else CapScope.TENANT
    usd = None if args.unlimited else args.monthly_usd
    c.spend_store.set_override(CapOverride(scope, args.tenant, args.user, usd), c.clock.now())
    print(f"{who}: monthly cap {'unlimited' if usd is None else f'${usd}'} (UTC months)")


def _show_caps(c: Container, args: argparse.Namespace) -> None:
    from chalicelib.domain.caps import month_of

    defaults = c.cap_defaults
    print(f"default user cap:   {_money(defaults.user_usd)}")
    print(f"default tenant cap: {_money(defaults.tenant_usd)}")
    for override in c.spend_store.list_overrides(args.tenant):
        who = "tenant" if override.user_id is None else f"user {override.user_id}"
        print(f"override {who}: {_money(override.monthly_usd)}")
    if args.user:
        month = month_of(c.clock.now())
        caps = c.spend_store.caps_for(args.tenant, args.user, defaults)
        for usage in c.spend_store.usage(caps, args.tenant, args.user, month):
            print(
                f"in force for {args.user}, {month}: {usage.cap.scope.value} cap "
                f"${usage.cap.monthly_usd}, used ${usage.used_usd} "
                f"(spent ${usage.spent_usd}), remaining ${usage.remaining_usd}"
                + (", exhausted: fires are skipped" if usage.exhausted else "")
            )
        if not caps:
            print(f"no cap in force for {args.user}")


def _money(value: Decimal | None) -> str:
    return "none" if value is None else f"${value}"


def stage_container(stage: str) -> Container:
    """The deployment ``agentcron-<stage>`` as the template names it: its table, group and
    trigger function (redrives invoke it asynchronously, as manual runs do)."""
    from chalicelib.dependencies import Container
    from chalicelib.settings import settings

    prefix = f"agentcron-{stage}"
    config = settings().model_copy(
        update={
            "STAGE": stage,
            "TABLE_NAME": prefix,
            "SCHEDULE_GROUP": prefix,
            "TRIGGER_FUNCTION_ARN": f"{prefix}-run-trigger",
            "RUN_INVOKER": "lambda",
        }
    )
    return Container(config)


def _failed_fires(c: Container, args: argparse.Namespace) -> int:
    import json

    from botocore.exceptions import ClientError

    from chalicelib.adapters.sqs_failures import SqsQueue
    from chalicelib.services.replay import (
        SCHEDULER_DLQ,
        TRIGGER_FAILURES,
        FailedFires,
        queue_name,
    )

    stage = args.stage or c.settings.STAGE
    urls = {SCHEDULER_DLQ: args.dlq_url, TRIGGER_FAILURES: args.failures_url}
    try:
        queues: dict[str, Any] = {
            source: SqsQueue(c.sqs, url)
            if url
            else SqsQueue.named(c.sqs, queue_name(stage, source))
            for source, url in urls.items()
        }
    except ClientError as exc:
        print(f"error: cannot find the failure queues of stage {stage}: {exc}", file=sys.stderr)
        return 2
    fires = FailedFires(queues, c.invoker)
    if args.command == "failed-fires":
        listed = fires.list(args.limit)
        for fire in listed:
            if args.json:
                print(json.dumps(fire.as_dict(), ensure_ascii=False))
            else:
                print(
                    f"{fire.source:17} {fire.scheduled_time:25} {fire.schedule_id:36} "
                    f"{fire.tenant:12} {fire.error}"
                )
        if not args.json:
            print(f"{len(listed)} failed fire(s)")
        return 0
    report = fires.redrive(args.limit)
    waiter = getattr(c.invoker, "wait", None)
    if callable(waiter):  # in-process invokers (the local stack) finish their runs first
        waiter()
    for fire in report.redriven:
        print(f"redriven   {fire.schedule_id} at {fire.scheduled_time} ({fire.source})")
    for fire, error in report.failed:
        print(f"not redriven {fire.schedule_id} at {fire.scheduled_time}: {error}")
    for fire in report.unrecognised:
        print(f"left alone {fire.message.message_id} ({fire.source}): {fire.error}")
    print(
        f"{len(report.redriven)} redriven, {len(report.failed)} failed, "
        f"{len(report.unrecognised)} unrecognised. The trigger records each redriven fire: "
        "run, duplicate (already recorded) or skipped (late)."
    )
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
