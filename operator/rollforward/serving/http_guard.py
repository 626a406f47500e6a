"""An ASGI middleware that turns bodies which are not JSON into clear 4xx responses.

BentoML answers a body it cannot decode with a 500; a client error must never look like a
server error to the operator's error-rate analysis.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


def body_problem(body: bytes) -> str | None:
    """Why `body` is not acceptable JSON, or None when it is. Pure."""
    if not body.strip():
        return "empty body: send a JSON object or a JSON array of objects"
    try:
        json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        return f"body is not valid JSON: {error}"
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class JsonBodyGuard:
    """Checks POST bodies on `paths`; forwards good ones as application/json."""

    def __init__(
        self, app: ASGIApp, paths: tuple[str, ...], max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        body, too_large = await self._read_body(receive)
        if too_large:
            await _send_error(send, 413, f"body exceeds {self.max_body_bytes} bytes")
            return
        problem = body_problem(body)
        if problem is not None:
            await _send_error(send, 400, problem)
            return
        # BentoML picks its decoder from the content type; the body is JSON whatever the
        # client said, so say so.
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
        scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, _replay(body), send)

    async def _read_body(self, receive: Receive) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), False


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _send_error(send: Send, status: int, message: str) -> None:
    payload = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
