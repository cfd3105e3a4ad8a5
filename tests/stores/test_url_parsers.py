"""Every store URL parser, fuzzed: a malformed URL is a ``ConfigurationError`` naming
``STORE``, never a raw exception, and never shows the password.

URLs are built from a grammar of their parts (scheme, user info holding a canary password,
one or more hosts with ports, path, query) where each part is often valid and sometimes
hostile: brackets, non-ASCII digits, a thousand-digit port, percent signs, control characters,
unknown options. Nothing connects: the Redis stores open connections lazily, and the SQL
store's hosts are loopback addresses on ports where nothing listens (its start-up table
creation then fails as ``StoreUnavailableError``, the named error for an unreachable store).
"""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chatauth.config import store_from_url
from chatauth.errors import ConfigurationError, StoreUnavailableError
from chatauth.stores.base import BaseStore
from chatauth.testing import canary

PASSWORD = canary.secret("store-url-password")
# Ports on loopback where nothing listens (the SQL store tries to connect to valid URLs).
DEAD_PORTS = ["1", "9"]
NOT_PORTS = ["0", "65536", "-1", "99999", "6379x", "²", "١٢", " 1"]

hostile_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
) | st.sampled_from(["[", "]", "[::1", "::1]", "%", "%zz", "@", ":", "/", "?", "#", ",", " "])
ports = st.one_of(
    st.sampled_from(["", *DEAD_PORTS, *NOT_PORTS]),
    st.integers(0, 70_000).map(str),
    st.just("9" * 5000),
    hostile_text,
)
hosts = st.one_of(
    st.sampled_from(["127.0.0.1", "[::1]", "localhost", "[::1", "::1", "", "127.0.0.1:"]),
    hostile_text,
)
userinfo = st.sampled_from(
    ["", f":{PASSWORD}@", f"user:{PASSWORD}@", f"{PASSWORD}@", f":{PASSWORD}@:{PASSWORD}@"]
)
paths = st.one_of(
    st.sampled_from(["", "/", "/0", "/15", "/x", "/mymaster", "/mymaster/1", "/mymaster/x"]),
    hostile_text.map(lambda t: "/" + t),
)
queries = st.one_of(
    st.just(""),
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "socket_timeout",
                    "db",
                    "key_prefix",
                    "sentinel_password",
                    "ssl_cert_reqs",
                    "health_check_interval",
                    "max_connections",
                    "connect_timeout",
                    "password",
                ]
            )
            | hostile_text,
            st.sampled_from(["1", "0", "-1", "x", "", "nan", "inf", PASSWORD, "9" * 5000])
            | hostile_text,
        ),
        max_size=3,
    ).map(lambda pairs: "?" + "&".join(f"{k}={v}" for k, v in pairs)),
    hostile_text.map(lambda t: "?" + t),
)


# The SQL store connects to a URL that parses (to create its tables): loopback hosts only,
# and only ports where nothing listens or that cannot be ports.
sql_hosts = st.sampled_from(["127.0.0.1", "[::1]", "[::1", "::1", "", "127.0.0.1:", "[", "]"])
sql_ports = st.one_of(
    st.sampled_from([*DEAD_PORTS, *NOT_PORTS]),  # never none: 5432 might be someone's
    st.just("9" * 5000),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Nd")), min_size=1, max_size=6),
)


@st.composite
def urls(
    draw: st.DrawFn,
    schemes: list[str],
    host: st.SearchStrategy[str] = hosts,
    port: st.SearchStrategy[str] = ports,
) -> str:
    scheme = draw(st.sampled_from(schemes))
    count = draw(st.integers(1, 3))
    netloc = ",".join(draw(host) + (":" + p if (p := draw(port)) else "") for _ in range(count))
    return f"{scheme}://{draw(userinfo)}{netloc}{draw(paths)}{draw(queries)}"


def _try(url: str) -> BaseStore | None:
    try:
        return store_from_url(url)
    except ConfigurationError as exc:
        assert exc.setting == "STORE", (exc.setting, exc.message)
        assert PASSWORD not in f"{exc}{exc!r}{exc.message}"
        assert urllib.parse.quote(PASSWORD) not in exc.message
        return None


def _close(store: BaseStore | None) -> None:
    if store is not None:
        assert PASSWORD not in repr(store)
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis://:pw@[::1",
        "redis+cluster://:pw@[::1",
        "redis+cluster://h:²",
        "redis+cluster://h:" + "9" * 5000,
        "redis+sentinel://h:١٢/mymaster",
        "redis+sentinel://h:" + "9" * 5000 + "/mymaster",
        "redis+sentinel://[::1/mymaster",
        "postgresql://u:pw@[::1/db",
        "postgresql://u:pw@h:²/db",
        "postgresql://u:pw@h:" + "9" * 5000 + "/db",
    ],
)
def test_the_known_malformed_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        store_from_url(url.replace("pw", PASSWORD))
    assert raised.value.setting == "STORE"
    assert PASSWORD not in str(raised.value)


FUZZ = settings(suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(url=urls(["redis", "rediss", "unix", "REDIS"]))
@example(url=f"redis://:{PASSWORD}@[::1")
def test_redis_urls(url: str) -> None:
    _close(_try(url))


@FUZZ
@given(url=urls(["redis+cluster", "REDIS+CLUSTER"]))
def test_redis_cluster_urls(url: str) -> None:
    _close(_try(url))


@FUZZ
@given(url=urls(["redis+sentinel"]))
def test_redis_sentinel_urls(url: str) -> None:
    _close(_try(url))


@FUZZ
@given(url=urls(["postgresql", "postgresql+psycopg"], sql_hosts, sql_ports))
# Found by this test: the resolver's idna codec raised UnicodeError on the long port.
@example(url="postgresql://[::1]:" + "9" * 1200 + ",127.0.0.1:1")
def test_postgresql_urls(url: str) -> None:
    try:
        _close(_try(url))
    except StoreUnavailableError as exc:  # parsed, and nothing listens: the named error
        assert PASSWORD not in f"{exc}{exc!r}"
