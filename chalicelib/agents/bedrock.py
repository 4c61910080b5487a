"""Amazon Bedrock through the Converse API — the AWS-native agent.

One run is one Converse call: the thread's conversation plus the run's input, with
the assistant's system prompt, ``maxTokens`` = the assistant's ``max_tokens`` (the
bound the budget reservation assumed).

Design decisions:

* **Client injected, created lazily.** The boto3 ``bedrock-runtime`` client comes from
  the dependency container (``client_factory``), which also sets its botocore
  ``Config`` (``read_timeout``, retries). It is requested on the first call, not at
  build time, so building the agent costs nothing.
* **Per-call timeout.** botocore fixes the read timeout when the client is created
  and cannot take one per request, and its timeout bounds each socket read, not the
  call (retries, slow streams). So the call also runs under
  :func:`~chalicelib.agents.base.call_with_timeout` with ``min(time left,
  timeout_cap)``: the agent returns by the deadline whatever botocore does. When the
  deadline was the binding limit, the timeout propagates as :class:`TimeoutError`
  and ``model_call`` reports ``DeadlineExceeded``; when the cap was, it is an
  :class:`~chalicelib.agents.base.AgentError`. A botocore read/connect timeout is
  treated the same way (deadline passed → ``TimeoutError``, else an error).
* **Converse's message rules.** Converse wants ``system`` separately, strictly
  alternating ``user``/``assistant`` turns starting with ``user``, and no blank text.
  System messages found in the thread join the system prompt; ``tool`` messages are
  sent as user text (we do not replay tool-use blocks); consecutive same-role
  messages are merged into one message with several text blocks; blank messages
  are dropped; leading assistant turns are dropped (they cannot be expressed).
* **Errors.** Every ``ClientError`` becomes a
  :class:`~chalicelib.agents.base.ProviderError` that names the error code, the
  model, a hint at the usual fix, and Bedrock's own message, classified billed or
  not and transient or not by :mod:`chalicelib.agents.provider_errors`: throttling,
  validation, access, not-ready and unavailable errors come before the model ran
  and are unbilled; a model timeout or model error is billed.
* **Usage** is Converse's ``usage.inputTokens``/``outputTokens``. A response without
  usage is booked at the reservation (the worst case), never as free.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from chalicelib.agents.base import (
    AgentError,
    AgentResult,
    CallUsage,
    ChatMessage,
    ModelPrice,
    ProviderError,
    RunContext,
    call_with_timeout,
    chat_result,
    input_messages,
    prompt_token_bound,
    state_messages,
    usage_reported,
)
from chalicelib.agents.provider_errors import bedrock_flags
from chalicelib.domain.models import JSONObject

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

# Bedrock error code → what usually fixes it (appended to the provider's message).
_ERROR_HINTS = {
    "AccessDeniedException": (
        "access denied — enable the model in the Bedrock console and allow "
        "bedrock:InvokeModel on it for the trigger Lambda's role"
    ),
    "ThrottlingException": "Bedrock throttled the request — lower the call rate or raise the quota",
    "ServiceQuotaExceededException": "a Bedrock quota was exceeded",
    "ValidationException": "Bedrock rejected the request",
    "ResourceNotFoundException": "the model does not exist in this region",
    "ModelTimeoutException": "the model took too long to answer",
    "ModelNotReadyException": "the model is not ready yet — retry later",
    "ModelErrorException": "the model failed while answering",
    "ServiceUnavailableException": "Bedrock is temporarily unavailable",
    "InternalServerException": "Bedrock failed internally",
}


def converse_messages(conversation: list[ChatMessage]) -> list[dict[str, Any]]:
    """Converse ``messages`` for a conversation (system messages excluded; see module doc)."""
    out: list[dict[str, Any]] = []
    for message in conversation:
        if message.role == "system" or not message.content.strip():
            continue
        role = "assistant" if message.role == "assistant" else "user"
        if not out and role == "assistant":
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].append({"text": message.content})
        else:
            out.append({"role": role, "content": [{"text": message.content}]})
    return out


class BedrockAgent:
    """A chat agent on Amazon Bedrock's Converse API."""

    def __init__(
        self,
        *,
        graph_id: str,
        price: ModelPrice,
        max_tokens: int,
        client_factory: Callable[[], BedrockRuntimeClient],
        system: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        timeout_cap: float = 120.0,
    ) -> None:
        self.graph_id = graph_id
        self.price = price
        self.model_id = price.model
        self.max_tokens = max_tokens
        self.system = system
        self.temperature = temperature
        self.top_p = top_p
        self.timeout_cap = timeout_cap
        self._client_factory = client_factory
        self._client: BedrockRuntimeClient | None = None
        self._client_lock = threading.Lock()

    def invoke(
        self, input: JSONObject | list[Any] | None, state: JSONObject | None, ctx: RunContext
    ) -> AgentResult:
        history = state_messages(state)
        new = input_messages(input)
        conversation = [*history, *new]
        system = [self.system] if self.system else []
        system += [m.content for m in conversation if m.role == "system" and m.content.strip()]
        messages = converse_messages(conversation)
        if not messages:
            raise AgentError("nothing to send to Bedrock: the conversation has no user message")

        request = self.request(messages, system)
        sent_texts = [*system, *(block["text"] for m in messages for block in m["content"])]
        prompt_bound = prompt_token_bound(*sent_texts)
        answer = ctx.model_call(
            self.price,
            prompt_tokens=prompt_bound,
            max_output_tokens=self.max_tokens,
            call=functools.partial(self._converse, ctx, request, prompt_bound),
        )
        return chat_result(state, conversation, answer)

    def request(self, messages: list[dict[str, Any]], system: list[str]) -> dict[str, Any]:
        """The keyword arguments of ``client.converse``."""
        inference: dict[str, Any] = {"maxTokens": self.max_tokens}
        if self.temperature is not None:
            inference["temperature"] = self.temperature
        if self.top_p is not None:
            inference["topP"] = self.top_p
        request: dict[str, Any] = {"modelId": self.model_id, "messages": messages}
        if system:
            request["system"] = [{"text": text} for text in system]
        request["inferenceConfig"] = inference
        return request

    def _get_client(self) -> BedrockRuntimeClient:
        with self._client_lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def _converse(
        self, ctx: RunContext, request: dict[str, Any], prompt_bound: int, timeout: float
    ) -> tuple[str, CallUsage]:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        client = self._get_client()
        wait = min(timeout, self.timeout_cap)
        try:
            response = call_with_timeout(
                lambda: client.converse(**request), wait, name=f"bedrock-{self.graph_id}"
            )
        except TimeoutError:
            if timeout <= self.timeout_cap:
                raise  # the deadline was the limit: model_call reports DeadlineExceeded
            raise ProviderError(
                f"Bedrock model {self.model_id} did not answer within {self.timeout_cap:g} s",
                billed=True,
                transient=True,
            ) from None
        except ClientError as exc:
            raise bedrock_error(exc, self.model_id) from exc
        except (ReadTimeoutError, ConnectTimeoutError) as exc:
            if ctx.time_left() <= 0:
                raise TimeoutError(str(exc)) from exc
            # A connect timeout never delivered the request; a read timeout may have.
            raise ProviderError(
                f"Bedrock model {self.model_id}: {exc}",
                billed=isinstance(exc, ReadTimeoutError),
                transient=True,
            ) from exc
        except EndpointConnectionError as exc:
            raise ProviderError(
                f"Bedrock model {self.model_id}: cannot reach the endpoint: {exc}",
                billed=False,
                transient=True,
            ) from exc
        except BotoCoreError as exc:
            # The connection closed after the request was sent, a bad response: it may have run.
            raise ProviderError(
                f"Bedrock model {self.model_id}: request failed: {exc}", billed=True
            ) from exc
        return self._parse(cast("dict[str, Any]", response), prompt_bound)

    def _parse(self, response: dict[str, Any], prompt_bound: int) -> tuple[str, CallUsage]:
        try:
            content = response["output"]["message"]["content"]
            text = "".join(block["text"] for block in content if "text" in block)
        except (KeyError, TypeError) as exc:
            raise AgentError(
                f"Bedrock model {self.model_id} returned a malformed Converse response"
            ) from exc
        usage = response.get("usage") or {}
        reported = usage_reported(usage.get("inputTokens"), usage.get("outputTokens"))
        # No usable usage reported: book the worst case the reservation assumed.
        return text, reported or CallUsage(prompt_bound, self.max_tokens)


def bedrock_error(exc: ClientError, model_id: str) -> ProviderError:
    """A :class:`ProviderError` for a botocore ``ClientError`` from Bedrock, classified
    by :func:`~chalicelib.agents.provider_errors.bedrock_flags`."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "UnknownError")
    message = str(error.get("Message") or "").strip()
    hint = _ERROR_HINTS.get(code, "Bedrock returned an error")
    detail = f": {message}" if message else ""
    billed, transient, retry_after = bedrock_flags(exc.response)
    return ProviderError(
        f"Bedrock {code} for model {model_id}: {hint}{detail}",
        billed=billed,
        transient=transient,
        retry_after=retry_after,
    )
