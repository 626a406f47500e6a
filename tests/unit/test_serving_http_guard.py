"""JsonBodyGuard answers non-JSON bodies with 4xx and forwards JSON as application/json."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest

from rollforward.serving.http_guard import JsonBodyGuard, body_problem


class RecordingApp:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        self.calls.append((scope, message.get("body", b"")))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def call(
    guard: JsonBodyGuard, body: bytes, path: str = "/predict", method: str = "POST"
) -> tuple[int, bytes]:
    chunks = [body[:3], body[3:]]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"content-type", b"text/plain")],
    }
    asyncio.run(guard(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"", 400, "empty body"),
        (b" \n ", 400, "empty body"),
        (b"{oops", 400, "not valid JSON"),
        (b"[NaN]", 400, "NaN is not JSON"),
        (b"[" * 5000 + b"]" * 5000, 400, "not valid JSON"),
    ],
)
def test_bad_bodies_get_400_with_a_reason(body: bytes, status: int, needle: str) -> None:
    app = RecordingApp()

    got, answer = call(JsonBodyGuard(app, paths=("/predict",)), body)

    assert got == status
    assert needle in json.loads(answer)["error"]
    assert app.calls == []


def test_json_is_forwarded_whole_as_application_json() -> None:
    app = RecordingApp()
    body = b'{"records": [{"a": 1}]}'

    got, _ = call(JsonBodyGuard(app, paths=("/predict",)), body)

    assert got == 200
    [(scope, forwarded)] = app.calls
    assert forwarded == body
    assert (b"content-type", b"application/json") in scope["headers"]
    assert (b"content-type", b"text/plain") not in scope["headers"]


def test_other_paths_and_methods_pass_untouched() -> None:
    app = RecordingApp()
    guard = JsonBodyGuard(app, paths=("/predict",))

    assert call(guard, b"", path="/metrics")[0] == 200
    assert call(guard, b"", method="GET")[0] == 200
    assert len(app.calls) == 2


def test_oversized_bodies_get_413() -> None:
    got, answer = call(JsonBodyGuard(RecordingApp(), ("/predict",), max_body_bytes=4), b"[1,2,3]")

    assert got == 413 and b"exceeds" in answer


def test_body_problem_accepts_any_json_value() -> None:
    assert body_problem(b"null") is None
    assert body_problem(b'"x"') is None
    assert body_problem(b"1e400") is None
