"""The base of providers that call a JSON REST API: requests, error codes, refusals.

A subclass sets :attr:`RESTProvider.error_path` (where its API puts the error code in a
refusal) and overrides :meth:`RESTProvider._headers` (and :meth:`RESTProvider._params`) with
what every call carries; its flows build requests with :meth:`RESTProvider._request` and read
answers with :meth:`RESTProvider._field` / :meth:`RESTProvider._token` (see
:mod:`chatauth.providers.replies`), so that no answer can end in a raw exception.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar, overload

import httpx

from chatauth.errors import ProviderError
from chatauth.providers import replies
from chatauth.providers.base import BaseProvider, error_from_response

__all__ = ["RESTProvider"]

T = TypeVar("T")


class RESTProvider(BaseProvider):
    """Shared request and answer plumbing of the JSON REST providers.

    Attributes:
        base_url: the API root, no trailing ``/``; paths given to :meth:`_request` start
            with ``/``.
        error_path: where a refusal body holds the provider's error code, e.g.
            ``("error", "code")`` for CometChat, ``("code",)`` for Stream and Sendbird.
        content_type: ``Content-Type`` of a request body; ``None`` lets httpx write JSON with
            its own header, a value writes compact JSON under that header (Sendbird's
            ``application/json; charset=utf8``).
    """

    base_url: str
    error_path: ClassVar[tuple[str, ...]] = ()
    content_type: ClassVar[str | None] = None

    def _headers(self) -> dict[str, str]:
        """Headers every call carries (the API key); none by default."""
        return {}

    def _params(self) -> dict[str, str]:
        """Query parameters every call carries (Stream's ``api_key``); none by default."""
        return {}

    def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        """A request to ``base_url + path`` with the shared headers and parameters, ``body``
        as JSON (when given) and ``Accept: application/json``."""
        all_headers = {"Accept": "application/json", **self._headers(), **(headers or {})}
        query = {**self._params(), **(params or {})}
        content: bytes | None = None
        payload: dict[str, Any] | None = None
        if body is not None and self.content_type:
            content = json.dumps(dict(body), separators=(",", ":")).encode()
            all_headers["Content-Type"] = self.content_type
        elif body is not None:
            payload = dict(body)
        return httpx.Request(
            method,
            self.base_url + path,
            params=query or None,
            content=content,
            json=payload,
            headers=all_headers,
        )

    @staticmethod
    def _quote(value: str) -> str:
        """``value`` as one URL path segment (``/`` and every reserved character encoded)."""
        return urllib.parse.quote(value, safe="")

    def _error_code(self, response: httpx.Response) -> str | None:
        """The provider's error code in ``response`` (at :attr:`error_path`), or ``None``."""
        return replies.code(response, self.error_path) if self.error_path else None

    def _refused(self, response: httpx.Response) -> ProviderError:
        """The :class:`ProviderError` for a refusal: the provider's code, else ``HTTP_<status>``."""
        return error_from_response(self.name, response, self._error_code(response))

    def _expect(self, response: httpx.Response, *statuses: int) -> httpx.Response:
        """``response`` if its status is one of ``statuses`` (default 200).

        Raises:
            ProviderError: any other status (see :meth:`_refused`).
        """
        if response.status_code not in (statuses or (200,)):
            raise self._refused(response)
        return response

    @overload
    def _field(self, response: httpx.Response, *path: str) -> str: ...
    @overload
    def _field(self, response: httpx.Response, *path: str, kind: type[T]) -> T: ...
    def _field(self, response: httpx.Response, *path: str, kind: type[Any] = str) -> Any:
        """A required value of the answer (see :func:`chatauth.providers.replies.field`).

        Raises:
            ProviderError: ``ERROR_BAD_RESPONSE`` when missing or of another type.
        """
        return replies.field(self.name, response, path, kind)

    @staticmethod
    def _token(response: httpx.Response, *path: str) -> str:
        """The credential at ``path`` (see :func:`chatauth.providers.replies.token`).

        Raises:
            InvalidTokenError: absent, blank or holding white space.
        """
        return replies.token(response, path)
