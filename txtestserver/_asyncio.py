"""
The asyncio API: :class:`AsyncTestServer`, for ``async def`` tests
(pytest-asyncio, anyio's pytest plugin on asyncio, ``asyncio.run``).

It serves from the same private reactor thread as
:class:`~txtestserver.TestServer` (:mod:`txtestserver._reactor_thread`), not
from the event loop, so a client in the event loop and the server never wait
for each other. Each awaitable call runs its Deferred in the reactor thread
and carries the outcome back to the awaiting loop with
``loop.call_soon_threadsafe``; the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, TypeVar, cast

from ._core import Step, Steps
from ._private import PrivateReactorCore, reactor_thread

__all__ = ["AsyncTestServer"]

T = TypeVar("T")


class AsyncTestServer(PrivateReactorCore):
    """
    A test HTTP server whose ``start``, ``stop`` and waits (``wait_request``,
    ``wait_requests``, ``wait_for``) are coroutines. Everything else
    (``response``, ``request``, ``get_url``, ``check``...) is the same as
    :class:`~txtestserver.TestServer`. ``async with
    AsyncTestServer() as server:`` starts it and stops it.

    Cancelling an awaited call (a timeout around it, a cancelled task)
    cancels it in the reactor thread too: a cancelled ``wait_request`` leaves
    no timer and no waiter behind.

    The constructor's parameters are those of every face
    (:class:`~txtestserver._core.ServerCore`), except ``reactor``.
    """

    __test__ = False  # not a pytest test class, despite the name

    async def start(self, keep_alive: bool = False) -> None:
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
        await self._call("start()", 0.0, self._start, keep_alive, undo=self._stop)

    async def stop(self) -> None:
        """
        Stop: return once no port, connection or pending call is left.

        :raise TestServerError: stopping took longer than ``call_timeout``.
        """
        await self._call("stop()", 0.0, self._stop)

    async def wait_request(self, timeout: float = 5.0) -> None:
        """
        Return as soon as ``request['done']`` is true (at once if it already is).

        :param timeout: seconds before raising
            :class:`~txtestserver.WaitTimeoutError`.
        :raise WaitTimeoutError: the latest request was not answered in time.
        :raise TestServerError: ``timeout`` is not a finite number >= 0.
        """
        await self._call("wait_request()", timeout, self._wait_request, timeout)

    async def wait_requests(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
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
        result: list[dict[str, Any]] = await self._call(
            "wait_requests()", timeout, self._wait_requests, count, timeout
        )
        return result

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], object], timeout: float = 5.0
    ) -> dict[str, Any]:
        """
        Return the first answered request for which ``predicate(request)``
        is true, oldest first; requests answered before the call count.

        :param predicate: takes a request dict (like ``server.request``); it
            runs in the awaiting task (a slow one delays this wait only),
            and an exception it raises is raised here.
        :param timeout: seconds before raising
            :class:`~txtestserver.WaitTimeoutError`, also when they run out
            while the predicate runs.
        :raise WaitTimeoutError: no answered request met ``predicate`` in time.
        :raise TestServerError: ``timeout`` is not a finite number >= 0.
        :raise Exception: what ``predicate`` raised.
        """
        result: dict[str, Any] = await self._run("wait_for()", self._wait_for(predicate, timeout))
        return result

    async def __aenter__(self) -> AsyncTestServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run(self, what: str, steps: Generator[Step, Any, T]) -> T:
        """Run the steps in the awaiting task, each step one awaited :meth:`_call`."""
        for step in (run := Steps(steps)):
            try:
                run.sent = await self._call(what, *step[:2], *step[2])
            except Exception as e:
                run.error = e
        return run.result

    async def _call(
        self,
        what: str,
        timeout: float,
        function: Callable[..., Any],
        *args: Any,
        undo: Callable[[], Any] | None = None,
    ) -> Any:
        """
        Submit the call to the reactor thread; await its result without
        blocking the event loop (the reactor thread hands it over with
        ``loop.call_soon_threadsafe``), at most ``call_timeout`` more than
        ``timeout``. Cancelled (a timeout around it, a cancelled task) or
        too slow, it is cancelled in the reactor thread too.
        """
        from twisted.python.failure import Failure

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(result: Any) -> None:
            if future.done():
                return
            if isinstance(result, Failure):
                future.set_exception(cast(BaseException, result.value))
            else:
                future.set_result(result)

        def deliver(result: Any) -> None:
            try:
                loop.call_soon_threadsafe(settle, result)
            except RuntimeError:
                pass  # the loop is closed: nobody awaits any more

        seconds = self._bound(timeout)
        submission = reactor_thread().submit(deliver, function, *args, undo=undo)
        try:
            done, _ = await asyncio.wait({future}, timeout=seconds)
        except BaseException:  # cancelled: the reactor side gives up too
            submission.cancel()
            if not future.cancel() and not future.cancelled():
                future.exception()  # settled meanwhile: mark the outcome as seen
            raise
        if not done:
            submission.cancel()
            future.cancel()
            raise self._too_slow(what, seconds)
        return future.result()
