"""
Load at a bounded size, against every engine: concurrent clients are all
answered, the server records each request exactly once and whole, a reader
never sees a half-recorded request, and sleeping answers overlap.

The full size (50 clients x 2,000 requests) is the stress run's:
``python -m stress`` (docs/reliability.rst).
"""

from __future__ import annotations

import errno
import re
import select
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests._leaks import assert_nothing_held
from tests._load import Watcher, check_request, lost_requests, request_id, run_load
from tests._raw import busy, check_serving, read_all, server_log_errors, status
from txtestserver import TestServer
from txtestserver._http.listen import listen_backlog
from txtestserver._model.keys import FAULTS

pytestmark = pytest.mark.usefixtures("logged_errors")

CLIENTS = 20
PER_CLIENT = 100


@pytest.mark.parametrize(
    "keep_alive, per_client",
    [(False, PER_CLIENT), (True, 25)],
    ids=["new-connections", "keep-alive"],
)
def test_concurrent_clients_all_answered_none_lost(
    engine: str, keep_alive: bool, per_client: int
) -> None:
    server = TestServer(engine=engine)
    server.start(keep_alive=keep_alive)
    server.response["data"] = b"ok"
    watcher = Watcher(server)
    watcher.start()
    try:
        result = run_load(server, CLIENTS, per_client, expected=b"ok")
    finally:
        watcher.stop()
    try:
        assert result.errors == []
        assert result.sent == result.answered == CLIENTS * per_client
        assert len(server.requests) == CLIENTS * per_client
        assert lost_requests(server, CLIENTS, per_client) == []
        assert watcher.reads > 0
        assert watcher.failures == []
        assert server.request["done"] is True
        check_serving(server)
        assert server_log_errors(server) == []
    finally:
        server.stop()


def test_reset_under_load_loses_nothing_after_it(engine: str) -> None:
    """Requests answered after reset() are all in the new history."""
    with TestServer(engine=engine) as server:
        server.response["data"] = b"ok"
        run_load(server, 5, 20, expected=b"ok")
        server.reset()
        server.response["data"] = b"ok"
        result = run_load(server, 5, 20, expected=b"ok")
        assert result.errors == []
        assert lost_requests(server, 5, 20) == []


def test_sleeping_answers_overlap(engine: str) -> None:
    sleep, clients = 0.5, 20
    with TestServer(engine=engine) as server:
        server.response["data"] = b"ok"
        server.response["sleep"] = sleep
        result = run_load(server, clients, 1, expected=b"ok")
        assert result.errors == []
        assert min(result.latencies) >= sleep * 0.9  # each one did sleep
        # Twenty half-second answers at once take about one sleep, not ten
        # seconds (a generous bound: no timing is measured here).
        assert result.seconds < sleep * clients / 2
        assert lost_requests(server, clients, 1) == []


def test_wait_request_under_load(engine: str) -> None:
    """wait_request() returns, and request['done'] is true, once load ends."""
    with TestServer(engine=engine) as server:
        server.response["data"] = b"ok"
        loader = threading.Thread(
            target=run_load, args=(server, 10, 50), kwargs={"expected": b"ok"}
        )
        loader.start()
        deadline = time.monotonic() + 60
        while loader.is_alive() and time.monotonic() < deadline:
            server.wait_request(10)
            assert server.request["done"] is True or loader.is_alive()
        loader.join(60)
        server.wait_request(10)
        assert server.request["done"] is True
        assert len(server.requests) == 500


@pytest.mark.parametrize("keep_alive", [False, True], ids=["new-connections", "keep-alive"])
def test_waits_under_load(engine: str, keep_alive: bool) -> None:
    """
    Waits begun before the load see it all: ``wait_requests`` every request
    exactly once, ``wait_for`` the one it looks for, ``route.wait`` the
    requests of one client (its route); none is left behind.
    """
    per_client = 25
    total = CLIENTS * per_client
    wanted = request_id(7, 20)
    server = TestServer(engine=engine)
    server.start(keep_alive=keep_alive)
    results: dict[str, Any] = {}
    try:
        server.response["data"] = b"ok"
        seven = server.route(re.compile(r"/load/c7n\d+"), name="client 7")
        seven.response["data"] = b"ok"
        waits = [
            threading.Thread(
                target=lambda: results.setdefault("seven", seven.wait(per_client, 120))
            ),
            threading.Thread(
                target=lambda: results.setdefault("all", server.wait_requests(total, 120))
            ),
            threading.Thread(
                target=lambda: results.setdefault(
                    "one", server.wait_for(lambda r: r["path"] == f"/load/{wanted}", 120)
                )
            ),
        ]
        for thread in waits:
            thread.start()
        deadline = time.monotonic() + 30
        while len(server._waits) < 3:  # all have begun before the first request
            assert time.monotonic() < deadline
            time.sleep(0.005)
        result = run_load(server, CLIENTS, per_client, expected=b"ok")
        for thread in waits:
            thread.join(120)
        assert result.errors == []
        everything = results["all"]
        assert len(everything) == total
        assert sorted(check_request(r) or "" for r in everything) == sorted(
            request_id(c, n) for c in range(CLIENTS) for n in range(per_client)
        )
        assert all(r["response_code"] == 200 for r in everything)
        assert results["one"]["headers"]["X-Id"] == wanted
        assert [check_request(r) for r in results["seven"]] == [
            request_id(7, n) for n in range(per_client)
        ]
        assert {r["route"] for r in results["seven"]} == {"client 7"}
        assert len(server._waits) == 0
    finally:
        server.stop()


