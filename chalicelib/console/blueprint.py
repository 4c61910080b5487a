"""``GET /console`` and its assets: HTML, one stylesheet, one JS module, an icon.

Design notes:

* **Packaged with the code.** The files live in ``chalicelib/console/static/``, which
  Chalice zips into the Lambda bundle with the rest of ``chalicelib``. They are read
  on first request and cached for the life of the container; importing the app reads
  nothing.
* **Same origin, any mount point.** Deployed, the API lives under a stage prefix
  (``/api/console``); locally at the root. The page's asset URLs are absolute and built
  from the path the request came in on (API Gateway's ``requestContext.path``), so the
  page works at ``/console`` and ``/console/`` under any prefix. The JS module finds
  the API next to itself (``new URL("..", import.meta.url)``).
* **Cache busting without a build step.** Asset URLs carry ``?v=<content hash>``, so
  they can be cached for a day while the HTML itself is never cached.
* **Locked down.** Every response carries a Content-Security-Policy that allows only
  this origin's script, style, images and API calls — no inline script or style
  attribute, no ``eval`` — requires Trusted Types for every DOM sink (so an accidental
  ``innerHTML`` fails loudly instead of injecting markup), forbids framing
  (``frame-ancestors 'none'``), and sends ``X-Content-Type-Options: nosniff`` and
  ``Referrer-Policy: no-referrer``.
* **No key here.** These routes never authenticate: the page has nothing secret; the
  API calls it makes do.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
from dataclasses import dataclass
from pathlib import Path

from chalice.app import Blueprint, Request, Response

STATIC = Path(__file__).resolve().parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

# The only files the routes serve: name -> content type. Nothing else on disk is reachable.
ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
PAGE = "index.html"
MOUNT = "/console"
# A stage or base-path prefix as API Gateway reports it: plain path segments only.
_SAFE_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")

bp = Blueprint(__name__)


@dataclass(frozen=True)
class Asset:
    body: str
    content_type: str
    version: str


@functools.cache
def asset(name: str) -> Asset:
    """One static file, read once per container."""
    body = (STATIC / name).read_text(encoding="utf-8")
    version = hashlib.sha256(body.encode()).hexdigest()[:12]
    return Asset(body, ASSETS.get(name, "text/html; charset=utf-8"), version)


def mount_prefix(request_path: str | None) -> str:
    """What precedes ``/console`` in the path the client used (``/api`` when deployed)."""
    path = (request_path or MOUNT).rstrip("/")
    prefix = path[: -len(MOUNT)] if path.endswith(MOUNT) else ""
    return prefix if _SAFE_PREFIX.match(prefix) else ""


def render_page(prefix: str) -> str:
    """The HTML page with absolute, versioned asset URLs under ``prefix``."""
    base = f"{prefix}{MOUNT}"
    page = asset(PAGE).body
    for name in ASSETS:
        url = f"{base}/{name}?v={asset(name).version}"
        page = page.replace("{{" + name + "}}", html.escape(url, quote=True))
    return page


def _response(body: str, content_type: str, status: int = 200, cache: str = "no-store") -> Response:
    headers: dict[str, str | list[str]] = {
        **SECURITY_HEADERS,
        "Content-Type": content_type,
        "Cache-Control": cache,
    }
    return Response(body=body, status_code=status, headers=headers)


def _request_path(request: Request | None) -> str | None:
    context = getattr(request, "context", None) or {}
    path = context.get("path")
    return path if isinstance(path, str) else None


@bp.route(MOUNT, methods=["GET"])
def console_page() -> Response:
    prefix = mount_prefix(_request_path(bp.current_request))
    return _response(render_page(prefix), "text/html; charset=utf-8")


@bp.route(MOUNT + "/{name}", methods=["GET"])
def console_asset(name: str) -> Response:
    if name not in ASSETS:
        return _response("Not found\n", "text/plain; charset=utf-8", status=404)
    found = asset(name)
    # Versioned URLs change with the content, so a day of caching is safe.
    return _response(found.body, found.content_type, cache="public, max-age=86400")
