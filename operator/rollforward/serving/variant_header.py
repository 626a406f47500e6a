"""An ASGI middleware that names the bento's variant on every HTTP response.

Every answer, of any path and status, carries `contract.VARIANT_HEADER` with this process's
variant (ROLLFORWARD_VARIANT, set by the operator). The nginx router sends it on to the client
as its served-by header, so the header names the variant that really answered, also when the
champion answered for a variant with no ready pod. Behind the Service router the client reads
it straight from the bento.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from rollforward.serving.contract import VARIANT_HEADER
from rollforward.serving.settings import ServingSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HEADER = VARIANT_HEADER.lower().encode("latin-1")


class VariantHeader:
    """Adds `VARIANT_HEADER: <variant>` to every HTTP response, replacing any the app set."""

    def __init__(self, app: ASGIApp, variant: str | None = None) -> None:
        self.app = app
        name = ServingSettings().variant if variant is None else variant
        self.value = name.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if bytes(k).lower() != _HEADER
                ]
                message = {**message, "headers": [*headers, (_HEADER, self.value)]}
            await send(message)

        await self.app(scope, receive, named)
