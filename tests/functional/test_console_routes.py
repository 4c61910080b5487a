"""``/console``: the page and its assets through the app's routes, and in the Lambda bundle.

The browser tests (``tests/browser``) drive the page itself; these check what the server
promises without a browser: no key needed, the security headers on every response,
only the listed files reachable, asset URLs that work under a stage prefix, and the
static files inside the zip Chalice builds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib.console import blueprint
from tests.conftest import ROOT

CSP_MUST = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "require-trusted-types-for 'script'",
)


def assert_locked_down(headers: dict[str, str]) -> None:
    csp = headers["Content-Security-Policy"]
    for directive in CSP_MUST:
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"


def asset_urls(page: str) -> list[str]:
    return re.findall(r'<(?:link|script)\b[^>]*\b(?:href|src)="([^"]+)"', page)


@pytest.mark.parametrize("path", ["/console", "/console/"])
def test_the_page_needs_no_key_and_is_locked_down(client: Any, path: str) -> None:
    response = client.http.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert_locked_down(response.headers)
    page = response.body.decode()
    assert "{{" not in page
    # No inline script or style: the only script is the module file, nothing has style=.
    version = blueprint.asset("console.js").version
    assert re.findall(r"<script[^>]*>", page) == [
        f'<script type="module" src="/console/console.js?v={version}">'
    ]
    assert "style=" not in page and "<style" not in page
    assert not re.search(r"<[^>]*\son\w+\s*=", page)  # no inline event handlers


def test_every_asset_the_page_names_is_served_with_its_type(client: Any) -> None:
    page = client.http.get("/console").body.decode()
    urls = asset_urls(page)
    assert sorted(u.split("?")[0] for u in urls) == [
        "/console/console.css",
        "/console/console.js",
        "/console/favicon.svg",
    ]
    for url in urls:
        response = client.http.get(url)
        name = url.split("?")[0].rsplit("/", 1)[1]
        assert response.status_code == 200, url
        assert response.headers["Content-Type"] == blueprint.ASSETS[name]
        assert response.headers["Cache-Control"] == "public, max-age=86400"
        assert_locked_down(response.headers)
        assert response.body.decode() == (blueprint.STATIC / name).read_text()


@pytest.mark.parametrize("name", ["index.html", "..%2F__init__.py", "blueprint.py", "nope.js"])
def test_nothing_else_is_reachable(client: Any, name: str) -> None:
    response = client.http.get(f"/console/{name}")
    assert response.status_code == 404
    assert_locked_down(response.headers)


def test_static_files_never_build_html_from_strings() -> None:
    """The JS writes text nodes only; the CSP's Trusted Types would make a sink throw anyway."""
    lines = (blueprint.STATIC / "console.js").read_text().splitlines()
    source = "\n".join(line for line in lines if not line.lstrip().startswith("//"))
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ):
        assert sink not in source, sink
    assert "localStorage" not in source and "document.cookie" not in source
    css = (blueprint.STATIC / "console.css").read_text()
    assert "@import" not in css and "url(" not in css  # nothing fetched from elsewhere


@pytest.mark.parametrize(
    ("request_path", "prefix"),
    [
        ("/console", ""),
        ("/console/", ""),
        ("/api/console", "/api"),
        ("/prod/v1/console/", "/prod/v1"),
        (None, ""),
        ('/"><script>/console', ""),
        ("/a b/console", ""),
    ],
)
def test_asset_urls_follow_the_stage_prefix(request_path: str | None, prefix: str) -> None:
    assert blueprint.mount_prefix(request_path) == prefix
    page = blueprint.render_page(blueprint.mount_prefix(request_path))
    assert all(u.startswith(f"{prefix}/console/") for u in asset_urls(page))


def test_the_lambda_bundle_carries_and_serves_the_console(tmp_path: Path) -> None:
    """Build the app part of the zip with Chalice's own packager, unpack it as Lambda does,
    and render the page from the unpacked copy (not the source tree)."""
    from chalice.deploy.packager import AppOnlyDeploymentPackager
    from chalice.utils import UI, OSUtils

    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "app.py", project / "app.py")
    shutil.copytree(
        ROOT / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__")
    )
    packager = AppOnlyDeploymentPackager(OSUtils(), None, UI())
    bundle = packager.create_deployment_package(str(project), "python3.11")
    unpacked = tmp_path / "task"
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        z.extractall(unpacked)
    for name in ("index.html", *blueprint.ASSETS):
        assert f"chalicelib/console/static/{name}" in names
    probe = (
        "import sys; sys.path.insert(0, '.');"
        "from chalicelib.console import blueprint as b;"
        "assert b.STATIC.is_relative_to(__import__('pathlib').Path.cwd());"
        "print(b.render_page('/api')); print(len(b.asset('console.js').body))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=unpacked, capture_output=True, text=True, check=True
    ).stdout
    assert '<script type="module" src="/api/console/console.js?v=' in out
    assert int(out.strip().rsplit("\n", 1)[1]) == len((blueprint.STATIC / "console.js").read_text())