@pytest.mark.parametrize(
    "keys",
    [
        {"chunks": [b"o", b"k"], "chunk_delay": 0.002},
        {"data": b"ok", "throttle": 200.0},
    ],
    ids=["chunks", "throttle"],
)
def test_streams_under_load_leave_nothing(engine: str, keys: dict[str, object]) -> None:
    """20 clients stream at once, on kept-alive connections: every answer whole."""
    server = TestServer(engine=engine)
    server.start(keep_alive=True)
    try:
        for key, value in keys.items():
            server.response[key] = value
        result = run_load(server, CLIENTS, 10, expected=b"ok")
        assert result.errors == []
        assert result.answered == CLIENTS * 10
        assert lost_requests(server, CLIENTS, 10) == []
        assert_nothing_held(server)
        server.reset()
        server.response["data"] = b"ok"
        check_serving(server)
        assert server_log_errors(server) == []
    finally:
        server.stop()


@pytest.mark.parametrize("fault", FAULTS)
def test_faults_under_load_leave_nothing(engine: str, fault: str) -> None:
    """
    20 clients meet a fault at once, 10 times each: every request fails as
    asked, is recorded once with its fault, and nothing is held afterwards
    (the hanging faults once their clients gave up).
    """
    hanging = fault in ("stall", "no_answer")
    per_client = 5 if hanging else 10
    server = TestServer(engine=engine)
    server.start(keep_alive=True)
    try:
        server.response["data"] = b"ok"
        server.response["fault"] = fault
        timeout = 0.3 if hanging else 60.0
        result = run_load(server, CLIENTS, per_client, expected=None, timeout=timeout)
        assert result.errors == []
        assert result.answered == CLIENTS * per_client
        assert ("TimeoutError" in result.raised) is hanging, result.raised
        assert lost_requests(server, CLIENTS, per_client) == []
        assert {r["fault"] for r in server.requests[:]} == {fault}
        assert server.request["done"] is (fault not in ("stall", "no_answer"))
        del server.response["fault"]
        assert_nothing_held(server)
        check_serving(server)
        assert server_log_errors(server) == []
    finally:
        server.stop()


def test_connects_queue_while_the_server_is_busy(engine: str) -> None:
    """
    Connections opened faster than the server accepts them wait in the
    listen queue, which is sized for test load: Twisted's default of 50
    made the kernel drop the handshakes beyond it (each client then
    retried only after a second, and never while the server stayed busy).
    """
    count = 300
    with TestServer(engine=engine) as server:
        server.response["data"] = b"ok"
        sockets = []
        try:
            with busy(server):
                for _ in range(count):
                    sock = socket.socket()
                    sock.setblocking(False)
                    sockets.append(sock)
                    assert sock.connect_ex(("127.0.0.1", server.port)) in (0, errno.EINPROGRESS)
                pending = set(sockets)
                deadline = time.monotonic() + 5  # a bound, not a timing: loopback takes us
                while pending and time.monotonic() < deadline:
                    _, writable, _ = select.select([], list(pending), [], 0.1)
                    pending.difference_update(writable)
                assert len(pending) == 0, f"{len(pending)} of {count} connects were dropped"
            # Once the server is free again, every queued connection is served.
            for i, sock in enumerate(sockets[:: count // 10]):
                sock.setblocking(True)
                sock.settimeout(10)
                sock.sendall(b"GET /queued/%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
                assert status(read_all(sock)) == 200
            assert server.request["path"] == f"/queued/{i}"
        finally:
            for sock in sockets:
                sock.close()


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"8192\n", 8192),
        (b"", socket.SOMAXCONN),
        (b"x", socket.SOMAXCONN),
        (b"0", socket.SOMAXCONN),
    ],
)
def test_listen_backlog_is_the_systems_limit(tmp_path: Path, content: bytes, expected: int) -> None:
    limit = tmp_path / "somaxconn"
    limit.write_bytes(content)
    assert listen_backlog.__wrapped__(str(limit)) == expected
    assert listen_backlog.__wrapped__(str(tmp_path / "missing")) == socket.SOMAXCONN
