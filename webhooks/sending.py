"""Sending one delivery over HTTP: the URL checked after DNS (no private, loopback, link-local or
metadata address, unless ``WEBHOOKS_ALLOW_PRIVATE``), the connection made to the very address
that was checked (a name that changes its answer between the check and the connect gains
nothing), no redirects followed, ``WEBHOOK_TIMEOUT_SECONDS`` for the whole answer."""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from core.errors import Invalid
from core.text import PORT_PATTERN


@dataclass
class Answer:
    status_code: int | None
    duration_ms: int
    error: str = ""
    retry_after: int | None = None


_PORT = PORT_PATTERN
# What the schema publishes (https only; http too where WEBHOOKS_ALLOW_PRIVATE is on).
URL_PATTERN = rf"^https://[A-Za-z0-9.-]+(:{_PORT})?(/[!-~]*)?$"
_URL = re.compile(URL_PATTERN)
_DEV_URL = re.compile(rf"^https?://[A-Za-z0-9.-]+(:{_PORT})?(/[!-~]*)?$")


def url_problem(url: str) -> str | None:
    """Why ``url`` may not receive webhooks (before any DNS), or None."""
    allow_private = settings.WEBHOOKS_ALLOW_PRIVATE
    if not isinstance(url, str) or not (_DEV_URL if allow_private else _URL).match(url):
        return "Must be an https:// URL: a host name, an optional port, a path of printable characters."
    try:
        parts = urlsplit(url)
    except ValueError:
        return "Not a URL."
    if not parts.hostname or parts.username or parts.password:
        return "Needs a host name, and no user name or password."
    try:
        parts.port  # noqa: B018  a bad port raises
    except ValueError:
        return "The port is not a number from 1 to 65535."
    if len(url) > 500:
        return "At most 500 characters."
    return None


def url_check(url: str) -> str:
    problem = url_problem(url)
    if problem:
        raise Invalid(problem, fields={"url": problem})
    return url


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> str:
    """The address to connect to; refuses private ones (all of a name's answers must be public)."""
    answers = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    if not answers:
        raise OSError("no address")
    if not settings.WEBHOOKS_ALLOW_PRIVATE and not all(_public(a) for a in answers):
        raise PermissionError("the host resolves to a private, loopback, link-local or metadata address")
    return sorted(answers)[0]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, address, **kwargs):
        super().__init__(host, **kwargs)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, address, **kwargs):
        super().__init__(host, **kwargs)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    problem = url_problem(url)
    if problem:
        return Answer(None, 0, problem)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        address = resolve(parts.hostname, port)
        if parts.scheme == "https":
            conn = _PinnedHTTPSConnection(parts.hostname, address, port=port, timeout=timeout,
                                          context=ssl.create_default_context())
        else:
            conn = _PinnedHTTPConnection(parts.hostname, address, port=port, timeout=timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("POST", path, body=body, headers={**headers, "Content-Type": "application/json",
                                                           "User-Agent": "LoyaltyLoop-Webhooks/1"})
            response = conn.getresponse()
            response.read(64 * 1024)  # enough to finish the exchange; the body is not kept
            retry_after = response.getheader("Retry-After")
            seconds = int(retry_after) if retry_after and retry_after.strip().isdigit() else None
            return Answer(response.status, took(), "" if 200 <= response.status < 300 else f"HTTP {response.status}",
                          seconds)
        finally:
            conn.close()
    except PermissionError as exc:
        return Answer(None, took(), str(exc))
    except (OSError, http.client.HTTPException) as exc:
        return Answer(None, took(), f"{exc.__class__.__name__}: {exc}"[:300])
