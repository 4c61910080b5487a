"""``make run``: the whole of agentcron on a laptop, in one process and one terminal.

* moto in server mode on 127.0.0.1 emulates DynamoDB and EventBridge Scheduler;
  every client of the stack is created with moto's endpoint and throw-away
  credentials, so nothing can reach real AWS (the process environment is left
  alone, which also lets tests and benchmarks run a stack in-process);
* the table and the schedule group are created from ``chalicelib/adapters/dynamodb_table.py``;
* the same Chalice app serves the API on ``127.0.0.1:$PORT`` (default 8000) through
  Chalice's own local server (what ``chalice local`` runs), with the ``local``
  stage's environment from ``.chalice/config.json``;
* the local dispatcher fires due Scheduler entries into the trigger handler, and
  manual runs (``POST …/trigger``) run on a background thread instead of an async
  Lambda invoke;
* the reconciler runs every ``RECONCILE_INTERVAL_SECONDS`` (as the maintenance rule
  does in AWS);
* one dev API key (``AGENTCRON_LOCAL_API_KEY``, default ``ac_local_dev_key``) is seeded
  for tenant ``local`` / user ``dev`` and printed.

Every variable of the configuration table can be set in the environment, e.g.
``SCHEDULE_MIN_INTERVAL_MINS=1 make run``. State lives in moto's memory and is gone
when the stack stops (Ctrl-C).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalice.local import ChaliceRequestHandler, ThreadedHTTPServer

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_KEY = "ac_local_dev_key"
LOCAL_TENANT = "local"
LOCAL_USER = "dev"


def stage_environment(stage: str = "local") -> dict[str, str]:
    """The stage's environment variables exactly as Chalice would set them."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env: dict[str, str] = dict(config.get("environment_variables", {}))
    env.update(config.get("stages", {}).get(stage, {}).get("environment_variables", {}))
    return env


@dataclass
class RunningStack:
    api_url: str
    moto_url: str
    api_key: str
    container: Any
    dispatcher: Any
    _stop_reconciler: threading.Event
    _moto: Any
    _server: Any
    _server_thread: threading.Thread

    def stop(self) -> None:
        self._stop_reconciler.set()
        self.dispatcher.stop()
        self._server.shutdown()
        self._server_thread.join(5)
        self._moto.stop()
        from chalicelib import dependencies

        dependencies.override(None)


def start(
    *,
    port: int = 8000,
    moto_port: int = 0,
    environ: dict[str, str] | None = None,
    quiet: bool = False,
    printer: Any = print,
    on_fire: Any = None,
) -> RunningStack:
    """Start moto, bootstrap AWS resources, the API server and the dispatcher."""
    env = {**stage_environment("local"), "LOG_LEVEL": "WARNING"}
    env.update(os.environ if environ is None else environ)
    api_key = env.get("AGENTCRON_LOCAL_API_KEY") or DEFAULT_KEY
    from chalicelib.domain.errors import ConfigurationError
    from chalicelib.services.auth import MAX_KEY_CHARS, MIN_KEY_CHARS

    if not MIN_KEY_CHARS <= len(api_key) <= MAX_KEY_CHARS:
        # Checked before anything starts, so the error is one line, not a traceback.
        raise ConfigurationError(
            f"AGENTCRON_LOCAL_API_KEY must be {MIN_KEY_CHARS}-{MAX_KEY_CHARS} characters "
            f"(it has {len(api_key)})"
        )

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    host, bound = moto.get_host_and_port()
    moto_url = f"http://{host}:{bound}"
    # moto's backends are process-wide: a stack started after another one in the same
    # process (tests, benchmarks) must not inherit its schedules.
    _reset_moto(moto_url)

    from chalicelib import dependencies
    from chalicelib.adapters.dynamodb_table import create_schedule_group, create_table
    from chalicelib.adapters.local_invoker import ThreadRunInvoker
    from chalicelib.dependencies import Container
    from chalicelib.local.dispatcher import Fire, LocalDispatcher
    from chalicelib.local.serialize import serialize_requests
    from chalicelib.settings import Settings

    config: Settings = Settings.from_environ(env)
    holder: dict[str, Container] = {}

    def report(result: Any) -> None:
        if not quiet:
            printer(format_run(result))

    invoker = ThreadRunInvoker(
        lambda event, remaining: holder["c"].trigger_handler(event, remaining),
        lambda_timeout_seconds=config.TRIGGER_LAMBDA_TIMEOUT_SECONDS,
        on_done=report,
    )
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name=config.AWS_REGION
    )
    container = Container(config, invoker=invoker, boto_session=session, endpoint_url=moto_url)
    holder["c"] = container
    # moto server handles requests on concurrent threads but its backends are not
    # thread-safe; one request at a time is what DynamoDB's per-request atomicity gives.
    serialize_requests(container.dynamodb, container.scheduler)
    container.assistants  # noqa: B018 - validate assistants and prices at start-up
    create_table(container.dynamodb, config.TABLE_NAME)
    create_schedule_group(container.scheduler, config.SCHEDULE_GROUP)
    container.api_keys.mint(LOCAL_TENANT, LOCAL_USER, key=api_key, description="make run")
    dependencies.override(container)

    def fired(fire: Fire) -> None:
        if on_fire is not None:
            on_fire(fire)
        if not quiet:
            printer(format_run(fire.result, fire=fire))

    dispatcher = LocalDispatcher(
        container.scheduler,
        config.SCHEDULE_GROUP,
        container.trigger_handler,
        lambda_timeout_seconds=config.TRIGGER_LAMBDA_TIMEOUT_SECONDS,
        on_fire=fired,
    )
    dispatcher.start()
    stop_reconciler = threading.Event()

    def reconcile_periodically() -> None:
        while not stop_reconciler.wait(config.RECONCILE_INTERVAL_SECONDS):
            try:
                container.reconciler.run()
            except Exception:
                logging.getLogger(__name__).exception("reconciler pass failed")

    threading.Thread(target=reconcile_periodically, name="reconciler", daemon=True).start()

    from chalice.cli.factory import CLIFactory
    from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

    from app import app

    chalice_config = CLIFactory(project_dir=str(ROOT)).create_config_obj(chalice_stage_name="local")
    if not isinstance(app, CustomLocalChalice):  # a first stack in this process
        # What chalice's create_local_server does to the app, without its server: ours
        # needs a different server class.
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    server = LocalDevServer(
        app,
        chalice_config,
        "127.0.0.1",
        port,
        handler_cls=_QuietHandler if quiet else _Handler,
        server_cls=_BurstTolerantServer,
    )
    bound_port = server.server.server_address[1]
    thread = threading.Thread(target=server.server.serve_forever, name="api", daemon=True)
    thread.start()
    return RunningStack(
        api_url=f"http://127.0.0.1:{bound_port}",
        moto_url=moto_url,
        api_key=api_key,
        container=container,
        dispatcher=dispatcher,
        _stop_reconciler=stop_reconciler,
        _moto=moto,
        _server=server,
        _server_thread=thread,
    )


