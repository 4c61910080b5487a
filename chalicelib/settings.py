"""Deployment settings: one pydantic model, read from the environment once, lazily.

Nothing else in agentcron reads ``os.environ``. Chalice puts each stage's
``environment_variables`` (``.chalice/config.json``) into the Lambda environment;
``make run`` and the tests set the same names. Invalid values fail loudly at the
first use (a configuration error is never turned into "no limit").
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from chalicelib.domain.errors import ConfigurationError

PACKAGE_DIR = Path(__file__).resolve().parent

# Lambda's hard cap; the trigger function is configured with this timeout.
LAMBDA_MAX_TIMEOUT_SECONDS = 900
MIN_HEARTBEAT_SECONDS = 10.0


class Settings(BaseModel):
    """Every knob, with the defaults of Shannon's documented schedule limits.

    Field names are the environment variable names."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    STAGE: str = "local"
    AWS_REGION: str = Field(default="us-east-1")
    TABLE_NAME: str = "agentcron-local"
    SCHEDULE_GROUP: str = "agentcron-local"
    TRIGGER_FUNCTION_ARN: str = (
        "arn:aws:lambda:us-east-1:000000000000:function:agentcron-local-run_trigger"
    )
    SCHEDULER_ROLE_ARN: str = "arn:aws:iam::000000000000:role/agentcron-local-scheduler"
    SCHEDULER_DLQ_ARN: str = "arn:aws:sqs:us-east-1:000000000000:agentcron-local-dlq"
    # botocore, per call: the API function sets these low (infra/template.py) so that one
    # call's worst case is short; its request deadline (chalicelib/observability.py) then
    # bounds the whole request below its Lambda timeout, itself below API Gateway's 29 s.
    AWS_CONNECT_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0, le=60)
    AWS_READ_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0, le=900)
    AWS_MAX_ATTEMPTS: int = Field(default=3, ge=1, le=10)
    API_REQUEST_DEADLINE: bool = False
    """Refuse (503, rolled back) an AWS call the request's Lambda has no time left for.
    On in the deployed API function; off locally (no Lambda timeout to respect)."""
    SCHEDULER_RETRY_ATTEMPTS: int = Field(default=3, ge=0, le=185)
    SCHEDULER_MAX_EVENT_AGE_SECONDS: int = Field(default=3600, ge=60, le=86400)

    # Limits (Shannon's documented resource limits: docs.shannon.run, Schedules).
    SCHEDULE_MAX_PER_USER: int = Field(default=50, ge=1, le=10_000)
    SCHEDULE_MIN_INTERVAL_MINS: int = Field(default=60, le=525_600)
    SCHEDULE_MAX_BUDGET_USD: Decimal = Field(default=Decimal("10.0"), gt=0)
    SCHEDULE_DEFAULT_BUDGET_USD: Decimal = Field(default=Decimal("10.0"), gt=0)
    SCHEDULE_DEFAULT_TIMEOUT_SECONDS: int = Field(default=600, ge=1)
    SCHEDULE_MAX_TIMEOUT_SECONDS: int = Field(default=840, ge=1)
    TRIGGER_LAMBDA_TIMEOUT_SECONDS: int = Field(default=LAMBDA_MAX_TIMEOUT_SECONDS, ge=10, le=900)
    RUN_DEADLINE_MARGIN_SECONDS: float = Field(default=15.0, ge=1)
    MAX_FIRE_LATENESS_SECONDS: int = Field(default=900, ge=60)
    RUNNING_GRACE_SECONDS: int = Field(default=120, ge=0)
    HEARTBEAT_SECONDS: float = Field(default=30.0, ge=0, le=300)
    """A running run's heartbeat period (its spend so far, and proof its trigger lives); the
    reconciler ends a run 3 missed heartbeats after its last one. 0 turns heartbeats off;
    otherwise at least 10 s (a slow write must not make a live trigger look dead)."""
    RECONCILE_INTERVAL_SECONDS: int = Field(default=300, ge=10)
    """The local stack's reconciler period (in AWS, app.py's rule runs it every 5 minutes)."""
    AUTO_PAUSE_ON_BUDGET_EXCEEDED: bool = True
    # Monthly spend caps (UTC months), deployment defaults; empty = no cap. Operators
    # override them per tenant and per user (``python -m chalicelib.admin set-cap``).
    MONTHLY_CAP_USER_USD: Decimal | None = Field(default=None, ge=0)
    MONTHLY_CAP_TENANT_USD: Decimal | None = Field(default=None, ge=0)
    CAPS_CACHE_SECONDS: float = Field(default=60.0, ge=0)
    """How long the API reuses a user's caps (usage answers, create/update warnings)."""

    # Failure policy (a schedule's own fields override the first three).
    RETRY_MAX_ATTEMPTS_PER_CALL: int = Field(default=3, ge=1, le=10)
    """Attempts of one model call the provider refused transiently (429, 5xx, throttling)."""
    RETRY_INITIAL_BACKOFF_SECONDS: float = Field(default=1.0, ge=0.1, le=60)
    RETRY_MAX_BACKOFF_SECONDS: float = Field(default=60.0, ge=0.1, le=900)
    PAUSE_AFTER_CONSECUTIVE_FAILURES: int = Field(default=5, ge=0, le=1000)
    """Failed runs in a row (error, timeout) after which the system pauses a schedule; 0 never."""

    # Agents.
    DEFAULT_ASSISTANT: str = "demo"
    ASSISTANTS_FILE: str = str(PACKAGE_DIR / "agents" / "assistants.json")
    MODEL_PRICES_FILE: str = ""
    """A deployment's prices, merged over the defaults in chalicelib/agents/prices.json."""
    OPENAI_BASE_URL: str = "https://api.openai.com/v1"
    OPENAI_API_KEY: str = ""
    """For local use only; deployments set OPENAI_API_KEY_PARAMETER instead."""
    OPENAI_API_KEY_PARAMETER: str = ""
    """Name of an SSM SecureString holding the OpenAI key, read at run time (cached)."""
    SECRETS_CACHE_SECONDS: int = Field(default=300, ge=0)
    BEDROCK_REGION: str = ""

    # Threads, webhooks, runs.
    KEPT_THREAD_TTL_HOURS: int = Field(default=0, ge=0)
    WEBHOOK_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0, le=30)
    RUN_INVOKER: Literal["lambda", "local"] = "lambda"

    # Auth.
    API_KEY_CACHE_SECONDS: float = Field(default=60.0, ge=0)
    API_KEY_NEGATIVE_CACHE_SECONDS: float = Field(default=30.0, ge=0)
    """How long an unknown key is remembered as unknown (no DynamoDB read per retry)."""

    LOG_LEVEL: str = "INFO"
    TRACING: bool = False
    """X-Ray traces through Powertools' Tracer (deployed stages; active tracing is set in
    the template). Off locally: nothing is imported for it."""

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        ceiling = self.TRIGGER_LAMBDA_TIMEOUT_SECONDS - self.RUN_DEADLINE_MARGIN_SECONDS
        if ceiling < self.SCHEDULE_MAX_TIMEOUT_SECONDS:
            raise ValueError(
                "SCHEDULE_MAX_TIMEOUT_SECONDS must stay below the trigger Lambda's timeout "
                f"minus RUN_DEADLINE_MARGIN_SECONDS ({ceiling:g} s)"
            )
        if 0 < self.HEARTBEAT_SECONDS < MIN_HEARTBEAT_SECONDS:
            raise ValueError(
                f"HEARTBEAT_SECONDS must be 0 (off) or at least {MIN_HEARTBEAT_SECONDS:g} s"
            )
        if self.SCHEDULE_DEFAULT_TIMEOUT_SECONDS > self.SCHEDULE_MAX_TIMEOUT_SECONDS:
            raise ValueError(
                "SCHEDULE_DEFAULT_TIMEOUT_SECONDS exceeds SCHEDULE_MAX_TIMEOUT_SECONDS"
            )
        return self

    @field_validator("MONTHLY_CAP_USER_USD", "MONTHLY_CAP_TENANT_USD", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def default_budget_usd(self) -> Decimal:
        """Shannon's documented default (10.0), never above the configured maximum."""
        return min(self.SCHEDULE_DEFAULT_BUDGET_USD, self.SCHEDULE_MAX_BUDGET_USD)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        known = {name: environ[name] for name in cls.model_fields if name in environ}
        if "AWS_REGION" not in known and "AWS_DEFAULT_REGION" in environ:
            known["AWS_REGION"] = environ["AWS_DEFAULT_REGION"]
        try:
            return cls.model_validate(known)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigurationError(f"invalid agentcron settings: {problems}") from exc


@functools.cache
def settings() -> Settings:
    """The process-wide settings, read on first use. Tests call ``settings.cache_clear()``."""
    return Settings.from_environ(os.environ)
