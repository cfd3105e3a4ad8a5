"""A flow that fails after the provider minted a credential revokes it (DESIGN §8).

The drivers throw a request's final failure into the flow (``flow.throw``, as httpx does with
``auth_flow``); a flow that already holds a token yields its revocation before re-raising.
Tested on a real Synapse (Matrix JWT mode: the login made a device and a token, then the
display-name ``PUT`` fails) and on the CometChat emulator (a token was created that chatauth
cannot hand out).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chatauth import ChatAuth, ChatIdentity, InvalidTokenError, ProviderUnavailableError
from chatauth.http import RetryPolicy
from chatauth.providers.cometchat import CometChatProvider
from chatauth.providers.jwt import JWTSigner
from chatauth.providers.matrix import MatrixProvider
from chatauth.stores.memory import MemoryStore
from chatauth.testing.cometchat import DEFAULT_API_KEY, CometChatEmulator
from tests.providers.matrix_proxy import SynapseProxy
from tests.servers.deadlines import REQUEST_DEADLINE
from tests.servers.synapse import SynapseServer

PROFILE = "/_matrix/client/v3/profile/"
LOGOUT = "/_matrix/client/v3/logout"
_serial = itertools.count(1)


@pytest.fixture
def proxy(synapse: SynapseServer) -> Iterator[SynapseProxy]:
    with SynapseProxy(synapse.base_url).serve() as served:
        yield served


def matrix_service(synapse: SynapseServer, proxy: SynapseProxy) -> ChatAuth:
    assert proxy.url is not None
    provider = MatrixProvider(
        proxy.url,
        server_name=synapse.server_name,
        mode="jwt",
        signer=JWTSigner(synapse.jwt_algorithm, secret=synapse.jwt_secret),
    )
    # Generous phases: only the injected faults may fail a request here.
    return ChatAuth(provider, MemoryStore(), timeout=REQUEST_DEADLINE, retry=RetryPolicy())


def fresh_identity() -> ChatIdentity:
    # The Synapse is shared by the session: a new localpart per test.
    return ChatIdentity(f"undo-{next(_serial)}-{secrets.token_hex(3)}", name="Undo Tester")


def devices(synapse: SynapseServer, uid: str) -> list[dict[str, Any]]:
    """The user's devices as Synapse's admin API lists them (each JWT login makes one)."""
    response = httpx.get(
        synapse.url(f"/_synapse/admin/v2/users/@{uid}:{synapse.server_name}/devices"),
        headers={"Authorization": f"Bearer {synapse.admin_token}"},
        timeout=REQUEST_DEADLINE,
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["devices"]
    return found


def test_matrix_display_name_failure_logs_the_new_token_out(
    synapse: SynapseServer, proxy: SynapseProxy
) -> None:
    chat = matrix_service(synapse, proxy)
    identity = fresh_identity()
    # Every try of the display-name PUT fails (3 attempts): the login already succeeded.
    proxy.faults.status(500, times=3, path=PROFILE, method="PUT")
    with pytest.raises(ProviderUnavailableError):
        chat.get_session(identity, "app-session-1")
    # The login happened and was undone: one logout, no device (and so no token) left.
    assert proxy.calls.count_of("POST", "/_matrix/client/v3/login") == 1
    assert proxy.calls.count_of("POST", LOGOUT) == 1
    assert devices(synapse, identity.uid) == []
    assert chat.store.count_pending() == 0
    # The next request works normally.
    session = chat.get_session(identity, "app-session-1")
    assert synapse.whoami(session.token.value).status_code == 200
    chat.close()


async def test_matrix_async_driver_undoes_the_same_way(
    synapse: SynapseServer, proxy: SynapseProxy
) -> None:
    chat = matrix_service(synapse, proxy)
    identity = fresh_identity()
    proxy.faults.status(500, times=3, path=PROFILE, method="PUT")
    with pytest.raises(ProviderUnavailableError):
        await chat.aget_session(identity, "app-session-1")
    assert proxy.calls.count_of("POST", LOGOUT) == 1
    assert devices(synapse, identity.uid) == []
    await chat.aclose()


def test_matrix_undo_that_fails_too_is_queued_and_finished_by_revoke_pending(
    synapse: SynapseServer, proxy: SynapseProxy
) -> None:
    chat = matrix_service(synapse, proxy)
    identity = fresh_identity()
    proxy.faults.status(500, times=3, path=PROFILE, method="PUT")
    proxy.faults.status(503, times=1, path=LOGOUT)  # the undo gets one attempt
    with pytest.raises(ProviderUnavailableError):
        chat.get_session(identity, "app-session-1")
    assert len(devices(synapse, identity.uid)) == 1  # alive, but not forgotten:
    assert chat.store.count_pending() == 1
    report = chat.revoke_pending()
    assert (report.revoked, report.failed, report.remaining) == (1, 0, 0)
    assert devices(synapse, identity.uid) == []
    chat.close()


class UnusableTokenEmulator(CometChatEmulator):
    """A CometChat whose next created token has a space in it: chatauth must refuse to hand
    it out (``ERROR_AUTHTOKEN_WITH_SPACE``), and it never expires at CometChat."""

    def _add_token(self, uid: str) -> dict[str, Any]:
        record = super()._add_token(uid)
        tokens = self._tokens[uid]
        value = tokens.pop(record["authToken"])["authToken"]
        record = {**record, "authToken": value[:8] + " " + value[8:]}
        tokens[record["authToken"]] = record
        return record


@pytest.mark.parametrize("existing_user", [False, True])
def test_cometchat_deletes_a_token_it_cannot_hand_out(
    serve_emulator: Any, existing_user: bool
) -> None:
    emulator: CometChatEmulator = serve_emulator(UnusableTokenEmulator())
    if existing_user:
        emulator.create_user("carol")  # the token comes from POST /users/carol/auth_tokens
    provider = CometChatProvider(
        emulator.app_id, DEFAULT_API_KEY, region=emulator.region, base_url=emulator.base_url
    )
    chat = ChatAuth(provider, MemoryStore())
    with pytest.raises(InvalidTokenError) as info:
        chat.get_session(ChatIdentity("carol"), "s1")
    assert info.value.code == "ERROR_AUTHTOKEN_WITH_SPACE"
    assert emulator.calls.count_of("DELETE", "/v3/users/carol/auth_tokens/", prefix=True) == 1
    assert emulator.tokens_of("carol") == []
    chat.close()


def test_matrix_first_logins_racing_on_registration_both_get_a_token(
    synapse: SynapseServer, proxy: SynapseProxy
) -> None:
    """Synapse registers a JWT user at its first login; of two first logins at once, the one
    that loses the registration answers 400 ``M_USER_IN_USE`` (found by the soak, two app
    servers logging the same new user in). That answer is injected here, in front of the
    real Synapse: the provider logs in again and gets a working token."""
    chat = matrix_service(synapse, proxy)
    identity = fresh_identity()
    taken = {"errcode": "M_USER_IN_USE", "error": "User ID already taken."}
    proxy.faults.status(400, body=taken, path="/_matrix/client/v3/login", method="POST")
    session = chat.get_session(identity, "app-session-1")
    assert proxy.calls.count_of("POST", "/_matrix/client/v3/login") == 2
    assert synapse.whoami(session.token.value).status_code == 200
    assert len(devices(synapse, identity.uid)) == 1
    chat.close()
