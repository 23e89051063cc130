"""
The HTTP transport: the connection (:class:`Channel`) and the site that
makes connections and requests (:class:`ServerSite`; the request is
:class:`~txtestserver._http.request.ServerRequest`),
with the limits of a :class:`~txtestserver._config.ServerConfig` and the
connection tracking that lets ``stop()`` drop every open connection.

A connection speaks HTTP/1.1, or HTTP/2 when ALPN chose ``h2``
(:mod:`.h2`). A connection to a plain-HTTP server that opens with a TLS
ClientHello or the HTTP/2 preface is closed at once, with an error logged
that says how to start the server instead (:data:`WRONG_PROTOCOL`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import connectionDone as CONNECTION_DONE
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.server import Site
from zope.interface import implementer

from .._config import ServerConfig
from .._twisted_compat import SITE_OPTIONS, strict_header_values
from .._types import TimeReactor
from .request import ServerRequest, unsent

if TYPE_CHECKING:
    from .exchange import Exchange
from .tls import client_subject

__all__ = ["LINE_TOO_LONG", "STOPPED", "WRONG_PROTOCOL", "Channel", "ServerSite"]

_log = Logger()

#: What the first bytes of a connection to a plain-HTTP server say about a
#: client that speaks something else: prefix -> the error logged before the
#: connection is closed (the client fails at once instead of waiting for an
#: answer that never comes).
WRONG_PROTOCOL = {
    b"\x16": "a TLS client connected to the plain-HTTP server: start it with tls=True",
    b"PRI * HTTP/2.0": (
        "an HTTP/2 client connected to the plain-HTTP server (HTTP/2 without TLS is "
        "not supported): start it with tls=True, http2=True"
    ),
}
#: The server-side error for a line longer than the header budget.
LINE_TOO_LONG = (
    "a request line or header line longer than header_size_limit={limit} bytes: the "
    "connection was closed without an answer; raise header_size_limit "
    "(TestServer(header_size_limit=...)) to accept such requests"
)
#: ``request['aborted']`` of an answer ``stop()`` cut off.
STOPPED = "stop() closed the connection before the answer reached the client whole"
#: The first bytes of every HTTP/2 connection (RFC 9113, 3.4).
_HTTP2_PREFACE = b"PRI * HTTP/2.0"


#: Numbers connections from 1, across every server of this process.
_connection_numbers = itertools.count(1)


@implementer(IHalfCloseableProtocol)
@strict_header_values
class Channel(HTTPChannel):
    """
    An ``HTTPChannel`` that survives a client's half-close, and tells its
    site when it opens and closes.

    A plain ``HTTPChannel`` treats the end of the client's data (its
    ``shutdown(SHUT_WR)``, or a close) as a lost connection and throws away
    answers not yet sent: with keep-alive, a client that half-closes after
    its request got nothing. Here the connection closes only once what was
    written is sent. An answer still pending (a ``sleep``, a callback's
    Deferred) is dropped as for a client that left: a half-close cannot be
    told from a close without writing to the socket.
    """

    site: ServerSite
    #: This connection's number (``request['connection']``), unique in this
    #: process: requests that came on one connection share it.
    number = 0
    #: The subject of the client's certificate (``request['client_cert']``):
    #: JSON text of ``[name, value]`` pairs, or None.
    client_cert: str | None = None
    #: The scheme its requests came by (``'https'`` over TLS, a proxy
    #: tunnel's TLS too); set at connection, or before by a tunnel.
    scheme = ""
    #: The proxy tunnel this connection runs in (``request['proxy']`` as
    #: JSON text), or None: it came directly.
    proxy: str | None = None
    #: Speaks TLS though the server does not (inside a proxy tunnel).
    tunnel_tls = False
    #: The first bytes have been looked at.
    _sniffed = False
    #: The HTTP/2 connection this one has become, if it has.
    _h2: Any = None
    #: The protocol that took this connection over (a WebSocket), if one has.
    _taken: Any = None
    #: The exchanges of this connection whose answer may not have reached
    #: the client yet: those not done, and the latest (:meth:`track`).
    _exchanges: list[Exchange] | None = None

    def track(self, exchange: Exchange) -> None:
        """
        Keep ``exchange`` until the next one comes: a client that sends
        another request has got the answers before it, or does not care.
        (A stalled SOCKS5 attempt is kept the same way: anything with
        ``done`` and ``abort(reason)``.)
        """
        kept = self._exchanges
        if kept and len(kept) == 1 and kept[0].done:
            kept[0] = exchange  # the usual case: the one before is answered
        elif kept:
            kept = [e for e in kept if not e.done]
            kept.append(exchange)
            self._exchanges = kept
        else:
            self._exchanges = [exchange]

    def stopped(self) -> None:
        """
        ``stop()`` drops this connection: each answer that has not reached
        the client whole is recorded as aborted, none that has.
        """
        exchanges, self._exchanges = self._exchanges or [], None
        if not exchanges:
            return
        cut_off = unsent(self.transport) > 0
        for exchange in exchanges:
            if cut_off or not exchange.done:
                exchange.abort(STOPPED)

    #: Lines end at LF; a CR before it is dropped (:meth:`lineReceived`), so a
    #: request whose lines end with a bare LF is read as RFC 9112 (2.2)
    #: allows, instead of waiting for ever for a CRLF that never comes.
    delimiter = b"\n"

    def lineReceived(self, line: bytes) -> None:
        if line[-1:] == b"\r":
            line = line[:-1]
        super().lineReceived(line)  # type: ignore[no-untyped-call]

    def lineLengthExceeded(self, line: bytes) -> None:
        """
        A line longer than the whole header budget: the connection is closed
        without an answer (there is no request to answer yet), and that is a
        server-side error naming the limit.
        """
        transport: Any = self.transport
        self.site.connection_error(
            LINE_TOO_LONG.format(limit=self.site.config.header_size_limit),
            transport.getPeer(),
            LogLevel.warn,
        )
        transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        if self._taken is not None:
            self._taken.dataReceived(data)
            return
        if self._h2 is not None:
            self._h2.dataReceived(data)
            return
        if not self._sniffed:
            self._sniffed = True
            if self._first_data(data):
                return
        super().dataReceived(data)  # type: ignore[no-untyped-call]

    def _first_data(self, data: bytes) -> bool:
        """
        Look at the first bytes: switch to HTTP/2 if it was negotiated, or
        close a plain-HTTP connection whose client speaks something else.

        :return: the data was handled here.
        """
        config = self.site.config
        if config.proxy and self.proxy is None and self._socks(data):
            return True
        if config.tls or self.tunnel_tls:
            if config.client_cert is not None and not self.tunnel_tls:  # the handshake is done
                self.client_cert = client_subject(self.transport)
            if config.http2 and (
                getattr(self.transport, "negotiatedProtocol", None) == b"h2"
                or data.startswith(_HTTP2_PREFACE)
            ):
                self._switch_to_h2(data)
                return True
            return False
        for prefix, message in WRONG_PROTOCOL.items():
            if data.startswith(prefix):
                transport: Any = self.transport
                transport.abortConnection()
                self.site.connection_error(message, transport.getPeer())
                return True
        return False

    def _socks(self, data: bytes) -> bool:
        """
        A proxy's connection that opens with a SOCKS greeting becomes a
        SOCKS5 exchange (a SOCKS4 one is refused and closed).

        :return: the data was handled here.
        """
        from .socks import SOCKS4_REFUSED, Socks5, sniff

        kind = sniff(data)
        if kind is None:
            return False
        transport: Any = self.transport
        peer = transport.getPeer()
        if kind == "socks4":
            transport.write(b"\x00\x5b\x00\x00\x00\x00\x00\x00")  # request rejected
            transport.loseConnection()
            self.site.connection_error(SOCKS4_REFUSED, peer)
            return True
        protocol = Socks5(
            self.site,
            peer,
            lambda message: self.site.connection_error(message, peer),
            self,
        )
        self.take_over(protocol)
        protocol.dataReceived(data)
        return True

    def _switch_to_h2(self, data: bytes) -> None:
        """Hand the connection to an HTTP/2 protocol, as Twisted's Site would."""
        # Imported here, not above: it needs the h2 package (the http2 extra).
        from .h2 import H2Channel

        site = self.site
        h2: Any = H2Channel(site.reactor, site.config)
        h2.number, h2.client_cert = self.number, self.client_cert
        h2.outer = self
        h2.site = site
        h2.factory = site
        h2.timeOut = None
        h2.callLater = site.reactor.callLater
        # The HTTP/1.1 channel stops producing for the transport, and HTTP/2
        # does not start: TLS waits for a registered producer to go before it
        # closes, and H2Connection never unregisters, so a connection it
        # ends (a protocol error, say) would stay open. Without back-pressure,
        # an answer to a slow reader waits in memory, where it was anyway.
        self._networkProducer.unregisterProducer()
        self._h2 = h2
        h2.makeConnection(self.transport)
        h2.dataReceived(data)

    def rawDataReceived(self, data: bytes) -> None:
        # The bytes that came with the request that was taken over, in the
        # same read: the line parser hands them on once the request is rendered.
        if self._taken is not None:
            self._taken.dataReceived(data)
            return
        super().rawDataReceived(data)

    def take_over(self, protocol: Any) -> None:
        """
        Hand the connection to ``protocol`` (a WebSocket after its 101):
        the data and the close go to it from now on, as to HTTP/2.
        """
        # No producer of HTTP's is left in the way: the transport reads again.
        producer: Any = self._networkProducer
        producer.unregisterProducer()
        producer.resumeProducing()  # HTTP may have paused it for pipelined data
        self._taken = protocol
        protocol.makeConnection(self.transport)

    def readConnectionLost(self) -> None:
        if self._h2 is not None or self._taken is not None:
            transport: Any = self.transport
            transport.loseConnection()
            return
        # HTTPChannel.loseConnection, not the transport's: the channel is the
        # transport's producer, which would otherwise keep it open for good.
        self.loseConnection()  # type: ignore[no-untyped-call]

    def writeConnectionLost(self) -> None:
        self.readConnectionLost()

    def connectionMade(self) -> None:
        super().connectionMade()  # type: ignore[no-untyped-call]
        self.number = next(_connection_numbers)
        if not self.scheme:
            self.scheme = "https" if self.site.config.tls else "http"
        self.site.channels.add(self)

    def connectionLost(self, reason: Failure = CONNECTION_DONE) -> None:
        try:
            if self._taken is not None:
                self._taken.connectionLost(reason)
            elif self._h2 is not None:
                self._h2.connectionLost(reason)
            else:
                super().connectionLost(reason)  # type: ignore[no-untyped-call]
        finally:
            # Whatever the protocol raised: a channel left in the site would
            # keep stop() waiting for it.
            self.site.channel_closed(self)