class _BurstTolerantServer(ThreadedHTTPServer):
    """Chalice's threaded server with a deep listen backlog.

    ``socketserver`` listens with a backlog of 5: a burst of simultaneous clients
    overflows the accept queue and the kernel drops the excess handshakes, which the
    clients see as connections that never answer. 1024 queued connections (the kernel
    caps it at ``net.core.somaxconn``) absorb any burst a laptop can send, and each is
    then served on its own thread. Request threads are daemons, so stopping the stack
    never waits for a slow client.
    """

    request_queue_size = 1024
    daemon_threads = True


class _Handler(ChaliceRequestHandler):
    """Chalice's request handler with TCP_NODELAY.

    The handler writes a response's headers and body in separate sends; on a kept-alive
    connection Nagle's algorithm then holds the body until the client's delayed ACK
    (~40 ms) — most of the latency of every request with a body.
    """

    disable_nagle_algorithm = True


class _QuietHandler(_Handler):
    """Without the per-request access log (benchmarks, tests)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: ARG002 - stdlib signature
        return


def _reset_moto(moto_url: str) -> None:
    import urllib.request

    request = urllib.request.Request(f"{moto_url}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def format_run(result: Any, fire: Any = None) -> str:
    """One line per run: fire time, schedule, status, cost."""
    if fire is not None and fire.error:
        return f"[run] {fire.scheduled_time:%Y-%m-%dT%H:%M:%SZ} {fire.name}  FAILED: {fire.error}"
    if not isinstance(result, dict):
        return f"[run] {result!r}"
    when = result.get("scheduled_time", "?")
    status = result.get("status", "?")
    line = f"[run] {when}  schedule {result.get('schedule_id', '?')}  {status}"
    if result.get("reason"):
        line += f" ({result['reason']})"
    if status not in ("ignored", "duplicate", "dropped", "skipped"):
        line += f"  ${result.get('cost_usd', '0')}  {result.get('total_tokens', 0)} tokens"
    if result.get("run_id"):
        line += f"  run {result['run_id']}"
    return line


def main() -> int:
    port = int(os.environ.get("PORT") or "8000")
    moto_port = int(os.environ.get("MOTO_PORT") or "0")
    from chalicelib.domain.errors import AgentcronError

    try:
        stack = start(port=port, moto_port=moto_port)
    except AgentcronError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2
    print(
        "\n".join(
            [
                "",
                "agentcron is running (local stack).",
                f"  API          {stack.api_url}",
                f"  Console      {stack.api_url}/console   (sign in with the API key below)",
                f"  API key      {stack.api_key}   (tenant {LOCAL_TENANT}, user {LOCAL_USER})",
                f"  AWS (moto)   {stack.moto_url}",
                f"  Admin        AWS_ENDPOINT_URL={stack.moto_url} AWS_ACCESS_KEY_ID=local "
                "AWS_SECRET_ACCESS_KEY=local TABLE_NAME=agentcron-local "
                ".venv/bin/python -m chalicelib.admin create-key --tenant T --user U",
                "  Try:",
                f"    curl -s {stack.api_url}/api/v1/schedules "
                f"-H 'Authorization: Bearer {stack.api_key}'",
                "  Ctrl-C stops everything.",
                "",
            ]
        ),
        flush=True,
    )
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        print("stopping…", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
