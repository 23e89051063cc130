"""
The waits of the blocking face (``wait_request``, ``wait_requests``,
``wait_for``) over real sockets, in every engine: waits that begin before
the client sends, waits over requests answered already, timeouts whose
message says what did arrive, and waits interrupted halfway that leave
nothing behind.
"""

from __future__ import annotations

import re
import signal
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from typing import Any
from urllib.request import Request, urlopen

import pytest

from txtestserver import TestServer, TestServerError, WaitTimeoutError


def fetch(url: str, data: bytes | None = None) -> int:
    try:
        with urlopen(Request(url, data=data), timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as e:
        e.read()
        return int(e.code)


def arrived(server: TestServer, count: int) -> None:
    """Until ``count`` requests are recorded (answered or not: no wait covers that)."""
    deadline = time.monotonic() + 10
    while len(server.requests) < count:
        assert time.monotonic() < deadline, f"{count} requests did not arrive"
        time.sleep(0.005)


def in_background(function: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=function, daemon=True)
    thread.start()
    return thread


def pending_waits(server: TestServer) -> list[Any]:
    """The waits the server still holds, and their timers in its reactor."""
    timers = [
        call
        for call in server._reactor.getDelayedCalls()  # type: ignore[attr-defined]
        if getattr(call.func, "__name__", "") == "_timed_out"
        and getattr(call.func, "__self__", None) is server._waits
    ]
    return [*server._waits._pending, *timers]


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event a client thread waits on before it sends; set at teardown too."""
    event = threading.Event()
    yield event
    event.set()


# -- wait_requests ---------------------------------------------------------------------


def test_wait_requests_begun_before_the_client_sends(
    server: TestServer, release: threading.Event
) -> None:
    def client() -> None:
        release.wait(10)
        for n in range(3):
            fetch(server.get_url(f"/{n}"))

    thread = in_background(client)
    # The wait begins before anything is sent: the client waits for it.
    threading.Timer(0.05, release.set).start()
    requests = server.wait_requests(3, timeout=10)
    thread.join(10)
    assert [r["path"] for r in requests] == ["/0", "/1", "/2"]
    assert all(r["response_code"] == 200 for r in requests)


def test_wait_requests_counts_requests_answered_before_it(server: TestServer) -> None:
    for n in range(2):
        fetch(server.get_url(f"/{n}"))
    assert [r["path"] for r in server.wait_requests(2, timeout=0)] == ["/0", "/1"]
    # Only the first ``count`` are returned, oldest first.
    assert [r["path"] for r in server.wait_requests(1, timeout=0)] == ["/0"]


def test_wait_requests_counts_from_reset(server: TestServer) -> None:
    fetch(server.get_url("/before"))
    server.reset()
    thread = in_background(lambda: fetch(server.get_url("/after")))
    requests = server.wait_requests(1, timeout=10)
    thread.join(10)
    assert [r["path"] for r in requests] == ["/after"]


def test_wait_requests_timeout_says_what_arrived(server: TestServer) -> None:
    fetch(server.get_url("/only?x=1"), data=b"body")
    with pytest.raises(WaitTimeoutError) as raised:
        server.wait_requests(3, timeout=0.1)
    message = str(raised.value)
    assert "wait_requests(3): 1 of the 3 requests waited for was answered within 0.1 s" in message
    assert "1 request arrived since start or reset" in message
    assert "'POST /only?x=1 HTTP/1.1' (answered 200)" in message
    assert pending_waits(server) == []


def test_a_timeout_with_nothing_arrived_names_the_url(server: TestServer) -> None:
    with pytest.raises(WaitTimeoutError) as raised:
        server.wait_requests(1, timeout=0.05)
    assert "no request arrived since start or reset" in str(raised.value)
    assert server.get_url() in str(raised.value)


def test_a_timeout_quotes_the_last_three_request_lines(server: TestServer) -> None:
    for n in range(5):
        fetch(server.get_url(f"/{n}"))
    with pytest.raises(WaitTimeoutError) as raised:
        server.wait_requests(6, timeout=0.05)
    message = str(raised.value)
    assert "5 requests arrived since start or reset; the last: 'GET /2 HTTP/1.1'" in message
    assert "'GET /1 " not in message


# -- wait_for ----------------------------------------------------------------------------


def test_wait_for_a_request_still_to_come(server: TestServer, release: threading.Event) -> None:
    def client() -> None:
        release.wait(10)
        for path in ["/a", "/done?n=1", "/b", "/done?n=2"]:
            fetch(server.get_url(path))

    thread = in_background(client)
    threading.Timer(0.05, release.set).start()
    request = server.wait_for(lambda r: r["path"] == "/done", timeout=10)
    thread.join(10)
    assert request["args"]["n"] == "1"  # the first that matched


def test_wait_for_counts_requests_answered_before_it(server: TestServer) -> None:
    fetch(server.get_url("/x"), data=b"first")
    fetch(server.get_url("/x"), data=b"second")
    assert server.wait_for(lambda r: r["path"] == "/x", timeout=0)["data"] == b"first"


def test_wait_for_timeout_says_what_arrived(server: TestServer) -> None:
    fetch(server.get_url("/other"))

    def is_done(request: dict[str, Any]) -> bool:
        return bool(request["path"] == "/done")

    with pytest.raises(WaitTimeoutError) as raised:
        server.wait_for(is_done, timeout=0.1)
    message = str(raised.value)
    assert "wait_for(is_done): no answered request matched within 0.1 s" in message
    assert "'GET /other HTTP/1.1' (answered 200)" in message


def test_an_exception_in_the_predicate_is_raised_by_wait_for(server: TestServer) -> None:
    fetch(server.get_url("/x"))
    with pytest.raises(KeyError, match="no-such-key"):
        server.wait_for(lambda r: r["no-such-key"], timeout=1)
    assert pending_waits(server) == []


def test_an_exception_in_the_predicate_later_is_raised_too(server: TestServer) -> None:
    def predicate(request: dict[str, Any]) -> bool:
        if request["path"] == "/bad":
            raise ValueError("predicate failed on /bad")
        return False

    thread = in_background(lambda: fetch(server.get_url("/bad")))
    with pytest.raises(ValueError, match="predicate failed on /bad"):
        server.wait_for(predicate, timeout=10)
    thread.join(10)
    assert pending_waits(server) == []


# -- wait_request ------------------------------------------------------------------------


def test_wait_request_timeout_names_the_request_in_progress(server: TestServer) -> None:
    server.response["sleep"] = 5

    def client() -> None:
        try:
            fetch(server.get_url("/slow"))
        except OSError:
            pass  # the server stops before it answers

    thread = in_background(client)
    arrived(server, 1)
    with pytest.raises(WaitTimeoutError) as raised:
        server.wait_request(0.1)
    message = str(raised.value)
    assert "wait_request(): no request was answered within 0.1 s" in message
    assert "1 request arrived since start or reset; it: 'GET /slow HTTP/1.1'" in message
    assert "(not answered yet)" in message
    server.stop()
    thread.join(10)


# -- arguments, lifecycle ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.wait_requests(0), r"wait_requests\(count\) must be an int of at least 1"),
        (lambda s: s.wait_requests("2"), r"must be an int of at least 1, not '2'"),
        (lambda s: s.wait_requests(True), r"must be an int of at least 1, not True"),
        (lambda s: s.wait_requests(1, float("inf")), r"wait_requests\(timeout\) must be a finite"),
        (lambda s: s.wait_for("path"), r"wait_for\(\) takes a function of the request"),
        (lambda s: s.wait_for(bool, -1), r"wait_for\(timeout\) must be a finite number"),
    ],
)
def test_bad_arguments_are_clear_errors(
    server: TestServer, call: Callable[[TestServer], Any], message: str
) -> None:
    with pytest.raises(TestServerError, match=message):
        call(server)


def test_waits_need_a_running_server() -> None:
    server = TestServer()
    with pytest.raises(TestServerError, match=r"wait_requests\(\) needs a running server"):
        server.wait_requests(1)
    with pytest.raises(TestServerError, match=r"wait_for\(\) needs a running server"):
        server.wait_for(bool)


def test_stop_fails_a_pending_wait(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start()
    failures: list[BaseException] = []

    def wait() -> None:
        try:
            server.wait_requests(1, timeout=30)
        except TestServerError as e:
            failures.append(e)

    thread = in_background(wait)
    deadline = threading.Event()
    while not server._waits._pending and not deadline.wait(0.005):
        pass
    server.stop()
    thread.join(10)
    assert [str(e) for e in failures] == ["the server was stopped while waiting for a request"]


class Interrupted(Exception):
    pass


def test_a_blocking_wait_interrupted_halfway_leaves_nothing_behind(server: TestServer) -> None:
    """A signal handler that raises (as Ctrl-C does) ends the wait in the reactor too."""

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted()

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            server.wait_requests(2, timeout=30)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # Calls into the reactor run in order: once this one is done, so is the cancel.
    fetch(server.get_url("/after"))
    assert [r["path"] for r in server.wait_requests(1, timeout=5)] == ["/after"]
    assert pending_waits(server) == []


# -- route.wait ------------------------------------------------------------------------------


def test_route_wait_begun_before_the_client_sends(
    server: TestServer, release: threading.Event
) -> None:
    token = server.route("/token", method="POST", name="token")
    token.response["data"] = b"t"

    def client() -> None:
        release.wait(10)
        fetch(server.get_url("/other"))
        fetch(server.get_url("/token"), data=b"first")
        fetch(server.get_url("/token"))  # a GET: not the route's
        fetch(server.get_url("/token"), data=b"second")

    thread = in_background(client)
    threading.Timer(0.05, release.set).start()
    requests = token.wait(count=2, timeout=10)
    thread.join(10)
    assert [r["data"] for r in requests] == [b"first", b"second"]
    assert {r["route"] for r in requests} == {"token"}
    assert [r["data"] for r in token.requests] == [b"first", b"second"]


def test_route_wait_counts_requests_answered_before_it(server: TestServer) -> None:
    items = server.route(re.compile(r"/items/\d+"))
    for n in range(3):
        fetch(server.get_url(f"/items/{n}"))
    assert [r["path"] for r in items.wait(2, timeout=0)] == ["/items/0", "/items/1"]
    assert len(items.wait(timeout=0)) == 1  # count defaults to 1


def test_route_wait_timeout_names_the_route_and_what_answered(server: TestServer) -> None:
    token = server.route("/token", method="POST", name="token")
    server.route("/token", name="any-token")
    fetch(server.get_url("/token"))
    with pytest.raises(WaitTimeoutError) as raised:
        token.wait(1, timeout=0.1)
    message = str(raised.value)
    assert "route 'token': wait(count=1): 0 of the 1 requests waited for were answered" in message
    assert "'GET /token HTTP/1.1' (answered 200 by route 'any-token')" in message
    assert pending_waits(server) == []


def test_route_wait_arguments_are_checked(server: TestServer) -> None:
    route = server.route("/x")
    with pytest.raises(TestServerError, match=r"route\.wait\(count\) must be an int of at least 1"):
        route.wait(0)
    with pytest.raises(TestServerError, match=r"route\.wait\(timeout\) must be a finite number"):
        route.wait(1, timeout=float("nan"))


def async_wait_for(engine: str, predicate: Any, timeout: float, paths: list[str]) -> Any:
    """
    ``wait_for(predicate, timeout)`` of an AsyncTestServer of ``engine``, in
    an event loop of its own, after GETs of ``paths`` sent from a thread.
    """
    import asyncio

    from txtestserver import AsyncTestServer

    async def scenario() -> Any:
        async with AsyncTestServer(engine=engine) as server:
            sender = in_background(lambda: [fetch(server.get_url(path)) for path in paths])
            try:
                return await server.wait_for(predicate, timeout)
            finally:
                await asyncio.to_thread(sender.join, 10)

    return asyncio.run(scenario())


def slow_predicate_holds_up_no_other_server(wait_for: Callable[[Any], Any]) -> None:
    """
    ``wait_for(predicate)`` with a predicate that blocks until released:
    meanwhile another server (of the shared reactor thread) answers at
    once; the time running out while the predicate runs ends the wait with
    WaitTimeoutError.
    """
    entered, gate = threading.Event(), threading.Event()
    outcome: list[BaseException | object] = []

    def slow(request: dict[str, Any]) -> bool:
        entered.set()
        gate.wait(10)
        return False

    def wait() -> None:
        try:
            outcome.append(wait_for(slow))
        except BaseException as e:
            outcome.append(e)

    with TestServer() as other:  # the thread engine: the shared reactor thread
        other.response["data"] = b"answered"
        thread = in_background(wait)
        try:
            assert entered.wait(10)
            with urlopen(other.get_url(), timeout=2) as response:
                assert response.read() == b"answered"
        finally:
            gate.set()
            thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], WaitTimeoutError), outcome
    assert "wait_for(slow): no answered request matched within 0.05 s" in str(outcome[0])


def test_a_slow_wait_for_predicate_holds_up_no_other_server(server: TestServer) -> None:
    """The predicate runs in the waiting thread, not in the shared reactor thread."""
    fetch(server.get_url("/seen"))
    slow_predicate_holds_up_no_other_server(lambda slow: server.wait_for(slow, 0.05))
    assert pending_waits(server) == []


def test_a_slow_async_wait_for_predicate_holds_up_no_other_server(engine: str) -> None:
    """The predicate runs in the awaiting task, not in the shared reactor thread."""
    slow_predicate_holds_up_no_other_server(
        lambda slow: async_wait_for(engine, slow, 0.05, ["/seen"])
    )


def test_wait_for_sees_requests_answered_while_it_waits(server: TestServer) -> None:
    """Between two looks at the journal, the wait sleeps until the next answer."""
    thread = in_background(lambda: [fetch(server.get_url(f"/n/{n}")) for n in range(3)])
    found = server.wait_for(lambda r: r["path"] == "/n/2", 10)
    thread.join(10)
    assert found["path"] == "/n/2"
    assert pending_waits(server) == []


def test_async_wait_for_sees_requests_answered_while_it_waits(engine: str) -> None:
    paths = [f"/n/{n}" for n in range(3)]
    found = async_wait_for(engine, lambda r: r["path"] == "/n/2", 10, paths)
    assert found["path"] == "/n/2"


def test_a_timeout_too_long_for_the_clock_is_a_clear_error(server: TestServer) -> None:
    with pytest.raises(TestServerError, match=r"wait_request\(timeout\) must be a finite number"):
        server.wait_request(timeout=1e10)
    with pytest.raises(TestServerError, match=r"wait_for\(timeout\) must be a finite number"):
        server.wait_for(bool, timeout=1e10)
    with pytest.raises(TestServerError, match="call_timeout must be a finite number"):
        TestServer(call_timeout=1e10)


def test_route_wait_on_a_removed_route_fails_at_once(server: TestServer) -> None:
    route = server.route("/gone")
    route.remove()
    began = time.monotonic()
    with pytest.raises(TestServerError, match=r"this route was removed"):
        route.wait(timeout=5)
    assert time.monotonic() - began < 1
