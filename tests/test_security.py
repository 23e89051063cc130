"""
Security defaults and limits: the bind address, and the configurable limits
on header count, header size and the recorded body, in every engine.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests._raw import body, check_serving, connect, exchange, status
from txtestserver import DeferredTestServer, TestServer, TestServerError

pytestmark = pytest.mark.usefixtures("logged_errors")


def refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_binds_to_loopback_only_by_default(engine: str) -> None:
    # 127.0.0.2 is a loopback address too: a server bound to every interface
    # (or to 127.0.0.2) answers there, one bound to 127.0.0.1 does not.
    control = TestServer(address="127.0.0.2", engine=engine)
    try:
        control.start()
    except TestServerError:
        pytest.skip("127.0.0.2 is not a local address here (Linux has all of 127/8)")
    try:
        assert not refused("127.0.0.2", control.port or 0)
    finally:
        control.stop()
    with TestServer(engine=engine) as server:
        assert server.address == "127.0.0.1"
        assert server.get_url().startswith("http://127.0.0.1:")
        assert not refused("127.0.0.1", server.port)
        assert refused("127.0.0.2", server.port)


def test_deferred_server_defaults_to_loopback() -> None:
    assert DeferredTestServer().address == "127.0.0.1"


def headers(count: int, size: int = 1) -> list[bytes]:
    return [b"X-%d: %s" % (i, b"v" * size) for i in range(count)]


def get(*header_lines: bytes, target: bytes = b"/") -> bytes:
    return b"\r\n".join([b"GET " + target + b" HTTP/1.1", *header_lines, b"", b""])


@pytest.fixture
def limited(engine: str) -> Iterator[TestServer]:
    server = TestServer(engine=engine, body_limit=10, header_count_limit=20, header_size_limit=1000)
    server.start()
    yield server
    server.stop()


def test_header_count_limit(limited: TestServer) -> None:
    assert status(exchange(limited.port, get(*headers(20)))) == 200
    assert len(limited.request["headers"]) == 20
    assert status(exchange(limited.port, get(*headers(21)))) == 400
    assert len(limited.requests) == 1
    check_serving(limited)


def test_header_size_limit(limited: TestServer) -> None:
    # The limit counts the request line and the header lines, without line ends.
    line = b"GET / HTTP/1.1"
    fits = [b"X: " + b"v" * (1000 - len(line) - 3)]
    assert status(exchange(limited.port, get(*fits))) == 200
    too_big = [b"X: " + b"v" * (1001 - len(line) - 3)]
    assert status(exchange(limited.port, get(*too_big))) == 400
    spread = headers(10, 100)  # ten lines of 106 bytes
    assert status(exchange(limited.port, get(*spread))) == 400
    long_target = b"/" + b"a" * 2000  # one line longer than the whole limit: closed
    assert exchange(limited.port, get(target=long_target)) == b""
    assert len(limited.requests) == 1
    check_serving(limited)


def test_body_limit_cuts_what_is_kept_not_what_is_read(limited: TestServer) -> None:
    data = b"0123456789abcdef" * 1000
    with connect(limited.port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
        sock.shutdown(socket.SHUT_WR)
        assert status(sock.recv(100)) == 200
    assert limited.request["data"] == data[:10]
    check_serving(limited)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_beyond_the_limit_is_dropped_as_it_arrives(limited: TestServer, chunked: bool) -> None:
    """
    What lies beyond ``body_limit`` is neither kept in memory nor spooled to
    a temporary file: the callback, which runs once the whole body is in,
    finds no such file in the serving process.
    """
    size = 8 * 1024 * 1024
    data = bytes(range(256)) * (size // 256)
    limited.response_once["callback"] = "tests.callbacks:largest_unlinked_file"
    if chunked:
        piece = 1024 * 1024
        framed = b"".join(
            b"%x\r\n%s\r\n" % (piece, data[i : i + piece]) for i in range(0, size, piece)
        )
        request = (
            b"POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n"
        )
    else:
        request = b"POST /big HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % size + data
    answer = exchange(limited.port, request)
    assert status(answer) == 200
    assert int(body(answer)) < 1024 * 1024
    assert limited.request["path"] == "/big"
    assert limited.request["data"] == data[:10]
    check_serving(limited)


def test_body_limit_zero_keeps_no_body(engine: str) -> None:
    with TestServer(engine=engine, body_limit=0) as server:
        answer = exchange(server.port, b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        assert status(answer) == 200
        assert server.request["data"] == b""


def test_default_header_limits_are_generous(engine: str) -> None:
    """500 header lines and 64 KiB of request line plus headers pass."""
    with TestServer(engine=engine) as server:
        assert status(exchange(server.port, get(*headers(500)))) == 200
        big_cookie = b"Cookie: big=" + b"c" * 60_000
        assert status(exchange(server.port, get(big_cookie, b"Host: a"))) == 200
        assert len(server.request["cookies"]["big"]["value"]) == 60_000
        assert status(exchange(server.port, get(*headers(501)))) == 400
        assert status(exchange(server.port, get(*headers(70, 1000)))) == 400


@pytest.mark.parametrize(
    "name, value",
    [
        ("body_limit", -1),
        ("body_limit", 1.5),
        ("body_limit", True),
        ("header_count_limit", 0),
        ("header_count_limit", "500"),
        ("header_size_limit", 0),
        ("header_size_limit", None),
    ],
)
def test_limits_are_validated(name: str, value: object) -> None:
    for cls in (TestServer, DeferredTestServer):
        with pytest.raises(TestServerError, match=f"{name} must be an int of at least"):
            cls(**{name: value})
