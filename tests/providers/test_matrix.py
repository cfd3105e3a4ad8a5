"""Matrix specifics on a real Synapse: both modes leave the same profile behind."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Literal

import httpx
import pytest

from chatauth import ChatIdentity
from chatauth.http import run_flow
from chatauth.providers.jwt import JWTSigner
from chatauth.providers.matrix import MatrixProvider
from tests.servers.deadlines import REQUEST_DEADLINE
from tests.servers.synapse import SynapseServer


def provider(synapse: SynapseServer, mode: Literal["admin", "jwt"]) -> MatrixProvider:
    if mode == "admin":
        return MatrixProvider(
            synapse.base_url,
            server_name=synapse.server_name,
            mode="admin",
            admin_token=synapse.admin_token,
        )
    return MatrixProvider(
        synapse.base_url,
        server_name=synapse.server_name,
        mode="jwt",
        signer=JWTSigner(synapse.jwt_algorithm, secret=synapse.jwt_secret),
    )


@pytest.mark.parametrize("mode", ["admin", "jwt"])
def test_both_modes_set_the_display_name_and_the_avatar(
    synapse: SynapseServer, mode: Literal["admin", "jwt"]
) -> None:
    uid = f"profile-{mode}-{secrets.token_hex(3)}"
    avatar = f"mxc://{synapse.server_name}/{secrets.token_hex(8)}"
    identity = ChatIdentity(uid, name="Profile Tester", avatar=avatar)
    with httpx.Client(timeout=REQUEST_DEADLINE) as client:
        token = run_flow(
            provider(synapse, mode).issue(identity, timedelta(hours=1)), client, provider="matrix"
        )
        profile = client.get(
            synapse.url(f"/_matrix/client/v3/profile/@{uid}:{synapse.server_name}"),
            headers={"Authorization": f"Bearer {token.value}"},
        )
    assert profile.status_code == 200, profile.text
    assert profile.json() == {"displayname": "Profile Tester", "avatar_url": avatar}
