"""Manual runs in AWS: an asynchronous (``Event``) invoke of the trigger Lambda."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import SchedulingUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


class LambdaRunInvoker:
    def __init__(self, client: LambdaClient, function_arn: str) -> None:
        self._client = client
        self._arn = function_arn

    def invoke(self, event: dict[str, Any]) -> None:
        try:
            self._client.invoke(
                FunctionName=self._arn,
                InvocationType="Event",
                Payload=json.dumps(event, separators=(",", ":")).encode(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise SchedulingUnavailableError(f"Invoke: {exc}") from exc
