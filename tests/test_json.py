"""
``response['json']`` wherever a response key can be set, and
``request['json']``, end to end in every engine.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from txtestserver import TestServer, TestServerError

VALUE = {"name": "Ада", "tags": ["a", "b"], "n": 1.5, "ok": True, "none": None}


def _response(server: TestServer) -> str:
    server.response["json"] = VALUE
    return "/"


def _response_once(server: TestServer) -> str:
    server.response_once["json"] = VALUE
    return "/"


def _method_specific(server: TestServer) -> str:
    server.response["json"] = {"for": "other methods"}
    server.response["get.json"] = VALUE
    return "/"


def _route_response(server: TestServer) -> str:
    server.route("/r").response["json"] = VALUE
    return "/r"


def _route_once(server: TestServer) -> str:
    server.route("/r").response_once["json"] = VALUE
    return "/r"


def _server_queue(server: TestServer) -> str:
    server.add_response(json=VALUE)
    return "/"


def _route_queue(server: TestServer) -> str:
    server.route("/r").add_response(json=VALUE)
    return "/r"


WHERE: dict[str, Callable[[TestServer], str]] = {
    "response": _response,
    "response_once": _response_once,
    "get.json": _method_specific,
    "route.response": _route_response,
    "route.response_once": _route_once,
    "server queue": _server_queue,
    "route queue": _route_queue,
}


@pytest.mark.parametrize("where", WHERE)
def test_json_is_sent_wherever_it_is_set(server: TestServer, where: str) -> None:
    path = WHERE[where](server)
    answer = requests.get(server.get_url(path), timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == VALUE
    text = '{"name": "Ада", "tags": ["a", "b"], "n": 1.5, "ok": true, "none": null}'
    assert answer.content == text.encode()


def test_json_wins_over_data_and_keeps_code_headers_cookies(server: TestServer) -> None:
    server.response["data"] = b"not this"
    server.response["json"] = [1, 2]
    server.response["code"] = 201
    server.response["headers"] = {"X-Extra": "1"}
    server.response["cookies"] = {"c": "v"}
    answer = requests.get(server.get_url(), timeout=10)
    assert (answer.status_code, answer.json()) == (201, [1, 2])
    assert answer.headers["X-Extra"] == "1"
    assert answer.headers["Set-Cookie"] == "c=v"
    del server.response["json"]
    assert requests.get(server.get_url(), timeout=10).content == b"not this"


def test_json_content_type_set_by_the_test_is_kept(server: TestServer) -> None:
    server.response["json"] = {"a": 1}
    server.response["headers"] = [("content-type", "application/vnd.api+json")]
    answer = requests.get(server.get_url(), timeout=10)
    assert answer.headers["Content-Type"] == "application/vnd.api+json"
    assert answer.json() == {"a": 1}


def test_json_is_encoded_with_the_charset(server: TestServer) -> None:
    server.response["charset"] = "cp1251"
    server.response["json"] = {"name": "Ада"}
    answer = requests.get(server.get_url(), timeout=10)
    assert answer.headers["Content-Type"] == "application/json; charset=cp1251"
    assert answer.content == '{"name": "Ада"}'.encode("cp1251")
    server.response["charset"] = "latin-1"  # cannot encode Cyrillic: \\u escapes
    answer = requests.get(server.get_url(), timeout=10)
    assert answer.content == b'{"name": "\\u0410\\u0434\\u0430"}'
    assert answer.json() == {"name": "Ада"}


def test_json_value_is_stored_as_json_data(server: TestServer) -> None:
    server.response["json"] = {"t": (1, 2), 3: "int key"}
    assert server.response["json"] == {"t": [1, 2], "3": "int key"}
    assert requests.get(server.get_url(), timeout=10).json() == {"t": [1, 2], "3": "int key"}


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", float("nan"), object()])
def test_json_that_is_not_json_data_is_refused(server: TestServer, value: object) -> None:
    with pytest.raises(TestServerError, match=r"response\['json'\] must be JSON data"):
        server.response["json"] = value


def test_json_null_is_no_json(server: TestServer) -> None:
    server.response["json"] = None
    server.response["data"] = b"data"
    assert requests.get(server.get_url(), timeout=10).content == b"data"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": [1, 2]}', {"a": [1, 2]}),
        (b"[1, 2]", [1, 2]),
        (b'"text"', "text"),
        ('{"name": "Ада"}'.encode(), {"name": "Ада"}),
        ('{"u16": 1}'.encode("utf-16"), {"u16": 1}),
        (b"not json", None),
        (b"{broken", None),
        (b"\xff\xfe\xfd", None),
        (b"", None),
    ],
)
def test_request_json(server: TestServer, body: bytes, expected: object) -> None:
    requests.post(server.get_url(), data=body, timeout=10)
    assert server.request["json"] == expected
    assert server.requests[-1]["json"] == expected


def test_request_json_before_any_request(server: TestServer) -> None:
    assert server.request["json"] is None
