"""The composition root's factories: lazily built, cached per process, overridable in tests.

Nothing here runs at import time. AWS clients are created on first use — a boto3
client made at import would escape moto in tests and cost cold-start time in
Lambda for routes that never need it. ``AWS_ENDPOINT_URL`` (read by botocore
itself) points every client at moto server for ``make run``.

Tests build their own :class:`Container` (inside ``mock_aws``) and install it with
:func:`override`; nothing is patched.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

from chalicelib.domain.models import SystemClock
from chalicelib.domain.ports import Clock
from chalicelib.settings import Settings, settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

    from chalicelib.adapters.dynamodb_keys import DynamoDBApiKeyStore
    from chalicelib.adapters.dynamodb_runs import DynamoDBRunStore
    from chalicelib.adapters.dynamodb_schedules import DynamoDBScheduleStore
    from chalicelib.adapters.dynamodb_spend import DynamoDBSpendStore
    from chalicelib.adapters.dynamodb_threads import DynamoDBThreadStore
    from chalicelib.adapters.eventbridge_scheduler import EventBridgeSchedulerGateway
    from chalicelib.adapters.ssm_secrets import SecretReader
    from chalicelib.agents.registry import AgentCatalog, AgentFactory, AssistantRegistry
    from chalicelib.domain.caps import Cap, CapDefaults
    from chalicelib.domain.models import Principal
    from chalicelib.domain.ports import RunInvoker
    from chalicelib.services.auth import ApiKeyService
    from chalicelib.services.reconciler import Reconciler
    from chalicelib.services.runs import RunExecutor, RunService
    from chalicelib.services.schedules import ScheduleService
    from chalicelib.services.threads import ThreadService
    from chalicelib.services.usage import UsageService
    from chalicelib.services.webhooks import WebhookSender


class Container:
    """Everything a request or a trigger invocation needs, built on first use."""

    def __init__(
        self,
        config: Settings,
        *,
        clock: Clock | None = None,
        invoker: RunInvoker | None = None,
        boto_session: Any = None,
        endpoint_url: str | None = None,
        webhooks: Any = None,
    ) -> None:
        self.settings = config
        self.clock: Clock = clock or SystemClock()
        self._invoker = invoker
        self._session = boto_session
        # None: botocore's own resolution (AWS_ENDPOINT_URL or the real endpoint).
        self._endpoint_url = endpoint_url
        if webhooks is not None:
            self.__dict__["webhooks"] = webhooks  # pre-fills the cached property below
        self._lock = threading.RLock()
        from chalicelib import observability

        observability.configure(
            level=config.LOG_LEVEL,
            stage=config.STAGE,
            tracing=config.TRACING,
            request_deadline=config.API_REQUEST_DEADLINE,
        )

    # --- AWS clients (lazy) -----------------------------------------------------------------

    def _client(
        self,
        service: str,
        *,
        region_name_override: str | None = None,
        read_timeout: float | None = None,
        total_attempts: int | None = None,
    ) -> Any:
        import boto3

        from chalicelib import observability
        from chalicelib.adapters.botocore_deadline import RequestDeadlineReached

        s = self.settings
        read = read_timeout or s.AWS_READ_TIMEOUT_SECONDS
        # One session for every client of the container: its loader reads each service
        # model, endpoint and retry file once (a fresh session per client re-read them,
        # ~70 ms a client on a cold start). A session is not safe for concurrent client
        # creation, hence the lock.
        with self._lock:
            if self._session is None:
                self._session = boto3.session.Session()
            session: Any = self._session
            client = self._new_client(session, service, region_name_override, read, total_attempts)
        # An API request never starts a call it has no time left for (the request
        # deadline, chalicelib/observability.py); the refusal is a botocore error, which
        # every adapter answers like an unreachable service (503, with its rollback).
        worst = observability.call_worst_seconds(
            s.AWS_CONNECT_TIMEOUT_SECONDS, read, s.AWS_MAX_ATTEMPTS
        )

        def refuse_late_call(model: Any, **_: Any) -> None:
            if not observability.may_start(worst):
                raise RequestDeadlineReached(operation=model.name)

        client.meta.events.register("before-call.*.*", refuse_late_call, unique_id="deadline")
        return client

    def _new_client(
        self,
        session: Any,
        service: str,
        region_name_override: str | None,
        read: float,
        total_attempts: int | None,
    ) -> Any:
        from botocore.config import Config

        s = self.settings
        return session.client(
            service,
            endpoint_url=self._endpoint_url,
            region_name=region_name_override or s.AWS_REGION,
            config=Config(
                retries=(
                    {"mode": "standard", "max_attempts": s.AWS_MAX_ATTEMPTS}
                    if total_attempts is None
                    # botocore's ``max_attempts`` counts retries; this counts every attempt.
                    else {"mode": "standard", "total_max_attempts": total_attempts}
                ),
                connect_timeout=s.AWS_CONNECT_TIMEOUT_SECONDS,
                read_timeout=read,
                max_pool_connections=50,
            ),
        )

    @functools.cached_property
    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self._client("dynamodb")
        return client

    @functools.cached_property
    def scheduler(self) -> EventBridgeSchedulerClient:
        client: EventBridgeSchedulerClient = self._client("scheduler")
        return client

    @functools.cached_property
    def lambda_client(self) -> LambdaClient:
        client: LambdaClient = self._client("lambda")
        return client

    @functools.cached_property
    def sqs(self) -> Any:
        """The failure queues' client (operator commands: ``failed-fires``, ``redrive``)."""
        return self._client("sqs")

    @functools.cached_property
    def ssm(self) -> Any:
        return self._client("ssm")

    @functools.cached_property
    def secrets(self) -> SecretReader:
        from chalicelib.adapters.ssm_secrets import SecretReader

        return SecretReader(lambda: self.ssm, max_age_seconds=self.settings.SECRETS_CACHE_SECONDS)

    def openai_api_key(self) -> str:
        """The OpenAI key: from its SSM SecureString when one is named, else the plain
        setting (local use). Read when an OpenAI agent is first built, not at start-up."""
        name = self.settings.OPENAI_API_KEY_PARAMETER
        return self.secrets.get(name) if name else self.settings.OPENAI_API_KEY

    @functools.cached_property
    def bedrock_runtime(self) -> Any:
        # Model calls can run for most of a run's timeout; the deadline, not botocore's
        # default 60 s read timeout, bounds them. One attempt per call: the run's retry
        # policy (RunContext.model_call) retries throttling within the deadline and
        # budget, and booking each attempt needs to see each attempt.
        return self._client(
            "bedrock-runtime",
            region_name_override=self.settings.BEDROCK_REGION or None,
            read_timeout=self.settings.SCHEDULE_MAX_TIMEOUT_SECONDS,
            total_attempts=1,
        )

    # --- adapters ---------------------------------------------------------------------------

    @functools.cached_property
    def schedule_store(self) -> DynamoDBScheduleStore:
        from chalicelib.adapters.dynamodb_schedules import DynamoDBScheduleStore

        return DynamoDBScheduleStore(self.dynamodb, self.settings.TABLE_NAME)

    @functools.cached_property
    def run_store(self) -> DynamoDBRunStore:
        from chalicelib.adapters.dynamodb_runs import DynamoDBRunStore

        return DynamoDBRunStore(self.dynamodb, self.settings.TABLE_NAME)

    @functools.cached_property
    def thread_store(self) -> DynamoDBThreadStore:
        from chalicelib.adapters.dynamodb_threads import DynamoDBThreadStore

        return DynamoDBThreadStore(self.dynamodb, self.settings.TABLE_NAME, self.clock)

    @functools.cached_property
    def spend_store(self) -> DynamoDBSpendStore:
        from chalicelib.adapters.dynamodb_spend import DynamoDBSpendStore

        return DynamoDBSpendStore(self.dynamodb, self.settings.TABLE_NAME)

    @property
    def cap_defaults(self) -> CapDefaults:
        from chalicelib.domain.caps import CapDefaults

        s = self.settings
        return CapDefaults(user_usd=s.MONTHLY_CAP_USER_USD, tenant_usd=s.MONTHLY_CAP_TENANT_USD)

    @functools.cached_property
    def key_store(self) -> DynamoDBApiKeyStore:
        from chalicelib.adapters.dynamodb_keys import DynamoDBApiKeyStore

        return DynamoDBApiKeyStore(self.dynamodb, self.settings.TABLE_NAME)

    @functools.cached_property
    def scheduler_gateway(self) -> EventBridgeSchedulerGateway:
        from chalicelib.adapters.eventbridge_scheduler import EventBridgeSchedulerGateway

        s = self.settings
        return EventBridgeSchedulerGateway(
            self.scheduler,
            group_name=s.SCHEDULE_GROUP,
            target_arn=s.TRIGGER_FUNCTION_ARN,
            role_arn=s.SCHEDULER_ROLE_ARN,
            dead_letter_arn=s.SCHEDULER_DLQ_ARN,
            retry_attempts=s.SCHEDULER_RETRY_ATTEMPTS,
            max_event_age_seconds=s.SCHEDULER_MAX_EVENT_AGE_SECONDS,
        )

    @property
    def invoker(self) -> RunInvoker:
        with self._lock:
            if self._invoker is None:
                if self.settings.RUN_INVOKER == "lambda":
                    from chalicelib.adapters.lambda_invoker import LambdaRunInvoker

                    self._invoker = LambdaRunInvoker(
                        self.lambda_client, self.settings.TRIGGER_FUNCTION_ARN
                    )
                else:
                    from chalicelib.adapters.local_invoker import ThreadRunInvoker

                    self._invoker = ThreadRunInvoker(
                        self.trigger_handler,
                        lambda_timeout_seconds=self.settings.TRIGGER_LAMBDA_TIMEOUT_SECONDS,
                    )
            return self._invoker

    # --- agents -------------------------------------------------------------------------------

    @functools.cached_property
    def assistants(self) -> AssistantRegistry:
        from chalicelib.agents.pricing import load_prices
        from chalicelib.agents.registry import AssistantRegistry

        prices = load_prices(str(_default_prices_path()), self.settings.MODEL_PRICES_FILE or None)
        return AssistantRegistry.load(self.settings.ASSISTANTS_FILE, prices)

    @functools.cached_property
    def agent_factory(self) -> AgentFactory:
        from chalicelib.agents.registry import AgentFactory

        registry = self.assistants
        return AgentFactory(
            registry,
            registry.prices,
            bedrock_client=lambda: self.bedrock_runtime,
            openai_base_url=self.settings.OPENAI_BASE_URL,
            openai_api_key=self.openai_api_key,
            http_timeout_cap=float(self.settings.SCHEDULE_MAX_TIMEOUT_SECONDS),
        )

    # --- services -----------------------------------------------------------------------------

    @functools.cached_property
    def schedule_service(self) -> ScheduleService:
        from chalicelib.services.schedules import ScheduleLimits, ScheduleService

        s = self.settings
        return ScheduleService(
            store=self.schedule_store,
            scheduler=self.scheduler_gateway,
            clock=self.clock,
            limits=ScheduleLimits(
                max_per_user=s.SCHEDULE_MAX_PER_USER,
                min_interval_mins=s.SCHEDULE_MIN_INTERVAL_MINS,
                max_budget_usd=s.SCHEDULE_MAX_BUDGET_USD,
                default_budget_usd=s.default_budget_usd,
                default_timeout_seconds=s.SCHEDULE_DEFAULT_TIMEOUT_SECONDS,
                max_timeout_seconds=s.SCHEDULE_MAX_TIMEOUT_SECONDS,
                default_max_attempts_per_call=s.RETRY_MAX_ATTEMPTS_PER_CALL,
                default_initial_backoff_seconds=s.RETRY_INITIAL_BACKOFF_SECONDS,
                default_pause_after_failures=s.PAUSE_AFTER_CONSECUTIVE_FAILURES,
            ),
            assistants=self.assistants,
            default_assistant=s.DEFAULT_ASSISTANT,
            threads=self.thread_store,
            caps_for=self._caps_for,
            caps_cache_seconds=s.CAPS_CACHE_SECONDS,
        )

    def _caps_for(self, principal: Principal) -> tuple[Cap, ...]:
        return self.spend_store.caps_for(principal.tenant_id, principal.user_id, self.cap_defaults)

    @functools.cached_property
    def api_keys(self) -> ApiKeyService:
        from chalicelib.services.auth import ApiKeyService

        return ApiKeyService(
            self.key_store,
            self.clock,
            cache_seconds=self.settings.API_KEY_CACHE_SECONDS,
            negative_cache_seconds=self.settings.API_KEY_NEGATIVE_CACHE_SECONDS,
        )

    @functools.cached_property
    def webhooks(self) -> WebhookSender:
        from chalicelib.services.webhooks import WebhookSender

        return WebhookSender(timeout_seconds=self.settings.WEBHOOK_TIMEOUT_SECONDS)

    @functools.cached_property
    def agent_catalog(self) -> AgentCatalog:
        from chalicelib.agents.registry import AgentCatalog

        return AgentCatalog(self.assistants, self.agent_factory)

    @functools.cached_property
    def run_executor(self) -> RunExecutor:
        from chalicelib.services.runs import RunExecutor, RunSettings

        s = self.settings
        return RunExecutor(
            runs=self.run_store,
            threads=self.thread_store,
            entries=self.schedule_service.sync,
            agents=self.agent_catalog,
            webhooks=self.webhooks,
            clock=self.clock,
            settings=RunSettings(
                max_budget_usd=s.SCHEDULE_MAX_BUDGET_USD,
                deadline_margin_seconds=s.RUN_DEADLINE_MARGIN_SECONDS,
                lambda_timeout_seconds=s.TRIGGER_LAMBDA_TIMEOUT_SECONDS,
                max_lateness_seconds=s.MAX_FIRE_LATENESS_SECONDS,
                running_grace_seconds=s.RUNNING_GRACE_SECONDS,
                kept_thread_ttl_hours=s.KEPT_THREAD_TTL_HOURS,
                auto_pause_on_budget_exceeded=s.AUTO_PAUSE_ON_BUDGET_EXCEEDED,
                max_backoff_seconds=s.RETRY_MAX_BACKOFF_SECONDS,
                caps=self.cap_defaults,
                heartbeat_seconds=s.HEARTBEAT_SECONDS,
            ),
            spend=self.spend_store,
        )

    def trigger_handler(self, event: Any, remaining_ms: Any) -> Any:
        """The trigger Lambda's body, for in-process invokers (local stack, tests)."""
        from chalicelib.observability import observe_trigger

        return observe_trigger(event, None, lambda: self.run_executor.handle(event, remaining_ms))

    @functools.cached_property
    def reconciler(self) -> Reconciler:
        from chalicelib.services.reconciler import Reconciler

        return Reconciler(
            schedules=self.schedule_store,
            runs=self.run_store,
            scheduler=self.scheduler_gateway,
            sync=self.schedule_service.sync,
            clock=self.clock,
        )

    @functools.cached_property
    def run_service(self) -> RunService:
        from chalicelib.services.runs import RunService

        return RunService(
            schedules=self.schedule_store,
            runs=self.run_store,
            invoker=lambda: self.invoker,
            clock=self.clock,
        )

    @functools.cached_property
    def usage_service(self) -> UsageService:
        from chalicelib.services.usage import UsageService

        s = self.settings
        return UsageService(
            spend=self.spend_store,
            clock=self.clock,
            caps=self.schedule_service.caps,
            max_budget_usd=s.SCHEDULE_MAX_BUDGET_USD,
        )

    @functools.cached_property
    def thread_service(self) -> ThreadService:
        from chalicelib.services.threads import ThreadService

        return ThreadService(
            threads=self.thread_store,
            runs=self.run_store,
            crons=self.schedule_service,
            clock=self.clock,
        )


def _default_prices_path() -> Any:
    from chalicelib.settings import PACKAGE_DIR

    return PACKAGE_DIR / "agents" / "prices.json"


_lock = threading.Lock()
_current: Container | None = None


def container() -> Container:
    """The process-wide container, built from :func:`settings` on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = Container(settings())
        return _current


def override(replacement: Container | None) -> None:
    """Install a container (tests, the local stack); ``None`` resets to lazy default."""
    global _current
    with _lock:
        _current = replacement
