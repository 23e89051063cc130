"""
Strict mode (``strict=True``), in every engine: a request that nothing the
test set expects is answered ``404`` naming the closest route and how the
request differs from it, and recorded as a server-side error; ``check()``
also reports queued and ``response_once`` answers never used. What a test
did set up (a route, a queued answer, ``response_once``, ``response``)
answers as without strict mode.
"""

from __future__ import annotations

import json
import re
import urllib.error
from collections.abc import Iterator
from typing import Any
from urllib.request import Request, urlopen

import pytest

from txtestserver import ServerSideError, TestServer, TestServerError

pytestmark = pytest.mark.usefixtures("quiet_errors")


@pytest.fixture
def quiet_errors(logged_errors: list[dict[str, Any]]) -> Iterator[None]:
    """Unexpected requests are logged as errors on purpose here."""
    yield
    logged_errors.clear()


@pytest.fixture
def strict(engine: str) -> Iterator[TestServer]:
    server = TestServer(engine=engine, strict=True)
    server.start()
    yield server
    server.stop()


def fetch(
    url: str, data: bytes | None = None, method: str | None = None, **headers: str
) -> tuple[int, bytes]:
    try:
        with urlopen(Request(url, data=data, method=method, headers=headers), timeout=10) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        with e:
            return int(e.code), e.read()


def test_strict_is_checked() -> None:
    with pytest.raises(TestServerError, match="strict must be True or False, not 'yes'"):
        TestServer(strict="yes")  # type: ignore[arg-type]


def test_a_request_nothing_expects_is_a_404_and_an_error(strict: TestServer) -> None:
    status, body = fetch(strict.get_url("/nowhere?x=1"))
    assert status == 404
    assert body.decode() == (
        "txtestserver: unexpected request (strict mode): no route, queued answer, "
        "response_once or response value expects it, and there is no route\n"
    )
    [error] = strict.errors
    assert error["request"]["path"] == "/nowhere"
    assert error["request"]["response_code"] == 404
    with pytest.raises(ServerSideError, match=r"1\. GET /nowhere\?x=1 HTTP/1\.1: unexpected"):
        strict.check()


def test_the_message_names_the_closest_route_and_the_differences(strict: TestServer) -> None:
    strict.route("/api/items", method="GET", name="items")
    strict.route("/api/token", method="POST", query={"grant": "code"}, name="token")
    status, body = fetch(strict.get_url("/api/token?grant=password"), data=b"x")
    assert status == 404
    message = body.decode()
    assert "no route matches it; the closest is route 'token' (POST /api/token query=" in message
    assert "query field grant='password' (the route wants 'code')" in message
    status, body = fetch(strict.get_url("/api/token?grant=code"))  # a GET
    assert "method GET (the route wants POST)" in body.decode()
    status, body = fetch(strict.get_url("/api/items"), data=b"x")  # a POST
    assert "the closest is route 'items' (GET /api/items): method POST" in body.decode()
    assert [e["request"]["path"] for e in strict.errors] == ["/api/token"] * 2 + ["/api/items"]
    strict.errors.clear()


@pytest.mark.parametrize(
    ("route", "send", "difference"),
    [
        (
            {"path": "/login", "headers": {"Accept": "application/json"}},
            {"path": "/login", "headers": {"Accept": "text/html"}},
            "header Accept='text/html' (the route wants 'application/json')",
        ),
        (
            {"path": "/login", "headers": {"X-Token": "t"}},
            {"path": "/login"},
            "no header 'X-Token' (the route wants 't')",
        ),
        (
            {"path": "/login", "method": "POST", "json": {"user": "ada"}},
            {"path": "/login", "data": json.dumps({"user": "bob"}).encode()},
            'the JSON body {"user": "bob"} (the route wants {"user": "ada"})',
        ),
        (
            {"path": "/login", "method": "POST", "json": {"user": "ada"}},
            {"path": "/login", "data": b"user=ada"},
            "a body that is not JSON",
        ),
        (
            {"path": re.compile(r"/items/\d+")},
            {"path": "/items/abc"},
            "path '/items/abc' does not match the route's pattern '/items/\\\\d+'",
        ),
        (
            {"path": "/items"},
            {"path": "/item"},
            "path '/item' (the route wants '/items')",
        ),
    ],
    ids=["header-value", "header-missing", "json-differs", "not-json", "pattern", "path"],
)
def test_each_kind_of_difference(
    strict: TestServer, route: dict[str, Any], send: dict[str, Any], difference: str
) -> None:
    conditions = dict(route)
    strict.route(conditions.pop("path"), **conditions)
    status, body = fetch(
        strict.get_url(send["path"]),
        data=send.get("data"),
        **send.get("headers", {}),
    )
    assert status == 404
    assert difference in body.decode()
    strict.errors.clear()


def test_what_a_test_set_up_is_expected(strict: TestServer) -> None:
    strict.route("/routed").response["data"] = b"route"
    assert fetch(strict.get_url("/routed")) == (200, b"route")
    strict.add_response(data=b"queued")
    assert fetch(strict.get_url("/any")) == (200, b"queued")
    strict.response_once["data"] = b"once"
    assert fetch(strict.get_url("/any")) == (200, b"once")
    assert fetch(strict.get_url("/any"))[0] == 404  # all used up
    strict.response["post.data"] = b"posted"
    assert fetch(strict.get_url("/any"), data=b"x") == (200, b"posted")
    assert fetch(strict.get_url("/any"))[0] == 404  # a GET: no response key applies
    strict.response["data"] = b"everything"
    assert fetch(strict.get_url("/any")) == (200, b"everything")
    assert [e["request"]["method"] for e in strict.errors] == ["GET", "GET"]
    strict.errors.clear()


def test_check_reports_answers_never_used(strict: TestServer) -> None:
    strict.response_once["data"] = b"never sent"
    strict.add_response(code=503, count=2)
    token = strict.route("/token", name="token")
    token.add_response(code=201)
    token.response_once["code"] = 202
    with pytest.raises(ServerSideError) as raised:
        strict.check()
    message = str(raised.value)
    assert "response_once['data'] was never used" in message
    assert "a queued answer (code=503) was not used up: 2 left" in message
    assert "route 'token': a queued answer (code=201) was not used up: 1 left" in message
    assert "route 'token': response_once['code'] was never used" in message
    assert all(error["request"] is None for error in raised.value.errors)


def test_without_strict_unused_answers_are_not_errors(server: TestServer) -> None:
    server.response_once["data"] = b"never sent"
    server.add_response(code=503)
    assert fetch(server.get_url("/nowhere"))[0] == 503
    server.check()


def test_the_closest_route_shares_the_path_first(strict: TestServer) -> None:
    strict.route("/api/token", method="POST", json={"user": "ada"}, headers={"Accept": "a/b"})
    strict.route("/api/items", method="GET")  # later, but its path differs
    status, body = fetch(
        strict.get_url("/api/token"), data=json.dumps({"user": "bob"}).encode(), Accept="c/d"
    )
    assert status == 404
    message = body.decode()
    assert "the closest is route \"POST /api/token headers={'Accept': 'a/b'}" in message
    assert "header Accept='c/d' (the route wants 'a/b')" in message
    assert 'the JSON body {"user": "bob"} (the route wants {"user": "ada"})' in message
    strict.errors.clear()
