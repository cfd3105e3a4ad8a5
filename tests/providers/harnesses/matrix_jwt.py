"""Matrix in jwt mode against a real Synapse (through a fault-injecting proxy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatauth.providers.jwt import JWTSigner
from chatauth.providers.matrix import MatrixProvider
from chatauth.tokens import ChatToken
from tests.providers.conformance import Harness
from tests.providers.matrix_proxy import SynapseProxy
from tests.servers.synapse import SynapseServer

MODE = "jwt"


def _provider(url: str, synapse: SynapseServer, *, secret: str | None = None) -> MatrixProvider:
    if MODE == "admin":
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


@pytest.fixture(name="harness_matrix_jwt")
def harness_matrix_jwt(synapse: SynapseServer) -> Iterator[Harness]:
    with SynapseProxy(synapse.base_url).serve() as proxy:
        login_path = "/_synapse/admin/v1/users/" if MODE == "admin" else "/_matrix/client/v3/login"

        def issue_calls() -> int:
            return sum(
                1
                for call in proxy.calls
                if call.method == "POST" and call.path.startswith(login_path)
            )

        def is_alive(token: ChatToken) -> bool:
            return synapse.whoami(token.value).status_code == 200

        assert proxy.url is not None
        yield Harness(
            name="matrix_jwt",
            provider=_provider(proxy.url, synapse),
            make_bad_provider=lambda: _provider(
                proxy.url or "", synapse, secret="wrong-" + "x" * 30
            ),
            is_alive=is_alive,
            faults=proxy.faults,
            issue_calls=issue_calls,
        )
