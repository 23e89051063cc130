"""
The Deferred API: :class:`DeferredTestServer`, for code that runs in the
reactor thread (trial TestCases, Twisted programs).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred

from ._core import ServerCore, Step, Steps

T = TypeVar("T")

__all__ = ["DeferredTestServer"]


class DeferredTestServer(ServerCore):
    """
    A test HTTP server whose ``start``, ``stop`` and ``wait_request`` return
    Deferreds. Everything else is the same as :class:`~txtestserver.TestServer`.

    The constructor's parameters are those of every face
    (:class:`~txtestserver._core.ServerCore`); ``reactor`` is the reactor to
    serve from (the global one by default).
    """

    __test__ = False  # not a pytest test class, despite the name

    def start(self, keep_alive: bool = False) -> Deferred[None]:
        """
        Start listening.

        :param keep_alive: keep connections open between requests (by
            default each response closes its connection, as test_server does).
        :return: fires once the server accepts connections; ``server.port``
            is then the real port.
        :raise TestServerError: (the Deferred fails with it) the server runs
            already, or the address or port cannot be bound (the message
            names them).
        """
        return self._call("start()", 0.0, self._start, keep_alive)

    def stop(self) -> Deferred[None]:
        """
        Stop: no listening port, no open connection, no pending call left.

        :return: fires once everything is released.
        """
        return self._call("stop()", 0.0, self._stop)

    def wait_request(self, timeout: float = 5.0) -> Deferred[None]:
        """
        Wait until ``request['done']`` is true (at once if it already is,
        even when that request was answered long ago): for "the next
        request", use :meth:`wait_requests` or :meth:`wait_for`.

        :param timeout: seconds before failing with
            :class:`~txtestserver.WaitTimeoutError`.
        :return: fails with :class:`~txtestserver.TestServerError` if
            ``timeout`` is not a finite number >= 0. Cancelling it forgets
            the wait and its timer.
        :raise WaitTimeoutError: (the Deferred fails with it) the latest
            request was not answered in time.
        :raise TestServerError: ``timeout`` is not a finite number >= 0.
        """
        return self._call("wait_request()", timeout, self._wait_request, timeout)

    def _run(self, what: str, steps: Generator[Step, Any, T]) -> Deferred[T]:
        """Run the steps in the reactor thread, each step's Deferred waited for."""

        @inlineCallbacks
        def drive() -> Generator[Deferred[Any], Any, T]:
            for step in (run := Steps(steps)):
                try:
                    run.sent = yield self._call(what, *step[:2], *step[2])
                except Exception as e:
                    run.error = e
            return run.result

        return drive()

    def _call(
        self,
        what: str,
        timeout: float,
        function: Callable[..., Any],
        *args: Any,
        undo: Callable[[], Any] | None = None,
    ) -> Deferred[Any]:
        """The caller runs in the reactor thread: its Deferred is the result."""
        return maybeDeferred(function, *args)

    def wait_requests(self, count: int, timeout: float = 5.0) -> Deferred[list[dict[str, Any]]]:
        """
        Wait until ``count`` requests since start or reset are answered.

        :param count: how many requests.
        :param timeout: seconds before failing with
            :class:`~txtestserver.WaitTimeoutError`.
        :return: fires with the first ``count`` answered requests, oldest
            first, each a dict like ``server.request``. Cancelling it
            forgets the wait and its timer.
        :raise WaitTimeoutError: (the Deferred fails with it) fewer were
            answered in time (the message says what did arrive).
        :raise TestServerError: ``count`` or ``timeout`` is not valid, or the
            server is not running.
        """
        return self._call("wait_requests()", timeout, self._wait_requests, count, timeout)

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], object], timeout: float = 5.0
    ) -> Deferred[dict[str, Any]]:
        """
        Wait for the first answered request for which ``predicate(request)``
        is true, oldest first; requests answered before the call count.

        :param predicate: takes a request dict (like ``server.request``); an
            exception it raises fails the Deferred.
        :param timeout: seconds before failing with
            :class:`~txtestserver.WaitTimeoutError`.
        :return: fires with that request. Cancelling it forgets the wait and
            its timer.
        :raise WaitTimeoutError: (the Deferred fails with it) no answered
            request met ``predicate`` in time.
        :raise TestServerError: ``timeout`` is not a finite number >= 0.
        :raise Exception: what ``predicate`` raised.
        """
        return self._run("wait_for()", self._wait_for(predicate, timeout))
