"""
The one twisted.web resource: it captures each request into the store, takes
the answer from the store's response table, and hands both to an
:class:`~txtestserver._http.exchange.Exchange`, which renders the answer and
keeps the journal entry.

It runs unchanged in the test process (thread engine) and in the server
process (subprocess engine); only the store behind it differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from .._config import DEFAULT_CONFIG, ServerConfig
from .._model.record import PROXY, VIA
from .._model.strict import unexpected
from .._state.store import StateStore, Ticket
from .._types import TimeReactor
from .answers import Answer, ErrorAnswer, choose
from .capture import capture
from .exchange import Exchange
from .proxy import answer as proxy_answer
from .request import actions
from .writing import Reply

__all__ = ["CaptureResource"]

_log = Logger()


class CaptureResource(Resource):
    """
    Answers every path and every method.

    For each request: capture it, take its answer from the store (using up
    what it takes, in one atomic step), and let its :class:`Exchange` wait
    the answer's ``sleep`` without blocking the reactor, render it, complete
    its journal entry (the status sent) and call ``on_answered``. The
    request is recorded before a ``sleep``, a callback or a stream, so that
    a test sees it meanwhile, with what is known once the answer is taken
    (the route, the fault); an answer written at once is recorded already
    answered, in one store update. A request is answered (done) when its
    answer is finished, or when a fault that closes the connection has been
    carried out; never for a fault that leaves it hanging. What goes wrong
    while answering is recorded as a server-side error of that request
    (``server.errors``).

    :param store: where the response is read and the request recorded.
    :param reactor: schedules ``sleep``, paces streams and tells the time (a
        ``Clock`` in unit tests).
    :param on_answered: called in the reactor thread with the ticket of each
        answered request.
    :param on_arrived: called in the reactor thread with the ticket of each
        request recorded before its answer is complete (None: nobody asks).
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
        on_arrived: Callable[[Ticket], None] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        #: The journal and the response table.
        self.store = store
        #: How this server replies, whatever the answer.
        self.reply = Reply(keep_alive=config.keep_alive, reactor=reactor)
        self._now = reactor.seconds
        self._on_answered = on_answered
        self._on_arrived = on_arrived
        self._body_limit = config.body_limit
        self._strict = config.strict
        self._proxy = config.proxy
        self._proxy_auth = config.proxy_auth
        self._reactor = reactor
        # The connections to upstreams kept open between forwarded requests
        # (response['forward']), made on the first; closed by close().
        self._pool: Any = None
        # The TLS policy of upstream connections, by response['forward_verify'].
        self._policies: dict[bool | str, Any] = {}
        #: The site's WebSocket connections (a ``Sockets``, set by ``serve()``).
        self.websockets: Any = None

    def render(self, request: Request) -> int:
        exchange = Exchange(self, request, capture(request, self._body_limit, self._now()))
        answer = exchange.answer = self._take(exchange)
        if answer.immediate and not answer.sleep:
            exchange.answer_now()  # the usual case
        else:
            exchange.answer_later()
        return NOT_DONE_YET

    def _take(self, exchange: Exchange) -> Answer:
        """
        The answer to the exchange's request (and the route that gives it,
        set on the exchange), or an error answer if none can be made.
        ``response['close']`` applies here, whatever the kind of answer.
        """
        record = exchange.record
        strict = self._strict
        try:
            if self._proxy and record[VIA][PROXY] is not None:
                own = proxy_answer(record, self.store, self._proxy_auth)
                if own is not None:  # the proxy's own: 407, a CONNECT
                    answer, exchange.route_id, exchange.route = own
                    return answer
            taken = self.store.update(lambda table: table.take(record, strict))
            if taken is None:  # nothing the test set expects it
                message = self.store.read(lambda table: unexpected(record, table.routes(), strict))
                return ErrorAnswer(404, message)
            values, exchange.route_id, exchange.route = taken
            if values["close"]:
                actions(exchange.request).close_after()
            return choose(values)
        except BaseException as e:  # an iterator of the test's: KeyboardInterrupt too
            _log.failure("txtestserver could not build the response")
            return ErrorAnswer(
                500, f"cannot build the response: {e!r}", traceback=Failure().getTraceback()
            )

    def answered(self, ticket: Ticket) -> None:
        """The request of ``ticket`` is answered: wake the waits (``on_answered``)."""
        try:
            self._on_answered(ticket)
        except Exception:
            _log.failure("txtestserver on_answered hook failed", Failure())

    def arrived(self, ticket: Ticket) -> None:
        """
        The request of ``ticket`` is recorded and its answer is not complete
        yet (``on_arrived``: the command line shows it at once).
        """
        if self._on_arrived is not None:
            try:
                self._on_arrived(ticket)
            except Exception:
                _log.failure("txtestserver on_arrived hook failed", Failure())

    def upstream_agent(self, verify: bool | str = True) -> Any:
        """
        The HTTP client that forwarded requests go out with
        (:mod:`.answers.forward`): a Twisted ``Agent`` on the serving
        reactor whose connections to each upstream are kept open between
        requests, so a forwarded request costs no new connection.

        :param verify: how an ``https`` upstream's certificate is checked
            (:func:`.upstream_tls.policy`; each made once).
        :raise ValueError: the CA file holds no certificate.
        """
        from twisted.web.client import Agent, HTTPConnectionPool

        from .upstream_tls import Endpoints, policy

        if self._pool is None:
            self._pool = HTTPConnectionPool(self._reactor, persistent=True)
        tls = self._policies.get(verify)
        if tls is None:
            tls = self._policies[verify] = policy(verify)
        return Agent.usingEndpointFactory(self._reactor, Endpoints(self._reactor, tls), self._pool)

    def close(self) -> Deferred[None] | None:
        """At stop: close the connections to upstreams (and their idle timers)."""
        pool, self._pool = self._pool, None
        return None if pool is None else pool.closeCachedConnections()

    def report_error(self, message: str) -> None:
        """A server-side error that belongs to no request (``server.errors``)."""
        self.store.add_error(None, message, None)
