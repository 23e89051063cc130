"""
Malformed and hostile input over raw sockets, hand-written and generated
with hypothesis, against every engine.

After each input: a bad request got a 4xx answer or a closed connection
(never a 5xx, never a hang); ``server.request`` is either the previous
complete request or the new complete one, never a mix; nothing was logged as
an error; and the server answers and records the next normal request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from tests._raw import (
    body,
    check_serving,
    closed_unanswered,
    connect,
    exchange,
    read_all,
    server_log_errors,
    snapshot,
    status,
    statuses,
    wrong_protocol,
)
from tests.conftest import ENGINES
from txtestserver import TestServer


@pytest.fixture(scope="module", params=ENGINES)
def shared_server(request: pytest.FixtureRequest) -> Iterator[TestServer]:
    """One server per engine for the whole module: it must survive it all."""
    server = TestServer(engine=request.param)
    server.start()
    server.response["data"] = b"ok"
    yield server
    server.stop()


@pytest.fixture
def server(shared_server: TestServer, logged_errors: list[Any]) -> Iterator[TestServer]:
    """The shared server, serving normally before and logging no error after."""
    check_serving(shared_server)
    yield shared_server
    assert server_log_errors(shared_server) == []


def expect_rejected(server: TestServer, data: bytes, **kwargs: Any) -> bytes:
    """``data`` gets a 4xx or a closed connection and is not recorded."""
    before, count = snapshot(server), len(server.requests)
    answer = exchange(server.port, data, **kwargs)
    code = status(answer)
    assert code is None or 400 <= code < 500, answer[:200]
    if code is None:
        assert closed_unanswered(answer), answer[:200]  # closed, not a garbled answer
    assert len(server.requests) == count
    assert snapshot(server) == before
    check_serving(server)
    return answer


def expect_answered(server: TestServer, data: bytes, **kwargs: Any) -> dict[str, Any]:
    """``data`` is answered as a normal request and recorded whole."""
    count = len(server.requests)
    answer = exchange(server.port, data, **kwargs)
    assert status(answer) == 200, answer[:200]
    assert body(answer) == b"ok"
    assert len(server.requests) == count + 1
    recorded = snapshot(server)
    assert recorded["done"] is True
    check_serving(server)
    return recorded


def request(head: bytes, *headers: bytes, data: bytes = b"") -> bytes:
    """A request from its first line, header lines and body."""
    return b"\r\n".join([head, *headers, b"", data])


# -- rejected before they reach the resource ------------------------------------------

REJECTED = {
    # Request lines.
    "http/0.9": b"GET /\r\n\r\n",
    "garbage line": b"\x17\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "http/2.0 version": b"GET / HTTP/2.0\r\n\r\n",
    "no version": b"GET / \r\n\r\n",
    "unknown version": b"GET / HTTP/9.9\r\n\r\n",
    "bad version": b"GET / HTTX/1.1\r\n\r\n",
    "two spaces": b"GET  / HTTP/1.1\r\n\r\n",
    "extra field": b"GET / HTTP/1.1 extra\r\n\r\n",
    "empty method": b" / HTTP/1.1\r\n\r\n",
    "nul in target": b"GET /\x00 HTTP/1.1\r\n\r\n",
    "raw non-utf8 path": b"GET /caf\xe9\xff HTTP/1.1\r\n\r\n",
    "raw non-utf8 query": b"GET /?q=\xff\xfe HTTP/1.1\r\n\r\n",
    "only line ends": b"\r\n\r\n\r\n",
    # Headers.
    "header without colon": request(b"GET / HTTP/1.1", b"Host: a", b"no colon here", b"X: y"),
    "space in header name": request(b"GET / HTTP/1.1", b"Bad Name: x"),
    "empty header name": request(b"GET / HTTP/1.1", b": x"),
    "non-token header name": request(b"GET / HTTP/1.1", b"X\xff: x"),
    "nul in header value": request(b"GET / HTTP/1.1", b"X: a\x00b"),
    "bare cr in header value": request(b"GET / HTTP/1.1", b"X: a\rb"),
    "501 headers": request(b"GET / HTTP/1.1", *(b"X-%d: v" % i for i in range(501))),
    "headers over 64 KiB": request(
        b"GET / HTTP/1.1", *(b"X-%d: %s" % (i, b"v" * 1000) for i in range(70))
    ),
    "one header line over 64 KiB": request(b"GET / HTTP/1.1", b"X: " + b"v" * 70_000),
    "request line over 64 KiB": b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    # Content-Length and Transfer-Encoding.
    "content-length not a number": request(b"POST / HTTP/1.1", b"Content-Length: abc"),
    "negative content-length": request(b"POST / HTTP/1.1", b"Content-Length: -1", data=b"x"),
    "signed content-length": request(b"POST / HTTP/1.1", b"Content-Length: +1", data=b"x"),
    "content-length list": request(b"POST / HTTP/1.1", b"Content-Length: 1, 1", data=b"x"),
    "conflicting content-length": request(
        b"POST / HTTP/1.1", b"Content-Length: 3", b"Content-Length: 5", data=b"abcde"
    ),
    "repeated content-length": request(
        b"POST / HTTP/1.1", b"Content-Length: 3", b"Content-Length: 3", data=b"abc"
    ),
    "content-length and chunked": request(
        b"POST / HTTP/1.1",
        b"Content-Length: 3",
        b"Transfer-Encoding: chunked",
        data=b"3\r\nabc\r\n0\r\n\r\n",
    ),
    "unknown transfer-encoding": request(
        b"POST / HTTP/1.1", b"Transfer-Encoding: gzip, chunked", data=b"0\r\n\r\n"
    ),
    "body shorter than content-length": request(
        b"POST / HTTP/1.1", b"Content-Length: 10", data=b"abc"
    ),
    # Chunked bodies.
    "chunk size not hex": request(
        b"POST / HTTP/1.1", b"Transfer-Encoding: chunked", data=b"zz\r\nabc\r\n0\r\n\r\n"
    ),
    "negative chunk size": request(
        b"POST / HTTP/1.1", b"Transfer-Encoding: chunked", data=b"-3\r\nabc\r\n0\r\n\r\n"
    ),
    "chunk without crlf": request(
        b"POST / HTTP/1.1", b"Transfer-Encoding: chunked", data=b"3\r\nabcdef\r\n0\r\n\r\n"
    ),
    "huge chunk size": request(
        b"POST / HTTP/1.1",
        b"Transfer-Encoding: chunked",
        data=b"ffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    ),
    "unterminated chunks": request(
        b"POST / HTTP/1.1", b"Transfer-Encoding: chunked", data=b"3\r\nabc\r\n"
    ),
    "huge trailer": request(
        b"POST / HTTP/1.1",
        b"Transfer-Encoding: chunked",
        data=b"0\r\nX: " + b"t" * 70_000 + b"\r\n\r\n",
    ),
}


@pytest.mark.parametrize("data", REJECTED.values(), ids=REJECTED.keys())
def test_rejected(server: TestServer, data: bytes) -> None:
    expect_rejected(server, data)


def test_bad_request_gets_400_not_a_closed_connection(server: TestServer) -> None:
    answer = expect_rejected(server, REJECTED["conflicting content-length"])
    assert status(answer) == 400


def test_rejected_without_half_close(server: TestServer) -> None:
    """The server closes on its own: the client need not end its side."""
    expect_rejected(server, REJECTED["http/2.0 version"], half_close=False)
    expect_rejected(server, REJECTED["501 headers"], half_close=False)


# -- answered and recorded --------------------------------------------------------------


def test_percent_encoded_non_utf8_path_and_query(server: TestServer) -> None:
    recorded = expect_answered(server, request(b"GET /caf%E9%FF?q=%FF%FE&%FF=x HTTP/1.1"))
    assert recorded["path"] == "/caf\ufffd\ufffd"
    assert recorded["args"]["q"] == "\ufffd\ufffd"
    assert recorded["args"]["\ufffd"] == "x"


def test_non_utf8_header_and_cookie_bytes(server: TestServer) -> None:
    recorded = expect_answered(
        server,
        request(b"GET / HTTP/1.1", b"X-Name: caf\xe9\xff", b"Cookie: a=\xfe\xff; b=\xc3; c"),
    )
    assert recorded["headers"]["X-Name"] == "caf\xe9\xff"  # latin-1 keeps every byte
    assert {name: c["value"] for name, c in recorded["cookies"].items()} == {
        "a": "\xfe\xff",
        "b": "\xc3",
    }


def test_non_utf8_form_body(server: TestServer) -> None:
    data = b"a=\xff\xfe&b=%FF&\xff=1&&=&c"
    recorded = expect_answered(
        server,
        request(
            b"POST / HTTP/1.1",
            b"Content-Type: application/x-www-form-urlencoded",
            b"Content-Length: %d" % len(data),
            data=data,
        ),
    )
    assert recorded["data"] == data
    assert recorded["args"]["a"] == "\ufffd\ufffd"
    assert recorded["args"]["b"] == "\ufffd"


def test_binary_body_kept_exactly(server: TestServer) -> None:
    data = bytes(range(256)) * 4
    recorded = expect_answered(
        server, request(b"PUT /bin HTTP/1.1", b"Content-Length: %d" % len(data), data=data)
    )
    assert recorded["data"] == data


MULTIPART = {
    "no final boundary": b'--XX\r\nContent-Disposition: form-data; name="f"\r\n\r\nvalue',
    "wrong boundary": b'--YY\r\nContent-Disposition: form-data; name="f"\r\n\r\nv\r\n--YY--\r\n',
    "no part headers end": b"--XX\r\nContent-Disposition: form-data; name=f\r\n",
    "no content-disposition": b"--XX\r\nX: y\r\n\r\nv\r\n--XX--\r\n",
    "non-utf8 names": b'--XX\r\nContent-Disposition: form-data; name="\xff"; '
    b'filename="\xfe.bin"\r\n\r\n\xff\xfe\r\n--XX--\r\n',
    "garbage": bytes(range(256)),
    "empty": b"",
    "only boundaries": b"--XX\r\n--XX\r\n--XX--\r\n",
}


@pytest.mark.parametrize("data", MULTIPART.values(), ids=MULTIPART.keys())
@pytest.mark.parametrize("content_type", [b"boundary=XX", b'boundary="XX"', b"boundary=", b""])
def test_broken_multipart_is_answered_and_kept_raw(
    server: TestServer, data: bytes, content_type: bytes
) -> None:
    recorded = expect_answered(
        server,
        request(
            b"POST /upload HTTP/1.1",
            b"Content-Type: multipart/form-data; " + content_type,
            b"Content-Length: %d" % len(data),
            data=data,
        ),
    )
    assert recorded["data"] == data
    assert recorded["path"] == "/upload"


def test_chunked_body_with_extensions_and_trailer(server: TestServer) -> None:
    recorded = expect_answered(
        server,
        request(
            b"POST / HTTP/1.1",
            b"Transfer-Encoding: chunked",
            data=b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
        ),
    )
    assert recorded["data"] == b"abcde"


def test_empty_bodies(server: TestServer) -> None:
    for head in (b"Content-Length: 0", b"Transfer-Encoding: chunked"):
        data = b"0\r\n\r\n" if b"chunked" in head else b""
        recorded = expect_answered(server, request(b"POST / HTTP/1.1", head, data=data))
        assert recorded["data"] == b""
    recorded = expect_answered(server, request(b"POST / HTTP/1.1"))  # no length at all
    assert recorded["data"] == b""


def test_500_headers_are_accepted(server: TestServer) -> None:
    recorded = expect_answered(
        server, request(b"GET / HTTP/1.1", *(b"X-%d: v" % i for i in range(500)))
    )
    assert len(recorded["headers"]) == 500


def test_obsolete_line_folding_is_joined(server: TestServer) -> None:
    recorded = expect_answered(server, request(b"GET / HTTP/1.1", b"X-Long: one", b"\t two"))
    assert recorded["headers"]["X-Long"] == "one two"


@pytest.mark.parametrize("method", [b"OPTIONS", b"GET"])
def test_star_target_is_recorded_and_answered_as_set(server: TestServer, method: bytes) -> None:
    """twisted.web would answer ``OPTIONS *`` itself, unrecorded."""
    recorded = expect_answered(server, request(method + b" * HTTP/1.1", b"Host: a"))
    assert recorded["path"] == "*"
    assert recorded["method"] == method.decode()


def test_http_1_0(server: TestServer) -> None:
    expect_answered(server, b"GET /old HTTP/1.0\r\n\r\n", half_close=False)


def test_50_mib_body(server: TestServer) -> None:
    data = b"0123456789abcdef" * (50 * 1024 * 1024 // 16)
    with connect(server.port, timeout=60) as sock:
        sock.sendall(b"POST /big HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(data))
        sock.sendall(data)
        answer = read_all(sock)
    assert status(answer) == 200
    recorded = snapshot(server)
    assert recorded["done"] is True
    assert len(recorded["data"]) == len(data)
    assert hashlib.sha256(recorded["data"]).digest() == hashlib.sha256(data).digest()
    del data, recorded
    check_serving(server)


# -- a byte at a time -------------------------------------------------------------------


def one_byte_pieces(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


@pytest.mark.parametrize(
    "data, expected_body",
    [
        (
            request(b"POST /slow?a=1 HTTP/1.1", b"X: y", b"Content-Length: 5", data=b"hello"),
            b"hello",
        ),
        (
            request(
                b"POST /slow HTTP/1.1",
                b"Transfer-Encoding: chunked",
                data=b"5\r\nhello\r\n0\r\n\r\n",
            ),
            b"hello",
        ),
    ],
    ids=["content-length", "chunked"],
)
def test_request_sent_a_byte_at_a_time(
    server: TestServer, data: bytes, expected_body: bytes
) -> None:
    recorded = expect_answered(server, b"", pieces=one_byte_pieces(data), half_close=False)
    assert recorded["path"] == "/slow"
    assert recorded["data"] == expected_body


def test_bad_request_sent_a_byte_at_a_time(server: TestServer) -> None:
    expect_rejected(server, b"", pieces=one_byte_pieces(REJECTED["conflicting content-length"]))


# -- generated ----------------------------------------------------------------------------


def mostly(common: st.SearchStrategy[bytes], rare: st.SearchStrategy[bytes]) -> Any:
    """``common`` four times out of five, else ``rare``."""
    return st.integers(0, 4).flatmap(lambda n: rare if n == 0 else common)


URL_TEXT = st.text("abcXYZ019/%?=&+;.-_~*:@!$'()", max_size=40).map(str.encode)
TOKEN = st.text("abcdefXYZ-_.!#$%&'*+^`|~0123456789", min_size=1, max_size=12).map(str.encode)
VALUE_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40).map(
    lambda text: text.encode("latin-1")
)
METHODS = mostly(
    st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH"]),
    st.sampled_from([b"PRI", b"get", b"CONNECT", b"X-CUSTOM"]) | st.binary(max_size=8),
)
VERSIONS = mostly(
    st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]),
    st.sampled_from([b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.1 ", b"HTTP/1.10", b""]),
)
TARGETS = mostly(
    URL_TEXT.map(lambda text: b"/" + text),
    st.sampled_from([b"*", b"http://example.com/x", b"", b"//"]) | st.binary(max_size=30),
)
HEADER_NAMES = mostly(
    st.sampled_from(
        [b"Host", b"Content-Length", b"Transfer-Encoding", b"Content-Type", b"Cookie", b"Expect"]
    )
    | TOKEN,
    st.binary(max_size=12),
)
HEADER_VALUES = mostly(
    st.sampled_from(
        [b"0", b"5", b"-1", b"chunked", b"multipart/form-data; boundary=B", b"100-continue"]
    )
    | VALUE_TEXT,
    st.binary(max_size=40),
)
HEADERS = st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8)
BODIES = st.binary(max_size=200) | st.sampled_from(
    [b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n", b"--B\r\n\r\nx\r\n--B--\r\n"]
)


@st.composite
def raw_requests(draw: Callable[..., Any]) -> bytes:
    """A request that is close to valid, then maybe cut or spliced with junk."""
    line = b" ".join([draw(METHODS), draw(TARGETS), draw(VERSIONS)])
    headers = [name + b": " + value for name, value in draw(HEADERS)]
    data = b"\r\n".join([line, *headers, b"", draw(BODIES)])
    mutation = draw(st.sampled_from(["none"] * 4 + ["cut", "splice", "lf", "random"]))
    if mutation == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif mutation == "splice":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=20)) + data[at:]
    elif mutation == "lf":
        data = data.replace(b"\r\n", b"\n")
    elif mutation == "random":
        data = draw(st.binary(max_size=300))
    return data


@settings(
    max_examples=150,
    deadline=None,
    # One server for every example, on purpose: it must survive them all.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=raw_requests())
def test_generated_requests(server: TestServer, data: bytes) -> None:
    assume(not wrong_protocol(data))
    count = len(server.requests)
    before = snapshot(server)
    answer = exchange(server.port, data)
    code = status(answer)
    event(f"status {code}")
    # An answer is a whole response: 200 for what the server took, 4xx for the rest.
    assert code in (None, 200) or 400 <= code < 500, answer[:200]
    if code is None:
        assert closed_unanswered(answer), answer[:200]
    recorded = snapshot(server)
    if code == 200:
        # The same connection cannot carry a second request: no keep-alive.
        assert len(server.requests) == count + 1
        assert recorded["done"] is True
    else:
        assert len(server.requests) == count
        assert recorded == before
    for entry in server.requests[count:]:  # every recorded request decodes
        assert entry["method"]
    check_serving(server)


@pytest.fixture(scope="module", params=ENGINES)
def kept_alive(request: pytest.FixtureRequest) -> Iterator[TestServer]:
    """A keep-alive server per engine for the whole module."""
    server = TestServer(engine=request.param)
    server.start(keep_alive=True)
    server.response["data"] = b"ok"
    yield server
    server.stop()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=raw_requests(), repeat=st.integers(1, 3))
def test_generated_requests_on_kept_alive_connections(
    kept_alive: TestServer, logged_errors: list[Any], data: bytes, repeat: int
) -> None:
    """
    With keep-alive one connection carries what follows a request: every
    response is still a 200 or a 4xx, and each 200 is one recorded request.
    """
    assume(not wrong_protocol(data))
    count = len(kept_alive.requests)
    answer = exchange(kept_alive.port, data * repeat)
    codes = [code for code in statuses(answer) if code != 100]
    event(f"{len(codes)} responses")
    assert all(code == 200 or 400 <= code < 500 for code in codes), answer[:300]
    assert len(kept_alive.requests) == count + codes.count(200)
    for entry in kept_alive.requests[count:]:
        assert entry["method"]
    check_serving(kept_alive)
    assert server_log_errors(kept_alive) == []
