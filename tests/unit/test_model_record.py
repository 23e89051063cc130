"""Decoding a recorded request, without a server: odd and hostile input."""

from __future__ import annotations

from txtestserver._model.record import outcome, parse


def record(uri: bytes = b"/", headers: bytes = b"", body: bytes = b"", method: bytes = b"GET"):
    return (
        method,
        uri,
        headers,
        body,
        "127.0.0.1",
        b"HTTP/1.1",
        0.0,
        1,
        (None, "http", "127.0.0.1:8080", None),
        *outcome(True, 200, None, None, None),
    )


def test_invalid_bytes_in_path_and_query_do_not_raise() -> None:
    request = parse(record(b"/\xff%FF?a=%FF%FE&\xff=1&&=x&flag"), "utf-8")
    assert request["path"] == "/\ufffd\ufffd"
    assert request["args"]["a"] == "\ufffd\ufffd"
    assert request["args"]["flag"] == ""
    assert request["args"][""] == "x"


def test_header_that_is_not_utf8_falls_back_to_latin1() -> None:
    request = parse(record(headers=b"X-Name: caf\xe9\r\nX-Name: two\r\n"), "utf-8")
    assert request["headers"].getall("x-name") == ["café", "two"]


def test_cookies_quoted_repeated_and_broken() -> None:
    request = parse(record(headers=b'Cookie: a=1; b="two"; broken; =x\r\nCookie: c=3\r\n'), "utf-8")
    assert {name: c["value"] for name, c in request["cookies"].items()} == {
        "a": "1",
        "b": "two",
        "c": "3",
    }


def test_broken_multipart_keeps_raw_body() -> None:
    body = b'--XX\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\nunfinished'
    request = parse(
        record(
            headers=b"Content-Type: multipart/form-data; boundary=XX\r\n",
            body=body,
            method=b"POST",
        ),
        "utf-8",
    )
    assert request["data"] == body
    assert request["files"] == {}


def test_multipart_without_boundary() -> None:
    request = parse(
        record(headers=b"Content-Type: multipart/form-data\r\n", body=b"x", method=b"POST"),
        "utf-8",
    )
    assert request["files"] == {} and request["data"] == b"x"
