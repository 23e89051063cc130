"""
The blocking API: :class:`TestServer`, for plain unittest and pytest code,
and for synchronous code anywhere (a trial test method included).

The server runs in a private reactor that crochet runs in a background thread
(:mod:`txtestserver._reactor_thread`), not in the global reactor, so it
shares the process with trial, pytest-twisted or a Twisted program. Each
blocking call hands its work to that thread (:meth:`TestServer._call`) and
waits, with a timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, TypeVar

from ._core import Step, Steps
from ._errors import TestServerError
from ._private import PrivateReactorCore, reactor_thread

__all__ = ["TestServer"]

T = TypeVar("T")


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
        Start listening; return once the server accepts connections. A start
        that does not finish within ``call_timeout`` is undone: nothing is
        left listening.

        :param keep_alive: keep connections open between requests (by
            default each response closes its connection, as test_server does).
        :raise TestServerError: the server runs already, the address or port cannot be
            bound (the message names them), or the start took longer than
            ``call_timeout`` (nothing is left listening).
        """
        self._call("start()", 0.0, self._start, keep_alive, undo=self._stop)

    def stop(self) -> None:
        """
        Stop: return once no port, connection or pending call is left.

        :raise TestServerError: stopping took longer than ``call_timeout``.
        """
        self._call("stop()", 0.0, self._stop)

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
        self._call("wait_request()", timeout, self._wait_request, timeout)

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
        :raise WaitTimeoutError: fewer were answered in time (the message says
            what did arrive).
        :raise TestServerError: ``count`` or ``timeout`` is not valid, or the
            server is not running.
        """
        result: list[dict[str, Any]] = self._call(
            "wait_requests()", timeout, self._wait_requests, count, timeout
        )
        return result

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], object], timeout: float = 5.0
    ) -> dict[str, Any]:
        """
        Return the first answered request for which ``predicate(request)``
        is true, oldest first; requests answered before the call count.

        :param predicate: takes a request dict (like ``server.request``); it
            runs in the calling thread (a slow one delays this wait only),
            and an exception it raises is raised here.
        :param timeout: seconds before raising
            :class:`~txtestserver.WaitTimeoutError`, also when they run out
            while the predicate runs.
        :raise TestServerError: ``timeout`` is not a finite number >= 0.
        """
        result: dict[str, Any] = self._run("wait_for()", self._wait_for(predicate, timeout))
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

    def _run(self, what: str, steps: Generator[Step, Any, T]) -> T:
        """Run the steps in this thread, each step one :meth:`_call`."""
        for step in (run := Steps(steps)):
            try:
                run.sent = self._call(what, *step[:2], *step[2])
            except Exception as e:
                run.error = e
        return run.result

    def _call(
        self,
        what: str,
        timeout: float,
        function: Callable[..., Any],
        *args: Any,
        undo: Callable[[], Any] | None = None,
    ) -> Any:
        """
        Submit the call to the reactor thread and block until its result, at
        most ``call_timeout`` more than ``timeout``; on timeout or
        interruption (Ctrl-C) the call is cancelled there too.

        We wait on a :class:`threading.Event`, not on crochet's
        ``EventualResult.wait``, which breaks under warnings filters that
        pytest resets between tests (docs/troubleshooting.rst).

        :raise TestServerError: called from the reactor thread itself, where
            waiting would deadlock; or the call took too long.
        """
        thread = reactor_thread()
        if thread.in_thread():
            raise TestServerError(
                f"{type(self).__name__}.{what} blocks, and was called in the thread of the "
                "reactor that serves the server (from a response callback, say), where it "
                "would wait forever: call it from the test instead"
            )
        seconds = self._bound(timeout)
        finished = threading.Event()
        outcome: list[Any] = []

        def deliver(result: Any) -> None:
            outcome.append(result)
            finished.set()

        submission = thread.submit(deliver, function, *args, undo=undo)
        try:
            over = finished.wait(seconds)
        except BaseException:
            submission.cancel()
            raise
        if not over:
            submission.cancel()
            raise self._too_slow(what, seconds)
        from twisted.python.failure import Failure

        result = outcome[0]
        if isinstance(result, Failure):
            result.raiseException()
        return result
