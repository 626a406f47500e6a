"""VariantHeader names the bento's variant on every HTTP response, whatever the app said."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from rollforward.serving.contract import ENV_VARIANT, VARIANT_HEADER
from rollforward.serving.variant_header import VariantHeader

pytestmark = pytest.mark.unit


def app_answering(status: int, headers: list[tuple[bytes, bytes]]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"x"})

    return app


def answer(middleware: VariantHeader, scope_type: str = "http") -> list[MutableMapping[str, Any]]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(middleware({"type": scope_type, "path": "/predict"}, receive, send))
    return sent


def variant_headers(message: MutableMapping[str, Any]) -> list[bytes]:
    return [v for k, v in message["headers"] if k.lower() == VARIANT_HEADER.lower().encode()]


@pytest.mark.parametrize("status", [200, 422, 503])
def test_every_status_names_the_variant_once(status: int) -> None:
    # The app's own value (here a forged one) is replaced, never doubled.
    forged = (b"X-Rollforward-Variant", b"x")
    app = app_answering(status, [(b"content-type", b"text/plain"), forged])
    start, body = answer(VariantHeader(app, variant="challenger"))
    assert start["status"] == status
    assert variant_headers(start) == [b"challenger"]
    assert (b"content-type", b"text/plain") in start["headers"]
    assert body == {"type": "http.response.body", "body": b"x"}


def test_the_variant_comes_from_the_operators_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_VARIANT, "candidate")
    (start, _) = answer(VariantHeader(app_answering(200, [])))
    assert variant_headers(start) == [b"candidate"]
    monkeypatch.delenv(ENV_VARIANT)
    (start, _) = answer(VariantHeader(app_answering(200, [])))
    assert variant_headers(start) == [b"default"]


def test_other_scopes_pass_untouched() -> None:
    async def lifespan(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "lifespan.startup.complete"})

    assert answer(VariantHeader(lifespan, variant="champion"), "lifespan") == [
        {"type": "lifespan.startup.complete"}
    ]
