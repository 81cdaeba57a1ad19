"""Request and response values shared by the dev org's route modules.

Routes are plain functions from a :class:`Request` to a :class:`Response`, so the
``/composite`` endpoint can dispatch its subrequests through the same code as
real HTTP requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

__all__ = [
    "JSON_TYPE",
    "ApiFailure",
    "Request",
    "Response",
    "error_response",
    "json_response",
]

JSON_TYPE = "application/json;charset=UTF-8"


@dataclass(slots=True)
class Request:
    method: str
    path: str  # decoded path, no query string
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    raw_query: str = ""
    version: str = ""
    user_id: str = ""

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiFailure(
                400, "JSON_PARSER_ERROR", f"The request body is not valid JSON: {exc}"
            ) from None


@dataclass(slots=True)
class Response:
    status: int
    body: bytes | Iterator[bytes] | None = None
    content_type: str | None = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The JSON body (for /composite subrequests); streamed bodies are not JSON."""
        if isinstance(self.body, bytes) and self.body:
            return json.loads(self.body)
        return None


class ApiFailure(Exception):
    """Raised by a route to answer a Salesforce-style error list."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.fields, self.headers)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(status, body, JSON_TYPE, dict(headers or {}))


def error_response(
    status: int,
    code: str,
    message: str,
    fields: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Salesforce's error list: ``[{"message": ..., "errorCode": ..., "fields": [...]}]``."""
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    return json_response(status, [item], headers)
