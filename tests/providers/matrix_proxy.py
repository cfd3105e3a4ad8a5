"""A fault-injecting reverse proxy in front of a real Synapse.

Synapse cannot be told to answer 429 or hang on demand, so the Matrix harnesses point the
provider at this proxy: every request is forwarded unchanged to Synapse over loopback HTTP,
unless a fault queued on ``proxy.faults`` answers it first (the emulators' own
:class:`~chatauth.testing.faults.Faults`).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any, Literal

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatauth.providers.jwt import JWTSigner
from chatauth.providers.matrix import MatrixProvider
from chatauth.testing.server import Emulator
from tests.providers.conformance import Harness
from tests.servers.deadlines import REQUEST_DEADLINE
from tests.servers.synapse import SynapseServer

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
        async with httpx.AsyncClient(base_url=self.upstream, timeout=REQUEST_DEADLINE) as client:
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


def offline_matrix(url: str, mode: Literal["admin", "jwt"]) -> MatrixProvider:
    """A Matrix provider in ``mode`` against ``url``, with test credentials."""
    secret = "offline-matrix-secret-0123456789abcdef"
    if mode == "admin":
        return MatrixProvider(url, mode="admin", admin_token=secret)
    return MatrixProvider(url, mode="jwt", signer=JWTSigner(secret=secret))


def matrix_harness(synapse: SynapseServer, mode: Literal["admin", "jwt"]) -> Iterator[Harness]:
    """A conformance harness for one Matrix mode, behind a :class:`SynapseProxy`."""

    def provider(url: str, secret: str | None = None) -> MatrixProvider:
        if mode == "admin":
            return MatrixProvider(
                url,
                server_name=synapse.server_name,
                mode="admin",
                admin_token=secret if secret is not None else synapse.admin_token,
            )
        return MatrixProvider(
            url,
            server_name=synapse.server_name,
            mode="jwt",
            signer=JWTSigner(synapse.jwt_algorithm, secret=secret or synapse.jwt_secret),
        )

    # The token-issuing request of each mode; the suite counts them.
    login_path = "/_synapse/admin/v1/users/" if mode == "admin" else "/_matrix/client/v3/login"
    with SynapseProxy(synapse.base_url).serve() as proxy:
        url = proxy.url
        assert url is not None
        yield Harness(
            name=f"matrix_{mode}",
            provider=provider(url),
            make_bad_provider=lambda: provider(url, secret="wrong-" + "x" * 30),
            is_alive=lambda token: synapse.whoami(token.value).status_code == 200,
            faults=proxy.faults,
            issue_calls=lambda: sum(
                1 for c in proxy.calls if c.method == "POST" and c.path.startswith(login_path)
            ),
            chat_user=lambda uid: matrix_chat_user(synapse, uid),
        )


def matrix_chat_user(synapse: SynapseServer, uid: str) -> dict[str, Any] | None:
    """The user as Synapse's admin API shows it; ``None`` for no user, or an erased one (the
    erasure removed its profile: no display name, no avatar)."""
    user_id = f"@{uid}:{synapse.server_name}"
    response = httpx.get(
        synapse.url(f"/_synapse/admin/v2/users/{urllib.parse.quote(user_id, safe='@:')}"),
        headers={"Authorization": f"Bearer {synapse.admin_token}"},
        timeout=REQUEST_DEADLINE,
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    body = response.json()
    name, avatar = body.get("displayname"), body.get("avatar_url")
    if body.get("deactivated") and not name and not avatar:
        return None
    return {"name": name, "avatar": avatar, "active": not body.get("deactivated")}
