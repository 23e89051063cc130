"""
A load generator for the load tests and the stress run: concurrent clients
(threads with http.client) that each send numbered requests, and the check
that the server recorded each of them exactly once, whole.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from txtestserver import TestServer


@dataclass
class LoadResult:
    """What a load run did, seen from the clients."""

    sent: int = 0
    answered: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Seconds each request took, in no particular order.
    latencies: list[float] = field(default_factory=list)
    #: With ``expected=None``: how many requests failed with each exception.
    raised: dict[str, int] = field(default_factory=dict)


def request_id(client: int, seq: int) -> str:
    return f"c{client}n{seq}"


def run_load(
    server: TestServer,
    clients: int,
    per_client: int,
    *,
    expected: bytes | None,
    method: str = "POST",
    timeout: float = 60.0,
) -> LoadResult:
    """
    ``clients`` threads send ``per_client`` requests each, all at once; each
    request carries its id in its path, query, ``X-Id`` header and body.

    :param expected: the body every answer must have; None when every
        request must fail instead (a ``fault``): then ``answered`` counts the
        requests that failed, on a new connection each time.
    :param timeout: seconds one request may take.
    """
    result = LoadResult()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    assert server.port is not None
    port = server.port

    def client(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        sent = answered = 0
        errors: list[str] = []
        latencies: list[float] = []
        raised: dict[str, int] = {}
        start.wait()
        for seq in range(per_client):
            ident = request_id(number, seq)
            began = time.monotonic()
            sent += 1
            try:
                conn.request(
                    method,
                    f"/load/{ident}?id={ident}",
                    body=f"id={ident}".encode() if method != "GET" else None,
                    headers={
                        "X-Id": ident,
                        "Content-Type": "application/x-www-form-urlencoded",
                    },
                )
                response = conn.getresponse()
                content = response.read()
                if expected is None or response.status != 200 or content != expected:
                    errors.append(f"{ident}: {response.status} {content[:50]!r}")
                else:
                    answered += 1
            except (OSError, http.client.HTTPException) as e:
                if expected is None:
                    answered += 1  # the fault, as asked
                    raised[type(e).__name__] = raised.get(type(e).__name__, 0) + 1
                else:
                    errors.append(f"{ident}: {e!r}")
                conn.close()
            latencies.append(time.monotonic() - began)
        conn.close()
        with lock:
            result.sent += sent
            result.answered += answered
            result.errors.extend(errors)
            result.latencies.extend(latencies)
            for name, count in raised.items():
                result.raised[name] = result.raised.get(name, 0) + count

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - began
    return result


def check_request(request: dict[str, Any]) -> str | None:
    """
    The id of a load request whose every part carries the same id, else
    raise AssertionError: a request recorded half of one and half of another
    would show two ids.
    """
    path = request["path"]
    assert path.startswith("/load/"), path
    ident: str = path[len("/load/") :]
    assert request["args"].getall("id") == [ident, ident] or (
        request["method"] == "GET" and request["args"].getall("id") == [ident]
    ), (ident, request["args"])
    assert request["headers"]["X-Id"] == ident, (ident, request["headers"])
    if request["method"] != "GET":
        assert request["data"] == f"id={ident}".encode(), (ident, request["data"])
    return ident


def lost_requests(server: TestServer, clients: int, per_client: int) -> list[str]:
    """
    The ids that the server did not record exactly once, after checking that
    every recorded request is whole (:func:`check_request`).
    """
    seen: dict[str, int] = {}
    for request in server.requests[:]:  # one read of the history
        ident = check_request(request)
        assert ident is not None
        seen[ident] = seen.get(ident, 0) + 1
    expected = {request_id(c, n) for c in range(clients) for n in range(per_client)}
    wrong = [ident for ident in expected if seen.get(ident) != 1]
    wrong.extend(ident for ident in seen if ident not in expected)
    return sorted(wrong)


class Watcher(threading.Thread):
    """
    Reads ``server.request`` over and over while a load runs; every view of
    it must be one whole request (or none yet).
    """

    def __init__(self, server: TestServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.reads = 0
        self.failures: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            # One read each: copy(), items() (so == too) see one request.
            for request in (self.server.request.copy(), dict(self.server.request.items())):
                self.reads += 1
                if request["path"] is None:
                    continue
                try:
                    check_request(request)
                except (AssertionError, KeyError) as e:
                    self.failures.append(repr(e))
            time.sleep(0.001)  # leave the GIL (and the state files) to the load

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)
