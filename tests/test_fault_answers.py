"""
``response['fault']`` and ``response['raw']`` against real clients
(requests, urllib3, httpx, aiohttp; treq in tests/trial/test_streams.py), in
both engines: what each client raises (the table in tests/_clients.py, which
the docs show), how many requests it sent, what the server recorded, and that
nothing is left behind.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from twisted.logger import formatEvent

from tests._clients import (
    CLIENTS,
    FAULT_OUTCOMES,
    HANGING,
    PATIENCE,
    TIMEOUT,
    Outcome,
    full_name,
    get,
    resolve,
    stream,
    table,
    underlying,
)
from tests._leaks import assert_nothing_held
from tests._raw import check_serving, connect, read_all
from tests.conftest import ENGINES
from tests.test_faults import wait_until
from txtestserver import ServerSideError, TestServer
from txtestserver._http.answers.faults import GARBAGE

pytestmark = pytest.mark.usefixtures("logged_errors")

BODY = b"0123456789" * 10


@pytest.fixture
def server(server: TestServer, engine: str) -> TestServer:
    """
    The module's server of the engine (conftest), answering BODY. (It names
    ``engine`` too: pytest before 9 does not parametrize a test through the
    fixture an override of the same name replaces.)
    """
    server.response["data"] = BODY
    return server


def call(server: TestServer, client: str, path: str, fault: str) -> Outcome:
    """Call ``client``; return what it raised, as the table names it."""
    timeout = TIMEOUT if fault in HANGING else PATIENCE
    before = len(server.requests)
    with pytest.raises(Exception) as caught:
        get(client, server.get_url(path), timeout)
    error = caught.value
    sent = len(server.requests) - before
    expected = FAULT_OUTCOMES[fault][client]
    same = full_name(type(error)) == full_name(resolve(expected.raised))
    raised = expected.raised if same else full_name(type(error))
    return Outcome(raised, underlying(error), sent)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("fault", list(FAULT_OUTCOMES))
def test_what_each_client_raises(server: TestServer, fault: str, client: str) -> None:
    server.response["fault"] = fault
    assert call(server, client, f"/{fault}", fault) == FAULT_OUTCOMES[fault][client]
    recorded = server.requests[:]
    assert [r["fault"] for r in recorded] == [fault] * len(recorded)
    assert {r["path"] for r in recorded} == {f"/{fault}"}
    assert server.request["done"] is (fault not in HANGING)
    del server.response["fault"]
    assert_nothing_held(server)  # hanging ones too, once the client gave up
    check_serving(server)


@pytest.mark.parametrize("fault", list(FAULT_OUTCOMES))
def test_a_fault_in_response_once_answers_one_request(server: TestServer, fault: str) -> None:
    server.response_once["fault"] = fault
    timeout = TIMEOUT if fault in HANGING else PATIENCE
    with pytest.raises(requests.RequestException):
        requests.get(server.get_url("/once"), timeout=timeout)
    assert requests.get(server.get_url("/after"), timeout=PATIENCE).content == BODY
    assert [(r["path"], r["fault"]) for r in server.requests] == [
        ("/once", fault),
        ("/after", None),
    ]


def test_a_retrying_client_recovers_from_a_one_time_fault(server: TestServer) -> None:
    """aiohttp retries an idempotent request once after a reset: the retry succeeds."""
    server.response_once["fault"] = "reset"
    assert get("aiohttp", server.get_url("/retried"), PATIENCE) == BODY
    assert [r["fault"] for r in server.requests] == ["reset", None]


def test_a_method_specific_fault_leaves_other_methods_alone(server: TestServer) -> None:
    server.response["post.fault"] = "empty"
    assert requests.get(server.get_url(), timeout=PATIENCE).content == BODY
    with pytest.raises(requests.ConnectionError):
        requests.post(server.get_url(), data=b"x", timeout=PATIENCE)
    assert [(r["method"], r["fault"]) for r in server.requests] == [
        ("GET", None),
        ("POST", "empty"),
    ]


def test_sleep_comes_before_the_fault(server: TestServer) -> None:
    server.response["fault"] = "reset"
    server.response["sleep"] = 0.2
    with pytest.raises(requests.ConnectionError):
        requests.get(server.get_url("/late"), timeout=PATIENCE)
    assert server.request["done"] is True
    assert server.request["fault"] == "reset"


def test_wait_request_returns_once_a_fault_is_carried_out(server: TestServer) -> None:
    server.response["fault"] = "truncated"
    with pytest.raises(requests.RequestException):
        requests.get(server.get_url(), timeout=PATIENCE)
    server.wait_request(10)
    assert server.request["done"] is True


@pytest.mark.parametrize("fault", HANGING)
def test_hanging_faults_never_count_as_answered(server: TestServer, fault: str) -> None:
    server.response["fault"] = fault
    with connect(server.port or 0) as sock:
        sock.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        head = b""
        if fault == "stall":
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"\r\nContent-Length: 100\r\n" in head and head.endswith(b"\r\n\r\n")
        else:
            wait_until(lambda: server.request["path"] == "/hang", "the request to be recorded")
        sock.settimeout(0.2)
        with pytest.raises(socket.timeout):
            sock.recv(1)  # nothing (more) comes
        assert server.request["done"] is False
        with pytest.raises(Exception, match="no request was answered"):
            server.wait_request(0.2)
    del server.response["fault"]
    assert_nothing_held(server)


# -- the bytes on the wire ------------------------------------------------------------------


def wire(server: TestServer, request: bytes = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") -> bytes:
    with connect(server.port or 0) as sock:
        sock.sendall(request)
        return read_all(sock)


def test_reset_sends_no_byte(server: TestServer) -> None:
    server.response["fault"] = "reset"
    with connect(server.port or 0) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            sock.recv(1024)  # an RST, not a FIN (which would read as b"")


def test_empty_closes_without_a_byte(server: TestServer) -> None:
    server.response["fault"] = "empty"
    with connect(server.port or 0) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1024) == b""  # FIN, not RST


def test_garbage_is_the_same_bytes_every_time(server: TestServer) -> None:
    server.response["fault"] = "garbage"
    assert wire(server) == wire(server) == GARBAGE
    assert not GARBAGE.startswith(b"HTTP/") and len(GARBAGE) == 512


def test_malformed_chunk_has_valid_headers_then_a_bad_size_line(server: TestServer) -> None:
    server.response["fault"] = "malformed_chunk"
    server.response["headers"] = {"X-Test": "yes"}
    head, _, rest = wire(server).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nTransfer-Encoding: chunked" in head and b"\r\nX-Test: yes" in head
    assert b"Content-Length" not in head
    assert rest == b"not-a-chunk-size\r\n" + BODY + b"\r\n"


@pytest.mark.parametrize("fault", ["truncated", "reset_mid_body"])
def test_half_the_body_arrives_then_the_close(server: TestServer, fault: str) -> None:
    server.response["fault"] = fault
    server.response["code"] = 201
    with connect(server.port or 0) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        closed_by = "FIN"
        while True:
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                closed_by = "RST"
                break
            if not piece:
                break
            received += piece
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201 Created\r\n")
    assert b"\r\nContent-Length: 100" in head
    assert body == BODY[:50]
    assert closed_by == ("RST" if fault == "reset_mid_body" else "FIN")


def test_a_fault_with_no_body_cuts_a_filler_body(server: TestServer) -> None:
    server.response["data"] = b""
    server.response["fault"] = "truncated"
    head, _, body = wire(server).partition(b"\r\n\r\n")
    assert b"\r\nContent-Length: 1024" in head
    assert body == b"x" * 512


def test_a_fault_after_a_kept_alive_answer(engine: str) -> None:
    """On a kept-alive connection, the fault comes after the earlier answers."""
    server = TestServer(engine=engine)
    server.start(keep_alive=True)
    try:
        server.response["data"] = b"ok"
        server.response_once["data"] = b"first"
        server.response["get.fault"] = "reset_mid_body"
        server.response["post.data"] = b"posted"
        with connect(server.port or 0) as sock:
            sock.sendall(b"POST /1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            sock.sendall(b"GET /2 HTTP/1.1\r\n\r\n")
            received = b""
            try:
                while piece := sock.recv(65536):
                    received += piece
            except ConnectionResetError:
                pass
        assert received.count(b"HTTP/1.1 200 OK") == 2
        assert b"\r\n\r\nfirst" in received
        assert received.endswith(b"\r\n\r\no")  # half of b"ok", then the reset
        assert [(r["path"], r["fault"]) for r in server.requests] == [
            ("/1", None),
            ("/2", "reset_mid_body"),
        ]
    finally:
        server.stop()


# -- raw ------------------------------------------------------------------------------------

RAW = b"HTTP/1.1 299 Odd Reason\r\nX-Odd: yes\r\n\r\nraw body"


def test_raw_bytes_are_the_whole_answer(server: TestServer) -> None:
    server.response["raw"] = RAW
    server.response["headers"] = {"X-Ignored": "yes"}
    assert wire(server) == RAW
    assert server.request["done"] is True and server.request["fault"] is None


@pytest.mark.parametrize("client", CLIENTS)
def test_raw_through_each_client(server: TestServer, client: str) -> None:
    server.response["raw"] = RAW
    received = stream(client, server.get_url("/raw"))
    assert (received.status, received.reason) == (299, "Odd Reason")
    assert received.headers["x-odd"] == "yes"
    assert received.body == b"raw body"
    assert len(server.requests) == 1 and server.request["done"] is True


def test_raw_str_is_encoded_with_the_charset(server: TestServer) -> None:
    server.response["charset"] = "latin-1"
    server.response["raw"] = "HTTP/1.0 200 OK\r\n\r\ncafé"
    assert wire(server) == "HTTP/1.0 200 OK\r\n\r\ncafé".encode("latin-1")


def test_the_docs_show_this_table() -> None:
    """docs/streams-and-faults.rst carries exactly the table these tests assert."""
    page = Path(__file__).resolve().parent.parent / "docs" / "streams-and-faults.rst"
    assert table() in page.read_text(encoding="utf-8")


# -- routes and queues ----------------------------------------------------------------------


def test_a_fault_on_a_route_leaves_other_paths_alone(server: TestServer) -> None:
    flaky = server.route("/flaky", name="flaky")
    flaky.response["fault"] = "reset"
    flaky.response_once["fault"] = "truncated"
    flaky.response["data"] = b"route body"
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # the once value first
        requests.get(server.get_url("/flaky"), timeout=PATIENCE)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.get_url("/flaky"), timeout=PATIENCE)
    assert requests.get(server.get_url("/other"), timeout=PATIENCE).content == BODY
    assert [(r["path"], r["route"], r["fault"]) for r in server.requests] == [
        ("/flaky", "flaky", "truncated"),
        ("/flaky", "flaky", "reset"),
        ("/other", None, None),
    ]
    assert [r["fault"] for r in flaky.requests] == ["truncated", "reset"]


def test_queued_faults_then_a_retrying_client_gets_through(server: TestServer) -> None:
    """A retry policy meets two resets then the answer: the retry logic under test."""
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    server.add_response(fault="reset", count=2)
    with requests.Session() as session:
        session.mount("http://", HTTPAdapter(max_retries=Retry(total=3, backoff_factor=0)))
        assert session.get(server.get_url("/retried"), timeout=PATIENCE).content == BODY
    assert [r["fault"] for r in server.requests] == ["reset", "reset", None]
    assert server.request["done"] is True


def test_a_route_queue_of_faults_per_method(server: TestServer) -> None:
    api = server.route("/api")
    api.add_response(fault="empty", count=1, method="POST")
    api.response["data"] = b"api"
    assert requests.get(server.get_url("/api"), timeout=PATIENCE).content == b"api"
    with pytest.raises(requests.ConnectionError):
        requests.post(server.get_url("/api"), data=b"x", timeout=PATIENCE)
    assert requests.post(server.get_url("/api"), data=b"x", timeout=PATIENCE).content == b"api"
    assert [(r["method"], r["fault"]) for r in api.requests] == [
        ("GET", None),
        ("POST", "empty"),
        ("POST", None),
    ]


# -- over TLS and HTTP/2 --------------------------------------------------------------------

#: What httpx raises for each fault over HTTPS (HTTP/1.1 in TLS) and over
#: HTTP/2, where a reset is RST_STREAM and the faults that write HTTP/1.x
#: bytes of their own are refused (a 500 naming the fault, and a
#: server-side error). docs/streams-and-faults.rst shows this table too.
TLS_OUTCOMES: dict[str, tuple[str, str]] = {
    "reset": ("httpx.RemoteProtocolError", "httpx.RemoteProtocolError"),
    "empty": ("httpx.RemoteProtocolError", "httpx.RemoteProtocolError"),
    "garbage": ("httpx.RemoteProtocolError", "500"),
    "malformed_chunk": ("httpx.RemoteProtocolError", "500"),
    "truncated": ("httpx.RemoteProtocolError", "h2.exceptions.InvalidBodyLengthError"),
    "reset_mid_body": ("httpx.RemoteProtocolError", "httpx.RemoteProtocolError"),
    "stall": ("httpx.ReadTimeout", "httpx.ReadTimeout"),
    "no_answer": ("httpx.ReadTimeout", "httpx.ReadTimeout"),
}
#: Where Python 3.13 differs, by (fault, HTTP/2): its ssl module reports a TCP
#: reset under TLS itself (ConnectionResetError, so httpx.ReadError), where
#: earlier versions report an unexpected end of the stream. Seen in tox -e py313.
ON_PYTHON_313: dict[tuple[str, bool], str] = {
    ("reset", False): "httpx.ReadError",
    ("reset_mid_body", False): "httpx.ReadError",
}


def tls_outcome(fault: str, http2: bool) -> str:
    """What httpx raises for ``fault`` over TLS on the Python that runs the test."""
    if sys.version_info >= (3, 13) and (fault, http2) in ON_PYTHON_313:
        return ON_PYTHON_313[fault, http2]
    return TLS_OUTCOMES[fault][1 if http2 else 0]


@pytest.fixture(scope="module", params=[(e, h) for e in ENGINES for h in (False, True)])
def tls_served(request: pytest.FixtureRequest) -> Iterator[TestServer]:
    engine, http2 = request.param
    server = TestServer(engine=engine, tls=True, http2=http2)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("fault", list(TLS_OUTCOMES))
def test_faults_over_tls_and_http2(
    tls_served: TestServer, fault: str, logged_errors: list[dict[str, Any]]
) -> None:
    server = tls_served
    server.reset()
    server.response["data"] = BODY
    server.response["fault"] = fault
    http2 = server.config.http2
    expected = tls_outcome(fault, http2)
    timeout = TIMEOUT if fault in HANGING else PATIENCE
    with httpx.Client(verify=server.client_ssl_context(), http2=http2, timeout=timeout) as client:
        if expected == "500":
            answer = client.get(server.get_url(f"/{fault}"))
            assert answer.http_version == "HTTP/2" and answer.status_code == 500
            assert f"response['fault'] '{fault}' needs HTTP/1.x" in answer.text
            with pytest.raises(ServerSideError, match=r"needs HTTP/1\.x"):
                server.check()
            forget_logged(logged_errors, "needs HTTP/1.x")
        else:
            with pytest.raises(Exception) as caught:
                client.get(server.get_url(f"/{fault}"))
            assert full_name(type(caught.value)) == full_name(resolve(expected))
        del server.response["fault"]
        assert client.get(server.get_url("/after")).content == BODY  # serving on
    assert server.requests[0]["fault"] == fault
    assert server.requests[0]["http_version"] == ("HTTP/2" if http2 else "HTTP/1.1")


def forget_logged(logged_errors: list[dict[str, Any]], text: str) -> None:
    """
    Drop the expected logged errors (the server logs what it answers 500;
    a server process's log reaches this process a moment later).
    """
    wait_until(
        lambda: any(text in formatEvent(e) for e in logged_errors),
        f"an error naming {text!r} to be logged",
    )
    expected = [e for e in logged_errors if text in formatEvent(e)]
    for event in expected:
        logged_errors.remove(event)


def test_raw_is_refused_over_http2(engine: str, logged_errors: list[dict[str, Any]]) -> None:
    with TestServer(engine=engine, tls=True, http2=True) as server:
        server.response["raw"] = RAW
        with httpx.Client(verify=server.client_ssl_context(), http2=True) as client:
            answer = client.get(server.get_url())
        assert answer.status_code == 500
        assert "response['raw'] needs HTTP/1.x" in answer.text
        with pytest.raises(ServerSideError, match=r"response\['raw'\] needs HTTP/1.x"):
            server.check()
    forget_logged(logged_errors, "response['raw'] needs HTTP/1.x")


def tls_table() -> str:
    """The rows of the TLS and HTTP/2 table in docs/streams-and-faults.rst."""
    lines = ["   * - fault", "     - HTTPS (HTTP/1.1)", "     - HTTP/2"]
    for fault, outcomes in TLS_OUTCOMES.items():
        lines.append(f"   * - ``{fault}``")
        for http2, outcome in zip((False, True), outcomes, strict=True):
            if outcome == "500":
                lines.append("     - a ``500`` naming the fault, and a server-side error")
                continue
            other = ON_PYTHON_313.get((fault, http2))
            also = f" (Python 3.13: ``{other}``)" if other else ""
            lines.append(f"     - ``{outcome}``{also}")
    return "\n".join(lines) + "\n"


def test_the_docs_show_the_tls_table() -> None:
    page = Path(__file__).resolve().parent.parent / "docs" / "streams-and-faults.rst"
    assert tls_table() in page.read_text(encoding="utf-8")
