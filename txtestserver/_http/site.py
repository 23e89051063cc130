"""
The HTTP transport: the connection (:class:`Channel`), the request
(:class:`ServerRequest`) and the site that makes them (:class:`ServerSite`),
with the limits of a :class:`~txtestserver._config.ServerConfig` and the
connection tracking that lets ``stop()`` drop every open connection.

A connection speaks HTTP/1.1, or HTTP/2 when ALPN chose ``h2``
(:mod:`.h2`). A connection to a plain-HTTP server that opens with a TLS
ClientHello or the HTTP/2 preface is closed at once, with an error logged
that says how to start the server instead (:data:`WRONG_PROTOCOL`).
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from io import BytesIO
from typing import IO, Any
from urllib.parse import unquote_to_bytes

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import connectionDone as CONNECTION_DONE
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, datetimeToString
from twisted.web.server import Request, Site
from zope.interface import implementer

from .._config import ServerConfig
from .._types import TimeReactor
from .tls import client_subject

__all__ = ["WRONG_PROTOCOL", "Channel", "ServerRequest", "ServerSite", "close_after"]

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
#: The first bytes of every HTTP/2 connection (RFC 9113, 3.4).
_HTTP2_PREFACE = b"PRI * HTTP/2.0"


#: Numbers connections from 1, across every server of this process.
_connection_numbers = itertools.count(1)


@implementer(IHalfCloseableProtocol)
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
    #: The first bytes have been looked at.
    _sniffed = False
    #: The HTTP/2 connection this one has become, if it has.
    _h2: Any = None

    def dataReceived(self, data: bytes) -> None:
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
        if config.tls:
            if config.client_cert is not None:  # the handshake is done
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
                self.site.wrong_protocol(message, transport.getPeer())
                return True
        return False

    def _switch_to_h2(self, data: bytes) -> None:
        """Hand the connection to an HTTP/2 protocol, as Twisted's Site would."""
        from .h2 import H2Channel, H2Request

        site = self.site
        h2: Any = H2Channel(site.reactor, site.config)
        h2.number, h2.client_cert = self.number, self.client_cert
        h2.requestFactory = H2Request
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

    def readConnectionLost(self) -> None:
        if self._h2 is not None:
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
        self.site.channels.add(self)

    def connectionLost(self, reason: Failure = CONNECTION_DONE) -> None:
        if self._h2 is not None:
            self._h2.connectionLost(reason)
        else:
            super().connectionLost(reason)  # type: ignore[no-untyped-call]
        self.site.channel_closed(self)


#: The read size while a large request body arrives.
_LARGE_READ = 1024 * 1024


class ServerRequest(Request):
    """
    A Request that goes straight to the one resource.

    twisted.web's ``process`` would walk a resource tree (there is one leaf),
    set a ``Server`` header that the renderer replaces, and answer ``*``
    targets (``OPTIONS * HTTP/1.1``) itself, so they would be neither
    recorded nor answered as the test set.
    """

    #: The body's pieces while it arrives, when it is kept in memory.
    _pieces: list[bytes] | None = None
    #: The connection's read size to restore once a large body is in.
    _read_size: int | None = None

    def gotLength(self, length: int | None) -> None:
        super().gotLength(length)  # type: ignore[no-untyped-call]
        if isinstance(self.content, BytesIO):
            self._pieces = []
        transport: Any = self.channel.transport
        size = getattr(transport, "bufferSize", None)
        if length is not None and isinstance(size, int) and length > size:
            # A large body is read in large pieces, not Twisted's 64 KiB:
            # fewer trips round the reactor (a 10 MiB upload: 160 -> 10).
            self._read_size = size
            transport.bufferSize = min(length, _LARGE_READ)

    def handleContentChunk(self, data: bytes) -> None:
        # Growing a BytesIO piece by piece copies the body over and over
        # (tens of reallocations for 10 MiB); one join at the end copies once.
        if self._pieces is None:
            super().handleContentChunk(data)  # type: ignore[no-untyped-call]
        else:
            self._pieces.append(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._pieces:
            self.content = BytesIO(b"".join(self._pieces))  # shares the joined bytes
        self._pieces = None
        if self._read_size is not None:
            self.channel.transport.bufferSize = self._read_size  # type: ignore[union-attr]
            self._read_size = None
        super().requestReceived(command, path, version)  # type: ignore[no-untyped-call]

    def process(self) -> None:
        request: Any = self  # twisted.web.server.Request is not annotated
        request.site = site = request.channel.site
        request.setHeader(b"date", datetimeToString())
        request.prepath, request.sitepath = [], []
        path = request.path
        request.postpath = [] if path == b"*" else list(map(unquote_to_bytes, path[1:].split(b"/")))
        try:
            request.render(site.resource)
        except BaseException:
            request.processingFailed(Failure())


def close_after(request: Request) -> None:
    """
    End the connection of ``request`` once its answer is sent, even with
    keep-alive (``response['close']``): HTTP/1.x says ``Connection: close``
    and closes; HTTP/2 sends GOAWAY after this stream and closes once no
    stream is left.
    """
    if request.clientproto == b"HTTP/2":
        stream: Any = request.channel
        end_after = getattr(stream._conn, "end_after", None)
        if end_after is not None:
            end_after(stream.streamID)
        return
    request.responseHeaders.setRawHeaders(b"connection", [b"close"])
    request.channel.persistent = False


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
    :param reactor: runs the connections (HTTP/2 schedules its writes on it).
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
        super().__init__(  # type: ignore[no-untyped-call]
            resource, parsePOSTFormSubmission=False, timeout=None, reactor=reactor
        )
        #: The settings every connection follows.
        self.config = config
        self._report = report
        #: The open connections.
        self.channels: set[Channel] = set()
        self._waiting: list[Deferred[None]] = []

    def wrong_protocol(self, message: str, peer: Any) -> None:
        """
        A client spoke another protocol (:data:`WRONG_PROTOCOL`): log the
        error and record it in ``server.errors``.
        """
        _log.error(
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
            channel.transport.abortConnection()  # type: ignore[union-attr]
        return d

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)  # type: ignore[no-untyped-call]
        channel.maxHeaders = self.config.header_count_limit
        channel.totalHeadersSize = self.config.header_size_limit
        # One line may use the whole budget; a longer one closes the connection.
        channel.MAX_LENGTH = self.config.header_size_limit
        return channel

    def log(self, request: Any) -> None:
        pass

    def getContentFile(self, length: int | None) -> IO[bytes]:
        """
        Where a request body goes while it arrives: memory when its length is
        known and within the body limit (the whole body is read into
        ``request['data']`` anyway), else a temporary file, as twisted.web does
        for every body of 100 kB or more.
        """
        if length is not None and length <= self.config.body_limit:
            return BytesIO()
        return tempfile.TemporaryFile()
