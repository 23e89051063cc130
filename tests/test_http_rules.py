"""
Answers the HTTP rules forbid (issue 19, defect 9): header and cookie
values with control characters, NEL or U+2028 are refused when set, naming
the character; 1xx, 204 and 304 answers carry no body and no
``Content-Length``, and a body set for them is a clear server-side error
(RFC 9110).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests._raw import exchange
from txtestserver import TestServer, TestServerError


@pytest.mark.parametrize(
    ("char", "shown"),
    [
        ("\x00", "'\\x00' (U+0000)"),
        ("\x07", "'\\x07' (U+0007)"),
        ("\x7f", "'\\x7f' (U+007F)"),
        ("\x85", "'\\x85' (U+0085)"),
        ("\u2028", "'\\u2028' (U+2028)"),
    ],
    ids=["NUL", "BEL", "DEL", "NEL", "LS"],
)
@pytest.mark.parametrize("key", ["headers", "cookies", "get.headers"])
def test_forbidden_characters_in_values_are_refused_when_set(
    server: TestServer, key: str, char: str, shown: str
) -> None:
    with pytest.raises(TestServerError) as raised:
        server.response[key] = {"X-Name": f"a{char}b"}
    message = str(raised.value)
    assert f"the value of 'X-Name' contains {shown} at position 1" in message
    assert "response['raw']" in message
    with pytest.raises(TestServerError, match=r"U\+0000"):
        server.route("/r").response["headers"] = {"X-Name": "\x00"}
    # A tab, and any other character, stays allowed.
    server.response[key] = {"X-Name": "a\tb café"}
    assert requests.get(server.get_url(), timeout=10).ok


@pytest.mark.parametrize("code", [204, 304, 100, 103])
def test_bodiless_codes_send_neither_body_nor_length(server: TestServer, code: int) -> None:
    server.response["code"] = code
    answer = exchange(server.port or 0, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % code)
    assert b"content-length" not in head.lower()
    assert b"transfer-encoding" not in head.lower()
    assert body == b""
    assert list(server.errors) == []


@pytest.mark.parametrize("code", [204, 304, 101])
@pytest.mark.parametrize(
    ("key", "value"), [("data", b"hello world!"), ("json", {"a": 1}), ("chunks", [b"a"])]
)
def test_a_body_set_for_a_bodiless_code_is_a_server_side_error(
    server: TestServer, code: int, key: str, value: Any
) -> None:
    server.response["code"] = code
    server.response[key] = value
    answer = requests.get(server.get_url("/x"), timeout=10)
    assert answer.status_code == 500
    expected = f"response['code'] {code} has no body (RFC 9110"
    assert expected in answer.text
    (error,) = list(server.errors)
    assert expected in error["message"] and f"response['{key}']" in error["message"]
    server.errors.clear()
