"""
Client faults (a client that leaves mid-body or mid-sleep, half-closes, or
never reads) and lifecycle faults, against every engine.

The plain lifecycle cases (start twice, stop twice, use after stop, port in
use) are in test_blocking.py and trial/test_deferred.py; these are the
harder ones.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._load import request_id, run_load
from tests._raw import body, check_serving, connect, read_all, status
from txtestserver import ServerSideError, TestServer, TestServerError
from txtestserver._model.table import RESPONSE

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("logged_errors")


@pytest.fixture
def server(engine: str) -> Iterator[TestServer]:
    server = TestServer(engine=engine)
    server.start()
    server.response["data"] = b"ok"
    yield server
    server.stop()


@pytest.fixture
def kept_alive(engine: str) -> Iterator[TestServer]:
    server = TestServer(engine=engine)
    server.start(keep_alive=True)
    server.response["data"] = b"ok"
    yield server
    server.stop()


# -- half-closed sockets -------------------------------------------------------------


@pytest.mark.parametrize("keep_alive", [False, True], ids=["close", "keep-alive"])
def test_half_closed_client_still_gets_the_whole_answer(engine: str, keep_alive: bool) -> None:
    server = TestServer(engine=engine)
    server.start(keep_alive=keep_alive)
    try:
        for size in (2, 4 * 1024 * 1024, 2):
            server.response["data"] = b"x" * size
            with connect(server.port) as sock:
                sock.sendall(b"GET /half/%d HTTP/1.1\r\nHost: a\r\n\r\n" % size)
                sock.shutdown(socket.SHUT_WR)
                answer = read_all(sock)
            assert status(answer) == 200
            assert body(answer) == b"x" * size
            assert server.request["path"] == f"/half/{size}"
        server.response["data"] = b"ok"
        check_serving(server)
    finally:
        server.stop()


def test_half_closed_pipelined_requests_are_all_answered(kept_alive: TestServer) -> None:
    with connect(kept_alive.port) as sock:
        sock.sendall(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        answer = read_all(sock)
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert [r["path"] for r in kept_alive.requests] == ["/1", "/2", "/3"]
    check_serving(kept_alive)


# -- clients that leave -------------------------------------------------------------


def abort(sock: socket.socket) -> None:
    """Close with a reset (RST) instead of an orderly FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("leave", [socket.socket.close, abort], ids=["close", "reset"])
