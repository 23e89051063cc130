"""
The request journal: what each item of ``server.requests`` (and
``server.request``) says about how the request came and how it was answered
(``http_version``, ``time``, ``connection``, ``response_code``, ``route``),
over real sockets, in every engine.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import threading
import time
import urllib.error
from collections.abc import Iterator
from typing import Any
from urllib.request import Request, urlopen

import pytest

from tests._raw import connect, read_all
from txtestserver import TestServer

JOURNAL_KEYS = {"http_version", "time", "connection", "response_code", "route"}


def arrived(server: TestServer, count: int) -> None:
    """Until ``count`` requests are recorded (answered or not: no wait covers that)."""
    deadline = time.monotonic() + 10
    while len(server.requests) < count:
        assert time.monotonic() < deadline, f"{count} requests did not arrive"
        time.sleep(0.005)


def fetch(url: str, data: bytes | None = None) -> int:
    try:
        with urlopen(Request(url, data=data), timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as e:
        e.read()
        return int(e.code)


@pytest.fixture
def kept_alive(engine: str) -> Iterator[TestServer]:
    server = TestServer(engine=engine)
    server.start(keep_alive=True)
    yield server
    server.stop()


def test_before_any_request_the_journal_keys_are_none(server: TestServer) -> None:
    assert {key: server.request[key] for key in JOURNAL_KEYS} == dict.fromkeys(JOURNAL_KEYS)


def test_every_request_has_the_journal_keys(server: TestServer) -> None:
    before = time.time()
    server.response["code"] = 201
    assert fetch(server.get_url("/a")) == 201
    after = time.time()
    request = server.requests[0]
    assert JOURNAL_KEYS <= set(request)
    assert request["http_version"] == "HTTP/1.1"  # urllib speaks HTTP/1.1
    assert before <= request["time"] <= after
    assert isinstance(request["connection"], int)
    assert request["response_code"] == 201
    assert request["route"] is None  # no route answered it
    assert {key: server.request[key] for key in JOURNAL_KEYS} == {
        key: request[key] for key in JOURNAL_KEYS
    }


def test_http_version_as_the_client_sent_it(server: TestServer) -> None:
    with connect(server.port or 0) as sock:
        sock.sendall(b"GET /old HTTP/1.0\r\nHost: x\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.")
    assert server.request["path"] == "/old"
    assert server.request["http_version"] == "HTTP/1.0"


def test_time_orders_requests(server: TestServer) -> None:
    for n in range(3):
        fetch(server.get_url(f"/{n}"))
    times = [request["time"] for request in server.requests]
    assert times == sorted(times)


def test_connection_is_shared_by_requests_on_one_connection(kept_alive: TestServer) -> None:
    server = kept_alive
    first = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    second = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for conn, path in [(first, "/1a"), (first, "/1b"), (second, "/2a"), (first, "/1c")]:
            conn.request("GET", path)
            conn.getresponse().read()
    finally:
        first.close()
        second.close()
    by_path = {request["path"]: request["connection"] for request in server.requests}
    assert by_path["/1a"] == by_path["/1b"] == by_path["/1c"]
    assert by_path["/2a"] != by_path["/1a"]


def test_without_keep_alive_each_request_has_its_own_connection(server: TestServer) -> None:
    for n in range(3):
        fetch(server.get_url(f"/{n}"))
    assert len({request["connection"] for request in server.requests}) == 3


def test_response_code_is_none_until_answered(server: TestServer) -> None:
    server.response["code"] = 202
    server.response["sleep"] = 0.5
    client = threading.Thread(target=fetch, args=(server.get_url("/slow"),))
    client.start()
    try:
        arrived(server, 1)
        assert server.requests[0]["response_code"] is None
        assert server.request["done"] is False
    finally:
        client.join(10)
    server.wait_request(5)
    assert server.requests[0]["response_code"] == 202


def test_response_code_of_a_callback_and_of_a_failing_callback(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:writes_itself"
    assert fetch(server.get_url("/written")) == 201
    server.response["callback"] = "tests.callbacks:returns_number"
    assert fetch(server.get_url("/unusable")) == 500
    server.errors.clear()
    assert [(r["path"], r["response_code"]) for r in server.requests] == [
        ("/written", 201),
        ("/unusable", 500),
    ]


def test_a_request_whose_client_left_is_never_answered(server: TestServer) -> None:
    server.response["sleep"] = 30
    with socket.create_connection(("127.0.0.1", server.port or 0), timeout=10) as sock:
        sock.sendall(b"GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
        arrived(server, 1)
    server.response["sleep"] = 0
    fetch(server.get_url("/next"))
    gone, following = server.requests[:]
    assert (gone["path"], gone["response_code"]) == ("/gone", None)
    assert (following["path"], following["response_code"]) == ("/next", 200)


def test_the_journal_survives_stop_and_reset_forgets_it(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start()
    fetch(server.get_url("/kept"))
    server.stop()
    assert [(r["path"], r["response_code"]) for r in server.requests] == [("/kept", 200)]
    server.reset()
    assert len(server.requests) == 0


def test_reads_racing_reset_all_succeed(server: TestServer) -> None:
    """
    Reads of the journal (``list(server.requests)``, ``server.request``)
    while another thread resets the server and clients keep sending: every
    read succeeds (the subprocess engine's reader used to see the journal
    of the new generation with the length of the old one and raise "state
    cannot be used (requests.jsonl is shorter than status.json says)").
    """
    server.response["data"] = b"ok"
    url = server.get_url("/race")
    over = threading.Event()
    failures: list[BaseException] = []
    reads = [0]

    def guarded(work: Any) -> Any:
        def run() -> None:
            try:
                while not over.is_set():
                    work()
            except BaseException as e:  # reported below
                failures.append(e)
                over.set()

        return threading.Thread(target=run)

    def read() -> None:
        list(server.requests)
        server.request.get("path")
        reads[0] += 1

    def send() -> None:
        with contextlib.suppress(OSError):  # a reset may come mid-request
            fetch(url)

    threads = [guarded(server.reset), guarded(read)] + [guarded(send) for _ in range(4)]
    for thread in threads:
        thread.start()
    over.wait(1.5)
    over.set()
    for thread in threads:
        thread.join(10)
    assert failures == []
    assert reads[0] > 0


def _server_side_bytes(snapshot: Any) -> int:
    """The bytes of ``snapshot`` allocated by txtestserver's or Twisted's code."""
    import tracemalloc

    ours = [
        tracemalloc.Filter(True, f"*{os.sep}{package}{os.sep}*")
        for package in ("txtestserver", "twisted")
    ]
    return sum(stat.size for stat in snapshot.filter_traces(ours).statistics("filename"))


#: What a recorded request may cost in memory, in the thread engine (issue 23).
#: With a new connection each time the measure also counts what the server
#: keeps per closed connection (245 bytes in all on Python 3.11; Python 3.10,
#: tox -e mindeps, measured more before the count was limited to the server's
#: code: 293 to 301), so that case has room above the journal's own 300.
ENTRY_BYTES = {"kept-alive": 300, "new each": 330}


@pytest.mark.parametrize("connections", ["kept-alive", "new each"])
def test_a_recorded_request_takes_at_most_300_bytes(connections: str) -> None:
    """
    Memory the journal keeps per request, all fields there: equal values
    (method, version, address, a repeated target and header block) are kept
    once, so an entry is its tuple and what only it has (the time).
    """
    import gc
    import tracemalloc

    count = 2000 if connections == "kept-alive" else 500
    server = TestServer()
    server.start(keep_alive=connections == "kept-alive")
    try:
        server.response["data"] = b"ok"
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)

        def one() -> None:
            if connections == "kept-alive":
                conn.request("GET", "/path?x=1", headers={"X-Test": "1"})
                assert conn.getresponse().read() == b"ok"
            else:
                assert fetch(server.get_url("/path?x=1")) == 200

        for _ in range(100):
            one()
        gc.collect()
        # What the server side keeps: memory allocated by txtestserver's or
        # Twisted's code (the innermost Python frame, which is also where a
        # builtin they call allocates), so that what another thread of the
        # worker allocates meanwhile (an earlier test's leftovers winding
        # down) is not counted against the journal.
        tracemalloc.start()
        try:
            before = _server_side_bytes(tracemalloc.take_snapshot())
            for _ in range(count):
                one()
            gc.collect()
            after = _server_side_bytes(tracemalloc.take_snapshot())
            per_request = (after - before) / count
        finally:
            tracemalloc.stop()
        conn.close()
        last = server.requests[-1]
        assert len(server.requests) == count + 100
    finally:
        server.stop()
    assert per_request <= ENTRY_BYTES[connections], f"{per_request:.0f} bytes per recorded request"
    assert (last["method"], last["path"], last["args"]["x"]) == ("GET", "/path", "1")
    assert last["client_ip"] == "127.0.0.1" and last["http_version"] == "HTTP/1.1"
    assert last["response_code"] == 200 and isinstance(last["time"], float)
    assert isinstance(last["connection"], int)


def test_requests_that_differ_are_recorded_each_as_sent(kept_alive: TestServer) -> None:
    """Equal values are kept once, and a request unlike the one before keeps its own."""
    conn = http.client.HTTPConnection("127.0.0.1", kept_alive.port, timeout=10)
    sent = [("GET", "/a", "1"), ("GET", "/a", "1"), ("POST", "/b", "2"), ("GET", "/a", "3")]
    for method, path, value in sent:
        conn.request(method, path, body=b"" if method == "POST" else None, headers={"X": value})
        conn.getresponse().read()
    conn.close()
    arrived(kept_alive, len(sent))
    got = [(r["method"], r["path"], r["headers"]["X"]) for r in kept_alive.requests]
    assert got == sent


def test_an_answer_read_is_in_the_journal_already(kept_alive: TestServer) -> None:
    """
    Once a client has read an answer, the journal has its request, answered:
    the server sends an answer written at once only after recording it (a
    kept-alive connection gets it without waiting for the reactor's next turn).
    """
    kept_alive.response["data"] = b"ok"
    conn = http.client.HTTPConnection("127.0.0.1", kept_alive.port, timeout=10)
    for number in range(1, 201):
        conn.request("GET", f"/{number}")
        assert conn.getresponse().read() == b"ok"
        assert len(kept_alive.requests) == number
        assert kept_alive.request["response_code"] == 200
    conn.close()


def test_the_date_header_is_now(server: TestServer) -> None:
    """Each answer has a ``Date`` of the second it was sent (RFC 9110, 6.6.1)."""
    import email.utils

    for _ in range(3):
        before = int(time.time())
        with urlopen(server.get_url(), timeout=10) as response:
            date = response.headers["Date"]
        after = time.time()
        sent = email.utils.parsedate_to_datetime(date).timestamp()
        assert date.endswith(" GMT")
        assert before <= sent <= after, (date, before, after)
