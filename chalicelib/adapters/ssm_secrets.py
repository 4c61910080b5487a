"""Secrets from SSM Parameter Store (SecureString), read at run time and cached.

Secrets never live in ``.chalice/config.json`` or the template: a deployment names the
parameter (``OPENAI_API_KEY_PARAMETER``, a template parameter), and the function reads
it on first use through Powertools' ``SSMProvider``, which decrypts it and caches the
value for ``max_age_seconds`` — once per container in practice, and a rotated secret
is picked up within that time. Only SecureStrings: SSM's bridge to Secrets Manager
(``/aws/reference/secretsmanager/<id>``) would also need ``secretsmanager:GetSecretValue``
on the secret, which the trigger's role does not grant (the template parameter refuses
``/aws/`` names).

Powertools (and with it boto3) is imported only when a secret is first read, so
``import app`` and every route stay as cheap as before; the boto3 client is the
dependency container's, so endpoint, retries and timeouts are the deployment's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from chalicelib.domain.errors import ConfigurationError


class SecretReader:
    def __init__(self, client_factory: Callable[[], Any], *, max_age_seconds: int) -> None:
        self._client_factory = client_factory
        self._max_age = max_age_seconds
        self._provider: Any = None
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = self._ssm().get(name, max_age=self._max_age, decrypt=True)
        except GetParameterError as exc:
            raise ConfigurationError(f"cannot read the secret parameter {name}: {exc}") from exc
        return str(value)

    def _ssm(self) -> Any:
        with self._lock:
            if self._provider is None:
                from aws_lambda_powertools.utilities.parameters import SSMProvider

                self._provider = SSMProvider(boto3_client=self._client_factory())
            return self._provider
