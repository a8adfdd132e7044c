"""Access control in front of every route: token, Host and Origin checks.

Owns ``AccessGuard``, a pure ASGI middleware (it never buffers, so Server-Sent Events
stream through it) enforcing the security model documented in the README:

- With a token, every request must carry it: ``Authorization: Bearer <token>``, the
  HttpOnly cookie set on the browser's first load, or ``?token=<token>`` (a page load
  with it is redirected to the same URL without it, setting the cookie).
- Without a token the server is meant for this machine only: requests whose ``Host``
  is not a loopback name are refused, which defeats DNS-rebinding attacks.
- State-changing requests (POST, PUT, PATCH, DELETE) sent by a browser from another
  origin are refused unless that origin was explicitly allowed (CSRF protection).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["AccessGuard", "cookie_name", "is_loopback_host"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_QUERY_PARAM = "token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/api/"


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and any loopback IP address (``127.0.0.0/8``, ``::1``)."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _split_host_header(value: str) -> str:
    """The host name of a ``Host`` header value, without its port."""
    value = value.strip()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def cookie_name(port: int | None) -> str:
    """Cookie holding the token; per port, since browsers share cookies across ports."""
    return "molexp_token" if port is None else f"molexp_token_{port}"


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        headers[raw_name.decode("latin-1").lower()] = raw_value.decode("latin-1")
    return headers


async def _respond(
    send: Send,
    status: int,
    detail: str,
    *,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> None:
    body = json.dumps({"detail": detail}).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *((name.encode("latin-1"), value.encode("latin-1")) for name, value in extra_headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AccessGuard:
    """ASGI middleware enforcing token, Host and Origin rules (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        allow_origins: Iterable[str] = (),
    ) -> None:
        self._app = app
        self._token = token
        self._allowed_origins = frozenset(origin.rstrip("/") for origin in allow_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host", "")
        if self._token is None and not is_loopback_host(_split_host_header(host)):
            await _respond(
                send,
                403,
                f"Host {host!r} is not allowed: without a token this server only answers "
                "requests addressed to localhost (start it with a token to expose it)",
            )
            return
        method = scope.get("method", "GET").upper()
        origin = headers.get("origin")
        if (
            method in UNSAFE_METHODS
            and origin is not None
            and not self._same_or_allowed(origin, scope, host)
        ):
            await _respond(send, 403, f"cross-origin {method} from {origin!r} is not allowed")
            return
        if self._token is None:
            await self._app(scope, receive, send)
            return
        await self._authenticate(scope, receive, send, headers)

    def _same_or_allowed(self, origin: str, scope: Scope, host: str) -> bool:
        origin = origin.rstrip("/")
        own = f"{scope.get('scheme', 'http')}://{host}"
        return origin == own or origin in self._allowed_origins

    def _matches(self, candidate: str | None) -> bool:
        assert self._token is not None
        if not candidate:
            return False
        return secrets.compare_digest(candidate.encode("utf-8"), self._token.encode("utf-8"))

    async def _authenticate(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        server = scope.get("server")
        cookie = cookie_name(server[1] if server else None)
        authorization = headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and self._matches(credentials.strip()):
            await self._app(scope, receive, send)
            return
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is simply not a credential
            cookies = SimpleCookie()
        if cookie in cookies and self._matches(cookies[cookie].value):
            await self._app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [value for name, value in query if name == TOKEN_QUERY_PARAM]
        if given and self._matches(given[-1]):
            set_cookie = f"{cookie}={self._token}; HttpOnly; SameSite=Strict; Path=/"
            path = scope.get("path", "/")
            if scope.get("method") == "GET" and not path.startswith(API_PREFIX):
                # A page load: set the cookie and drop the token from the address bar.
                rest = urlencode(
                    [(name, value) for name, value in query if name != TOKEN_QUERY_PARAM]
                )
                # One leading slash only: "//host" would be a protocol-relative redirect.
                location = "/" + path.lstrip("/") + (f"?{rest}" if rest else "")
                await self._redirect(send, location, set_cookie)
                return
            await self._app(scope, receive, send)
            return
        await _respond(
            send,
            401,
            "missing or wrong token: send 'Authorization: Bearer <token>' or open the URL "
            "printed by `molexp serve` (it carries ?token=...)",
            extra_headers=[("www-authenticate", "Bearer")],
        )

    @staticmethod
    async def _redirect(send: Send, location: str, set_cookie: str) -> None:
        headers = [
            (b"location", location.encode("latin-1")),
            (b"set-cookie", set_cookie.encode("latin-1")),
            (b"content-length", b"0"),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
