"""
Streamed answers against real clients (requests, urllib3, httpx, aiohttp;
treq in tests/trial/test_streams.py), in both engines: ``chunks`` and
``chunk_delay``, ``throttle``, Server-Sent Events and NDJSON, the framing
for HTTP/1.1, HTTP/1.0 and a set ``Content-Length``, and what is left when a
client leaves or the server stops mid-stream.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from httpx_sse import connect_sse
from twisted.internet.defer import Deferred
from twisted.internet.threads import blockingCallFromThread

from tests._clients import CLIENTS, PATIENCE, stream
from tests._leaks import assert_nothing_held
from tests._raw import check_serving, connect, read_all
from txtestserver import TestServer, TestServerError, ndjson, sse
from txtestserver._http.answers.streams import _Pacer

pytestmark = pytest.mark.usefixtures("logged_errors")

PIECES = [b"alpha ", "beta ", b"gamma"]
JOINED = b"alpha beta gamma"


# -- chunks -------------------------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("where", ["response", "response_once", "get."])
def test_chunks_reach_each_client(server: TestServer, client: str, where: str) -> None:
    if where == "get.":
        server.response["get.chunks"] = PIECES
        server.response["post.data"] = b"not this"
    else:
        getattr(server, where)["chunks"] = PIECES
    received = stream(client, server.get_url("/chunks"))
    assert received.status == 200
    assert received.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in received.headers
    assert received.body == JOINED
    assert server.request["done"] is True and server.request["fault"] is None
    if where == "response_once":
        assert stream(client, server.get_url()).body == b""  # the default answer


@pytest.mark.parametrize("client", CLIENTS)
def test_each_piece_is_flushed_when_due(client: str) -> None:
    """
    Each piece is produced only once the client has read the one before it
    (a generator that waits for the client, sending empty pieces meanwhile),
    so the stream can only complete if every piece was flushed on its own.
    Thread engine: a generator cannot cross to a server process; the next
    test shows the same for both engines with a list.
    """
    seen: list[threading.Event] = [threading.Event() for _ in PIECES]

    def gated() -> Iterator[bytes | str]:
        for number, piece in enumerate(PIECES):
            if number:
                while not seen[number - 1].is_set():
                    yield b""  # nothing to send yet: look again after chunk_delay
            yield piece

    with TestServer() as server:
        server.response["chunks"] = gated()
        server.response["chunk_delay"] = 0.005
        got = bytearray()
        ends = [len(JOINED[: JOINED.index(b"beta")]), len(JOINED[: JOINED.index(b"gamma")])]

        def on_piece(piece: bytes) -> None:
            got.extend(piece)
            for number, end in enumerate(ends):
                if len(got) >= end:
                    seen[number].set()

        received = stream(client, server.get_url(), timeout=10, on_piece=on_piece)
        assert received.body == JOINED
        assert len(received.pieces) >= len(PIECES)  # never two pieces in one read


@pytest.mark.parametrize("client", CLIENTS)
def test_chunk_delay_spaces_the_pieces(server: TestServer, client: str) -> None:
    server.response["chunks"] = PIECES
    server.response["chunk_delay"] = 0.1
    began = time.monotonic()
    received = stream(client, server.get_url())
    assert received.body == JOINED
    assert time.monotonic() - began >= 0.2  # two delays: none before the first piece


def test_the_first_piece_arrives_while_the_rest_is_due(server: TestServer) -> None:
    server.response["chunks"] = [b"now", b"in thirty seconds"]
    server.response["chunk_delay"] = 30.0
    with connect(server.port or 0) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while not received.endswith(b"3\r\nnow\r\n"):
            received += sock.recv(4096)
        assert server.request["done"] is False  # the stream goes on
    assert_nothing_held(server)  # the client left: the pending piece is dropped


def test_a_generator_that_raises_is_a_server_side_error(
    logged_errors: list[dict[str, Any]],
) -> None:
    def pieces() -> Iterator[bytes]:
        yield b"first"
        raise ValueError("the test's generator broke")

    with TestServer() as server:
        server.response["chunks"] = pieces()
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(server.get_url("/broken"), timeout=PATIENCE)
        [error] = server.errors
        assert error["message"] == (
            "response['chunks'] raised while streaming: the test's generator broke"
        )
        assert "ValueError" in error["traceback"]
        assert error["request"]["path"] == "/broken"
    assert [e["log_format"] for e in logged_errors] == ["response['chunks'] raised while streaming"]
    logged_errors.clear()


# -- throttle ---------------------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_a_throttled_body_keeps_its_length(server: TestServer, client: str) -> None:
    server.response["data"] = b"z" * 300
    server.response["throttle"] = 1000
    began = time.monotonic()
    received = stream(client, server.get_url())
    assert received.body == b"z" * 300
    assert received.headers["content-length"] == "300"
    assert "transfer-encoding" not in received.headers
    assert time.monotonic() - began >= 0.28  # 300 bytes at 1,000 a second


def test_throttled_chunks(server: TestServer) -> None:
    server.response["chunks"] = [b"a" * 100, b"b" * 100]
    server.response["throttle"] = 1000
    server.response["chunk_delay"] = 0.1
    began = time.monotonic()
    received = stream("httpx", server.get_url())
    assert received.body == b"a" * 100 + b"b" * 100
    assert time.monotonic() - began >= 0.28  # 0.2 s of bytes and one delay


# -- formats ----------------------------------------------------------------------------

EVENTS: list[Any] = [
    "hello",
    {"event": "update", "data": {"n": 1}, "id": "7"},
    {"data": "line one\nline two", "retry": 1500},
    {"event": "done"},
]


@pytest.mark.parametrize("client", CLIENTS)
def test_sse_reaches_each_client(server: TestServer, client: str) -> None:
    server.response["headers"] = {"Content-Type": "text/event-stream"}
    server.response["chunks"] = sse(EVENTS)
    server.response["chunk_delay"] = 0.01
    received = stream(client, server.get_url("/events"))
    assert received.headers["content-type"] == "text/event-stream"
    assert received.body == b"".join(sse(EVENTS))


def test_sse_parsed_by_an_sse_client(server: TestServer) -> None:
    server.response["headers"] = {"Content-Type": "text/event-stream"}
    server.response["chunks"] = sse(EVENTS)
    with httpx.Client() as client:
        with connect_sse(client, "GET", server.get_url("/events")) as source:
            events = [(e.event, e.data, e.id, e.retry) for e in source.iter_sse()]
    assert events == [
        ("message", "hello", "", None),
        ("update", '{"n": 1}', "7", None),
        ("message", "line one\nline two", "7", 1500),
        ("done", "", "7", None),
    ]


@pytest.mark.parametrize("client", CLIENTS)
def test_ndjson_reaches_each_client(server: TestServer, client: str) -> None:
    objects = [{"n": 1}, [1, 2], "text", None, {"nested": {"é": 2.5}}]
    server.response["headers"] = {"Content-Type": "application/x-ndjson"}
    server.response["chunks"] = ndjson(objects)
    received = stream(client, server.get_url())
    lines = received.body.decode("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == objects


def test_sse_and_ndjson_refuse_what_they_cannot_write() -> None:
    with pytest.raises(TestServerError, match="unknown event field 'name'"):
        sse([{"name": "x"}])
    with pytest.raises(TestServerError, match="line break"):
        sse([{"event": "a\nb"}])
    with pytest.raises(TestServerError, match="retry is an int"):
        sse([{"retry": "soon"}])
    with pytest.raises(TestServerError, match="cannot be written as JSON"):
        ndjson([object()])


def test_formats_of_a_generator_stay_lazy(engine: str) -> None:
    made: list[int] = []

    def objects() -> Iterator[dict[str, int]]:
        for n in range(3):
            made.append(n)
            yield {"n": n}

    pieces = ndjson(objects())
    assert made == []  # nothing read yet
    if engine == "subprocess":
        with TestServer(engine=engine) as server, pytest.raises(TestServerError, match="list"):
            server.response["chunks"] = pieces
        return
    with TestServer(engine=engine) as server:
        server.response["chunks"] = pieces
        assert stream("requests", server.get_url()).body == b'{"n": 0}\n{"n": 1}\n{"n": 2}\n'


# -- framing ----------------------------------------------------------------------------


def test_http_10_gets_a_body_that_ends_with_the_connection(server: TestServer) -> None:
    server.response["chunks"] = PIECES
    with connect(server.port or 0) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        head, _, body = read_all(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK")
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert body == JOINED


def test_a_content_length_set_by_the_test_makes_a_plain_body(server: TestServer) -> None:
    server.response["chunks"] = PIECES
    server.response["headers"] = {"Content-Length": str(len(JOINED))}
    server.response["chunk_delay"] = 0.01
    with connect(server.port or 0) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = read_all(sock).partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert b"\r\nContent-Length: 16" in head
    assert body == JOINED


def test_http_11_gets_one_chunk_per_piece(server: TestServer) -> None:
    server.response["chunks"] = PIECES
    with connect(server.port or 0) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _, _, body = read_all(sock).partition(b"\r\n\r\n")
    assert body == b"6\r\nalpha \r\n5\r\nbeta \r\n5\r\ngamma\r\n0\r\n\r\n"


def test_head_gets_the_headers_only(server: TestServer) -> None:
    server.response["chunks"] = PIECES
    server.response["chunk_delay"] = 30.0
    with connect(server.port or 0) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = read_all(sock)
    assert head.startswith(b"HTTP/1.1 200 OK") and head.endswith(b"\r\n\r\n")
    assert server.request["done"] is True


def test_keep_alive_serves_after_a_stream(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start(keep_alive=True)
    try:
        server.response_once["chunks"] = PIECES
        server.response["data"] = b"after"
        with httpx.Client() as client:
            assert client.get(server.get_url("/1")).content == JOINED
            assert client.get(server.get_url("/2")).content == b"after"
        assert len({r["path"] for r in server.requests}) == 2
    finally:
        server.stop()


# -- what is left -----------------------------------------------------------------------


def pending_stream_calls(server: TestServer) -> list[Any]:
    """The thread engine's pending stream and sleep calls, in its reactor."""
    reactor: Any = server._reactor

    def find() -> list[Any]:
        return [
            call
            for call in reactor.getDelayedCalls()
            if isinstance(getattr(call.func, "__self__", None), (_Pacer, Deferred))
        ]

    found: list[Any] = blockingCallFromThread(reactor, find)
    return found


