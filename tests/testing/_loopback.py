"""httpx clients for loopback tests, sharing one TLS context.

A default ``httpx.Client()`` loads the CA bundle into a new SSL context, ~0.05-0.1 s each
time; nothing here speaks TLS, so every client shares one context built once.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

TLS = ssl.create_default_context()


def client(**kwargs: Any) -> httpx.Client:
    kwargs.setdefault("verify", TLS)
    kwargs.setdefault("timeout", 5)
    return httpx.Client(**kwargs)


def async_client(**kwargs: Any) -> httpx.AsyncClient:
    kwargs.setdefault("verify", TLS)
    kwargs.setdefault("timeout", 5)
    return httpx.AsyncClient(**kwargs)


def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    with client() as c:
        return c.request(method, url, **kwargs)


def get(url: str, **kwargs: Any) -> httpx.Response:
    return request("GET", url, **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    return request("POST", url, **kwargs)


def put(url: str, **kwargs: Any) -> httpx.Response:
    return request("PUT", url, **kwargs)
