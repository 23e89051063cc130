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
:class:`DeferredTestServer` returns Deferreds (trial, Twisted code).
"""

from ._blocking import TestServer
from ._deferred import DeferredTestServer
from ._errors import TestServerError, WaitTimeoutError
from ._version import __version__

__all__ = [
    "DeferredTestServer",
    "TestServer",
    "TestServerError",
    "WaitTimeoutError",
    "__version__",
]
