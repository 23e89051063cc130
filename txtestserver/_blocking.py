"""
The blocking API: :class:`TestServer`, for plain unittest and pytest code.

The server runs in the reactor that crochet starts in a background thread (on
first use, not at import). Each blocking call hands its work to that thread
and waits on a :class:`threading.Event` with a timeout. We do not block on
crochet's ``EventualResult.wait``: it depends on warnings filters that pytest
resets between tests (see docs/troubleshooting.rst).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python import threadable
from twisted.python.failure import Failure

from ._core import ServerCore, check_seconds
from ._errors import TestServerError
from ._types import ProcessReactor

__all__ = ["TestServer"]

T = TypeVar("T")

_setup_lock = threading.Lock()
_reactor: Any = None


def _crochet_reactor() -> Any:
    """Start crochet's reactor thread once per process; return the reactor."""
    global _reactor
    with _setup_lock:
        if _reactor is None:
            from twisted.internet import reactor

            if reactor.running:
                raise TestServerError(
                    "the Twisted reactor already runs in this process (trial, or a "
                    "Twisted program): blocking on it would deadlock. "
                    "Use DeferredTestServer there"
                )
            import crochet

            crochet.setup()
            _reactor = reactor
        return _reactor


def _blocking_call(
    what: str, timeout: float, function: Callable[..., Deferred[T]], *args: Any
) -> T:
    """
    Run ``function(*args)`` in the reactor thread and wait for its Deferred.

    :param what: names the call in error messages.
    :param timeout: seconds to wait before giving up with TestServerError.
    """
    if threadable.isInIOThread():
        raise TestServerError(
            f"TestServer.{what} blocks, and was called from the reactor thread, "
            "where it would deadlock: use DeferredTestServer in Twisted code"
        )
    reactor = _crochet_reactor()
    finished = threading.Event()
    outcome: list[Any] = []
    running: list[Deferred[T]] = []

    def run() -> None:
        d = maybeDeferred(function, *args)
        running.append(d)

        def keep(result: Any) -> None:
            outcome.append(result)
            finished.set()

        d.addBoth(keep)

    def cancel() -> None:
        for d in running:
            d.cancel()

    reactor.callFromThread(run)
    try:
        over = finished.wait(timeout)
    except BaseException:
        # Interrupted (Ctrl-C, a signal handler that raised): the call in the
        # reactor thread is cancelled too, leaving no waiter or timer there.
        reactor.callFromThread(cancel)
        raise
    if not over:
        reactor.callFromThread(cancel)
        raise TestServerError(f"TestServer.{what} did not finish within {timeout} s")
    result = outcome[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result  # type: ignore[no-any-return]


class TestServer(ServerCore):
    """
    A test HTTP server with a blocking API.

    Use it from any thread except the reactor's. ``with TestServer() as
    server:`` starts it and stops it.

    The constructor's parameters are those of every face
    (:class:`~txtestserver._core.ServerCore`), except ``reactor``: it serves
    from the reactor that crochet runs.
    """

    __test__ = False  # not a pytest test class, despite the name

    @classmethod
    def _reactor_for(cls, reactor: ProcessReactor | None) -> ProcessReactor:
        if reactor is not None:
            raise TestServerError(
                "TestServer serves from the reactor crochet runs and takes no reactor: "
                "use DeferredTestServer to serve from a reactor of your own"
            )
        return super()._reactor_for(None)

    def start(self, keep_alive: bool = False) -> None:
        """
        Start listening; return once the server accepts connections.

        :param keep_alive: keep connections open between requests (by
            default each response closes its connection, as test_server does).
        """
        _blocking_call("start()", self._call_timeout, self._start, keep_alive)

    def stop(self) -> None:
        """Stop: return once no port, connection or pending call is left."""
        _blocking_call("stop()", self._call_timeout, self._stop)

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
        _blocking_call("wait_request()", timeout + self._call_timeout, self._wait_request, timeout)

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
        return _blocking_call(
            "wait_requests()", timeout + self._call_timeout, self._wait_requests, count, timeout
        )

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
        """
        timeout = check_seconds("wait_for(timeout)", timeout)
        return _blocking_call(
            "wait_for()", timeout + self._call_timeout, self._wait_for, predicate, timeout
        )

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
