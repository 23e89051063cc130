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
        # h2 ends the whole connection when a header list exceeds what its
        # decoder allows (64 KiB by default): let it decode up to our own
        # limits, so that H2Request answers 400 as HTTP/1.1 does.
        self.conn.decoder.max_header_list_size = max(
            self.conn.decoder.max_header_list_size,
            config.header_size_limit + _HPACK_OVERHEAD * (config.header_count_limit + 8),
        )

    #: GOAWAY has been sent: close once no stream is left.
    _ending = False
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
        self, version: bytes, code: bytes, reason: bytes, headers: Any, streamID: int
    ) -> None:
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

    def write_raw(self, data: bytes) -> None:
        raise RuntimeError(self.raw_refused)

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
