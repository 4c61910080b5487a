"""Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, LiteLLM, ...).

One run is one ``POST {base_url}/chat/completions`` with
``{"model", "messages", "max_tokens", "stream": true, "stream_options":
{"include_usage": true}}`` (plus ``temperature`` when configured) and
``Authorization: Bearer <key>`` when a key is configured.

Design decisions:

* **Standard library only, imported lazily.** ``urllib.request`` (and with it
  ``http.client``/``ssl``) is imported on the first call, so the API Lambda never
  pays for it, and Lambda's bundle needs no HTTP client package.
* **Timeouts.** The socket timeout is ``min(time left, timeout_cap)``, and since a
  socket timeout bounds each blocking operation rather than the request (DNS, a
  server trickling bytes), the request also runs under
  :func:`~chalicelib.agents.base.call_with_timeout` with the same limit. When the
  deadline was the binding limit the timeout propagates as :class:`TimeoutError`
  (``model_call`` reports ``DeadlineExceeded``); when the cap was, it is an
  :class:`~chalicelib.agents.base.AgentError`.
* **No redirects.** urllib would follow a 30x to any host, resending the bearer
  token there (and turning the POST into a GET). A redirect is reported as an error.
* **Errors.** Every provider failure is a
  :class:`~chalicelib.agents.base.ProviderError` carrying the status and the
  provider's own message (OpenAI's ``{"error": {"message"}}``, or ``detail`` /
  ``message`` / the raw text of compatible servers), classified billed or not and
  transient or not by :mod:`chalicelib.agents.provider_errors`: an HTTP error status,
  an unreachable host and a 200 that is not a completion are unbilled; a connection
  lost after the request was sent or a body cut mid-JSON are billed.
* **Messages.** The assistant's system prompt, then the thread's messages and the
  input's, as ``{"role", "content"}``; ``tool`` messages are sent as user text
  (a ``tool`` role would need the ``tool_call_id`` of a replayed tool call).
* **Streaming, cut at the bound.** The answer is streamed (server-sent events) so a
  provider that ignores ``max_tokens`` cannot overspend: once the output streamed
  goes past the bound the reservation assumed, the agent stops reading and closes
  the connection (:class:`~chalicelib.agents.base.OutputBoundExceeded`, the call
  booked at its reservation, the run ``budget_exceeded``). A server that answers
  with plain JSON instead (no streaming support) is read as a whole.
* **Usage** is ``usage.prompt_tokens``/``completion_tokens`` (the stream's last
  chunk). Some compatible servers omit usage; such a call is booked at its
  reservation (the worst case), never as free. Usage above the reservation is booked
  as reported and ends the run (:class:`~chalicelib.agents.base.BudgetOverrun`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chalicelib.agents.base import (
    AgentError,
    AgentResult,
    CallUsage,
    ChatMessage,
    ModelPrice,
    OutputBoundExceeded,
    ProviderError,
    RunContext,
    call_with_timeout,
    chat_result,
    input_messages,
    message_text,
    prompt_token_bound,
    state_messages,
    usage_reported,
)
from chalicelib.agents.provider_errors import http_status_error
from chalicelib.domain.errors import ConfigurationError
from chalicelib.domain.models import JSONObject

if TYPE_CHECKING:
    import urllib.error
    import urllib.request

# Enough of an error body to carry the provider's message, not a whole HTML page.
_MAX_ERROR_TEXT = 500
# A streamed answer is cut past max_tokens chunks, or past this many bytes per token of
# max_tokens for servers that batch several tokens per chunk (English averages about 4
# bytes per token, so an honest answer never reaches it).
_MAX_BYTES_PER_TOKEN = 8
_GENERATED_FIELDS = ("content", "reasoning_content", "reasoning", "refusal")


class OpenAICompatibleAgent:
    """A chat agent on an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(
        self,
        *,
        graph_id: str,
        price: ModelPrice,
        max_tokens: int,
        base_url: str,
        api_key: str | Callable[[], str],
        system: str | None = None,
        temperature: float | None = None,
        max_tokens_param: str = "max_tokens",
        timeout_cap: float = 120.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"OPENAI_BASE_URL must be an http(s) URL such as https://api.openai.com/v1, "
                f"not {base_url!r}"
            )
        self.graph_id = graph_id
        self.price = price
        self.model = price.model
        self.max_tokens = max_tokens
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.host = parts.netloc
        self.system = system
        self.temperature = temperature
        self.max_tokens_param = max_tokens_param
        self.timeout_cap = timeout_cap
        self._api_key = api_key

    def invoke(
        self, input: JSONObject | list[Any] | None, state: JSONObject | None, ctx: RunContext
    ) -> AgentResult:
        history = state_messages(state)
        new = input_messages(input)
        conversation = [*history, *new]
        if not any(m.role != "system" for m in conversation):
            raise AgentError("nothing to send: the conversation has no user message")
        prompt = ([ChatMessage("system", self.system)] if self.system else []) + conversation
        body = self.request_body(prompt)
        prompt_bound = prompt_token_bound(*(m.content for m in prompt))
        answer = ctx.model_call(
            self.price,
            prompt_tokens=prompt_bound,
            max_output_tokens=self.max_tokens,
            call=functools.partial(self._complete, body, prompt_bound),
        )
        return chat_result(state, conversation, answer)

    def request_body(self, prompt: list[ChatMessage]) -> JSONObject:
        body: JSONObject = {
            "model": self.model,
            "messages": [
                {"role": "user" if m.role == "tool" else m.role, "content": m.content}
                for m in prompt
            ],
            self.max_tokens_param: self.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return body

    def _complete(
        self, body: JSONObject, prompt_bound: int, timeout: float
    ) -> tuple[str, CallUsage]:
        wait = min(timeout, self.timeout_cap)
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            return call_with_timeout(
                lambda: self._post(payload, wait, prompt_bound),
                wait,
                name=f"openai-{self.graph_id}",
            )
        except TimeoutError:
            if timeout <= self.timeout_cap:
                raise  # the deadline was the limit: model_call reports DeadlineExceeded
            raise ProviderError(
                f"{self.host} did not answer within {self.timeout_cap:g} s (model {self.model})",
                billed=True,
                transient=True,
            ) from None

    def _post(self, payload: bytes, timeout: float, prompt_bound: int) -> tuple[str, CallUsage]:
        """Send the request and read the answer (in the worker thread).

        Raises :class:`ProviderError` classified as described in
        :mod:`chalicelib.agents.provider_errors`, or ``TimeoutError``.
        """
        import http.client
        import urllib.error
        import urllib.request

        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream, application/json",
            "User-Agent": "agentcron",
        }
        # A callable is the deployment's secret reader (SSM, cached there).
        api_key = self._api_key() if callable(self._api_key) else self._api_key
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
        try:
            response = _opener().open(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            # An error status came before any output: nothing was generated.
            raise http_status_error(self._http_error(exc), exc.code, exc.headers) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise TimeoutError(f"{self.host} timed out") from exc
            # urllib raises URLError only while connecting and sending the request:
            # the provider never received a whole request.
            raise ProviderError(
                f"cannot reach {self.host}: {exc.reason}", billed=False, transient=True
            ) from exc
        except TimeoutError:
            raise
        except (OSError, http.client.HTTPException) as exc:
            # The request was sent and no status line came back: it may have run.
            raise ProviderError(
                f"the connection to {self.host} was lost before an answer: {exc!r}",
                billed=True,
                transient=True,
            ) from exc
        with response:  # closing it closes the connection: a cut stream stops there
            content_type = str(response.headers.get("Content-Type") or "")
            try:
                if "text/event-stream" in content_type:
                    return self._read_stream(response, prompt_bound)
                return self._parse(content_type, bytes(response.read()), prompt_bound)
            except TimeoutError:
                raise
            except (OSError, http.client.HTTPException) as exc:
                raise ProviderError(
                    f"the connection to {self.host} was lost mid-response: {exc!r}", billed=True
                ) from exc

    def _read_stream(self, response: Any, prompt_bound: int) -> tuple[str, CallUsage]:
        """Read a chat-completions event stream, cutting it past the output bound.

        Output is counted in streamed chunks that carry generated text (content,
        reasoning, refusal or tool-call arguments) — servers stream one token per chunk —
        and, as a net for servers that batch tokens, in bytes at
        ``_MAX_BYTES_PER_TOKEN`` per token. More than ``max_tokens`` of either means
        the provider ignored the bound: reading stops and :class:`OutputBoundExceeded`
        is raised (``model_call`` books the call at its reservation).
        """
        parts: list[str] = []
        chunks = generated_bytes = 0
        usage: dict[str, Any] | None = None
        finished = False
        for raw_line in response:
            line = raw_line.strip()
            if not line.startswith(b"data:"):
                continue  # comments, event names, keep-alives, blank separators
            data = line[5:].strip()
            if data == b"[DONE]":
                finished = True
                break
            try:
                event = json.loads(data)
            except ValueError as exc:
                raise ProviderError(
                    f"{self.host} sent a malformed stream event (model {self.model})", billed=True
                ) from exc
            if not isinstance(event, dict):
                continue
            if "error" in event:
                detail = _provider_message(json.dumps(event))
                # Before any output the error proves nothing was generated.
                raise ProviderError(
                    f"{self.host} returned an error for model {self.model}: {detail}",
                    billed=chunks > 0,
                )
            if isinstance(event.get("usage"), dict):
                usage = event["usage"]
            for choice in event.get("choices") or []:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if not isinstance(delta, dict):
                    continue
                if choice.get("finish_reason"):
                    finished = True
                text = delta.get("content")
                if isinstance(text, str):
                    parts.append(text)
                size = _generated_size(delta)
                if size:
                    chunks += 1
                    generated_bytes += size
            if chunks > self.max_tokens or generated_bytes > self.max_tokens * _MAX_BYTES_PER_TOKEN:
                raise OutputBoundExceeded(
                    f"{self.host} streamed more than the {self.max_tokens} output tokens "
                    f"requested (model {self.model}); the answer was cut there and booked "
                    "at its reservation"
                )
        if not finished and usage is None:
            raise ProviderError(
                f"the stream from {self.host} ended before the answer did (model {self.model})",
                billed=True,
            )
        return "".join(parts), self._usage(usage, prompt_bound)

    def _usage(self, usage: Any, prompt_bound: int) -> CallUsage:
        usage = usage if isinstance(usage, dict) else {}
        reported = usage_reported(usage.get("prompt_tokens"), usage.get("completion_tokens"))
        # No usable usage reported: book the worst case the reservation assumed.
        return reported or CallUsage(prompt_bound, self.max_tokens)

    def _http_error(self, exc: urllib.error.HTTPError) -> str:
        try:
            text = exc.read().decode("utf-8", "replace")
        except Exception:  # the body is only a nicety; the status is the error
            text = ""
        detail = _provider_message(text) or exc.reason or "no message"
        return f"{self.host} returned HTTP {exc.code} for model {self.model}: {detail}"

    def _parse(self, content_type: str, raw: bytes, prompt_bound: int) -> tuple[str, CallUsage]:
        try:
            document = json.loads(raw)
        except ValueError as exc:
            # A body that does not even start like JSON (a proxy's HTML page) is not a
            # completion: nothing was generated. One that starts like JSON and breaks
            # off may be a completion cut short: it may have been billed.
            started_as_json = raw.lstrip()[:1] in (b"{", b"[") and "html" not in content_type
            raise ProviderError(
                f"{self.host} returned malformed JSON (model {self.model})",
                billed=started_as_json,
            ) from exc
        if not isinstance(document, dict):
            raise ProviderError(
                f"{self.host} returned an unexpected response (model {self.model})", billed=True
            )
        if "error" in document and not document.get("choices"):
            # The provider's own error answer, with no output: nothing was generated.
            detail = _provider_message(json.dumps(document))
            raise ProviderError(
                f"{self.host} returned an error for model {self.model}: {detail}", billed=False
            )
        try:
            message = document["choices"][0]["message"]
            text = message_text(message.get("content"))
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderError(
                f"{self.host} returned no choices[0].message (model {self.model})", billed=True
            ) from exc
        return text, self._usage(document.get("usage"), prompt_bound)


def _generated_size(delta: JSONObject) -> int:
    """UTF-8 bytes of generated output in one streamed delta (text and tool-call arguments)."""
    size = sum(
        len(value.encode("utf-8"))
        for key in _GENERATED_FIELDS
        if isinstance(value := delta.get(key), str)
    )
    for call in delta.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            size += sum(
                len(value.encode("utf-8"))
                for value in (function.get("name"), function.get("arguments"))
                if isinstance(value, str)
            )
    return size


def _provider_message(text: str) -> str:
    """The human message in an error body, in the shapes compatible servers use."""
    try:
        document = json.loads(text)
    except ValueError:
        return text.strip()[:_MAX_ERROR_TEXT]
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:_MAX_ERROR_TEXT]
        for candidate in (error, document.get("detail"), document.get("message")):
            if isinstance(candidate, str) and candidate:
                return candidate[:_MAX_ERROR_TEXT]
    return text.strip()[:_MAX_ERROR_TEXT]


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    """An opener for http(s) only, without a redirect handler (see the module docstring).

    ``build_opener`` would add ``HTTPRedirectHandler`` (and file/ftp/data handlers);
    without it a 30x reaches ``HTTPDefaultErrorHandler`` and raises ``HTTPError``.
    """
    import urllib.request

    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener
