"""The chat session on one request: which app session it belongs to, and its lifecycle there.

DESIGN §8 gives the core every transition; this module holds the request half of them, the
same for every framework. An adapter makes one :class:`ChatBinding` per request from the
service, the framework's session mapping (``request.session``, ``flask.session``) and nothing
else, then calls it at four moments:

============================  ==============================================================
a view reads the chat session  :meth:`ChatBinding.get` / :meth:`~ChatBinding.aget`
the framework's login signal   :meth:`ChatBinding.login`
logout (signal or helper)      :meth:`ChatBinding.end` / :meth:`~ChatBinding.aend`
the response starts            :meth:`ChatBinding.finish` / :meth:`~ChatBinding.afinish`
============================  ==============================================================

**The app-session id.** A random id kept in the session mapping under :data:`SESSION_KEY`,
together with the chat UID it is bound to, as one short string: ``"<sid>:<uid>"``, or
``"<sid>"`` while unbound (the id is URL-safe base64, so the first ``:`` ends it; a UID never
holds white space, and the string travels in every cookie, so it is kept short). The earlier
shapes, ``{"sid": ..., "uid": ...}`` and an id with the UID under ``_chatauth_uid``, are still
read, and replaced on the next bind. It dies with the app session (a cleared or expired
session has no id), so a chat session never outlives it. Both values are as safe to keep in a
signed cookie as the user id: neither is a secret, and the chat token lives only in the store.

- *Created* unbound (``uid`` ``None``) by :meth:`~ChatBinding.finish` when a response leaves a
  non-empty session without an id: the login response is one, so the browser holds the id
  before it sends its first chat requests, and concurrent first requests all ask for one chat
  session (one token, none orphaned). It costs a session write, no store or provider call, and
  is inert until a logged-in user's request binds it. An unbound id alone in a session is
  removed again, so it never keeps an otherwise empty session alive.
- *Bound* to the user's chat UID by the first chat use.
- *Handed over* when another user logs in on the same app session: the previous user's chat
  session is ended (their token must not outlive their login) and the new user gets an id
  derived from the old one and their UID, so their concurrent first requests agree as well.
- *Ended* by logout, by :meth:`~ChatBinding.end`, or -- the safety net -- by
  :meth:`~ChatBinding.finish` when the request started with a bound id and the session no
  longer holds it when the response starts (``session.clear()`` without the logout helper).

Without a session mapping (token-auth APIs) the id is the one the adapter derives from the
request's API credential (``app_session``), or none: one chat session per user.

**The per-request cache.** The first :meth:`~ChatBinding.get` decides, and its outcome --
the session *or the error* -- is the answer for the rest of the request: a request never sees
two different chat sessions, and a provider outage costs one round of retries per request,
not one per read. :meth:`~ChatBinding.end` and :meth:`~ChatBinding.login` clear it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from chatauth.errors import ChatAuthError, NotAuthenticatedError, StoreUnavailableError
from chatauth.identity import ChatIdentity
from chatauth.refresh import arefresh_session, refresh_session
from chatauth.session import ChatSession
from chatauth.tokens import ChatToken

if TYPE_CHECKING:
    from chatauth.service import ChatAuth

__all__ = [
    "SESSION_KEY",
    "ChatBinding",
    "SessionMapping",
    "finish_needed",
    "kept_session",
    "read_slot",
]

logger = logging.getLogger("chatauth")

#: The session-mapping key of the app-session id and the UID it is bound to.
SESSION_KEY = "_chatauth_sid"
# Flask's adapter kept the UID under its own key before the two shapes were merged.
_LEGACY_UID_KEY = "_chatauth_uid"

_UNREAD = object()
_NOBODY_WAITS = object()

#: ``(sid, uid)``; ``uid`` is ``None`` while the id is unbound.
Slot = tuple[str, str | None]
#: A bound ``(sid, uid)``: one that may have a chat token under it.
Entry = tuple[str, str]


class SessionMapping(Protocol):
    """What chatauth needs of a framework's session: a plain mutable mapping's few methods
    (``dict``, Starlette's and Flask's sessions, Django's ``SessionBase``)."""

    def get(self, key: str, default: Any = None, /) -> Any: ...
    def __setitem__(self, key: str, value: Any, /) -> None: ...
    def __contains__(self, key: object, /) -> bool: ...
    def pop(self, key: str, default: Any = None, /) -> Any: ...
    def keys(self) -> Any: ...


def read_slot(session: SessionMapping | None, key: str = SESSION_KEY) -> Slot | None:
    """The ``(sid, uid)`` kept in ``session``, or ``None`` (also for a malformed value)."""
    if session is None:
        return None
    return _parse_slot(session.get(key), session)


def _parse_slot(raw: object, session: SessionMapping) -> Slot | None:
    """``raw``, a value found under the slot's key, as a slot; ``session`` holds the oldest
    form's UID."""
    sid: object
    uid: object
    if isinstance(raw, str):
        sid, colon, bound = raw.partition(":")
        uid = bound if colon else session.get(_LEGACY_UID_KEY)
    elif isinstance(raw, Mapping):
        sid, uid = raw.get("sid"), raw.get("uid")
    else:
        return None
    if isinstance(sid, str) and sid and (uid is None or (isinstance(uid, str) and uid)):
        return sid, uid
    return None


def finish_needed(session: SessionMapping | None, started: object, key: str = SESSION_KEY) -> bool:
    """Whether the response start needs :meth:`ChatBinding.finish` at all.

    Nothing is computed for a request that never touches the chat session (DESIGN §7): an
    adapter that makes its binding on first use asks this when the response starts, and
    makes one (or runs the one it made) only on ``True``. The answer holds whether or not
    the request used chat, since everything a binding does that ``finish`` must follow up
    (binding an id, ending the chat session) changes the session. It answers from two cheap
    facts, without parsing the slot:

    Args:
        session: the framework's session mapping (``None``: no app session, nothing to do).
        started: the raw value under ``key`` when the request started (``None`` if absent).
        key: the slot's key.

    Returns:
        ``False`` when the session says it was not changed (the ``modified`` flag that
        Starlette's, Flask's and Django's sessions keep) and it is empty or holds an id
        among other keys: then no watched id can have been lost, no id is missing and no
        unbound id is alone, so :meth:`ChatBinding.finish` would do nothing. ``True``
        otherwise, also for a mapping that keeps no ``modified`` flag.
    """
    if session is None:
        return False
    if getattr(session, "modified", True) is not False:
        return True
    size = len(session.keys())
    if started is None:
        return size != 0  # an app session without an id: finish makes one
    # str first: the slot's own shape; a value of no known shape is replaced by finish
    return not isinstance(started, (str, dict, Mapping)) or size < 2


def kept_session(
    service: ChatAuth,
    session: SessionMapping | None,
    user: Any,
    started: object,
    key: str = SESSION_KEY,
) -> ChatSession | None:
    """The request's chat session when nothing is left to decide: the session holds, as it
    did when the request started, an id bound to ``user``'s UID, and this process served that
    chat session a moment ago (:mod:`chatauth.hits`). The common chat read, answered without
    a :class:`ChatBinding`, an await, a store call or a write.

    Every adapter asks this at a request's first chat read, once it has the user, keeps the
    answer for the rest of the request, and hands it to the binding it may make later
    (``ChatBinding(..., kept=...)``) for a logout, a refresh or the end-of-request step.

    Args:
        service: the app's :class:`~chatauth.service.ChatAuth`.
        session: the framework's session mapping (``None``: nothing is kept for it here).
        user: the app user; ``None`` or one whose ``is_authenticated`` is false is nobody.
        started: the raw value under ``key`` when the request started.
        key: the slot's key.

    Returns:
        The chat session, or ``None`` when anything would have to be decided (nobody logged
        in, another user, no bound id, an id changed during the request, nothing kept): then
        :meth:`ChatBinding.get` decides, and raises what it raises. The UID is not checked
        against the provider's rules here: a kept session is only served to an identity equal
        to its own, which passed them when it was served.
    """
    # Only the current "<sid>:<uid>" shape, unchanged since the request started: every other
    # case is the binding's to decide (and to rewrite).
    if session is None or type(started) is not str or session.get(key) is not started:
        return None
    sid, colon, uid = started.partition(":")
    if not (colon and sid and uid):
        return None
    try:
        identity = service._mapped(user)
    except ChatAuthError:
        return None
    if identity.uid != uid:
        return None
    return service._cached(identity, sid)


def _encode(sid: str, uid: str | None) -> str:
    """The slot as kept in the session (see the module docstring)."""
    return sid if uid is None else f"{sid}:{uid}"


def _bound(slot: Slot | None) -> Entry | None:
    return (slot[0], slot[1]) if slot is not None and slot[1] is not None else None


# 128 bits: unguessable, and 22 characters rather than 43 in a cookie that travels with every
# request (the id is only ever looked up by its sha256 digest).
_SID_BYTES = 16


def _new_sid() -> str:
    return secrets.token_urlsafe(_SID_BYTES)


def _successor(sid: str, uid: str) -> str:
    """The id following ``sid`` when ``uid`` takes the app session over: derived, not random,
    so that the new user's concurrent first requests (all carrying ``sid``) agree."""
    digest = hmac.new(sid.encode(), uid.encode(), hashlib.sha256).digest()[:_SID_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class ChatBinding:
    """The chat session of one request (see the module docstring for the rules).

    Args:
        service: the app's :class:`~chatauth.service.ChatAuth`.
        session: the framework's session mapping, or ``None`` when the request has no app
            session (one chat session per user then).
        key: the mapping key of the app-session id (default :data:`SESSION_KEY`).
        writable: ``False`` where the session cannot be sent back (a WebSocket): a chat use
            that would have to bind an id raises :class:`~chatauth.NotAuthenticatedError`.
        watch: read the id now, so that :meth:`finish` notices a session cleared during the
            request. Adapters whose session is loaded lazily from a server (Django) pass
            ``False``, rely on their logout signal and call :meth:`watch` just before the
            framework clears the session; the id is watched from its first use anyway.
        app_session: without a session mapping, the app-session id to bind the chat session
            to: an API client's credential (:mod:`chatauth.credentials`), so that it ends when
            that credential ends. ``None`` (the default): one chat session per user.
        started: for an adapter that makes the binding later than the request starts (on
            first use, or at the response start when :func:`finish_needed`): the raw value
            the session held under ``key`` when the request started, watched instead of
            the value found now.
        kept: the chat session :func:`kept_session` answered for this request before the
            binding was made: it is the request's chat session already, as if :meth:`get` had
            decided it.
    """

    # One is made per request that uses chat, and slots make it cheaper to build.
    __slots__ = (
        "_deciding",
        "_outcome",
        "_parsed",
        "app_session",
        "ended",
        "key",
        "service",
        "session",
        "watched",
        "writable",
    )

    def __init__(
        self,
        service: ChatAuth,
        session: SessionMapping | None,
        *,
        key: str = SESSION_KEY,
        writable: bool = True,
        watch: bool = True,
        app_session: str | None = None,
        started: object = _UNREAD,
        kept: ChatSession | None = None,
    ) -> None:
        self.service = service
        self.session = session
        #: The app-session id used without a session mapping (an API credential's,
        #: :func:`chatauth.credentials.credential_session_id`); ``None``: one per user.
        self.app_session = app_session
        self.key = key
        self.writable = writable
        self._parsed: tuple[object, Slot | None] = (_UNREAD, None)
        #: The bound id this request started with or bound; :meth:`finish` ends it if the
        #: session lost it.
        self.watched: Entry | None = None
        if watch:
            if started is _UNREAD or session is None:
                slot = self._slot()
            else:
                slot = _parse_slot(started, session)
                self._parsed = (started, slot)  # most often still the value found later
            self.watched = _bound(slot)
        #: True after :meth:`end` in this request: no new id is made for the response.
        self.ended = False
        self._outcome: ChatSession | ChatAuthError | None = kept
        # None, _NOBODY_WAITS while an await decides alone, or the future its waiters await.
        self._deciding: asyncio.Future[None] | object | None = None

    def _slot(self) -> Slot | None:
        """The session's slot, parsed once per value: the mapping is read each time (the app
        may clear it), but the same stored value is not parsed again. Values are replaced,
        never changed in place, by this module."""
        if self.session is None:
            return None
        raw = self.session.get(self.key)
        if raw is not self._parsed[0] or self._parsed[1] is None or self._parsed[1][1] is None:
            # parsed again unless bound: an unbound str may pair with the oldest UID key
            self._parsed = (raw, _parse_slot(raw, self.session))
        return self._parsed[1]

    def __repr__(self) -> str:
        state = "loaded" if isinstance(self._outcome, ChatSession) else "not loaded"
        return f"<ChatBinding {state}>"

    @property
    def is_loaded(self) -> bool:
        """True once the chat session was fetched in this request."""
        return isinstance(self._outcome, ChatSession)

    def watch(self) -> None:
        """Note the bound id the session holds now, so that :meth:`finish` ends its chat
        session if the session loses it. For adapters that pass ``watch=False``: call it just
        before the framework clears the session (Django's ``flush()``)."""
        bound = _bound(self._slot())
        if bound is not None:
            self.watched = bound

    # -- reading -------------------------------------------------------------------------------
    def get(self, load_user: Callable[[], Any]) -> ChatSession:
        """The chat session of the request's user, decided once per request.

        Args:
            load_user: returns the app user (``None`` or an unauthenticated user when nobody
                is logged in); called at most once per request.

        Raises:
            NotAuthenticatedError: nobody is logged in (or see ``writable``).
            InvalidUIDError, ProviderError, ProviderUnavailableError, StoreUnavailableError,
            ConfigurationError: from the core or ``load_user``. The same error again on every
            later call in this request.
        """
        if self._outcome is None:
            self._load(load_user, self.service._session_of)
        return self._result()

    def refresh(self, load_user: Callable[[], Any], rejected: str) -> ChatSession:
        """Replace the token the chat SDK ``rejected`` (:func:`chatauth.refresh.refresh_session`)
        and make the session returned the request's chat session.

        Raises:
            RefreshLimitError: too many replacements of this session.
            The errors of :meth:`get`.
        """
        self._load(
            load_user,
            lambda identity, sid: refresh_session(self.service, identity, sid, rejected),
        )
        return self._result()

    def _load(
        self, load_user: Callable[[], Any], fetch: Callable[[ChatIdentity, str | None], ChatSession]
    ) -> None:
        try:
            identity = self.service.identity_for(load_user())
            sid = self._bound_to(identity)
            if sid is None:
                sid, previous = self._decide(identity)
                if previous is not None:
                    self.service.end_session_durably(ChatIdentity(previous[1]), previous[0])
                self._bind(sid, identity.uid)
            self._outcome = fetch(identity, sid)
        except ChatAuthError as exc:
            self._outcome = exc

    async def aget(self, load_user: Callable[[], Awaitable[Any]]) -> ChatSession:
        """Async twin of :meth:`get`; concurrent awaits in one request share one decision."""
        if self._outcome is None and self._deciding is None:
            # The common case, one await per request, without _decide_alone's extra frame.
            self._deciding = _NOBODY_WAITS
            try:
                await self._aload(load_user, self.service._asession_of)
            finally:
                self._decided()
        while self._outcome is None:
            if self._deciding is not None:
                await self._await_decider()
                continue
            await self._decide_alone(self._aload(load_user, self.service._asession_of))
        return self._result()

    async def arefresh(self, load_user: Callable[[], Awaitable[Any]], rejected: str) -> ChatSession:
        """Async twin of :meth:`refresh`."""

        async def fetch(identity: ChatIdentity, sid: str | None) -> ChatSession:
            return await arefresh_session(self.service, identity, sid, rejected)

        while self._deciding is not None:  # a decision in progress goes first
            await self._await_decider()
        await self._decide_alone(self._aload(load_user, fetch))
        return self._result()

    async def _await_decider(self) -> None:
        """Wait until the await deciding this request's chat session is done (or cancelled)."""
        waiting = self._deciding
        if not isinstance(waiting, asyncio.Future):
            waiting = self._deciding = asyncio.get_running_loop().create_future()
        await asyncio.shield(waiting)

    async def _decide_alone(self, decision: Awaitable[None]) -> None:
        """Await ``decision`` as the request's one decider; the others wait for it. Nothing is
        allocated for the common case, one await per request: a future only once a second
        await has to wait."""
        self._deciding = _NOBODY_WAITS
        try:
            await decision
        finally:
            self._decided()

    def _decided(self) -> None:
        """The deciding await is over: wake whoever waits for it."""
        deciding, self._deciding = self._deciding, None
        if isinstance(deciding, asyncio.Future) and not deciding.done():
            deciding.set_result(None)

    async def _aload(
        self,
        load_user: Callable[[], Awaitable[Any]],
        fetch: Callable[[ChatIdentity, str | None], Awaitable[ChatSession]],
    ) -> None:
        try:
            identity = self.service.identity_for(await load_user())
            sid = self._bound_to(identity)
            if sid is None:
                sid, previous = self._decide(identity)
                if previous is not None:
                    await self.service.aend_session_durably(ChatIdentity(previous[1]), previous[0])
                self._bind(sid, identity.uid)
            self._outcome = await fetch(identity, sid)
        except ChatAuthError as exc:
            self._outcome = exc

    def _result(self) -> ChatSession:
        outcome = self._outcome
        if isinstance(outcome, ChatAuthError):
            raise outcome
        assert outcome is not None
        return outcome

    def _bound_to(self, identity: ChatIdentity) -> str | None:
        """The id when the session already holds it bound to ``identity``, in the current
        ``"<sid>:<uid>"`` shape: the common request, which neither decides nor writes
        anything (:meth:`_decide` and :meth:`_bind` would reach the same answer)."""
        if self.session is None:
            return None
        slot = self._slot()
        if slot is None or slot[1] != identity.uid:
            return None
        raw = self._parsed[0]
        if not isinstance(raw, str) or len(raw) == len(slot[0]):  # not the oldest shape
            return None
        self.watched = (slot[0], identity.uid)
        self.ended = False
        return slot[0]

    def _decide(self, identity: ChatIdentity) -> tuple[str | None, Entry | None]:
        """``(sid, previous)``: the id to use for ``identity`` and the other user's bound id
        to end first, if any. Writes nothing."""
        if self.session is None:
            return self.app_session, None
        current = self._slot()
        if current is not None and current[1] == identity.uid:
            return current[0], None
        if not self.writable:
            # Binding is a session write, which this connection cannot send back; an id left
            # unbound would name a token that logout cannot find.
            raise NotAuthenticatedError(
                "This app session has no chat session yet; fetch the token endpoint over HTTP "
                "before opening the WebSocket."
            )
        if current is None:
            return _new_sid(), None
        if current[1] is None:
            return current[0], None
        return _successor(current[0], identity.uid), (current[0], current[1])

    def _bind(self, sid: str | None, uid: str) -> None:
        if self.session is None or sid is None:
            return
        slot = _encode(sid, uid)
        if self.session.get(self.key) != slot:  # write only a change: no needless cookie
            self.session[self.key] = slot
            self.session.pop(_LEGACY_UID_KEY, None)
        self.watched = (sid, uid)
        self.ended = False

    # -- ending --------------------------------------------------------------------------------
    def _to_end(self) -> Iterator[Entry]:
        entries = [_bound(self._slot()), self.watched]
        yield from dict.fromkeys(e for e in entries if e is not None)

    def _forget(self) -> None:
        if self.session is not None:
            self.session.pop(self.key, None)
            self.session.pop(_LEGACY_UID_KEY, None)
        self.ended = True
        self.watched = None
        self._outcome = None

    def end(self, load_user: Callable[[], Any] | None = None) -> list[ChatToken]:
        """End this app session's chat session: drop its token and revoke it at the provider.

        Works before or after the app clears its session (the id watched since the request
        started is ended too). A revocation the provider cannot take now is queued by the core
        for ``revoke-pending``. The id leaves the session; the next chat use starts a new one.

        Logout always wins (DESIGN §8): a store that cannot be reached never fails the app's
        logout. The end is then kept in the service's journal
        (:meth:`~chatauth.ChatAuth.end_session_durably`) and finished by the next sweep; with
        no journal it is logged (the UID and the error code, nothing secret) and the token is
        bounded by the sweep instead (it is not served again, so it is taken out once idle
        longer than ``SESSION_IDLE`` or past its ``refresh_at``).

        Args:
            load_user: the request's user, needed only without a session mapping (one chat
                session per user); nobody logged in then means nothing to end.

        Returns:
            The tokens dropped (empty when this app session had no chat session, or when its
            end was journaled or left to the sweep).

        Raises:
            NotAuthenticatedError, InvalidUIDError: from ``load_user`` / the identity mapper
            (only without a session mapping). Never a store or provider error.
        """
        popped: list[ChatToken] = []
        if self.session is None:
            if load_user is not None:
                try:
                    identity = self.service.identity_for(load_user())
                except NotAuthenticatedError:
                    identity = None
                if identity is not None:
                    popped = self._end_one(identity, self.app_session)
        else:
            for sid, uid in self._to_end():
                popped += self._end_one(ChatIdentity(uid), sid)
        self._forget()
        return popped

    async def aend(self, load_user: Callable[[], Awaitable[Any]] | None = None) -> list[ChatToken]:
        """Async twin of :meth:`end`."""
        popped: list[ChatToken] = []
        if self.session is None:
            if load_user is not None:
                try:
                    identity = self.service.identity_for(await load_user())
                except NotAuthenticatedError:
                    identity = None
                if identity is not None:
                    popped = await self._aend_one(identity, self.app_session)
        else:
            for sid, uid in self._to_end():
                popped += await self._aend_one(ChatIdentity(uid), sid)
        self._forget()
        return popped

    def _end_one(self, identity: ChatIdentity, sid: str | None) -> list[ChatToken]:
        try:
            return self.service.end_session_durably(identity, sid)
        except (StoreUnavailableError, OSError) as exc:
            self._log_unended(identity, exc)
            return []

    async def _aend_one(self, identity: ChatIdentity, sid: str | None) -> list[ChatToken]:
        try:
            return await self.service.aend_session_durably(identity, sid)
        except (StoreUnavailableError, OSError) as exc:
            self._log_unended(identity, exc)
            return []

    def _log_unended(self, identity: ChatIdentity, exc: Exception) -> None:
        # The logout goes on: the token is no longer served, so the sweep takes it out once
        # idle. The error code or OSError class only: a message could name a path or a key.
        code = exc.code if isinstance(exc, ChatAuthError) else type(exc).__name__
        logger.error(
            "chatauth could not end the chat session of uid %s (%s) and has no JOURNAL to keep "
            "its end; the sweep takes its token out once idle longer than SESSION_IDLE",
            identity.uid,
            code,
        )

    def login(self) -> list[ChatToken]:
        """The framework's login signal: whatever chat session this app session had is over.

        The next response gets a fresh unbound id (:meth:`finish`), bound by the new user's
        first chat use. Returns the tokens ended.

        Never raises a store or provider error (as :meth:`end`).
        """
        popped = self.end()
        self.ended = False  # a login is a new start: the response gets its id
        return popped

    # -- the response starts ---------------------------------------------------------------
    def _watched_lost(self) -> Entry | None:
        watched = self.watched
        if watched is None or self.ended or self.session is None:
            return None
        if _bound(self._slot()) == watched:
            return None
        self.watched = None
        return watched

    def _prepare_id(self) -> None:
        session = self.session
        if session is None or not self.writable:
            return
        slot = self._slot()
        # keys(), not iteration: Django's SessionBase is not iterable.
        others = any(k != self.key for k in session.keys())  # noqa: SIM118
        if slot is None:
            if not self.ended and others:
                session[self.key] = _encode(_new_sid(), None)
                session.pop(_LEGACY_UID_KEY, None)
        elif slot[1] is None and not others:
            session.pop(self.key, None)

    def _log_lost(self, watched: Entry, exc: ChatAuthError) -> None:
        # A store outage is journaled or logged by _end_one; this is anything else (a UID
        # the provider refuses): say so loudly.
        logger.error(
            "chatauth could not end the chat session of uid %s after its app session was "
            "cleared (%s); end it with ChatAuth.end_all_sessions",
            watched[1],
            exc.code,
        )

    def finish(self) -> None:
        """Call when the response starts, before the session is saved: end the chat session
        of a session cleared during the request, then make the id for the next requests (see
        the module docstring). Never raises: a failure is logged."""
        watched = self._watched_lost()
        if watched is not None:
            try:
                self._end_one(ChatIdentity(watched[1]), watched[0])
            except ChatAuthError as exc:
                self._log_lost(watched, exc)
        self._prepare_id()

    async def afinish(self) -> None:
        """Async twin of :meth:`finish`."""
        watched = self._watched_lost()
        if watched is not None:
            try:
                await self._aend_one(ChatIdentity(watched[1]), watched[0])
            except ChatAuthError as exc:
                self._log_lost(watched, exc)
        self._prepare_id()
