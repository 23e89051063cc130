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
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from .._config import DEFAULT_CONFIG, ServerConfig
from .._model.record import Outcome, Record
from .._model.strict import unexpected
from .._state.store import StateStore, Ticket
from .._types import TimeReactor
from .answers import Answer, ErrorAnswer
from .capture import capture
from .kinds import choose
from .site import close_after
from .writing import Reply, finish, gone, start

__all__ = ["CaptureResource"]

_log = Logger()

#: Where a request recorded before its answer keeps its ticket, and its
#: ticket and outcome.
_TICKET = "_txtestserver_ticket"
_RECORDED = "_txtestserver_recorded"


class CaptureResource(Resource):
    """
    Answers every path and every method.

    For each request: capture it, take its answer from the store (using up
    what it takes, in one atomic step), wait the answer's ``sleep`` without
    blocking the reactor, render it, complete its journal entry (the status
    sent) and call ``on_answered``. The request is recorded before a
    ``sleep``, a callback or a stream, so that a test sees it meanwhile,
    with what is known once the answer is taken (the route, the fault); an
    answer written at once is recorded already answered, in one store
    update. A request is answered (done) when its answer is finished, or
    when a fault that closes the connection has been carried out; never for
    a fault that leaves it hanging. What goes wrong while answering is
    recorded as a server-side error of that request (``server.errors``).

    :param store: where the response is read and the request recorded.
    :param reactor: schedules ``sleep``, paces streams and tells the time (a
        ``Clock`` in unit tests).
    :param on_answered: called in the reactor thread with the ticket of each
        answered request.
    :param config: keep-alive and the body limit apply here, the header
        limits in the connection (:class:`~txtestserver._http.site.ServerSite`).
    """

    isLeaf = True

    def __init__(
        self,
        store: StateStore,
        reactor: TimeReactor,
        on_answered: Callable[[Ticket], None] = lambda ticket: None,
        *,
        config: ServerConfig = DEFAULT_CONFIG,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._store = store
        self._reactor = reactor
        self._now = reactor.seconds
        self._on_answered = on_answered
        self._reply = Reply(keep_alive=config.keep_alive, reactor=reactor, report=self._report)
        self._body_limit = config.body_limit
        self._strict = config.strict
        # Errors reported while an answer renders, before its request is recorded.
        self._unrecorded: list[tuple[Request, str, str | None]] = []

    def render(self, request: Request) -> int:
        record = capture(request, self._body_limit, self._now())
        answer, route_id, route = self._take(record, request)
        if answer.immediate and not answer.sleep:
            # The usual case, answered at once. Twisted sends nothing before
            # render() returns, so the request is recorded as answered in
            # one store update, never later than the client sees the answer
            # (the server process writes its state file once, not twice).
            # (Concatenation makes the entry faster than unpacking would.)
            try:
                answer.render(request, self._reply)
            except BaseException:
                failed = True
                self._render_failed(request, Failure())
            else:
                failed = False
            fault = answer.fault
            if failed or request.finished or answer.closes:
                code = request.code if request.startedWriting else None
                ticket = self._store.record(record + (True, code, route_id, route, fault))  # noqa: RUF005
                if self._unrecorded:
                    self._record_errors(request, ticket)
                self._call_on_answered(ticket)
            else:  # the client left
                ticket = self._store.record(record + (False, None, route_id, route, fault))  # noqa: RUF005
                if self._unrecorded:
                    self._record_errors(request, ticket)
            return NOT_DONE_YET
        # Recorded before the answer: a test sees it during a sleep, and a
        # callback sees it in server.request.
        outcome = (False, None, route_id, route, answer.fault)
        ticket = self._store.record(record + outcome)
        setattr(request, _TICKET, ticket)
        setattr(request, _RECORDED, (ticket, outcome))
        if request.finished:
            self._finished(None, request, ticket, outcome)
        else:
            request.notifyFinish().addCallbacks(
                self._finished, lambda _: None, callbackArgs=(request, ticket, outcome)
            )
        if answer.sleep:
            pending: Deferred[Any] | None = deferLater(
                self._reactor,  # type: ignore[arg-type]
                answer.sleep,
                self._render,
                request,
                answer,
                ticket,
                outcome,
            )
        else:
            pending = self._render(request, answer, ticket, outcome)
        if pending is not None:
            self._cancel_when_gone(request, pending)
        return NOT_DONE_YET

    def _cancel_when_gone(self, request: Request, pending: Deferred[Any]) -> None:
        """
        A client that gives up (or stop()) leaves no pending call behind;
        a failure of what is pending is a failure to write the answer.
        """

        def failed(failure: Failure) -> None:
            if not failure.check(CancelledError):
                self._render_failed(request, failure)

        pending.addErrback(failed)
        request.notifyFinish().addErrback(lambda _: pending.cancel())

    def _take(self, record: Record, request: Request) -> tuple[Answer, int | None, str | None]:
        """
        The answer to ``record`` and the id and name of the route that gives
        it (None, None: the server's own answer), or an error answer if none
        can be made. ``response['close']`` applies here, whatever the kind
        of answer.
        """
        route_id = route = None
        strict = self._strict
        try:
            taken = self._store.update(lambda table: table.take(record, strict))
            if taken is None:  # nothing the test set expects it
                message = self._store.read(lambda table: unexpected(record, table.routes(), strict))
                return ErrorAnswer(404, message), None, None
            values, route_id, route = taken
            if values["close"]:
                close_after(request)
            return choose(values), route_id, route
        except BaseException as e:  # an iterator of the test's: KeyboardInterrupt too
            _log.failure("txtestserver could not build the response")
            error = ErrorAnswer(
                500, f"cannot build the response: {e!r}", traceback=Failure().getTraceback()
            )
            return error, route_id, route

    def _render(
        self, request: Request, answer: Answer, ticket: Ticket, outcome: Outcome
    ) -> Deferred[Any] | None:
        if request.finished or request.channel is None:
            return None  # the client left during the sleep
        try:
            pending = answer.render(request, self._reply)
        except BaseException:
            self._render_failed(request, Failure())
            return None
        if answer.closes:
            # The connection is closing: no finish comes.
            self._finished(None, request, ticket, outcome)
        return pending

    def _render_failed(self, request: Request, failure: Failure) -> None:
        """
        Writing the answer to ``request`` raised (whatever raised: Twisted
        refusing a header, a bug in an answer kind): report it as a
        server-side error, answer a plain 500 naming it if nothing was sent
        yet, else cut the connection; either way the connection closes and
        the request counts as answered (its journal entry is completed).
        """
        message = (
            f"writing the answer failed: {getattr(failure.type, '__name__', 'error')}: "
            f"{failure.getErrorMessage()}"
        )
        _log.failure("txtestserver: {reason}", failure, reason=message)
        self._report(request, message, failure.getTraceback())
        if gone(request):
            return
        transport: Any = request.channel.transport
        if request.startedWriting:
            transport.abortConnection()
        else:
            try:
                request.responseHeaders = Headers()
                start(request, 500, self._reply._replace(keep_alive=False))
                request.responseHeaders.setRawHeaders(
                    b"content-type", [b"text/plain; charset=utf-8"]
                )
                finish(request, f"txtestserver: {message}\n".encode())
            except BaseException:
                _log.failure("txtestserver could not answer 500 either")
                transport.abortConnection()
        recorded: tuple[Ticket, Outcome] | None = getattr(request, _RECORDED, None)
        if recorded is not None and not request.finished:
            # Cut off: no finish will complete the entry.
            self._finished(None, request, *recorded)

    def _finished(self, _: object, request: Request, ticket: Ticket, outcome: Outcome) -> None:
        """
        The answer to ``request`` is complete: the status sent (if one was)
        into its journal entry, which keeps the rest of ``outcome``.
        """
        code = request.code if request.startedWriting else None
        self._store.complete(ticket, (True, code, *outcome[2:]))
        self._call_on_answered(ticket)

    def _report(self, request: Request, message: str, traceback: str | None) -> None:
        """``Reply.report``: an error while answering ``request``."""
        ticket: Ticket | None = getattr(request, _TICKET, None)
        if ticket is None:  # rendering at once: recorded right after
            self._unrecorded.append((request, message, traceback))
            return
        try:
            self._store.add_error(ticket, message, traceback)
        except Exception:
            _log.failure("txtestserver could not record a server-side error")

    def report_error(self, message: str) -> None:
        """A server-side error that belongs to no request (``server.errors``)."""
        self._store.add_error(None, message, None)

    def _record_errors(self, request: Request, ticket: Ticket) -> None:
        """
        The errors reported for ``request`` while it rendered, before it was
        recorded. Rendering at once is synchronous, so the list holds only
        this request's errors (or those of a request whose recording failed:
        dropped).
        """
        unrecorded, self._unrecorded = self._unrecorded, []
        for reported, message, traceback in unrecorded:
            if reported is request:
                self._store.add_error(ticket, message, traceback)

    def _call_on_answered(self, ticket: Ticket) -> None:
        try:
            self._on_answered(ticket)
        except Exception:
            _log.failure("txtestserver on_answered hook failed", Failure())
