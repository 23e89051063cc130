"""
One adapter per contender, all with the same small interface, so that every
measurement runs the same client code against each of them.

Each adapter imports its library only when it is made: a worker process loads
only the contender it measures.
"""

from __future__ import annotations

import importlib.util

#: Contender names in display order; txtestserver (thread mode) is the reference.
ALL = ["txtestserver", "txtestserver-subprocess", "test_server", "pytest-httpserver", "asyncio"]
REFERENCE = "txtestserver"


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

    def start(self, keep_alive: bool = False) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def port(self) -> int:
        raise NotImplementedError

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

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
    def __init__(self, engine: str = "thread") -> None:
        from txtestserver import TestServer

        self.name = "txtestserver" if engine == "thread" else f"txtestserver-{engine}"
        self.server = TestServer(engine=engine)

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


class PytestHttpserver(Contender):
    name = "pytest-httpserver"

    def __init__(self) -> None:
        from pytest_httpserver import HTTPServer, URIPattern

        class AnyPath(URIPattern):
            def match(self, uri: str) -> bool:
                return True

        self._any_path = AnyPath()
        self.server = HTTPServer(host="127.0.0.1")
        self.set_data(b"")

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


def make(name: str) -> Contender:
    """A new, stopped server of contender ``name``."""
    if name == "txtestserver":
        return TxTestServer("thread")
    if name == "txtestserver-subprocess":
        return TxTestServer("subprocess")
    if name == "test_server":
        return TestServerPeer()
    if name == "pytest-httpserver":
        return PytestHttpserver()
    if name == "asyncio":
        return Asyncio()
    raise ValueError(f"unknown contender {name!r}")
