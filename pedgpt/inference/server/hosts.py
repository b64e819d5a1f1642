"""The ``Host`` check that stops DNS rebinding when the server runs without an API key.

A web page on another site can point its own host name at 127.0.0.1 (DNS rebinding) and then call the local
server from the visitor's browser; the browser sends that site's name in ``Host``. Without an API key the
server therefore answers only requests whose ``Host`` names this server: ``localhost``, a loopback address
(``127.0.0.1``, ``[::1]``), the address the request arrived on, or a name in ``allowed_hosts``; the port is
not compared (an SSH tunnel may forward another port). Anything else gets 400 ``invalid_host``. With an API
key every ``Host`` is accepted: the key is the protection, and a browser on another site does not have it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pedgpt.inference.server.errors import APIError

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def host_name(header: str) -> str:
    """``"127.0.0.1:8000"`` → ``"127.0.0.1"``, ``"[::1]:8000"`` → ``"::1"``, ``"LocalHost."`` → ``"localhost"``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    name = header.rpartition(":")[0] if header.count(":") == 1 else header
    return name.rstrip(".")


def is_local_name(name: str) -> bool:
    """``localhost`` (and ``*.localhost``) or a loopback address."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class HostCheck:
    """ASGI middleware: refuse a foreign ``Host`` (see the module doc) on every HTTP request."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = {host_name(h) for h in allowed_hosts if h.strip()}

    def accepts(self, header: str | None, server: tuple[str, int] | None) -> bool:
        if header is None:  # HTTP/1.0 without Host: not a browser, so not a rebinding page
            return True
        name = host_name(header)
        return is_local_name(name) or name in self.allowed or (server is not None and name == host_name(server[0]))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            raw = headers.get(b"host")
            header = raw.decode("latin-1") if raw is not None else None
            if not self.accepts(header, scope.get("server")):
                err = APIError(
                    400,
                    f"Host: {header!r} does not name this server (localhost, a loopback address or the address "
                    f"it listens on); without an API key other names are refused — set api_key= or allowed_hosts=",
                    param="Host",
                    code="invalid_host",
                )
                body = json.dumps(err.body()).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": err.status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
