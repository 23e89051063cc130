"""
The one twisted.web resource: it captures each request into the store and
answers from the store.

It runs unchanged in the test process (thread engine) and in the server
process (subprocess engine); only the store behind it differs.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import CancelledError
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from .._config import DEFAULT_CONFIG, ServerConfig
from .._model.keys import Answer, build
from .._model.record import Record
from .._state.store import StateStore
from .._types import TimeReactor
from .answers import render_answer, render_error
from .capture import capture

__all__ = ["CaptureResource"]

_log = Logger()


class CaptureResource(Resource):
    """
    Answers every path and every method.

    For each request: take the answer for its method from the store, record
    the request (before a ``sleep`` or a callback, so that a test sees it
    meanwhile), wait ``sleep`` seconds without blocking the reactor, write the
    answer, mark the request done and call ``on_answered``. An answer written at
    once is recorded already done, in one store update.

    :param store: where the response is read and the request recorded.
    :param reactor: schedules ``sleep`` (a ``Clock`` in unit tests).
    :param on_answered: called in the reactor thread after each answered request.
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
        self.keep_alive = config.keep_alive
        self._body_limit = config.body_limit

    def render(self, request: Request) -> int:
        record = capture(request, self._body_limit)
        try:
            answer = build(self._store.take_response(request.method.decode("latin-1").upper()))
        except Exception as e:
            self._store.record(record)
            _log.failure("txtestserver could not build the response")
            render_error(request, 500, f"cannot build the response: {e!r}", self.keep_alive)
        else:
            if answer.sleep == 0 and answer.callback is None:
                # The usual case, answered at once. Twisted sends nothing before
                # render() returns, so the request is recorded as answered in
                # one store update, never later than the client sees the answer
                # (the server process writes its state file once, not twice).
                self._answer(request, answer)
                self._store.record(record, done=bool(request.finished))
                if request.finished:
                    self._call_on_answered()
                return NOT_DONE_YET
            # Recorded before the answer: a test sees it during a sleep, and a
            # callback sees it in server.request.
            self._store.record(record)
            if answer.sleep > 0:
                delay = deferLater(
                    self._reactor,  # type: ignore[arg-type]
                    answer.sleep,
                    self._answer,
                    request,
                    answer,
                )
                delay.addErrback(lambda f: f.trap(CancelledError))
                # A client that gives up (or stop()) leaves no pending call behind.
                request.notifyFinish().addErrback(lambda _: delay.cancel())
            else:
                self._answer(request, answer)
        if request.finished:
            self._finished(None, record)
        else:
            request.notifyFinish().addCallbacks(
                self._finished, lambda _: None, callbackArgs=(record,)
            )
        return NOT_DONE_YET

    def _answer(self, request: Request, answer: Answer) -> None:
        render_answer(request, answer, self.keep_alive)

    def _finished(self, _: object, record: Record) -> None:
        self._store.mark_done(record)
        self._call_on_answered()

    def _call_on_answered(self) -> None:
        try:
            self._on_answered()
        except Exception:
            _log.failure("txtestserver on_answered hook failed", Failure())
