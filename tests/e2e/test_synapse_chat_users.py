"""Deactivation and erasure on a real Synapse: what the Matrix user's own clients see.

The conformance suite proves chatauth's stored tokens die. These tests hold a token chatauth
never stored (another client of the same user, logged in by itself) and prove that the
homeserver itself cut it off: after ``deactivate_chat_user`` it gets 401 ``M_UNKNOWN_TOKEN``,
and after ``erase_chat_user`` the user's profile (display name, avatar) is gone.
"""

from __future__ import annotations

import secrets
import time
import urllib.parse

import httpx
import jwt

from chatauth import ChatAuth, ChatIdentity
from chatauth.providers.matrix import MatrixProvider
from chatauth.stores.memory import MemoryStore
from tests.servers.deadlines import REQUEST_DEADLINE
from tests.servers.synapse import SynapseServer


def _service(synapse: SynapseServer) -> ChatAuth:
    provider = MatrixProvider(
        synapse.base_url,
        server_name=synapse.server_name,
        mode="admin",
        admin_token=synapse.admin_token,
    )
    return ChatAuth(provider, MemoryStore(), timeout=REQUEST_DEADLINE)


def _own_client_token(synapse: SynapseServer, uid: str) -> str:
    """A token of the user's own client (a device of theirs, JWT login), which chatauth never
    stored. (An admin's login-as token is the admin's puppet: Synapse's deactivation leaves
    those alive, which is why chatauth revokes the ones it holds before deactivating.)"""
    now = int(time.time())
    login = jwt.encode({"sub": uid, "iat": now, "exp": now + 60}, synapse.jwt_secret, "HS256")
    response = httpx.post(
        synapse.url("/_matrix/client/v3/login"),
        json={"type": "org.matrix.login.jwt", "token": login},
        timeout=REQUEST_DEADLINE,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _profile(synapse: SynapseServer, user_id: str) -> httpx.Response:
    return httpx.get(
        synapse.url(f"/_matrix/client/v3/profile/{urllib.parse.quote(user_id, safe='@:')}"),
        timeout=REQUEST_DEADLINE,
    )


def test_a_deactivated_users_token_gets_401(synapse: SynapseServer) -> None:
    chat = _service(synapse)
    try:
        uid = f"leaver-{secrets.token_hex(4)}"
        session = chat.get_session(ChatIdentity(uid, name="Leaver"), "s1")
        user_id = session.client["user_id"]
        other = _own_client_token(synapse, uid)
        assert synapse.whoami(other).status_code == 200

        change = chat.deactivate_chat_user(ChatIdentity(uid))

        assert change.done and change.ended == 1
        # chatauth's own token (an admin login-as puppet, revoked first) and the user's own
        # client's token (cut off by the homeserver's deactivation) are both dead.
        for token in (session.token.value, other):
            answer = synapse.whoami(token)
            assert answer.status_code == 401
            assert answer.json()["errcode"] == "M_UNKNOWN_TOKEN"
        # Deactivated, not erased: Synapse keeps the profile.
        assert _profile(synapse, user_id).json().get("displayname") == "Leaver"
        # And a new chat session cannot be had for a deactivated user.
        assert chat.update_chat_user(ChatIdentity(uid, name="Back?")).done  # left alone
        assert _profile(synapse, user_id).json().get("displayname") == "Leaver"
    finally:
        chat.close()


def test_an_erased_users_profile_is_gone(synapse: SynapseServer) -> None:
    chat = _service(synapse)
    try:
        uid = f"eraser-{secrets.token_hex(4)}"
        identity = ChatIdentity(uid, name="To Be Erased", avatar="mxc://localhost/avatar")
        session = chat.get_session(identity, "s1")
        user_id = session.client["user_id"]
        other = _own_client_token(synapse, uid)
        profile = _profile(synapse, user_id).json()
        assert profile == {"displayname": "To Be Erased", "avatar_url": "mxc://localhost/avatar"}

        change = chat.erase_chat_user(ChatIdentity(uid))

        assert change.done and change.ended == 1
        assert synapse.whoami(other).status_code == 401
        gone = _profile(synapse, user_id)
        assert gone.status_code == 404, gone.text
        admin = httpx.get(
            synapse.url(f"/_synapse/admin/v2/users/{urllib.parse.quote(user_id, safe='@:')}"),
            headers={"Authorization": f"Bearer {synapse.admin_token}"},
            timeout=REQUEST_DEADLINE,
        ).json()
        assert admin["deactivated"] is True
        assert admin.get("displayname") in (None, "") and admin.get("avatar_url") in (None, "")
    finally:
        chat.close()


def test_login_as_tokens_chatauth_does_not_hold_outlive_deactivation(
    synapse: SynapseServer,
) -> None:
    """What docs/providers.md says of Synapse: an admin's login-as token for the user is the
    admin's puppet, and deactivation leaves it alive; so chatauth revokes the ones it holds
    before deactivating (the first test). If Synapse starts cutting them too, this fails and
    the docs need a line less."""
    chat = _service(synapse)
    try:
        uid = f"puppet-{secrets.token_hex(4)}"
        user_id = chat.get_session(ChatIdentity(uid, name="Puppet"), "s1").client["user_id"]
        response = httpx.post(
            synapse.url(f"/_synapse/admin/v1/users/{urllib.parse.quote(user_id, safe='@:')}/login"),
            headers={"Authorization": f"Bearer {synapse.admin_token}"},
            json={},
            timeout=REQUEST_DEADLINE,
        )
        puppet = str(response.json()["access_token"])
        assert chat.deactivate_chat_user(ChatIdentity(uid)).done
        assert synapse.whoami(puppet).status_code == 200
    finally:
        chat.close()