def test_client_leaves_mid_body(server: TestServer, leave: Callable[[socket.socket], None]) -> None:
    before = len(server.requests)
    for _ in range(10):
        sock = connect(server.port)
        sock.sendall(b"POST /partial HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
        leave(sock)
    check_serving(server)
    assert len(server.requests) == before + 1  # only the normal request
    assert all(r["path"] != "/partial" for r in server.requests)


SLEEP = 30.0


def pending_sleeps(server: TestServer) -> list[Any]:
    """
    The thread engine's pending ``sleep`` timers: deferLater calls (a
    Deferred's callback) due within ``SLEEP`` seconds. Other delayed calls
    (an idle connection's 12 h timeout, crochet's) are not ours to judge.
    """
    assert server.engine == "thread"
    reactor = server._reactor  # the private reactor that serves
    from twisted.internet.defer import Deferred
    from twisted.internet.threads import blockingCallFromThread

    def find() -> list[Any]:
        now = reactor.seconds()
        return [
            call
            for call in reactor.getDelayedCalls()
            if isinstance(getattr(call.func, "__self__", None), Deferred)
            and call.getTime() <= now + SLEEP + 1
        ]

    found: list[Any] = blockingCallFromThread(reactor, find)
    return found


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


@pytest.mark.parametrize("leave", [socket.socket.close, abort], ids=["close", "reset"])
def test_client_leaves_during_sleep(
    server: TestServer, engine: str, leave: Callable[[socket.socket], None]
) -> None:
    server.response["sleep"] = SLEEP
    sockets = []
    for i in range(5):
        sock = connect(server.port)
        sock.sendall(b"GET /sleepy/%d HTTP/1.1\r\n\r\n" % i)
        sockets.append(sock)
        wait_until(lambda i=i: server.request["path"] == f"/sleepy/{i}", "the request")  # type: ignore[misc]
    assert server.request["done"] is False
    if engine == "thread":
        assert len(pending_sleeps(server)) == 5
    for sock in sockets:
        leave(sock)
    if engine == "thread":
        wait_until(lambda: not pending_sleeps(server), "the sleeps to be cancelled")
    del server.response["sleep"]
    check_serving(server)
    assert [r["path"] for r in server.requests].count("/sleepy/4") == 1


def pending_callback(cancelled: threading.Event) -> Callable[[Any], Any]:
    """A callback (thread engine) whose answer never comes: its Deferred says when cancelled."""

    def callback(request: Any) -> Any:
        from twisted.internet.defer import Deferred

        return Deferred(lambda _: cancelled.set())

    return callback


@pytest.mark.parametrize("leave", [socket.socket.close, abort], ids=["close", "reset"])
def test_client_that_leaves_cancels_the_deferred_of_a_callback(
    leave: Callable[[socket.socket], None],
) -> None:
    """The Deferred a callback returned is cancelled, as a sleep is (its timers go too)."""
    cancelled = threading.Event()
    with TestServer() as server:
        server.response["callback"] = pending_callback(cancelled)
        sock = connect(server.port or 0)
        sock.sendall(b"GET /pending HTTP/1.1\r\n\r\n")
        wait_until(lambda: server.request["path"] == "/pending", "the request")
        leave(sock)
        assert cancelled.wait(10), "the callback's Deferred was not cancelled"
        server.response["callback"] = None
        server.response["data"] = b"ok"
        check_serving(server)


def test_stop_cancels_the_deferred_of_a_callback() -> None:
    cancelled = threading.Event()
    server = TestServer()
    server.start()
    try:
        server.response["callback"] = pending_callback(cancelled)
        sock = connect(server.port or 0)
        sock.sendall(b"GET /pending HTTP/1.1\r\n\r\n")
        wait_until(lambda: server.request["path"] == "/pending", "the request")
    finally:
        server.stop()
    assert cancelled.is_set(), "stop() left the callback's Deferred pending"
    assert read_all(sock) == b""
    sock.close()


def test_client_that_never_reads_does_not_stop_the_server(engine: str) -> None:
    server = TestServer(engine=engine, call_timeout=10)
    server.start()
    server.response["put.data"] = b"x" * (8 * 1024 * 1024)
    server.response["data"] = b"ok"
    stalled = []
    try:
        for _ in range(3):
            sock = connect(server.port)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"PUT /never-read HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            stalled.append(sock)
        wait_until(lambda: len(server.requests) == 3, "the stalled requests")
        for _ in range(3):
            check_serving(server)  # others are served meanwhile
        server.stop()  # must not wait for the stalled readers (10 s call_timeout)
        for sock in stalled:
            sock.settimeout(10)
            assert len(read_all(sock)) < 8 * 1024 * 1024  # cut off, not delivered
    finally:
        for sock in stalled:
            sock.close()
        server.stop()


# -- lifecycle ------------------------------------------------------------------------------


def test_stop_with_requests_in_flight(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start(keep_alive=True)
    port = server.port
    assert port is not None
    server.response["get.sleep"] = SLEEP
    server.response["put.data"] = b"x" * (8 * 1024 * 1024)
    clients = {}
    clients["sleeping"] = connect(port)
    clients["sleeping"].sendall(b"GET /sleeping HTTP/1.1\r\n\r\n")
    wait_until(lambda: server.request["path"] == "/sleeping", "the sleeping request")
    clients["mid-body"] = connect(port)
    clients["mid-body"].sendall(b"POST /mid-body HTTP/1.1\r\nContent-Length: 1000\r\n\r\nxx")
    clients["idle"] = connect(port)
    clients["idle"].sendall(b"DELETE /idle HTTP/1.1\r\n\r\n")
    wait_until(lambda: server.request["path"] == "/idle", "the kept-alive request")
    clients["not-reading"] = connect(port)
    clients["not-reading"].setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    clients["not-reading"].sendall(b"PUT /not-reading HTTP/1.1\r\n\r\n")
    wait_until(lambda: server.request["path"] == "/not-reading", "the big answer")
    if engine == "thread":
        assert len(pending_sleeps(server)) == 1
    server.stop()
    if engine == "thread":
        assert pending_sleeps(server) == []
    for name, sock in clients.items():
        sock.settimeout(10)
        answer = read_all(sock)  # every connection was closed: no hang
        assert not answer.startswith(b"HTTP/1.1 200 OK") or name in ("idle", "not-reading")
        sock.close()
    with socket.socket() as probe:  # the port is free at once
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
    # Recorded requests survive the stop; the server starts again and serves.
    assert [r["path"] for r in server.requests] == ["/sleeping", "/idle", "/not-reading"]
    server.reset()
    server.start()
    server.response["data"] = b"ok"
    check_serving(server)
    server.stop()
    server.stop()  # stopping twice is harmless (and after a restart)


def test_start_twice_names_the_running_port(server: TestServer) -> None:
    with pytest.raises(TestServerError, match=f"already running on port {server.port}"):
        server.start()
    check_serving(server)  # the failed start did not disturb the running server


def test_use_after_stop_is_a_clear_error_but_state_stays_readable(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start()
    server.response["data"] = b"ok"
    check_serving(server)
    server.stop()
    with pytest.raises(TestServerError, match=r"get_url\(\) needs a started server"):
        server.get_url()
    with pytest.raises(TestServerError, match=r"wait_request\(\) needs a running server"):
        server.wait_request(0.1)
    assert server.request["method"] == "POST"  # what was recorded stays readable
    assert server.response["data"] == b"ok"
    assert server.port is None


@pytest.mark.parametrize("address", ["256.1.2.3", "not-an-address", "::zz", "192.0.2.1"], ids=str)
def test_bad_address_is_a_clear_error(engine: str, address: str) -> None:
    server = TestServer(address=address, engine=engine)
    with pytest.raises(TestServerError, match=f"cannot listen on {re.escape(address)} port 0"):
        server.start()
    server.stop()  # harmless after a failed start


def test_empty_address_is_refused() -> None:
    """``''`` would quietly listen on every interface."""
    with pytest.raises(TestServerError, match="address"):
        TestServer(address="")


def test_port_in_use_names_address_and_port(engine: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = TestServer(port=port, engine=engine)
        with pytest.raises(TestServerError, match=f"cannot listen on 127.0.0.1 port {port}"):
            server.start()
    server.start()  # the same object starts once the port is free
    assert server.port == port
    server.response["data"] = b"ok"
    check_serving(server)
    server.stop()


def test_killed_server_process_keeps_every_request_it_recorded() -> None:
    """
    SIGKILL under load: clients in flight see their connection closed (no
    hang), and every request recorded before the kill is still there.
    """
    server = TestServer(engine="subprocess")
    server.start()
    try:
        server.response["data"] = b"ok"
        result = run_load(server, 5, 40, expected=b"ok")
        assert result.errors == []
        server.response_once["callback"] = "tests.callbacks:pid"
        with connect(server.port or 0) as sock:
            sock.sendall(b"GET /pid HTTP/1.1\r\n\r\n")
            pid = int(body(read_all(sock)))
        server.response["sleep"] = SLEEP
        in_flight = connect(server.port or 0)
        in_flight.sendall(b"GET /in-flight HTTP/1.1\r\n\r\n")
        wait_until(lambda: server.request["path"] == "/in-flight", "the sleeping request")
        os.kill(pid, signal.SIGKILL)
        assert read_all(in_flight) == b""  # closed by the dying process, not left hanging
        in_flight.close()
        with pytest.raises(TestServerError, match="killed by signal 9"):
            server.wait_request(10)  # the unanswered request will never be done
        with contextlib.suppress(TestServerError):
            server.stop()  # reports the loss (once), releases everything
        server.stop()
        paths = [request["path"] for request in server.requests[:]]
        expected = {f"/load/{request_id(c, n)}" for c in range(5) for n in range(40)}
        assert sorted(paths) == sorted([*expected, "/pid", "/in-flight"])
    finally:
        with contextlib.suppress(TestServerError):
            server.stop()


#: Programs that leave a server running: ``argv[1]`` is the engine. Each
#: prints the port, then, once the server is stopped or not, ``stopped`` or
#: ``running``.
_LEFT_RUNNING = {
    # The blocking face: the main thread ends; an atexit function looks.
    "blocking": """
import atexit, sys
from txtestserver import TestServer
server = TestServer(engine=sys.argv[1])
server.start()
atexit.register(lambda: print('stopped' if server.port is None else 'running', flush=True))
print(server.port, flush=True)
""",
    # The asyncio face: the loop ends, then the main thread.
    "asyncio": """
import asyncio, atexit, sys
from txtestserver import AsyncTestServer
server = AsyncTestServer(engine=sys.argv[1])
asyncio.run(server.start())
atexit.register(lambda: print('stopped' if server.port is None else 'running', flush=True))
print(server.port, flush=True)
""",
    # The Deferred face in a Twisted program that stops its reactor.
    "deferred": """
import sys
from twisted.internet import reactor
from txtestserver import DeferredTestServer
server = DeferredTestServer(engine=sys.argv[1])
def started(_):
    print(server.port, flush=True)
    reactor.stop()
reactor.callWhenRunning(lambda: server.start().addCallback(started))
reactor.run()
print('stopped' if server.port is None else 'running', flush=True)
""",
}


@pytest.mark.parametrize("face", sorted(_LEFT_RUNNING))
def test_a_server_left_running_is_stopped_when_the_program_ends(engine: str, face: str) -> None:
    """
    A program that never calls stop(): its server is stopped as its reactor
    shuts down (the blocking face's when the main thread ends, before atexit
    functions run), bounded, and with nothing printed.
    """
    ended = subprocess.run(
        [sys.executable, "-c", _LEFT_RUNNING[face], engine],
        capture_output=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
    )
    port, said = ended.stdout.decode().split()
    assert said == "stopped"
    assert ended.stderr == b""
    assert ended.returncode == 0
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", int(port)))  # free


# -- failures while writing an answer -------------------------------------------------


@pytest.mark.parametrize("keep_alive", [False, True], ids=["close", "keep-alive"])
@pytest.mark.parametrize("when", ["at-once", "after-sleep", "callback"])
def test_a_failure_while_writing_the_answer_is_recorded_answered_and_closed(
    keep_alive: bool, when: str, logged_errors: list[dict[str, Any]]
) -> None:
    """
    Writing the answer raises (here: a header name that cannot be encoded,
    set behind the check that now refuses it; every Twisted release fails
    on it): the client gets a 500 naming the
    failure and its connection closed, the request is recorded and done,
    and it is a server-side error. (The thread engine: in the subprocess
    engine the state is checked when read, test_subprocess.py.)
    """
    server = TestServer()
    server.start(keep_alive=keep_alive)
    try:
        store = server._engine.store
        store.update(lambda table: table.set(RESPONSE, "headers", [("X-\u20ac", "v")]))
        if when == "after-sleep":
            server.response["sleep"] = 0.05
        if when == "callback":
            server.response["callback"] = lambda request: b"from the callback"
        with connect(server.port or 0) as sock:
            sock.sendall(b"GET /failing HTTP/1.1\r\nHost: a\r\n\r\n")
            answer = read_all(sock)  # the server closes, keep-alive or not
        assert status(answer) == 500
        assert b"writing the answer failed: UnicodeEncodeError" in body(answer)
        server.wait_request(10)
        assert server.request["path"] == "/failing"
        assert server.request["done"] is True
        assert server.request["response_code"] == 500
        with pytest.raises(ServerSideError, match="writing the answer failed"):
            server.check()
        server.response["headers"] = []
        server.response["callback"] = None
        check_serving(server)
    finally:
        server.stop()
    assert logged_errors
    logged_errors.clear()
