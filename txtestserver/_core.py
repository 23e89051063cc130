"""
The server itself, shared by both API faces: lifecycle, waiting, URLs and the
dict-like views.

:class:`ServerCore` does everything in terms of Deferreds and must be driven
from the reactor thread. :class:`~txtestserver.DeferredTestServer` hands those
Deferreds to its caller; :class:`~txtestserver.TestServer` runs the same calls
in crochet's reactor thread and blocks on them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from ._config import (
    DEFAULT_BODY_LIMIT,
    DEFAULT_HEADER_COUNT_LIMIT,
    DEFAULT_HEADER_SIZE_LIMIT,
    ServerConfig,
)
from ._engines import make_engine
from ._errors import TestServerError, WaitTimeoutError
from ._model.table import ONCE, RESPONSE
from ._types import ProcessReactor
from ._views import RequestsView, RequestView, ResponseView

__all__ = ["ServerCore"]


class ServerCore:
    """
    One test server: an engine plus the views over its store.

    Its constructor is the one every face has (written and documented here
    once). The faces add public ``start``, ``stop`` and ``wait_request`` on
    top of the Deferred-returning ``_start``, ``_stop`` and
    ``_wait_request``, which must run in the reactor thread.

    :param address: the interface to bind (default ``127.0.0.1``, private to
        this machine; an IPv6 address such as ``::1`` works too).
    :param port: the port to bind; 0 (the default) picks a free one.
    :param engine: ``'thread'`` (the default) serves from a reactor in this
        process; ``'subprocess'`` serves from a child process.
    :param reactor: the reactor that runs the server
        (:class:`~txtestserver.DeferredTestServer` only; the global one by
        default). The blocking face runs its own.
    :param body_limit: keep at most this many bytes of each request body in
        ``request['data']`` (default 64 MiB; 0 keeps none).
    :param header_count_limit: header lines one request may have (default
        500); a request with more gets ``400 Bad Request``.
    :param header_size_limit: bytes the request line and header lines of one
        request may hold (default 64 KiB); a request with more gets ``400 Bad
        Request``, or its connection closed if one line alone is longer.
    :param call_timeout: seconds ``start()`` and ``stop()`` of the blocking
        face may take before they raise
        :class:`~txtestserver.TestServerError`.
    :raise TestServerError: a parameter can never work (the message says
        which and why).
    """

    def __init__(
        self,
        address: str = "127.0.0.1",
        port: int = 0,
        engine: str = "thread",
        *,
        reactor: ProcessReactor | None = None,
        body_limit: int = DEFAULT_BODY_LIMIT,
        header_count_limit: int = DEFAULT_HEADER_COUNT_LIMIT,
        header_size_limit: int = DEFAULT_HEADER_SIZE_LIMIT,
        call_timeout: float = 10.0,
    ) -> None:
        #: The settings of the next run; ``start(keep_alive=...)`` sets that one.
        self.config = ServerConfig(
            address=address,
            port=port,
            body_limit=body_limit,
            header_count_limit=header_count_limit,
            header_size_limit=header_size_limit,
        )
        self._reactor = self._reactor_for(reactor)
        self._call_timeout = call_timeout
        self._engine = make_engine(engine, self._reactor)
        #: The engine's name.
        self.engine = engine
        store = self._engine.store
        #: What the latest client sent.
        self.request = RequestView(store)
        #: Every request since start or reset.
        self.requests = RequestsView(store, self.request)
        #: What the server answers to every request.
        self.response = ResponseView(store, slot=RESPONSE, portable=self._engine.portable)
        #: What the server answers to the next matching request only.
        self.response_once = ResponseView(store, slot=ONCE, portable=self._engine.portable)
        #: The real port once started, else None.
        self.port: int | None = None
        self._running = False
        # While a start is under way: who waits for it to settle (see _stop).
        self._starting: list[Deferred[None]] | None = None
        self._lost: TestServerError | None = None
        self._waiters: list[Deferred[None]] = []

    @classmethod
    def _reactor_for(cls, reactor: ProcessReactor | None) -> ProcessReactor:
        """The reactor this face serves from: the given one, else the global one."""
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            return global_reactor
        return reactor

    @property
    def address(self) -> str:
        """The interface the server binds."""
        return self.config.address

    # -- in any thread ------------------------------------------------------

    def get_url(self, path: str = "", port: int | None = None) -> str:
        """
        The URL of ``path`` on this server.

        :param path: appended as given (``'/foo?x=1'``); a missing leading
            slash is added.
        :param port: use this port instead of the server's own.
        """
        if port is None:
            if self.port is None:
                raise TestServerError("get_url() needs a started server: call start() first")
            port = self.port
        address = self.config.address
        host = f"[{address}]" if ":" in address else address
        if path and not path.startswith("/"):
            path = "/" + path
        return f"http://{host}:{port}{path or '/'}"

    def reset(self) -> None:
        """Response back to defaults, requests forgotten, response_once emptied."""
        self._engine.store.reset()
        self.request.reset()

    # -- in the reactor thread ----------------------------------------------

    def _start(self, keep_alive: bool = False) -> Deferred[None]:
        """Listen; fire once the server accepts connections."""
        if self._running or self._starting:
            raise TestServerError(
                f"the server is already running on port {self.port}: call stop() before start()"
            )
        self._lost = None
        self.config = dataclasses.replace(self.config, keep_alive=keep_alive)
        started = self._engine.start(self.config, self._answered, self._engine_lost)

        def listening(port: int) -> None:
            self._running = True
            self.port = port

        def settled(result: Any) -> Any:
            waiting, self._starting = self._starting or [], None
            for d in waiting:
                d.callback(None)
            return result

        self._starting = []
        return started.addCallback(listening).addBoth(settled)

    def _stop(self) -> Deferred[None]:
        """
        Stop listening, drop open connections, cancel sleeping answers and
        fail pending ``wait_request`` calls. Stopping a stopped server does
        nothing. If the server died on its own (a subprocess server process),
        stop() releases what is left, then fails with the reason, once.
        """
        if self._starting is not None:
            # stop() during start(): stop once the start has settled.
            settled: Deferred[None] = Deferred()
            self._starting.append(settled)
            return settled.addCallback(lambda _: self._stop())
        lost, self._lost = self._lost, None
        if not self._running and not lost:
            return succeed(None)
        self._running = False
        self.port = None
        self._fail_waiters(TestServerError("the server was stopped while waiting for a request"))
        stopped = self._engine.stop()
        if lost is not None:
            stopped.addCallback(lambda _: Failure(TestServerError(*lost.args)))
        return stopped

    def _wait_request(self, timeout: float) -> Deferred[None]:
        """
        Fire as soon as ``request['done']`` is true.

        :param timeout: seconds; then fail with :class:`WaitTimeoutError`.
        """
        self._check_running("wait_request()")
        if self._engine.store.last_request()[1]:
            return succeed(None)
        waiter: Deferred[None] = Deferred(self._forget_waiter)
        self._waiters.append(waiter)
        timer = self._reactor.callLater(
            timeout,
            self._timed_out,
            waiter,
            WaitTimeoutError(f"no request was answered within {timeout} s"),
        )
        return waiter.addBoth(self._cancel_timer, timer)

    # -- engine events --------------------------------------------------------

    def _check_running(self, what: str) -> None:
        if self._lost is not None:
            raise self._lost
        if not self._running:
            raise TestServerError(f"{what} needs a running server: call start() first")

    def _answered(self) -> None:
        if not self._waiters or not self._engine.store.last_request()[1]:
            return  # an older request was answered; the latest is in progress
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _engine_lost(self, reason: TestServerError) -> None:
        self._lost = reason
        self._running = False
        self._fail_waiters(reason)

    def _fail_waiters(self, error: TestServerError) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.errback(error)

    def _forget_waiter(self, waiter: Deferred[None]) -> None:
        """The caller cancelled its wait (Deferred.cancel)."""
        if waiter in self._waiters:
            self._waiters.remove(waiter)

    def _timed_out(self, waiter: Deferred[None], error: WaitTimeoutError) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
            waiter.errback(error)

    @staticmethod
    def _cancel_timer(result: Any, timer: Any) -> Any:
        if timer.active():
            timer.cancel()
        return result
