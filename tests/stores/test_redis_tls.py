"""``rediss://``: RedisStore over TLS to a real redis-server with a throwaway CA."""

from __future__ import annotations

import datetime
import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chatauth import ChatIdentity, StoreUnavailableError, from_settings
from chatauth.stores.redis import RedisStore
from tests.servers.deadlines import STARTUP_DEADLINE
from tests.servers.ports import port_is_open
from tests.servers.processes import start_process, stop_process
from tests.servers.redis import find_redis_server

pytestmark = pytest.mark.redis


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it: (ca, cert, key) paths."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chatauth test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "cert.pem",
        directory / "key.pem",
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, key_path)
    return ca_path, cert_path, key_path


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A redis-server that only speaks TLS, on a loopback port it really got: (port, CA file)."""
    ca, cert, key = make_certificates(tmp_path)

    def command(port: int) -> list[str]:
        return [
            find_redis_server(),
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--tls-port",
            str(port),
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
            "--tls-ca-cert-file",
            str(ca),
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ]

    def listening(port: int) -> str | None:
        return None if port_is_open(port) else "nothing accepts connections yet"

    proc, port = start_process(
        command,
        listening,
        name="redis-server (TLS)",
        what="accept TLS connections",
        log_path=tmp_path / "redis-tls.log",
    )
    try:
        yield port, ca
    finally:
        stop_process(proc)


def wait_ready(store: RedisStore) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while True:
        try:
            store.ping()
            return
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                pytest.fail(f"the TLS redis-server did not answer within {STARTUP_DEADLINE} s")
            time.sleep(0.05)


async def test_rediss_url_with_a_private_ca(tls_redis: tuple[int, Path]) -> None:
    port, ca = tls_redis
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}&key_prefix=tls"
    chat = from_settings(
        {"PROVIDER": "jwt", "JWT_SECRET": "tls-secret-0123456789abcdef-0123456", "STORE": url}
    )
    assert isinstance(chat.store, RedisStore)
    wait_ready(chat.store)
    session = chat.get_session(ChatIdentity("alice"), "s")
    assert (await chat.aget_session(ChatIdentity("alice"), "s")).token == session.token
    await chat.aclose()


def test_rediss_refuses_a_server_it_cannot_verify(tls_redis: tuple[int, Path]) -> None:
    port, _ = tls_redis
    trusting = RedisStore.from_url(f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none")
    wait_ready(trusting)  # the server is up...
    trusting.close()
    strict = RedisStore.from_url(f"rediss://127.0.0.1:{port}/0")  # ...but not in the system CAs
    with pytest.raises(StoreUnavailableError) as info:
        strict.ping()
    assert "SSL" in str(info.value) or "certificate" in str(info.value)
    strict.close()