class ServerSite(Site):
    """
    A Site that leaves parsing to us, writes no access log, gives each
    connection the header limits of its :class:`ServerConfig`, and keeps
    its open connections so that ``stop()`` can drop them (here, rather than
    in a wrapping factory, which would add a layer to every read and write).

    Its channels are ``HTTPChannel`` objects, whose header limits are public
    attributes (Twisted's default protocol is a private proxy around one,
    whose switch to HTTP/2 uses the global reactor); a :class:`Channel`
    makes its own switch.

    :param resource: the one resource; it answers every path.
    :param config: the limits apply to every connection.
    :param reactor: the reactor that serves: it runs the connections (HTTP/2
        schedules its writes on it), and callbacks find it as
        ``request.reactor``.
    :param report: records a server-side error that belongs to no request
        (``server.errors``).
    """

    protocol = Channel  # type: ignore[assignment]
    requestFactory = ServerRequest
    noisy = False

    def __init__(
        self,
        resource: Any,
        config: ServerConfig,
        reactor: TimeReactor,
        report: Callable[[str], None] = lambda message: None,
    ) -> None:
        # No idle timeout (Twisted's is 12 hours): stop() closes every
        # connection anyway, and the timer costs a reset on every request.
        # The reactor is the one that listens: a Site left on the global
        # reactor would schedule its clock there (trial's, say).
        super().__init__(  # type: ignore[no-untyped-call]
            resource, timeout=None, reactor=reactor, **SITE_OPTIONS
        )
        #: The settings every connection follows.
        self.config = config
        #: Bytes of each request body kept (:class:`ServerRequest`).
        self.body_limit = config.body_limit
        self._report = report
        #: The open connections.
        self.channels: set[Channel] = set()
        #: Issues the certificates of a proxy's tunnels (``config.proxy``).
        self.issuer: Any = None
        self._waiting: list[Deferred[None]] = []

    def connection_error(self, message: str, peer: Any, level: LogLevel = LogLevel.error) -> None:
        """
        An error of a connection rather than of one request (a client that
        spoke another protocol, :data:`WRONG_PROTOCOL`; an HTTP/2 client
        closed for a flood of resets): log it and record it in
        ``server.errors``.
        """
        _log.emit(
            level,
            "txtestserver: {problem} (client {client})",
            problem=message,
            client=getattr(peer, "host", peer),
        )
        try:
            self._report(message)
        except Exception:
            _log.failure("txtestserver could not record a server-side error")

    def channel_closed(self, channel: Channel) -> None:
        self.channels.discard(channel)
        if not self.channels:
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(None)

    def drop_all(self) -> Deferred[None]:
        """Abort every open connection; fire once all are closed."""
        if not self.channels:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        for channel in list(self.channels):
            try:
                channel.stopped()
            except Exception:
                _log.failure("txtestserver could not record the answers stop() cut off")
            channel.transport.abortConnection()  # type: ignore[union-attr]
        return d

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)  # type: ignore[no-untyped-call]
        channel.maxHeaders = self.config.header_count_limit
        channel.totalHeadersSize = self.config.header_size_limit
        # One line may use the whole budget; a longer one closes the
        # connection. (+1: a line is counted with its CR, before it is dropped.)
        channel.MAX_LENGTH = self.config.header_size_limit + 1
        return channel

    def log(self, request: Any) -> None:
        pass
