"""
HTTP/2 under resets and write failures (issue 19, defect 5): a stream the
client resets ends alone and is recorded as reset by the client, its
neighbours are answered, a rapid-reset flood is a server-side error and
``stop()`` stays prompt, a write h2 refuses is recorded with its error, and
a header block far over the limit ends the connection as documented, with a
server-side error naming the limit.

The raw HTTP/2 client is the h2 package's state machine over a TLS socket.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import h2.events
import httpx
import pytest

from tests._h2 import RawH2, closed, rapid_reset
from tests.conftest import ENGINES
from txtestserver import TestServer
from txtestserver._http.h2 import OVERSIZED, RAPID_RESET, RESET_BY_CLIENT


@pytest.fixture(scope="module", params=ENGINES)
def shared_h2_server(request: pytest.FixtureRequest) -> Iterator[TestServer]:
    with TestServer(engine=request.param, tls=True, http2=True, call_timeout=5) as server:
        yield server


@pytest.fixture
def h2_server(shared_h2_server: TestServer) -> Iterator[TestServer]:
    shared_h2_server.reset()
    yield shared_h2_server
    shared_h2_server.errors.clear()


def test_a_stream_reset_in_the_same_read_ends_alone(h2_server: TestServer) -> None:
    """HEADERS(END_STREAM) then RST_STREAM in one read: the neighbours are answered."""
    h2_server.response["data"] = b"neighbour"
    client = RawH2(h2_server)
    try:
        client.request(1, "/before")
        client.request(3, "/reset", reset=True)
        client.request(5, "/after")
        client.flush()  # one write: the server reads the three streams at once

        def answered(events: list[Any]) -> bool:
            ended = {e.stream_id for e in events if isinstance(e, h2.events.StreamEnded)}
            return {1, 5} <= ended or closed(events)

        events = client.events_until(answered)
    finally:
        client.close()
    assert not closed(events)
    bodies: dict[int, bytes] = {}
    for event in events:
        if isinstance(event, h2.events.DataReceived):
            bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
    assert bodies == {1: b"neighbour", 5: b"neighbour"}
    h2_server.wait_for(lambda r: r["path"] == "/reset", timeout=5)
    by_path = {r["path"]: r for r in h2_server.requests}
    assert by_path["/reset"]["aborted"] == RESET_BY_CLIENT
    assert by_path["/reset"]["response_code"] is None
    assert by_path["/before"]["response_code"] == by_path["/after"]["response_code"] == 200
    assert by_path["/after"]["aborted"] is None
    assert list(h2_server.errors) == []


def test_rapid_reset_is_recorded_and_stop_is_prompt(engine: str) -> None:
    """
    The rapid-reset pattern (CVE-2023-44487): each request reset at once.
    1,500 streams are enough for Twisted's defence (26.x) to close the
    connection, which is then a server-side error; an older Twisted serves
    them all. Either way every recorded request is marked reset by the
    client, and stop() is prompt.
    """
    server = TestServer(engine=engine, tls=True, http2=True, call_timeout=5)
    server.start()
    try:
        flooded = closed(rapid_reset(server, 1500))
        server.wait_for(lambda r: True, timeout=5)
        requests = list(server.requests)
        assert len(requests) > 1
        assert {r["aborted"] for r in requests} == {RESET_BY_CLIENT}
        assert [e["message"] for e in server.errors] == ([RAPID_RESET] if flooded else [])
        if not flooded:
            assert len(requests) == 1500
        server.errors.clear()
    finally:
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1


def test_a_write_h2_refuses_is_recorded(engine: str, logged_errors: list[dict[str, Any]]) -> None:
    """
    A header h2 will not send (``TE: gzip``): the stream is reset, the error
    kept. A server of its own: what its process logs arrives by its stop.
    """
    with TestServer(engine=engine, tls=True, http2=True) as server:
        server.response["headers"] = {"TE": "gzip"}
        with httpx.Client(http2=True, verify=server.client_ssl_context(), timeout=5) as client:
            with pytest.raises(httpx.HTTPError):
                client.get(server.get_url("/x"))
        server.wait_request(timeout=2)
        assert len(server.requests) == 1
        assert server.request["aborted"] is not None
        assert server.request["response_code"] is None
        (error,) = list(server.errors)
        # (h2 names the header it refuses, in words that vary by version.)
        assert error["message"].startswith("writing the answer failed: ProtocolError: Invalid")
        server.errors.clear()
    logged_errors.clear()


def test_a_header_block_far_over_the_limit_is_a_server_side_error(
    engine: str, logged_errors: list[dict[str, Any]]
) -> None:
    """
    Just over ``header_size_limit`` (64 KiB): 400, as over HTTP/1.1. Far
    over it (90 KB) the block is not decoded and the connection ends with
    GOAWAY: documented, and a server-side error that names the limit.
    """
    with TestServer(engine=engine, tls=True, http2=True) as server:
        with httpx.Client(http2=True, verify=server.client_ssl_context(), timeout=5) as client:
            answer = client.get(server.get_url("/big"), headers={"X-Big": "a" * 66_000})
            assert answer.status_code == 400
            assert b"header_size_limit=65536" in answer.content
        with httpx.Client(http2=True, verify=server.client_ssl_context(), timeout=5) as client:
            calm = r"error_code:(11|ErrorCodes\.ENHANCE_YOUR_CALM)"
            with pytest.raises(httpx.RemoteProtocolError, match=calm):
                client.get(server.get_url("/big"), headers={"X-Big": "a" * 90_000})
        assert list(server.requests) == []
        # Recorded before the GOAWAY was sent.
        (error,) = list(server.errors)
        assert error["message"] == OVERSIZED.format(limit=65536)
        server.errors.clear()
    logged_errors.clear()
