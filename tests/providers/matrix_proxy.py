"""A fault-injecting reverse proxy in front of a real Synapse.

Synapse cannot be told to answer 429 or hang on demand, so the Matrix harnesses point the
provider at this proxy: every request is forwarded unchanged to Synapse over loopback HTTP,
unless a fault queued on ``proxy.faults`` answers it first (the emulators' own
:class:`~chatauth.testing.faults.Faults`).
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatauth.testing.server import Emulator

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


class SynapseProxy(Emulator):
    """Forwards to ``upstream`` (Synapse's base URL); faults speak Matrix's error JSON."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        super().__init__()

    def _routes(self) -> list[BaseRoute]:
        return [Route("/{path:path}", self._forward, methods=METHODS)]

    def _fault_error(self, status: int, retry_after: float | None) -> tuple[Any, dict[str, str]]:
        if status == 429:
            body = {"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests"}
            if retry_after is not None:
                body["retry_after_ms"] = int(retry_after * 1000)
            return body, {}
        return {"errcode": "M_UNKNOWN", "error": "Internal server error"}, {}

    async def _forward(self, request: Request) -> Response:
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        async with httpx.AsyncClient(base_url=self.upstream, timeout=10) as client:
            upstream = await client.request(
                request.method,
                request.url.path,
                params=request.query_params.multi_items(),
                content=await request.body(),
                headers=headers,
            )
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type"),
        )
