"""Size budgets: every item agentcron stores fits DynamoDB's 400 KB, whatever a client sends.

DynamoDB refuses an item over 400 KB (attribute names plus values, UTF-8). The item
that matters most is written by the trigger's *finish* transaction — the run's
terminal record, the schedule's counters and the thread's new state — and a refused
finish loses the run's outcome and cost. So every part of every item has a budget,
measured as stored (compact JSON, UTF-8, escapes included), and the parts add up to
well under the limit:

========  ===================================================  ==================  ========
item      part                                                 enforced            budget
========  ===================================================  ==================  ========
schedule  input, task_context/context, config, extras          4xx at write        64 KiB each
          metadata                                             4xx at write        16 KiB
          name 255 chars, description 4096 chars, webhook      4xx at write        < 40 KiB
          the whole client-editable spec (sum of the above)                        < 320 KiB
run       input (the schedule's, already ≤ 64 KiB)             at the schedule     64 KiB
          query (the input's user message)                     truncated           32 KiB
          metadata (the schedule's + ids)                      at the schedule     17 KiB
          result (the agent's answer)                          truncated           32 KiB
          error message                                        truncated           8 KiB
          webhook status                                       truncated           1 KiB
thread    metadata                                             4xx at write        64 KiB
          values (agent state)                                 trimmed at finish   300 KiB
========  ===================================================  ==================  ========

A run item is therefore at most ~160 KiB and a thread item ~370 KiB (each plus < 2 KiB
of keys and fixed fields). Truncated text ends with a marker naming its original
size; the full text is not kept anywhere (a kept or thread-bound run's thread holds
the conversation within its own budget). Thread state is trimmed the way a
conversation tolerates best: each message's text is first clipped to
:data:`MAX_MESSAGE_BYTES`, then the oldest messages are dropped; a state still too
large without its messages (not a chat state) is replaced by a marker rather than
failing the finish.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.domain.errors import InvalidRequestError

KIB = 1024
ITEM_LIMIT_BYTES = 400_000
"""DynamoDB's item limit, rounded down (AWS documents 400 KB)."""

# --- schedules (4xx at write time) ---------------------------------------------------------
MAX_NAME_CHARS = 255
MAX_DESCRIPTION_CHARS = 4096
MAX_QUERY_BYTES = 32 * KIB
MAX_BLOB_BYTES = 64 * KIB
MAX_METADATA_BYTES = 16 * KIB
MAX_WEBHOOK_CHARS = 2048
MAX_SCHEDULE_SPEC_BYTES = 320 * KIB
"""What the parts above add up to at most (checked by a test, not at run time)."""

# --- runs (truncated when recorded) --------------------------------------------------------
MAX_RESULT_BYTES = 32 * KIB
MAX_ERROR_BYTES = 8 * KIB
MAX_RUN_QUERY_BYTES = MAX_QUERY_BYTES
MAX_WEBHOOK_STATUS_BYTES = 1 * KIB

# --- threads -------------------------------------------------------------------------------
MAX_THREAD_METADATA_BYTES = 64 * KIB
MAX_THREAD_STATE_BYTES = 300 * KIB
MAX_MESSAGE_BYTES = 64 * KIB

TRUNCATED_STATE_KEY = "__truncated__"


def json_size(value: object) -> int:
    """Bytes of ``value`` as stored: compact JSON, UTF-8."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def check_size(name: str, value: object, cap: int) -> None:
    """A clear 4xx for a client value over its budget."""
    if json_size(value) > cap:
        raise InvalidRequestError(f"{name} too large: max {cap // KIB} KiB", field=name)


def check_thread_metadata(metadata: object) -> None:
    check_size("metadata", metadata, MAX_THREAD_METADATA_BYTES)


def clip_text(text: str | None, max_bytes: int) -> str | None:
    """``text`` if it fits in ``max_bytes`` as stored, else its head and a marker.

    The marker names the original size in bytes, so a reader knows what is missing.
    """
    if text is None or json_size(text) <= max_bytes:
        return text
    total = len(text.encode())
    marker = f"… [truncated: {total} bytes]"
    budget = max_bytes - json_size(marker)
    # Escapes can make a character cost up to 6 bytes: shrink until the JSON fits.
    keep = min(len(text), max(budget, 0))
    while keep > 0 and json_size(text[:keep]) > budget:
        keep -= max(1, (json_size(text[:keep]) - budget) // 6)
    return text[: max(keep, 0)] + marker


def bounded_state(values: dict[str, Any]) -> dict[str, Any]:
    """Keep a thread's state within :data:`MAX_THREAD_STATE_BYTES` (see the module docstring)."""
    if json_size(values) <= MAX_THREAD_STATE_BYTES:
        return values
    messages = values.get("messages")
    if isinstance(messages, list):
        kept = [_clip_message(m) for m in messages]
        rest = json_size({**values, "messages": []})
        sizes = [json_size(m) + 1 for m in kept]
        total = rest + sum(sizes)
        start = 0
        while start < len(kept) and total > MAX_THREAD_STATE_BYTES:
            total -= sizes[start]
            start += 1
        trimmed = {**values, "messages": kept[start:]}
        if json_size(trimmed) <= MAX_THREAD_STATE_BYTES:
            return trimmed
    return {TRUNCATED_STATE_KEY: f"thread state exceeded {MAX_THREAD_STATE_BYTES // KIB} KiB"}


def _clip_message(message: Any) -> Any:
    if json_size(message) <= MAX_MESSAGE_BYTES:
        return message
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        rest = json_size({**message, "content": ""})
        return {**message, "content": clip_text(message["content"], MAX_MESSAGE_BYTES - rest)}
    return {"role": "system", "content": f"[message of {json_size(message)} bytes dropped]"}
