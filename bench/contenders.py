"""
One adapter per contender, all with the same small interface, so that every
measurement runs the same client code against each of them.

Each adapter imports its library only when it is made: a worker process loads
only the contender it measures.
"""

from __future__ import annotations

import importlib.util
import ssl
from typing import Any

#: Contender names in display order; txtestserver (thread mode) is the reference.
ALL = ["txtestserver", "txtestserver-subprocess", "test_server", "pytest-httpserver", "asyncio"]
REFERENCE = "txtestserver"
#: The contenders that serve HTTPS (``make(name, tls=True)``).
TLS = ["txtestserver", "txtestserver-subprocess", "pytest-httpserver"]


def available() -> dict[str, str | None]:
    """Each contender mapped to None if it can run here, else why it cannot."""
    why: dict[str, str | None] = {}
    for name in ALL:
        why[name] = None
        if name == "txtestserver-subprocess":
            if importlib.util.find_spec("txtestserver._engines.subprocess") is None:
                why[name] = "engine='subprocess' is not in this checkout yet"
        elif name == "test_server":
            if importlib.util.find_spec("test_server") is None:
                why[name] = "test_server is not installed (pip install -r bench/requirements.txt)"
        elif name == "pytest-httpserver":
            if importlib.util.find_spec("pytest_httpserver") is None:
                why[name] = (
                    "pytest-httpserver is not installed (pip install -r bench/requirements.txt)"
                )
    return why


class Contender:
    """
    A server with a fixed answer that records every request.

    :param keep_alive: ask for persistent connections where the library
        offers the choice (txtestserver); the peers do what they always do.
    """

    name = ""
    #: Serves HTTPS.
    tls = False

    def start(self, keep_alive: bool = False) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def port(self) -> int:
        raise NotImplementedError

    def url(self, path: str = "/") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def client_context(self) -> ssl.SSLContext | None:
        """What a client trusts to reach this server over TLS (None: plain HTTP)."""
        return None

    def set_data(self, data: bytes) -> None:
        """Answer ``data`` with status 200 to every request from now on."""
        raise NotImplementedError

    def recorded(self) -> int:
        """How many requests the server has recorded."""
        raise NotImplementedError

    def last_body_length(self) -> int:
        """Length of the body of the latest recorded request."""
        raise NotImplementedError


class TxTestServer(Contender):
    def __init__(self, engine: str = "thread", tls: bool = False) -> None:
        from txtestserver import TestServer

        self.name = "txtestserver" if engine == "thread" else f"txtestserver-{engine}"
        self.tls = tls
        self.server = TestServer(engine=engine, tls=tls)

    def client_context(self) -> ssl.SSLContext | None:
        return self.server.client_ssl_context() if self.tls else None

    def start(self, keep_alive: bool = False) -> None:
        self.server.start(keep_alive=keep_alive)

    def stop(self) -> None:
        self.server.stop()

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    def set_data(self, data: bytes) -> None:
        self.server.response["data"] = data

    def recorded(self) -> int:
        return len(self.server.requests)

    def last_body_length(self) -> int:
        return len(self.server.request["data"])


class TestServerPeer(Contender):
    __test__ = False
    name = "test_server"

    def __init__(self) -> None:
        from test_server import Response, TestServer

        self._response = Response
        self.server = TestServer(address="127.0.0.1")
        self.set_data(b"")

    def start(self, keep_alive: bool = False) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    @property
    def port(self) -> int:
        return int(self.server.port)

    def set_data(self, data: bytes) -> None:
        self.server.reset()
        self.server.add_response(self._response(data=data), count=-1)

    def recorded(self) -> int:
        return len(self.server._requests)

    def last_body_length(self) -> int:
        return len(self.server.request.data)


#: A trustme authority and a server certificate, made once per process, as a
#: pytest-httpserver user would in a session fixture (its docs point at trustme).
_trustme: dict[str, Any] = {}


def _trustme_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) from one trustme authority."""
    if not _trustme:
        import trustme

        ca = trustme.CA()
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
        client = ssl.create_default_context()
        ca.configure_trust(client)
        _trustme.update(server=server, client=client)
    return _trustme["server"], _trustme["client"]


class PytestHttpserver(Contender):
    name = "pytest-httpserver"

    def __init__(self, tls: bool = False) -> None:
        from pytest_httpserver import HTTPServer, URIPattern

        class AnyPath(URIPattern):
            def match(self, uri: str) -> bool:
                return True

        self._any_path = AnyPath()
        self.tls = tls
        context = _trustme_contexts()[0] if tls else None
        self.server = HTTPServer(host="127.0.0.1", ssl_context=context)
        self.set_data(b"")

    def client_context(self) -> ssl.SSLContext | None:
        return _trustme_contexts()[1] if self.tls else None

    def start(self, keep_alive: bool = False) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    @property
    def port(self) -> int:
        return int(self.server.port)

    def set_data(self, data: bytes) -> None:
        self.server.clear_all_handlers()
        # Any path, any method: the same answer to every request.
        self.server.expect_request(self._any_path).respond_with_data(data)

    def recorded(self) -> int:
        return len(self.server.log)

    def last_body_length(self) -> int:
        return len(self.server.log[-1][0].get_data())


class Asyncio(Contender):
    name = "asyncio"

    def __init__(self) -> None:
        from .asyncio_responder import AsyncioServer

        self.server = AsyncioServer()

    def start(self, keep_alive: bool = False) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    @property
    def port(self) -> int:
        return self.server.port

    def set_data(self, data: bytes) -> None:
        self.server.data = data

    def recorded(self) -> int:
        return len(self.server.history)

    def last_body_length(self) -> int:
        return len(self.server.history[-1][3])


def make(name: str, tls: bool = False) -> Contender:
    """
    A new, stopped server of contender ``name``.

    :param tls: serve HTTPS (the contenders of :data:`TLS`).
    """
    if tls and name not in TLS:
        raise ValueError(f"{name} does not serve HTTPS here")
    if name == "txtestserver":
        return TxTestServer("thread", tls)
    if name == "txtestserver-subprocess":
        return TxTestServer("subprocess", tls)
    if name == "test_server":
        return TestServerPeer()
    if name == "pytest-httpserver":
        return PytestHttpserver(tls)
    if name == "asyncio":
        return Asyncio()
    raise ValueError(f"unknown contender {name!r}")
