"""
One request and its answer: an :class:`Exchange`, from the moment the request
is captured until its journal entry is complete.

It holds what was kept on the request with ``setattr`` and in tuples before
(the journal ticket, the route that answers, the errors reported before the
request was recorded), and it is the one place that builds the request's
:data:`~txtestserver._model.record.Outcome`. An answer kind gets it in
``render(exchange)``: the request to write on, the server's
:class:`~txtestserver._http.writing.Reply`, and :meth:`Exchange.report` for
what goes wrong.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.server import Request

from .._model.record import NOT_SENT, Outcome, Record, outcome
from .._state.store import Ticket
from .request import actions, sent
from .writing import Reply, gone, render_plain_error, send_now

if TYPE_CHECKING:  # the resource makes exchanges; it imports this module
    from .answers import Answer
    from .resource import CaptureResource

__all__ = ["Exchange"]

_log = Logger()


class Exchange:
    """
    One request and its answer.

    The request is recorded before its answer (so that a test sees it during
    a ``sleep``, and a callback sees it in ``server.request``), or, for an
    answer written at once, after it, already answered, in one store update.
    Its entry is completed once: when the answer is finished, when a fault
    that closes the connection has been carried out, or when writing it
    failed.

    :ivar request: the twisted.web request.
    :ivar record: what the client sent.
    :ivar reply: how the server replies (keep-alive, the reactor).
    :ivar answer: the answer kind chosen for it.
    :ivar route_id: the id of the route that answers (None: the server's own answer).
    :ivar route: that route's name.
    :ivar ticket: the journal entry, once recorded.
    :ivar done: the entry is complete (``request['done']``).
    :ivar aborted: why the answer never reached the client whole, or None
        (the request may say so first: an HTTP/2 stream the client reset
        before it was answered).
    """

    __slots__ = (
        "_errors",
        "_later",
        "_server",
        "aborted",
        "answer",
        "done",
        "forwarded",
        "record",
        "reply",
        "request",
        "route",
        "route_id",
        "ticket",
        "websocket",
    )

    answer: Answer

    def __init__(self, server: CaptureResource, request: Request, record: Record) -> None:
        self._server = server
        self.request = request
        self.record = record
        self.reply: Reply = server.reply
        self.route_id: int | None = None
        self.route: str | None = None
        self.ticket: Ticket | None = None
        self.done = False
        self.aborted: str | None = None
        #: A WebSocket handshake, as JSON text (``request['websocket']``).
        self.websocket: str | None = None
        #: A forwarded answer's upstream and pieces, as JSON text
        #: (:data:`~txtestserver._model.record.FORWARDED`).
        self.forwarded: str | None = None
        # Errors reported before the request is recorded: (message, traceback).
        self._errors: list[tuple[str, str | None]] | None = None
        # Answered later than it arrived (a sleep, a stream): the journal
        # keeps when the answer was complete; an answer written at once was
        # complete when it arrived (``answer_time`` None).
        self._later = False
        track = getattr(actions(request).connection(), "track", None)
        if track is not None:  # (a plain twisted.web channel, in unit tests, does not)
            track(self)

    def outcome(self) -> Outcome:
        """How the request was answered, so far."""
        request = self.request
        code = request.code if self.done and request.startedWriting else None
        aborted = self.aborted or getattr(request, "aborted", None)
        return outcome(
            self.done,
            code,
            self.route_id,
            self.route,
            self.answer.fault,
            aborted,
            self.websocket,
            sent(request, time.time() if self._later else None)
            if self.done or aborted
            else NOT_SENT,
            self.forwarded,
        )

    # -- answering ------------------------------------------------------------------------

    def answer_now(self) -> None:
        """
        Render an answer written at once, then record the request as
        answered, in one store update: Twisted sends nothing before
        ``render()`` returns, so the entry is never later than what the
        client sees (the server process writes its state file once, not
        twice).
        """
        request, answer = self.request, self.answer
        channel = request.channel  # finish() lets go of it
        try:
            answer.render(self)
        except BaseException:
            failed = True
            self.failed(Failure())
        else:
            failed = False
        # Else the client left before the answer ended.
        self.done = failed or bool(request.finished) or answer.closes
        self.ticket = self._server.store.record(self.record + self.outcome())
        if self._errors is not None:
            self._record_errors()
        if self.done:
            self._server.answered(self.ticket)
        else:  # a stall, say: the answer goes on after render()
            self._server.arrived(self.ticket)
        send_now(channel)

    def answer_later(self) -> None:
        """
        Record the request, then wait the answer's ``sleep`` and render it;
        the entry is completed when the answer is finished.
        """
        store = self._server.store
        self._later = True
        self.ticket = store.record(self.record + self.outcome())
        self._server.arrived(self.ticket)
        request = self.request
        if request.finished:
            self.end()
        else:
            request.notifyFinish().addCallbacks(self.end, lambda _: None)
        pending: Deferred[Any] | None
        if self.answer.sleep:
            pending = deferLater(
                self.reply.reactor,  # type: ignore[arg-type]
                self.answer.sleep,
                self._render,
            )
        else:
            pending = self._render()
        if pending is not None:
            # A client that gives up (or stop()) leaves no pending call
            # behind; a failure of what is pending is a failure to write.
            pending.addErrback(self._pending_failed)
            request.notifyFinish().addErrback(lambda _: pending.cancel())

    def _render(self) -> Deferred[Any] | None:
        if gone(self.request):
            return None  # the client left during the sleep
        try:
            pending = self.answer.render(self)
        except BaseException:
            self.failed(Failure())
            return None
        if self.answer.closes:
            self.end()  # the connection is closing: no finish comes
        return pending

    def _pending_failed(self, failure: Failure) -> None:
        if not failure.check(CancelledError):
            self.failed(failure)

    def failed(self, failure: Failure) -> None:
        """
        Writing the answer raised (whatever raised: Twisted refusing a
        header, a bug in an answer kind): report it as a server-side error,
        answer a plain 500 naming it if nothing was sent yet, else cut the
        connection; either way the connection closes and the request counts
        as answered (its journal entry is completed).
        """
        message = (
            f"writing the answer failed: {getattr(failure.type, '__name__', 'error')}: "
            f"{failure.getErrorMessage()}"
        )
        _log.failure("txtestserver: {reason}", failure, reason=message)
        self.report(message, failure.getTraceback())
        request = self.request
        if gone(request):
            return
        if request.startedWriting:
            self.aborted = "writing the answer failed once it had started: the connection was cut"
            actions(request).reset()
        else:
            try:
                request.responseHeaders = Headers()
                render_plain_error(request, 500, message, self.reply._replace(keep_alive=False))
            except BaseException:
                _log.failure("txtestserver could not answer 500 either")
                actions(request).reset()
        if not request.finished:
            self.end()  # cut off: no finish will complete the entry

    def end(self, _: object = None) -> None:
        """
        The answer is complete: the status sent (if one was) into the
        journal entry, once (nothing, before the request is recorded).
        """
        if self.done or self.ticket is None:
            return
        self.done = True
        self._server.store.complete(self.ticket, self.outcome())
        self._server.answered(self.ticket)

    def abort(self, reason: str) -> None:
        """
        The answer will not reach the client whole (``stop()`` cuts the
        connection): say so in the journal entry, which loses its
        ``response_code``.
        """
        if self.aborted is not None or self.ticket is None:
            return
        self.aborted = reason
        self._server.store.complete(self.ticket, self.outcome())

    def upstream_agent(self, verify: bool | str = True) -> Any:
        """The HTTP client a forwarded request goes out with (its server's)."""
        return self._server.upstream_agent(verify)

    # -- errors ---------------------------------------------------------------------------

    def report(self, message: str, traceback: str | None = None) -> None:
        """
        Something went wrong while answering: a server-side error of this
        request (``server.errors``), recorded with it.

        :param traceback: None when no exception was involved.
        """
        if self.ticket is None:  # rendering at once: recorded right after
            if self._errors is None:
                self._errors = []
            self._errors.append((message, traceback))
            return
        try:
            self._server.store.add_error(self.ticket, message, traceback)
        except Exception:
            _log.failure("txtestserver could not record a server-side error")

    def _record_errors(self) -> None:
        errors, self._errors = self._errors or [], None
        for message, traceback in errors:
            self.report(message, traceback)
