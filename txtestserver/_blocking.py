"""
The blocking API: :class:`TestServer`, for plain unittest and pytest code,
and for synchronous code anywhere (a trial test method included).

The server runs in a private reactor that crochet runs in a background thread
(:mod:`txtestserver._reactor_thread`), not in the global reactor, so it
shares the process with trial, pytest-twisted or a Twisted program. Each
blocking call hands its work to that thread and waits, with a timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from twisted.internet.defer import Deferred

from ._core import check_seconds
from ._errors import TestServerError
from ._reactor_thread import PrivateReactorCore

__all__ = ["TestServer"]


class TestServer(PrivateReactorCore):
    """
    A test HTTP server with a blocking API. Use it from any thread except the
    one that serves it (a response callback must not call ``stop()``). ``with
    TestServer() as server:`` starts it and stops it.

    It serves from a reactor of its own, run in a background thread, not from
    the global ``twisted.internet.reactor``: a response callback that
    schedules work uses ``request.reactor``.

    The constructor's parameters are those of every face
    (:class:`~txtestserver._core.ServerCore`), except ``reactor``.
    """

    __test__ = False  # not a pytest test class, despite the name

    def start(self, keep_alive: bool = False) -> None:
        """
        Start listening; return once the server accepts connections.

        :param keep_alive: keep connections open between requests (by
            default each response closes its connection, as test_server does).
        """
        self._block_on("start()", self._start, keep_alive)

    def stop(self) -> None:
        """Stop: return once no port, connection or pending call is left."""
        self._block_on("stop()", self._stop)

    def wait_request(self, timeout: float = 5.0) -> None:
        """
        Return as soon as ``request['done']`` is true (at once if it already
        is, even when that request was answered long ago): for "the next
        request", use :meth:`wait_requests` or :meth:`wait_for`.

        :param timeout: seconds before raising
            :class:`~txtestserver.WaitTimeoutError`, whose message says what
            did arrive.
        :raise TestServerError: ``timeout`` is not a finite number >= 0.
        """
        timeout = check_seconds("wait_request(timeout)", timeout)
        self._block_on("wait_request()", self._wait_request, timeout, extra_time=timeout)

    def _face_call(
        self, what: str, timeout: float, function: Callable[..., Deferred[Any]], *args: Any
    ) -> Any:
        try:
            extra = check_seconds(what, timeout)
        except TestServerError:
            extra = 0.0  # the call itself raises the clear error
        return self._block_on(what, function, *args, extra_time=extra)

    def wait_requests(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """
        Return once ``count`` requests since start or reset are answered
        (at once if they already are).

        :param count: how many requests.
        :param timeout: seconds before raising
            :class:`~txtestserver.WaitTimeoutError`, whose message says how
            many did arrive.
        :return: the first ``count`` answered requests, oldest first, each a
            dict like ``server.request``.
        """
        timeout = check_seconds("wait_requests(timeout)", timeout)
        result: list[dict[str, Any]] = self._block_on(
            "wait_requests()", self._wait_requests, count, timeout, extra_time=timeout
        )
        return result

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], object], timeout: float = 5.0
    ) -> dict[str, Any]:
        """
        Return the first answered request for which ``predicate(request)``
        is true, oldest first; requests answered before the call count.

        :param predicate: takes a request dict (like ``server.request``); it
            runs in the server's reactor thread, and an exception it raises
            is raised here.
        :param timeout: seconds before raising
            :class:`~txtestserver.WaitTimeoutError`.
        :raise TestServerError: ``timeout`` is not a finite number >= 0.
        """
        timeout = check_seconds("wait_for(timeout)", timeout)
        result: dict[str, Any] = self._block_on(
            "wait_for()", self._wait_for, predicate, timeout, extra_time=timeout
        )
        return result

    def __enter__(self) -> TestServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
