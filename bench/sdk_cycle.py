"""The official ``langgraph_sdk``'s cron cycle: create → search → delete, ≥ 200 times.

Against agentcron's local stack (in this process, exactly as ``make run`` starts it)
and — when ``make bench-peer`` has installed it into ``.venv-peer`` — against the
official LangGraph dev server (``langgraph dev``, in-memory runtime) on this machine,
in the same run, with the same client. The figure is the ratio of the medians.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.stats import median, percentile

ROOT = Path(__file__).resolve().parents[1]
PEER_CLI = ROOT / ".venv-peer" / "bin" / "langgraph"
PEER_DIR = ROOT / "bench" / "peer"
CYCLES = 200
WARMUP = 20


def _cycle_times(url: str, api_key: str | None, aws: list[float] | None = None) -> list[float]:
    """Median-able cycle times; ``aws`` (if given) accumulates time spent inside AWS calls."""
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=url, api_key=api_key)
    payload = {"messages": [{"role": "user", "content": "Daily report"}]}
    times: list[float] = []
    for i in range(WARMUP + CYCLES):
        if aws is not None and i == WARMUP:
            aws[0] = 0.0
        started = time.perf_counter()
        cron = client.crons.create("agent", schedule="27 15 * * *", input=payload)
        client.crons.search(limit=10)
        client.crons.delete(cron["cron_id"])
        if i >= WARMUP:
            times.append(time.perf_counter() - started)
    return times


def _time_aws_calls(*clients: Any) -> tuple[list[float], Counter[str]]:
    """Accumulate the wall time and count of every AWS call the stack makes."""
    spent = [0.0]
    calls: Counter[str] = Counter()

    def before(model: Any, context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()
        calls[model.name] += 1

    def after(context: dict[str, Any], **_: Any) -> None:
        started = context.pop("bench_started", None)
        if started is not None:
            spent[0] += time.perf_counter() - started

    for client in clients:
        client.meta.events.register("before-call.*.*", before, unique_id="bench-sdk-before")
        client.meta.events.register("after-call.*.*", after, unique_id="bench-sdk-after")
    return spent, calls


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_peer() -> tuple[subprocess.Popen[bytes], str] | None:
    if not PEER_CLI.exists():
        return None
    port = _free_port()
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
    }
    command = [
        str(PEER_CLI),
        "dev",
        "--no-browser",
        "--no-reload",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--config",
        str(PEER_DIR / "langgraph.json"),
    ]
    process = subprocess.Popen(
        command, cwd=PEER_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    import urllib.request

    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ok", timeout=1) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.3)
    process.terminate()
    return None


def _report(label: str, times: list[float]) -> None:
    print(
        f"{label:<34} median {median(times) * 1000:7.2f} ms   p90 "
        f"{percentile(times, 90) * 1000:7.2f} ms   ({len(times)} cycles)"
    )


def run() -> dict[str, Any]:
    from chalicelib.local.stack import start

    stack = start(port=0, quiet=True, environ={})
    try:
        # Pause the dispatcher so its polling does not interleave with the cycle.
        stack.dispatcher.stop()
        spent, calls = _time_aws_calls(stack.container.dynamodb, stack.container.scheduler)
        calls.clear()
        ours = _cycle_times(stack.api_url, stack.api_key, spent)
    finally:
        stack.stop()
    _report("agentcron local stack", ours)
    per_cycle_aws = spent[0] / CYCLES
    own = median(ours) - per_cycle_aws
    print(
        f"  of which emulated AWS (moto)     {per_cycle_aws * 1000:7.2f} ms per cycle, "
        f"{sum(calls.values()) / (CYCLES + WARMUP):.1f} calls: {dict(sorted(calls.items()))}"
    )
    print(f"  agentcron itself (HTTP + app)    {own * 1000:7.2f} ms per cycle")
    results: dict[str, Any] = {
        "agentcron_median_ms": median(ours) * 1000,
        "agentcron_without_aws_ms": own * 1000,
    }
    peer = _start_peer()
    if peer is None:
        print("LangGraph dev server: not installed (run `make bench-peer` first)")
        return results
    process, url = peer
    try:
        theirs = _cycle_times(url, None)
    finally:
        process.terminate()
        process.wait(10)
    _report("langgraph dev (inmem)", theirs)
    ratio = median(theirs) / median(ours)
    own_ratio = median(theirs) / own
    print(f"ratio langgraph dev / agentcron          {ratio:5.2f}   (≥ 1: agentcron is faster)")
    print(f"ratio without the emulated AWS calls     {own_ratio:5.2f}")
    results.update(
        {"peer_median_ms": median(theirs) * 1000, "ratio": ratio, "ratio_without_aws": own_ratio}
    )
    return results
