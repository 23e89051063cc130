"""
Client faults (a client that leaves mid-body or mid-sleep, half-closes, or
never reads) and lifecycle faults, against every engine.

The plain lifecycle cases (start twice, stop twice, use after stop, port in
use) are in test_blocking.py and trial/test_deferred.py; these are the
harder ones.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests._raw import body, check_serving, connect, read_all, status
from txtestserver import TestServer

pytestmark = pytest.mark.usefixtures("logged_errors")


@pytest.fixture
def server(engine: str) -> Iterator[TestServer]:
    server = TestServer(engine=engine)
    server.start()
    server.response["data"] = b"ok"
    yield server
    server.stop()


@pytest.fixture
def kept_alive(engine: str) -> Iterator[TestServer]:
    server = TestServer(engine=engine)
    server.start(keep_alive=True)
    server.response["data"] = b"ok"
    yield server
    server.stop()


# -- half-closed sockets -------------------------------------------------------------


@pytest.mark.parametrize("size", [2, 4 * 1024 * 1024], ids=["small", "4MiB"])
@pytest.mark.parametrize("keep_alive", [False, True], ids=["close", "keep-alive"])
def test_half_closed_client_still_gets_the_whole_answer(
    engine: str, keep_alive: bool, size: int
) -> None:
    with TestServer(engine=engine) as server:
        if keep_alive:
            server.stop()
            server.start(keep_alive=True)
        server.response["data"] = b"x" * size
        for _ in range(3):
            with connect(server.port) as sock:
                sock.sendall(b"GET /half HTTP/1.1\r\nHost: a\r\n\r\n")
                sock.shutdown(socket.SHUT_WR)
                answer = read_all(sock)
            assert status(answer) == 200
            assert body(answer) == b"x" * size
            assert server.request["path"] == "/half"
        check_serving(server)


def test_half_closed_pipelined_requests_are_all_answered(kept_alive: TestServer) -> None:
    with connect(kept_alive.port) as sock:
        sock.sendall(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        answer = read_all(sock)
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert [r["path"] for r in kept_alive.requests] == ["/1", "/2", "/3"]
    check_serving(kept_alive)
