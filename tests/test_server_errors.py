"""
Server-side errors: ``server.errors`` and ``server.check()``, in every
engine. What goes wrong while answering (a callback that raises or returns
something unusable, an iterator that runs out) is recorded with the request
that caused it, and ``check()`` raises ``ServerSideError`` naming each.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Iterator
from typing import Any
from urllib.request import Request, urlopen

import pytest

from txtestserver import ServerSideError, TestServer, TestServerError
from txtestserver._http.answers.static import EXHAUSTED_PROBLEM

pytestmark = pytest.mark.usefixtures("quiet_errors")


@pytest.fixture
def server(engine: str) -> Iterator[TestServer]:
    """
    A server of its own for each test (not the module's shared one): these
    tests cause errors on purpose, and what a server process logs reaches
    this process only by its stop, before :func:`quiet_errors` forgets it.
    """
    with TestServer(engine=engine) as server:
        yield server


@pytest.fixture
def quiet_errors(logged_errors: list[dict[str, Any]]) -> Iterator[None]:
    """These tests cause errors on purpose: what is logged for them is expected."""
    yield
    logged_errors.clear()


def fetch(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    try:
        with urlopen(Request(url, data=data), timeout=10) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()


def test_no_error_no_exception(server: TestServer) -> None:
    fetch(server.get_url())
    assert list(server.errors) == []
    assert len(server.errors) == 0
    server.check()


def test_a_callback_that_raises(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:raises"
    assert fetch(server.get_url("/boom?x=1"), data=b"payload")[0] == 500
    [error] = server.errors
    assert error["message"] == "response['callback'] raised ValueError: callback exploded"
    assert "Traceback" in error["traceback"]
    assert "tests/callbacks.py" in error["traceback"]
    assert error["request"]["path"] == "/boom"
    assert error["request"]["data"] == b"payload"
    assert error["request"]["response_code"] == 500
    with pytest.raises(ServerSideError) as raised:
        server.check()
    message = str(raised.value)
    assert message.startswith("the server had 1 error while answering (oldest first):")
    assert (
        "1. POST /boom?x=1 HTTP/1.1: response['callback'] raised ValueError: callback exploded"
        in message
    )
    assert 'raise ValueError("callback exploded")' in message
    assert raised.value.errors == [error]
    assert isinstance(raised.value, TestServerError)
    # check() forgets what it reported.
    assert list(server.errors) == []
    server.check()


def test_a_callback_that_returns_something_unusable(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:returns_number"
    fetch(server.get_url("/n"))
    [error] = server.errors
    assert error["message"].startswith("response['callback'] returned int")
    assert error["traceback"] is None
    assert error["request"]["path"] == "/n"


def test_errors_are_kept_oldest_first_with_their_requests(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:raises"
    fetch(server.get_url("/first"))
    server.response["callback"] = None
    fetch(server.get_url("/fine"))
    server.response["callback"] = "tests.callbacks:returns_number"
    fetch(server.get_url("/second"))
    assert [e["request"]["path"] for e in server.errors] == ["/first", "/second"]
    with pytest.raises(ServerSideError, match=r"(?s)had 2 errors.*1\. GET /first.*2\. GET /second"):
        server.check()


def test_an_exhausted_iterator() -> None:
    # Issue 12: test_server's 405 answer (it was a 500 before); issue 19: and a
    # server-side error too, so that check() and the fixtures report it.
    with TestServer() as server:  # iterators stay in the test process: thread engine
        server.response["data"] = iter([b"one"])
        assert fetch(server.get_url("/1")) == (200, b"one")
        assert fetch(server.get_url("/2")) == (405, b"data generator has no more data")
        [error] = server.errors
        assert error["message"] == EXHAUSTED_PROBLEM
        assert "exhausted" in error["message"] and "405" in error["message"]
        assert error["request"]["path"] == "/2"
        with pytest.raises(ServerSideError, match="iterator is exhausted"):
            server.check()


def test_an_iterator_item_that_is_not_bytes() -> None:
    with TestServer() as server:
        server.response["data"] = iter([42])
        assert fetch(server.get_url("/2"))[0] == 500
        [error] = server.errors
        assert error["message"] == "response['data'] iterator gave int, not bytes or str"
        assert error["request"]["path"] == "/2"


def test_an_error_during_a_sleep_is_recorded_with_its_request(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:raises"
    server.response["sleep"] = 0.05
    fetch(server.get_url("/slept"))
    assert [e["request"]["path"] for e in server.errors] == ["/slept"]


def test_a_failing_deferred_callback() -> None:
    from twisted.internet.defer import fail

    with TestServer() as server:
        server.response["callback"] = lambda request: fail(RuntimeError("later"))
        fetch(server.get_url("/d"))
        [error] = server.errors
        assert error["message"] == "response['callback'] raised RuntimeError: later"
        assert error["request"]["path"] == "/d"


def test_reset_and_clear_forget_errors(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:raises"
    fetch(server.get_url())
    assert len(server.errors) == 1
    server.errors.clear()
    assert len(server.errors) == 0
    server.response["callback"] = "tests.callbacks:raises"
    fetch(server.get_url())
    server.reset()
    assert len(server.errors) == 0
    server.check()


def test_errors_survive_stop(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start()
    server.response["callback"] = "tests.callbacks:raises"
    fetch(server.get_url("/x"))
    server.stop()
    assert [e["request"]["path"] for e in server.errors] == ["/x"]
    with pytest.raises(ServerSideError):
        server.check()


def test_the_request_of_an_error_is_decoded_with_request_charset(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:raises"
    fetch(server.get_url("/%E9t%E9"))
    server.request["charset"] = "latin-1"
    assert server.errors[0]["request"]["path"] == "/été"
    server.request["charset"] = "utf-8"
