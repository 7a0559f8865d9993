"""The service's limits and the ASGI guard in front of the application that enforces the transport-level ones.

Every refusal is a JSON body `{"error": "..."}` that says which limit was hit and how to stay
within it:

| limit | checked by | status |
|---|---|---|
| `max_body_bytes`: a request body (declared `Content-Length`, or counted while read) | `Guard` | 413 |
| `max_concurrent`: requests being answered at once (`/health` and the page excepted) | `Guard` | 429 |
| the API key (`X-API-Key: KEY` or `Authorization: Bearer KEY`), when the service has one | `Guard` | 401 |
| `max_query_chars`: a query, a text to classify, a record's text | the endpoints | 400 |
| `max_k`: results per query | the endpoints | 400 |
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass

API_KEY_ENV = "SIMLAB_API_KEY"
"""The environment variable `simlab serve` reads the API key from when `--api-key` is not given."""
OPEN_PATHS = ("/", "/health", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/favicon.ico")
"""Paths answered without the API key, and outside the concurrency limit (the page, health, the API docs)."""


@dataclass(frozen=True)
class Limits:
    """What one request may ask (see the module docstring)."""

    max_query_chars: int = 2000
    max_k: int = 100
    max_body_bytes: int = 64 * 1024
    max_concurrent: int = 16

    def __post_init__(self) -> None:
        from simlab.errors import ConfigError

        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {value!r}: must be a whole number of at least 1")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith("/static/")


class Guard:
    """ASGI middleware: body size, concurrent requests and the API key, checked before the application runs."""

    def __init__(self, app, limits: Limits, api_key: str | None = None) -> None:
        self.app, self.limits, self.api_key = app, limits, api_key or None
        self.active = 0  # requests being answered (one event loop: no lock needed)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.api_key and not _is_open(path) and not self._authorized(headers):
            await _error(send, 401, "missing or wrong API key: send it as `X-API-Key: KEY` (or Authorization: Bearer)")
            return
        declared = headers.get("content-length", "")
        limit = self.limits.max_body_bytes
        if declared.isdigit() and int(declared) > limit:
            await _error(send, 413, f"request body of {int(declared):,} bytes is over the limit of {limit:,} bytes")
            return
        counted = not _is_open(path)
        if counted and self.active >= self.limits.max_concurrent:
            await _error(
                send,
                429,
                f"too many requests at once (limit {self.limits.max_concurrent}); retry when one has been answered",
                [(b"retry-after", b"1")],
            )
            return
        self.active += counted  # checked and counted with no await between: one event loop, no race
        try:
            await self._answer(scope, receive, send, limit)
        finally:
            self.active -= counted

    async def _answer(self, scope, receive, send, limit: int) -> None:
        body = b""
        if scope.get("method") in ("POST", "PUT", "PATCH"):  # read the body here (it is small), counting it
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > limit:
                    await _error(send, 413, f"request body is over the limit of {limit:,} bytes")
                    return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _authorized(self, headers: dict[str, str]) -> bool:
        given = headers.get("x-api-key") or ""
        auth = headers.get("authorization", "")
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return bool(given) and secrets.compare_digest(given.encode(), self.api_key.encode())


async def _error(send, status: int, message: str, extra: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
