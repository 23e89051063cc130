"""
Transport edges of issue 19 (defect 17): a request whose lines end with a
bare LF is answered (RFC 9112, 2.2 allows reading it) instead of hanging;
a line longer than the header budget is still closed, and now leaves a
server-side error naming ``header_size_limit``.
"""

from __future__ import annotations

import pytest

from tests._raw import body, exchange, status
from txtestserver import TestServer
from txtestserver._http.site import LINE_TOO_LONG


@pytest.mark.parametrize(
    "head",
    [
        b"GET /lf?a=1 HTTP/1.1\nHost: x\nX-Name: v\n\n",
        b"GET /lf?a=1 HTTP/1.1\r\nHost: x\nX-Name: v\r\n\n",  # mixed
    ],
    ids=["bare-LF", "mixed"],
)
def test_bare_lf_line_endings_are_answered(server: TestServer, head: bytes) -> None:
    server.response["data"] = b"read"
    answer = exchange(server.port or 0, head, timeout=5)  # no hang: answered at once
    assert (status(answer), body(answer)) == (200, b"read")
    request = server.request
    assert (request["path"], request["args"]["a"]) == ("/lf", "1")
    assert request["headers"]["X-Name"] == "v"
    assert list(server.errors) == []


def test_a_bare_lf_body_is_kept_as_sent(server: TestServer) -> None:
    data = b"POST /p HTTP/1.1\nHost: x\nContent-Length: 5\n\na\nb\r\n"
    answer = exchange(server.port or 0, data, timeout=5)
    assert status(answer) == 200
    assert server.request["data"] == b"a\nb\r\n"


def test_a_line_over_the_limit_is_closed_and_recorded(server: TestServer) -> None:
    line = b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert exchange(server.port or 0, line, timeout=5) == b""  # closed, as before
    assert len(server.requests) == 0
    (error,) = list(server.errors)
    assert error["message"] == LINE_TOO_LONG.format(limit=65536)
    assert "header_size_limit" in error["message"] and error["request"] is None
    server.errors.clear()
    assert status(exchange(server.port or 0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")) == 200
