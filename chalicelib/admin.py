"""Operator commands: ``python -m chalicelib.admin <command>``.

    create-key --tenant T --user U [--description TEXT]   mint a key (printed once)
    list-keys --tenant T                                  key ids, owners, state
    revoke-key --tenant T --key-id ID                     revoke (effective within
                                                          API_KEY_CACHE_SECONDS)
    bootstrap                                             create the table and the
                                                          schedule group if missing

They use the same settings as the deployment (``TABLE_NAME``, ``AWS_REGION`` …) and the
usual AWS credential chain; against the local stack set
``AWS_ENDPOINT_URL=http://127.0.0.1:<moto port>`` (``make run`` prints it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chalicelib.dependencies import Container, container
from chalicelib.domain.errors import AgentcronError


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
    commands.add_parser("bootstrap", help="create the table and schedule group if missing")
    args = parser.parse_args(argv)
    c = deps or container()
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
        elif args.command == "bootstrap":
            from chalicelib.adapters.dynamodb_table import create_schedule_group, create_table

            create_table(c.dynamodb, c.settings.TABLE_NAME)
            create_schedule_group(c.scheduler, c.settings.SCHEDULE_GROUP)
            print(f"table {c.settings.TABLE_NAME} and group {c.settings.SCHEDULE_GROUP} ready")
    except AgentcronError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
