"""What every HTTP exchange with Salesforce goes through, on both HTTP stacks.

- **HTTPS only.** Every request carries a credential (a client secret, a bearer
  token, a session id), so a URL that is not ``https://`` is refused before a
  connection is made: the requests session mounts an adapter that refuses
  ``http://``, the httpx clients refuse it in a request hook, and URLs that come
  from Salesforce (``instance_url``, a SOAP ``serverUrl``) are checked on arrival.
- **An overall deadline per request.** ``timeout_s`` bounds each socket read, so a
  server that drips a byte every few seconds could keep a request alive for ever.
  Every TLS socket is a :class:`_DeadlineSocket`: before each read it shortens its
  timeout to what is left of the deadline of the request in progress on this
  thread (:func:`deadline`), and past the deadline the read fails like a timeout.
- **A cap on an answer's size** (``salesforce.max_response_mb``): bodies are read
  in chunks and refused once too large, instead of being held whole in memory.
- **Which transport failures are worth a retry.** A certificate that does not
  verify is not transient; at login neither is a host name that does not resolve
  or a connection refused.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import requests
from requests.adapters import BaseAdapter, HTTPAdapter

from sfsync.errors import ApiError, InsecureEndpoint

__all__ = [
    "HttpsAdapter",
    "RefusePlainHttp",
    "ResponseTooLarge",
    "capped_body",
    "deadline",
    "deadline_context",
    "is_certificate_error",
    "is_unreachable_host",
    "refuse_plain_http",
    "require_https",
]

_local = threading.local()


class ResponseTooLarge(ApiError):
    """An answer larger than ``salesforce.max_response_mb``: not read further, not retried."""


def require_https(url: str, what: str) -> str:
    """``url`` if it is https://, else :class:`InsecureEndpoint` naming where it came from."""
    if not url.lower().startswith("https://"):
        raise InsecureEndpoint(
            f"{what} is {url!r}, which is not an https:// URL: sfsync does not send "
            "credentials over plain HTTP, so it stopped before connecting"
        )
    return url


class RefusePlainHttp(BaseAdapter):
    """Mounted on ``http://`` of the requests session: nothing is ever sent there."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        require_https(str(request.url), "the URL of a Salesforce request")

    def close(self) -> None:
        """Nothing to release."""


def refuse_plain_http(request: httpx.Request) -> None:
    """An httpx request hook: the same refusal for the login and Bulk 2.0 clients."""
    require_https(str(request.url), "the URL of a Salesforce request")


# --------------------------------------------------------------------------- deadline


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Requests made on this thread inside the block must finish within ``seconds``."""
    previous: float | None = getattr(_local, "deadline", None)
    mine = time.monotonic() + seconds
    _local.deadline = mine if previous is None else min(previous, mine)
    try:
        yield
    finally:
        _local.deadline = previous


class _DeadlineSocket(ssl.SSLSocket):
    """A TLS socket whose reads respect the current request's overall deadline."""

    _sfsync_timeout: float | None = None

    def settimeout(self, value: float | None) -> None:
        self._sfsync_timeout = value  # what the HTTP library asked for, per read
        super().settimeout(value)

    def _arm(self) -> None:
        until: float | None = getattr(_local, "deadline", None)
        if until is None:
            return
        left = until - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's overall deadline (salesforce.deadline_s) passed")
        base = self._sfsync_timeout
        super().settimeout(left if base is None else min(base, left))

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        self._arm()
        return super().recv(buflen, flags)

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        self._arm()
        return super().recv_into(buffer, nbytes, flags)


def deadline_context(context: ssl.SSLContext) -> ssl.SSLContext:
    """``context`` making sockets that honour :func:`deadline` (both stacks use it)."""
    context.sslsocket_class = _DeadlineSocket
    return context


class HttpsAdapter(HTTPAdapter):
    """requests' adapter over sfsync's TLS context (trust, and deadline-aware sockets)."""

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self._context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


# --------------------------------------------------------------------------- size


def capped_body(chunks: Iterable[bytes], limit: int, what: str) -> bytes:
    """The whole body, or :class:`ResponseTooLarge` as soon as it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(
                f"Salesforce's answer to {what} is larger than {limit // (1024 * 1024)} MB "
                "(salesforce.max_response_mb); it was not read further"
            )
        parts.append(chunk)
    return b"".join(parts)


# --------------------------------------------------------------------------- failures


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for attribute in ("__cause__", "__context__", "reason"):
            nested = getattr(current, attribute, None)
            if isinstance(nested, BaseException):
                stack.append(nested)
        stack.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))


def is_certificate_error(exc: BaseException) -> bool:
    """A TLS certificate that does not verify: retrying will not make it verify."""
    return any(
        isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(cause)
        for cause in _causes(exc)
    )


def is_unreachable_host(exc: BaseException) -> bool:
    """A host name that does not resolve, or a connection refused outright."""
    return any(
        isinstance(cause, socket.gaierror | ConnectionRefusedError)
        or "Name or service not known" in str(cause)
        or "nodename nor servname" in str(cause)
        or "Connection refused" in str(cause)
        for cause in _causes(exc)
    )
