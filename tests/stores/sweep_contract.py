"""The sweep's part of the store contract (issue 13), shared by every store's tests.

Each store records when a token was last served (``set`` stamps the store clock's now,
``touch`` moves it), returns it as ``ChatToken.served_at``, and ``sweep`` takes out, exactly
once, the tokens past their ``usable_until`` or idle since before a cut-off, of one provider
only, leaving a key stored again meanwhile alone. ``session_keys`` lists a provider's stored
keys by digest, for a sweep that asks the app which of its sessions still exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chatauth.stores.base import BaseStore
from chatauth.testing.clock import ManualClock
from chatauth.tokens import ChatToken, SessionKey

HOUR = timedelta(hours=1)


def never_expiring(value: str, issued: datetime, provider: str = "p", uid: str = "u1") -> ChatToken:
    """A CometChat-like token: no expiry at the provider, re-issued after an hour."""
    return ChatToken(
        value=value,
        uid=uid,
        provider=provider,
        issued_at=issued,
        expires_at=None,
        refresh_at=issued + HOUR,
    )


def close_to(moment: datetime | None, expected: datetime) -> bool:
    # Stores keep Unix seconds as floats or database datetimes: equal to the millisecond.
    return moment is not None and abs(moment - expected) < timedelta(milliseconds=1)


def check_sweep_contract(store: BaseStore, clock: ManualClock) -> None:
    t0 = clock.now()
    ka, kb = SessionKey("p", "u1", "a"), SessionKey("p", "u2", "b")
    kc = SessionKey("q", "u1", "c")  # another provider's: never swept by a sweep of "p"
    store.set(ka, never_expiring("ta", t0))
    store.set(kb, never_expiring("tb", t0, uid="u2"))
    store.set(kc, never_expiring("tc", t0, provider="q"))
    served = store.get(ka)
    assert served is not None and close_to(served.served_at, t0)

    clock.advance(30 * 60)
    store.touch(ka, clock.now())
    served = store.get(ka)
    assert served is not None and close_to(served.served_at, t0 + timedelta(minutes=30))
    store.touch(SessionKey("p", "nobody", "x"), clock.now())  # no token there: no error

    # Idle for more than 20 minutes: b (served at t0) only.
    now = clock.now()
    swept = store.sweep("p", now=now, idle_before=now - timedelta(minutes=20))
    assert [t.value for t in swept] == ["tb"]
    assert store.get(kb) is None
    assert store.sweep("p", now=now, idle_before=now - timedelta(minutes=20)) == []

    # Past its refresh_at, a served token goes too; the other provider's token stays.
    clock.advance(31 * 60)
    now = clock.now()
    swept = store.sweep("p", now=now, idle_before=now - timedelta(days=14))
    assert [t.value for t in swept] == ["ta"]
    assert store.get(kc) is not None

    # A key stored again (re-issued) is not taken: new usable_until, new served time.
    store.set(ka, never_expiring("ta2", now))
    assert store.sweep("p", now=now, idle_before=now - timedelta(minutes=20)) == []
    served = store.get(ka)
    assert served is not None and served.value == "ta2"

    # limit: at most that many per run, the rest on the next.
    for n in range(3):
        store.set(SessionKey("p", f"idle-{n}", "s"), never_expiring(f"ti{n}", now, uid=f"idle-{n}"))
    clock.advance(30 * 60)
    now = clock.now()
    first = store.sweep("p", now=now, idle_before=now - timedelta(minutes=20), limit=2)
    second = store.sweep("p", now=now, idle_before=now - timedelta(minutes=20), limit=2)
    assert len(first) == 2 and len(second) == 2  # the 3 idle ones and ta2
    assert {t.value for t in first + second} == {"ti0", "ti1", "ti2", "ta2"}
    assert store.sweep("p", now=now, idle_before=now - timedelta(minutes=20)) == []
    assert [t.value for t in store.sessions("q")] == ["tc"]

    # session_keys: every stored key of one provider, known by its digest; pop takes by one.
    kd = SessionKey("p", "u3", "d")
    store.set(kd, never_expiring("td", now, uid="u3"))
    [found] = store.session_keys("p")
    assert (found.provider, found.uid, found.app_session) == ("p", "u3", None)
    assert found.digest == kd.digest
    assert [k.digest for k in store.session_keys("q")] == [kc.digest]
    popped = store.pop(found)
    assert popped is not None and popped.value == "td"
    assert store.session_keys("p") == []


async def check_async_sweep_contract(store: BaseStore, clock: ManualClock) -> None:
    t0 = clock.now()
    key = SessionKey("p", "u9", "s")
    await store.aset(key, never_expiring("t9", t0, uid="u9"))
    got = await store.aget(key)
    assert got is not None and close_to(got.served_at, t0)
    clock.advance(600)
    await store.atouch(key, clock.now())
    got = await store.aget(key)
    assert got is not None and close_to(got.served_at, t0 + timedelta(seconds=600))
    clock.advance(600)
    now = clock.now()
    assert await store.asweep("p", now=now, idle_before=now - timedelta(seconds=900)) == []
    swept = await store.asweep("p", now=now, idle_before=now - timedelta(seconds=300))
    assert [t.value for t in swept] == ["t9"]
    assert await store.aget(key) is None
