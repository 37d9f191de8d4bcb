"""The console's guards: the access token (needed off loopback), the CSRF token on verdict posts, the
reviewer's name, and the response headers every page carries."""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

CSRF_COOKIE = "playerguard_csrf"
TOKEN_COOKIE = "playerguard_review_token"
REVIEWER_HEADER = "x-playerguard-reviewer"
_CSRF_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_REVIEWER_SHAPE = re.compile(r"^[^\x00-\x1f\x7f]{1,80}$")

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: under no-referrer Chromium sends `Origin: null` on form posts
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def csrf_token(request: Request) -> tuple[str, bool]:
    """The browser's CSRF token (its cookie), or a new one; True when the cookie must be set."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if _CSRF_SHAPE.match(current):
        return current, False
    return secrets.token_urlsafe(32), True


def csrf_ok(request: Request, submitted: str) -> bool:
    """Double submit: the form's token equals the cookie's. A cross-site page can make the browser send the
    cookie but can neither read it nor the page holding the token."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(_CSRF_SHAPE.match(cookie)) and hmac.compare_digest(cookie.encode(), submitted.encode())


def same_origin(request: Request) -> bool:
    """A post's Origin (when the browser sends one) names this server."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin != "null" and urlsplit(origin).netloc == host


def presented_token(request: Request) -> str | None:
    """The access token from `Authorization: Bearer …`, the console's cookie, or `?token=` (first visit)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(TOKEN_COOKIE) or request.query_params.get("token")


def token_ok(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())


def reviewer_name(request: Request, default: str) -> str:
    """The reviewer: the `X-Playerguard-Reviewer` header (set by a proxy that knows who is there), else the
    setting. A name with control characters or over 80 characters is ignored."""
    header = request.headers.get(REVIEWER_HEADER, "").strip()
    return header if _REVIEWER_SHAPE.match(header) else default
