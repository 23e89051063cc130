"""
HTTP/2: Twisted's ``H2Connection`` as :class:`~txtestserver._http.site.Channel`
switches to it once ALPN has chosen ``h2``, with the reactor that serves
(Twisted's own switch, in the default ``Site.protocol``, makes it on the
global reactor) and the header limits of the
:class:`~txtestserver._config.ServerConfig`.

Imported only when a connection speaks HTTP/2: it needs ``h2`` (the
``txtestserver[http2]`` extra).
"""

from __future__ import annotations

from typing import Any

from h2.exceptions import DenialOfServiceError
from twisted.internet.protocol import connectionDone as CONNECTION_DONE
from twisted.python.failure import Failure
from twisted.web._http2 import H2Connection

from .._config import ServerConfig
from .._types import TimeReactor
from .request import ServerRequest

__all__ = ["H2Channel", "H2Request"]

#: Response headers that only mean something to HTTP/1.1; HTTP/2 forbids
#: them (RFC 9113, 8.2.2), so they are left out of an HTTP/2 answer.
CONNECTION_HEADERS = frozenset(
    [b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"]
)
#: ``request['aborted']`` of a request whose stream the client reset before
#: it was answered.
RESET_BY_CLIENT = "the client reset the stream (RST_STREAM) before its answer"
#: The server-side error when a client resets streams faster than Twisted
#: allows and its connection is closed.
RAPID_RESET = (
    "an HTTP/2 client reset streams faster than the server allows (the rapid-reset "
    "pattern, CVE-2023-44487): its connection was closed with GOAWAY "
    "ENHANCE_YOUR_CALM; requests it had sent before were recorded as reset by the client"
)
#: The server-side error when a header block is too large to decode.
OVERSIZED = (
    "an HTTP/2 client sent a header block far over header_size_limit={limit}: it was "
    "not decoded and the connection was closed with GOAWAY ENHANCE_YOUR_CALM (a request "
    "just over the limit gets 400); raise header_size_limit to accept such requests"
)
#: What HPACK counts for each header on top of its name and value (RFC 9113, 6.5.2).
_HPACK_OVERHEAD = 32


class H2Channel(H2Connection):
    """
    One HTTP/2 connection.

    :param reactor: schedules the sending of data.
    :param config: the header limits apply to each request.
    """

    def __init__(self, reactor: TimeReactor, config: ServerConfig) -> None:
        super().__init__(reactor)  # type: ignore[no-untyped-call]
        # h2 ends the whole connection (GOAWAY ENHANCE_YOUR_CALM) when a
        # header list exceeds what its decoder allows (64 KiB by default):
        # let it decode up to our own limits, so that H2Request answers 400
        # as HTTP/1.1 does to a request over them. A header block beyond
        # that is not decoded at all (decoding without bound would let one
        # client take the memory of the test process): the connection ends,
        # as an HTTP/1.1 line longer than the limit closes it, and that is
        # a server-side error naming the limit (_terminate).
        self._header_limit = config.header_size_limit
        self.conn.decoder.max_header_list_size = max(
            self.conn.decoder.max_header_list_size,
            config.header_size_limit + _HPACK_OVERHEAD * (config.header_count_limit + 8),
        )

    def connectionLost(
        self,
        reason: Failure = CONNECTION_DONE,
        _cancelTimeouts: bool = True,
    ) -> None:
        # A protocol error h2 raised while reading ends the connection with
        # that error as the reason (every Twisted since 24.7).
        if reason.check(DenialOfServiceError) and "header" in reason.getErrorMessage():
            if not self._oversized:
                self._oversized = True
                transport: Any = self.transport
                site: Any = self.site
                site.connection_error(
                    OVERSIZED.format(limit=self._header_limit),
                    transport.getPeer() if transport else None,
                )
        super().connectionLost(reason, _cancelTimeouts=_cancelTimeouts)  # type: ignore[no-untyped-call]

    #: GOAWAY has been sent: close once no stream is left.
    _ending = False
    #: Closed for a flood of resets (reported once).
    _flooded = False
    #: Closed for a header block too large to decode (reported once).
    _oversized = False
    #: The site's connection this one has replaced (set by it).
    outer: Any = None
    #: What the connection knows, which each stream's requests record
    #: (:class:`~txtestserver._http.site.Channel` sets both).
    number = 0
    client_cert: str | None = None

    def requestFactory(self, *args: Any, **kwargs: Any) -> H2Request:
        """Each stream's request (Twisted's name)."""
        return H2Request(*args, **kwargs)  # type: ignore[no-untyped-call]

    def _requestReceived(self, event: Any) -> None:
        super()._requestReceived(event)  # type: ignore[no-untyped-call]
        stream = self.streams[event.stream_id]
        stream.number, stream.client_cert = self.number, self.client_cert

    # -- streams the client reset -----------------------------------------------------
    #
    # h2 reads every frame of a read before Twisted hands on the events, so a
    # request whose HEADERS and RST_STREAM came in one read is answered after
    # h2 has closed (and maybe forgotten) its stream: every write to it then
    # raises (StreamClosedError, StreamIDTooLowError), and Twisted's answer to
    # that was to drop the whole connection. Here the writes to a stream h2
    # no longer has open are dropped; the request is recorded as reset by the
    # client (``request['aborted']``), its StreamReset event ends it, and its
    # neighbours are answered.

    def _open(self, stream_id: int) -> bool:
        """h2 still has stream ``stream_id`` open for the server's frames."""
        stream = self.conn.streams.get(stream_id)
        return stream is not None and not stream.closed

    def _requestEnded(self, event: Any) -> None:
        if not self._open(event.stream_id):
            request: Any = self.streams[event.stream_id]._request
            request.aborted = RESET_BY_CLIENT
        super()._requestEnded(event)  # type: ignore[no-untyped-call]

    def _requestAborted(self, event: Any) -> None:
        super()._requestAborted(event)  # type: ignore[no-untyped-call]
        tokens = getattr(self, "_resetTokens", 1)
        if tokens < 1 and not self._flooded:
            # Twisted's defence against a rapid-reset flood (CVE-2023-44487)
            # has sent GOAWAY ENHANCE_YOUR_CALM and is closing the connection.
            self._flooded = True
            transport: Any = self.transport
            site: Any = self.site
            site.connection_error(RAPID_RESET, transport.getPeer() if transport else None)

    def writeDataToStream(self, streamID: int, data: bytes) -> None:
        if self._open(streamID):
            super().writeDataToStream(streamID, data)  # type: ignore[no-untyped-call]

    def endRequest(self, streamID: int) -> None:
        if self._open(streamID):
            super().endRequest(streamID)  # type: ignore[no-untyped-call]

    def abortRequest(self, streamID: int) -> None:
        if self._open(streamID):
            super().abortRequest(streamID)  # type: ignore[no-untyped-call]

    def end_after(self, stream_id: int) -> None:
        """
        Send GOAWAY once stream ``stream_id`` is done, then close the
        connection when its last stream is done (``response['close']``).
        """
        done = self._streamCleanupCallbacks.get(stream_id)
        if done is not None:
            done.addCallback(lambda _: self._go_away())

    def _go_away(self) -> None:
        if self._ending or self.transport is None:
            return
        self._ending = True
        self.conn.close_connection()
        self._tryToWriteControlData()  # type: ignore[no-untyped-call]
        if not self.streams:
            self._close()

    def _requestDone(self, streamID: int) -> None:
        super()._requestDone(streamID)  # type: ignore[no-untyped-call]
        if self._ending and not self.streams:
            self._close()

    def _close(self) -> None:
        transport: Any = self.transport
        if transport is not None:
            transport.loseConnection()

    def writeHeaders(
        self,
        version: bytes,
        code: bytes,
        reason: bytes,
        headers: Any,
        streamID: int,
    ) -> None:
        if not self._open(streamID):
            return
        kept = [(name, value) for name, value in headers if name.lower() not in CONNECTION_HEADERS]
        super().writeHeaders(version, code, reason, kept, streamID)  # type: ignore[no-untyped-call]


class H2Request(ServerRequest):
    """
    A request that came over HTTP/2: the header limits are checked here (an
    HTTP/1.1 connection checks them while it parses), and a request over
    them gets ``400 Bad Request`` and is not recorded.

    What an answer does to the connection acts on this request's stream,
    never on the connection its neighbours share: a reset is RST_STREAM,
    ``close`` ends the stream, ``close_after`` sends GOAWAY.
    """

    raw_refused = (
        "an HTTP/2 stream has no bytes of its own: raw bytes would break the whole "
        "connection, not one answer"
    )

    def close_after(self) -> None:
        """GOAWAY after this stream, and a close once no stream is left."""
        stream: Any = self.channel
        stream._conn.end_after(stream.streamID)

    def reset(self) -> None:
        """RST_STREAM: this stream ends, what it queued is dropped."""
        stream: Any = self.channel
        stream.abortConnection()

    def reset_when_sent(self) -> None:
        """At once: a stream cannot wait for its bytes to leave (they may be dropped)."""
        self.reset()

    def close(self) -> None:
        """End the stream where the answer is; without headers yet it is reset."""
        if not self.startedWriting:
            self.reset()  # a stream cannot end without headers
            return
        super().close()

    take_over_refused = (
        "an HTTP/2 stream cannot become a WebSocket connection (RFC 8441 is not "
        "supported): connect with HTTP/1.1"
    )

    def write_raw(self, data: bytes) -> None:
        raise RuntimeError(self.raw_refused)

    def take_over(self, protocol: Any) -> None:
        raise RuntimeError(self.take_over_refused)

    def connection(self) -> Any:
        """The TLS connection this stream is part of, not the stream."""
        stream: Any = self.channel
        return stream._conn.outer

    def process(self) -> None:
        request: Any = self
        site = request.channel.site
        config: ServerConfig = site.config
        count = 0
        size = len(request.method) + len(request.uri) + len(request.clientproto) + 2
        for name, values in request.requestHeaders.getAllRawHeaders():
            for value in values:
                count += 1
                size += len(name) + 2 + len(value)
        if count > config.header_count_limit or size > config.header_size_limit:
            which = (
                f"{count} header lines (header_count_limit={config.header_count_limit})"
                if count > config.header_count_limit
                else f"{size} bytes of headers (header_size_limit={config.header_size_limit})"
            )
            body = f"txtestserver: the request has {which}\n".encode()
            request.setResponseCode(400)
            request.responseHeaders.setRawHeaders(b"content-type", [b"text/plain; charset=utf-8"])
            request.responseHeaders.setRawHeaders(b"content-length", [b"%d" % len(body)])
            request.write(body)
            request.finish()
            return
        super().process()
