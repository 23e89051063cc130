"""
txtestserver: a real HTTP server on localhost for testing HTTP clients.

Start a server, say what it answers, point the client under test at it, then
inspect what the client sent::

    from urllib.request import urlopen
    from txtestserver import TestServer

    with TestServer() as server:
        server.response["data"] = b"hello"
        assert urlopen(server.get_url()).read() == b"hello"
        assert server.request["method"] == "GET"

:class:`TestServer` blocks (plain unittest and pytest code);
:class:`AsyncTestServer` has coroutines (asyncio code);
:class:`DeferredTestServer` returns Deferreds (trial, Twisted code).
:func:`sse` and :func:`ndjson` make the pieces of a streamed body
(``response['chunks']``).

Importing the package does not import Twisted: the server classes are
loaded on first use, so the pytest plugin costs nothing to projects that
never use its fixtures.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import ServerSideError, TestServerError, WaitTimeoutError
from ._version import __version__

if TYPE_CHECKING:
    from ._asyncio import AsyncTestServer
    from ._blocking import TestServer
    from ._deferred import DeferredTestServer
    from ._event_streams import ndjson, sse
    from ._har import DEFAULT_REDACTED
    from ._response import Response
    from ._route import Route
    from ._websocket import WebSocketRoute

__all__ = [
    "DEFAULT_REDACTED",
    "AsyncTestServer",
    "DeferredTestServer",
    "Response",
    "Route",
    "ServerSideError",
    "TestServer",
    "TestServerError",
    "WaitTimeoutError",
    "WebSocketRoute",
    "__version__",
    "ndjson",
    "sse",
]

#: Names loaded on first access (PEP 562), with the module that defines them.
_LAZY = {
    "TestServer": "._blocking",
    "AsyncTestServer": "._asyncio",
    "DeferredTestServer": "._deferred",
    "sse": "._event_streams",
    "DEFAULT_REDACTED": "._har",
    "ndjson": "._event_streams",
    "Response": "._response",
    "Route": "._route",
    "WebSocketRoute": "._websocket",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