@pytest.mark.parametrize(
    "keys", [{"chunk_delay": 30.0}, {"throttle": 1.0}], ids=["delay", "throttle"]
)
def test_stop_mid_stream_leaves_nothing(engine: str, keys: dict[str, Any]) -> None:
    server = TestServer(engine=engine)
    server.start()
    server.response["chunks"] = [b"first", b"never"]
    for key, value in keys.items():
        server.response[key] = value
    clients = []
    for _ in range(3):
        sock = connect(server.port or 0)
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        clients.append(sock)
    for sock in clients:
        received = b""
        while b"\r\n\r\n" not in received:  # the headers are out: the stream runs
            received += sock.recv(4096)
    if engine == "thread":
        assert len(pending_stream_calls(server)) == 3
    server.stop()
    if engine == "thread":
        assert pending_stream_calls(server) == []
    for sock in clients:
        sock.settimeout(10)
        assert b"never" not in read_all(sock)  # closed, not hanging
        sock.close()
    assert len(server.requests) == 3 and server.request["done"] is False
    server.reset()
    server.start()
    server.response["data"] = b"ok"
    check_serving(server)
    server.stop()


@pytest.mark.parametrize("client", CLIENTS)
def test_a_client_that_leaves_mid_stream_leaves_nothing(server: TestServer, client: str) -> None:
    server.response["chunks"] = [b"first"] + [b"more"] * 100
    server.response["chunk_delay"] = 0.05

    class Leave(Exception):
        pass

    def leave(piece: bytes) -> None:
        raise Leave

    with pytest.raises(Leave):
        stream(client, server.get_url("/leaving"), on_piece=leave)
    assert server.request["done"] is False
    assert_nothing_held(server)


# -- routes and queues ------------------------------------------------------------------


def test_a_route_streams_events_while_others_get_the_plain_answer(server: TestServer) -> None:
    events = server.route("/events", method="GET")
    events.response["headers"] = {"Content-Type": "text/event-stream"}
    events.response["chunks"] = sse(["a", "b"])
    events.response["chunk_delay"] = 0.01
    server.response["data"] = b"plain"
    with httpx.Client() as client:
        with connect_sse(client, "GET", server.get_url("/events")) as source:
            assert [e.data for e in source.iter_sse()] == ["a", "b"]
        assert client.get(server.get_url("/elsewhere")).content == b"plain"
    assert len(events.requests) == 1


def test_queued_streams_in_order(server: TestServer) -> None:
    server.add_response(chunks=["first ", "stream"], count=1)
    server.add_response(data=b"x" * 50, throttle=1000, count=1)
    server.response["data"] = b"after"
    received = [stream("requests", server.get_url()) for _ in range(3)]
    assert [r.body for r in received] == [b"first stream", b"x" * 50, b"after"]
    assert received[0].headers["transfer-encoding"] == "chunked"
    assert received[1].headers["content-length"] == "50"
