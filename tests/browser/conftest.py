"""The console in a real browser: Debian's Chromium, headless, driven by playwright-python,
against ``make run``'s stack started in this process (moto server + Chalice's local HTTP
server + dispatcher + the thread invoker, so "Run now" really runs the demo agent).

One browser for the browser tests, one fresh context (cookies, sessionStorage) per test.
Playwright's own browser download is not used: ``executable_path`` points at the system
Chromium (``apt-get install chromium``). Without it the tests are skipped locally, with
the install command in the reason, and fail under CI (``CI=true``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a closed network: no background requests, no update or sync checks.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWER_TZ = "Europe/Paris"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: while Playwright's sync API is started it keeps an asyncio
    # loop running on this thread, which would break every later async test. All the
    # browser tests live in one module, so this is still one browser per run.
    if not os.path.exists(CHROMIUM):
        reason = (
            f"Chromium not found at {CHROMIUM}: install it with `sudo apt-get install -y chromium` "
            "(or set CHROMIUM_PATH)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the browser tests", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh temporary --user-data-dir.
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[Any]:
    from chalicelib.local.stack import start

    running = start(port=0, moto_port=0, quiet=True, environ={})
    yield running
    running.stop()


@dataclass
class User:
    """An API key of its own, so each test sees only its own schedules."""

    stack: Any
    key: str
    key_id: str
    tenant: str = "local"

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        request = urllib.request.Request(
            self.stack.api_url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def create(self, **body: Any) -> str:
        status, created = self.call("POST", "/api/v1/schedules", body)
        assert status == 201, created
        return str(created["schedule_id"])

    def run_now(self, schedule_id: str, times: int = 1) -> None:
        """Start ``times`` manual runs and wait until none is still running."""
        for _ in range(times):
            status, body = self.call("POST", f"/api/v1/schedules/{schedule_id}/trigger")
            assert status == 202, body
            deadline = time.monotonic() + 20
            while True:
                _, runs = self.call("GET", f"/api/v1/schedules/{schedule_id}/runs?page_size=100")
                mine = [r for r in runs["runs"] if r["workflow_id"] == body["run_id"]]
                if mine and mine[0]["status"] not in ("RUNNING", "PENDING"):
                    break
                assert time.monotonic() < deadline, runs
                time.sleep(0.05)

    def run_many(self, schedule_id: str, count: int) -> list[str]:
        """Start ``count`` manual runs at once; the run ids, newest first, once all ended."""
        for _ in range(count):
            status, body = self.call("POST", f"/api/v1/schedules/{schedule_id}/trigger")
            assert status == 202, body
        deadline = time.monotonic() + 30
        while True:
            _, runs = self.call("GET", f"/api/v1/schedules/{schedule_id}/runs?page_size=100")
            ended = [r for r in runs["runs"] if r["status"] not in ("RUNNING", "PENDING")]
            if len(ended) == count:
                return [r["workflow_id"] for r in runs["runs"]]
            assert time.monotonic() < deadline, runs
            time.sleep(0.05)


@pytest.fixture(scope="module")
def new_user(stack: Any) -> Any:
    counter = iter(range(1000))

    def make(name: str) -> User:
        user = f"{name}-{next(counter)}"
        key, record = stack.container.api_keys.mint(
            "local", user, key=f"ac_console_{user}_key", description="browser test"
        )
        return User(stack, key, record.key_id)

    return make


@dataclass
class Page:
    """A page in a fresh browser context, with what the page reported collected."""

    page: Any
    context: Any
    base: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def open(self, hash_: str = "") -> None:
        self.page.goto(f"{self.base}/console{hash_}")

    def sign_in(self, key: str) -> None:
        self.open()
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("heading", level=1, name="Schedules").wait_for()
        self.page.locator("#schedules, [data-testid=empty]").first.wait_for()


@pytest.fixture
def console(browser: Any, stack: Any) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id=VIEWER_TZ
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    wrapper = Page(page, context, stack.api_url)

    def on_console(message: Any) -> None:
        # A failed fetch logs "Failed to load resource" (the 401 of a wrong key, the
        # usage probe's 403/404): expected. Anything else at error level is not.
        if message.type == "error" and "Failed to load resource" not in message.text:
            wrapper.errors.append(message.text)

    def on_dialog(dialog: Any) -> None:
        wrapper.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda exc: wrapper.errors.append(f"page error: {exc}"))
    page.on("dialog", on_dialog)
    yield wrapper
    context.close()
    # No script error, no CSP violation ("Refused to …"), no alert() from injected markup.
    assert wrapper.errors == []
    assert wrapper.dialogs == []
