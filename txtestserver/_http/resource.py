"""
The one twisted.web resource: it captures each request into the store, takes
the answer from the store's response table, and renders it.

It runs unchanged in the test process (thread engine) and in the server
process (subprocess engine); only the store behind it differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from .._config import DEFAULT_CONFIG, ServerConfig
from .._model.record import Record, with_fault
from .._state.store import StateStore
from .._types import TimeReactor
from .answers import Answer, ErrorAnswer
from .capture import capture
from .kinds import choose
from .writing import Reply

__all__ = ["CaptureResource"]

_log = Logger()


class CaptureResource(Resource):
    """
    Answers every path and every method.

    For each request: record it, take its answer from the store (using up
    what it takes, in one atomic step), wait the answer's ``sleep`` without
    blocking the reactor, render it, mark the request done and call
    ``on_answered``. The request is recorded before a ``sleep``, a callback
    or a stream, so that a test sees it meanwhile; an answer written at once
    is recorded already done, in one store update. A request is done when
    its answer is finished, or when a fault that closes the connection has
    been carried out; never for a fault that leaves it hanging.

    :param store: where the response is read and the request recorded.
    :param reactor: schedules ``sleep`` and paces streams (a ``Clock`` in
        unit tests).
    :param on_answered: called in the reactor thread after each answered
        request.
    :param config: keep-alive and the body limit apply here, the header
        limits in the connection (:class:`~txtestserver._http.site.ServerSite`).
    """

    isLeaf = True

    def __init__(
        self,
        store: StateStore,
        reactor: TimeReactor,
        on_answered: Callable[[], None] = lambda: None,
        *,
        config: ServerConfig = DEFAULT_CONFIG,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._store = store
        self._reactor = reactor
        self._on_answered = on_answered
        self._reply = Reply(keep_alive=config.keep_alive, reactor=reactor)
        self._body_limit = config.body_limit

    def render(self, request: Request) -> int:
        record = capture(request, self._body_limit)
        answer = self._take(record)
        if answer.fault is not None:
            record = with_fault(record, answer.fault)
        if answer.immediate and not answer.sleep:
            # The usual case, answered at once. Twisted sends nothing before
            # render() returns, so the request is recorded as answered in
            # one store update, never later than the client sees the answer
            # (the server process writes its state file once, not twice).
            answer.render(request, self._reply)
            done = answer.closes or bool(request.finished)
            self._store.record(record, done=done)
            if done:
                self._call_on_answered()
            return NOT_DONE_YET
        # Recorded before the answer: a test sees it during a sleep, and a
        # callback sees it in server.request.
        self._store.record(record)
        if request.finished:
            self._finished(None, record)
        else:
            request.notifyFinish().addCallbacks(
                self._finished, lambda _: None, callbackArgs=(record,)
            )
        if answer.sleep:
            pending: Deferred[Any] | None = deferLater(
                self._reactor,  # type: ignore[arg-type]
                answer.sleep,
                self._render,
                request,
                answer,
                record,
            )
        else:
            pending = self._render(request, answer, record)
        if pending is not None:
            self._cancel_when_gone(request, pending)
        return NOT_DONE_YET

    @staticmethod
    def _cancel_when_gone(request: Request, pending: Deferred[Any]) -> None:
        """A client that gives up (or stop()) leaves no pending call behind."""
        pending.addErrback(lambda f: f.trap(CancelledError))
        request.notifyFinish().addErrback(lambda _: pending.cancel())

    def _take(self, record: Record) -> Answer:
        """The answer to ``record``, or an error answer if none can be made."""
        try:
            return choose(self._store.update(lambda table: table.take(record)))
        except Exception as e:
            _log.failure("txtestserver could not build the response")
            return ErrorAnswer(500, f"cannot build the response: {e!r}")

    def _render(self, request: Request, answer: Answer, record: Record) -> Deferred[Any] | None:
        if request.finished or request.channel is None:
            return None  # the client left during the sleep
        pending = answer.render(request, self._reply)
        if answer.closes:
            self._finished(None, record)  # the connection is closing: no finish comes
        return pending

    def _finished(self, _: object, record: Record) -> None:
        self._store.mark_done(record)
        self._call_on_answered()

    def _call_on_answered(self) -> None:
        try:
            self._on_answered()
        except Exception:
            _log.failure("txtestserver on_answered hook failed", Failure())
