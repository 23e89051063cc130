"""
Per-answer connection control: ``response['close'] = True`` ends the
connection after that answer even with keep-alive, over HTTP/1.1, HTTPS and
HTTP/2, in every engine.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests._raw import connect, read_all
from tests.conftest import ENGINES
from txtestserver import TestServer, TestServerError


@pytest.fixture(scope="module", params=ENGINES)
def kept_alive(request: pytest.FixtureRequest) -> Iterator[TestServer]:
    server = TestServer(engine=request.param)
    server.start(keep_alive=True)
    yield server
    server.stop()


@pytest.fixture
def server(kept_alive: TestServer) -> TestServer:
    kept_alive.reset()
    return kept_alive


class Client:
    """
    http.client on one connection object, which reconnects when the server
    closed the connection; ``connects`` counts the TCP connections it made.
    """

    def __init__(self, server: TestServer) -> None:
        self.connects = 0
        port = server.port or 0
        if server.config.tls:
            self.conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", port, context=server.client_ssl_context(), timeout=10
            )
        else:
            self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connect = self.conn.connect

        def counting() -> None:
            self.connects += 1
            connect()

        self.conn.connect = counting  # type: ignore[method-assign]

    def request(self, method: str = "GET", body: bytes | None = None) -> http.client.HTTPResponse:
        self.conn.request(method, "/", body)
        response = self.conn.getresponse()
        response.read()
        return response

    def close(self) -> None:
        self.conn.close()


def raw_get(server: TestServer, method: bytes = b"GET") -> bytes:
    """One request on a new connection, read until the server closes it."""
    with connect(server.port or 0, timeout=10) as sock:
        sock.sendall(method + b" / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        return read_all(sock)  # a socket timeout here: the server kept it open


def test_close_ends_a_kept_alive_connection(server: TestServer) -> None:
    server.response["close"] = True
    server.response["data"] = b"bye"
    answer = raw_get(server)  # returns: the server closed the connection
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nConnection: close\r\n" in answer
    assert answer.endswith(b"\r\n\r\nbye")
    assert server.request["done"] is True


def test_close_once_then_keep_alive(server: TestServer) -> None:
    server.response_once["close"] = True
    client = Client(server)
    assert client.request().getheader("Connection") == "close"
    for _ in range(3):
        assert client.request().getheader("Connection") is None
    client.close()
    # The first connection was closed; the next one carried the rest.
    assert client.connects == 2
    numbers = [r["connection"] for r in server.requests]
    assert numbers[0] != numbers[1] == numbers[2] == numbers[3]


def test_close_for_one_method(server: TestServer) -> None:
    server.response["post.close"] = True
    client = Client(server)
    assert client.request().status == 200
    assert client.request().status == 200
    assert client.connects == 1
    assert client.request("POST", b"x").getheader("Connection") == "close"
    assert client.request().status == 200
    client.close()
    assert client.connects == 2


def test_close_with_a_callback_and_a_sleep(server: TestServer) -> None:
    server.response["close"] = True
    server.response["callback"] = "tests.callbacks:writes_itself"
    server.response["sleep"] = 0.05
    answer = raw_get(server)  # returns: the server closed the connection
    assert answer.startswith(b"HTTP/1.1 201 ")
    assert b"by the callback" in answer


@pytest.mark.parametrize("value", [1, "yes", None])
def test_close_validation(server: TestServer, value: Any) -> None:
    with pytest.raises(TestServerError, match=r"response\['close'\] must be True or False"):
        server.response["close"] = value


def test_close_over_tls(engine: str) -> None:
    server = TestServer(engine=engine, tls=True)
    server.start(keep_alive=True)
    try:
        server.response_once["close"] = True
        client = Client(server)
        assert client.request().getheader("Connection") == "close"
        assert client.request().status == 200
        assert client.request().status == 200
        client.close()
        assert client.connects == 2
    finally:
        server.stop()


def test_close_over_http2(engine: str) -> None:
    opened: list[Any] = []

    def trace(event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            opened.append(info)

    with TestServer(engine=engine, tls=True, http2=True) as server:
        server.response_once["close"] = True
        server.response["data"] = b"h2"
        with httpx.Client(http2=True, verify=server.client_ssl_context(), timeout=10) as client:
            answers = [
                client.get(server.get_url(f"/{i}"), extensions={"trace": trace}) for i in range(3)
            ]
        assert [(a.http_version, a.content) for a in answers] == [("HTTP/2", b"h2")] * 3
        # GOAWAY after the first answer: the client opened a second connection.
        assert len(opened) == 2
        assert [r["path"] for r in server.requests] == ["/0", "/1", "/2"]
        numbers = [r["connection"] for r in server.requests]
        assert numbers[0] != numbers[1] == numbers[2]
