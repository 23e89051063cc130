"""
The timed loop of the bench's kept-alive items: requests on one connection,
warmed up first.
"""

from __future__ import annotations

import http.client
import time

__all__ = ["WARM_UP", "timed_requests"]

#: Requests made before the timed ones (connections, caches and code warm).
WARM_UP = 20


def timed_requests(conn: http.client.HTTPConnection, path: str, n: int) -> float:
    """
    Seconds that ``n`` sequential GETs of ``path`` take on ``conn`` (kept
    alive), after :data:`WARM_UP` untimed ones; each answer must be ``ok``.
    """

    def one() -> None:
        conn.request("GET", path)
        assert conn.getresponse().read() == b"ok"

    for _ in range(WARM_UP):
        one()
    t = time.perf_counter()
    for _ in range(n):
        one()
    return time.perf_counter() - t
