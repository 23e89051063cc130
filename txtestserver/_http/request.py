"""
The request of the HTTP transport: :class:`ServerRequest`, and what an
answer may do to the connection under it (:class:`HTTP1Actions`: close it
after the answer, reset it, write bytes of its own). The HTTP/2 request
(:class:`~txtestserver._http.h2.H2Request`) overrides those actions to act
on its stream, so the answer kinds never ask which protocol they speak.

A plain twisted.web request (unit tests drive the resource with one) gets
the HTTP/1.x actions through :func:`actions`.
"""

from __future__ import annotations

import sys
import time
from io import BytesIO
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import unquote_to_bytes

from twisted.internet.interfaces import IPullProducer
from twisted.python.failure import Failure
from twisted.web.http import datetimeToString
from twisted.web.server import Request
from zope.interface import implementer

from .._model.record import KEPT_BODY, NOT_SENT, Sent
from .._twisted_compat import receive_request
from .._types import TimeReactor
from .callbacks import HandlerMethods

__all__ = [
    "HTTP1Actions",
    "ServerRequest",
    "actions",
    "reset_when_sent",
    "sent",
    "unsent",
]


class HTTP1Actions:
    """
    What an answer may do to the connection of its request, the HTTP/1.x
    way: the connection is the request's own while it answers.
    """

    if TYPE_CHECKING:  # the twisted.web Request this is mixed into
        channel: Any
        responseHeaders: Any
        startedWriting: int

    #: Why this request cannot carry bytes of the test's own
    #: (:meth:`write_raw`), or None when it can.
    raw_refused: ClassVar[str | None] = None
    #: Why its answer cannot reach the client, known before it is answered
    #: (``request['aborted']``), or None.
    aborted: str | None = None

    def close_after(self) -> None:
        """
        End the connection once the answer is sent, even with keep-alive
        (``response['close']``): ``Connection: close``, then a close.
        """
        self.responseHeaders.setRawHeaders(b"connection", [b"close"])
        self.channel.persistent = False

    def reset(self) -> None:
        """Reset at once: TCP RST, dropping what is unsent."""
        _tcp(self.channel).abortConnection()

    def reset_when_sent(self) -> None:
        """Reset once what was written is sent (the client gets it, then RST)."""
        transport = _tcp(self.channel)
        transport.unregisterProducer()  # the channel, which is done with
        reset_when_sent(transport)

    def close(self) -> None:
        """Close (FIN) once what was written is sent, ending the answer where it is."""
        # HTTPChannel.loseConnection: the channel is the transport's producer,
        # which would otherwise keep the connection open.
        self.channel.loseConnection()

    def write_raw(self, data: bytes) -> None:
        """These bytes on the connection, as they are, outside any HTTP framing."""
        self.channel.write(data)

    #: Why this request's connection cannot be taken over by another
    #: protocol (:meth:`take_over`), or None when it can.
    take_over_refused: ClassVar[str | None] = None

    def take_over(self, protocol: Any) -> None:
        """
        Hand the connection to ``protocol`` once this request's head is
        written (a ``101``): the bytes the client sent after the request,
        and all that follow, go to ``protocol``, and so does the close. The
        request is never finished: the connection is no longer HTTP.
        """
        channel = self.channel
        buffered = b"".join(channel._dataBuffer)
        channel._dataBuffer = []
        channel.take_over(protocol)
        if buffered:
            protocol.dataReceived(buffered)

    def connection(self) -> Any:
        """
        The connection this request came on (the site's
        :class:`~txtestserver._http.site.Channel`), which ``stop()`` drops.
        """
        return self.channel


def unsent(transport: Any, kernel: bool = True) -> int:
    """
    Bytes written to ``transport`` that the client has not got yet: those
    in Twisted's buffers (TLS's too) and in the kernel's send queue (Linux;
    a reset drops them all).

    :param kernel: count the kernel's send queue too.
    """
    count = 0
    while transport is not None:
        count += sum(map(len, getattr(transport, "_appSendBuffer", ())))
        data = getattr(transport, "dataBuffer", b"")
        count += len(data) - getattr(transport, "offset", 0)
        count += getattr(transport, "_tempDataLen", 0)
        inner = getattr(transport, "transport", None)
        if inner is None and kernel:
            count += _kernel_queue(transport)
        transport = inner
    return count


def _kernel_queue(transport: Any) -> int:
    """The bytes in the socket's send queue not yet acknowledged (0 where unknown)."""
    try:
        import fcntl
        import termios

        fileno = transport.fileno()
        queued = fcntl.ioctl(fileno, termios.TIOCOUTQ, b"\0\0\0\0")
        return int.from_bytes(queued, sys.byteorder, signed=True)
    except Exception:
        return 0


def _tcp(channel: Any) -> Any:
    """The TCP transport under a connection (under TLS too)."""
    transport: Any = channel.transport
    while getattr(transport, "transport", None) is not None:
        transport = transport.transport
    return transport


def reset_when_sent(transport: Any) -> None:
    """
    Reset the TCP ``transport`` (no producer registered) once what was
    written to it is sent: the client gets it, then RST.
    """
    transport.setTcpNoDelay(True)  # no byte held back when the reset comes
    transport.registerProducer(_ResetWhenSent(transport), False)


@implementer(IPullProducer)
class _ResetWhenSent:
    """
    Resets a connection once its transport has handed everything written so
    far to the kernel: a transport asks its pull producer for more data when
    it is registered, then each time its buffer has run dry.
    """

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._asked = 0

    def resumeProducing(self) -> None:
        self._asked += 1
        if self._asked > 1:
            self._transport.abortConnection()

    def stopProducing(self) -> None:
        pass


class _PlainActions(HTTP1Actions):
    """The HTTP/1.x actions over a plain twisted.web request."""

    def __init__(self, request: Request) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def actions(request: Request) -> HTTP1Actions:
    """
    What an answer may do to the connection of ``request``: the request's
    own methods (:class:`ServerRequest`, :class:`~txtestserver._http.h2.H2Request`),
    or the HTTP/1.x ones over a plain twisted.web request.
    """
    if isinstance(request, HTTP1Actions):
        return request
    return _PlainActions(request)


#: What the latest answer sent: an answer that repeats it (the same response
#: to a load test) is journaled with the same object, so that equal values
#: are kept once.
_latest: list[Sent] = [NOT_SENT]


def sent(request: Request, finished: float | None) -> Sent:
    """
    What was sent in answer to ``request``, for its journal entry: the
    header lines (``"Name: value\r\n"``, latin-1 text), the body's size, its
    first ``KEPT_BODY`` bytes as latin-1 text, and ``finished``;
    :data:`~txtestserver._model.record.NOT_SENT` when no head was written.

    :param finished: when the answer was complete, for one given later than
        the request arrived (None: at once).
    """
    if not request.startedWriting:
        return NOT_SENT
    lines = [
        b"%s: %s\r\n" % (name, value)
        for name, values in request.responseHeaders.getAllRawHeaders()
        for value in values
    ]
    pieces = getattr(request, "_sent_pieces", None)
    body = b"".join(pieces) if pieces else b""
    answer: Sent = (
        b"".join(lines).decode("latin-1"),
        getattr(request, "_sent_size", len(body)),
        body.decode("latin-1"),
        finished,
    )
    if answer == _latest[0]:
        return _latest[0]
    _latest[0] = answer
    return answer


#: The ``Date`` header's value and the second it is for (:func:`http_date`).
_date: list[Any] = [-1, b""]


def http_date() -> bytes:
    """
    The ``Date`` header for now (RFC 9110's IMF-fixdate), formatted once per
    second rather than once per request.
    """
    now = int(time.time())
    second, text = _date
    if now != second:
        text = datetimeToString(now)
        _date[:] = now, text
    return text  # type: ignore[no-any-return]


#: The read size while a large request body arrives.
_LARGE_READ = 1024 * 1024


class SentBody:
    """
    Counts the response body as it is written, and keeps its first
    ``KEPT_BODY`` bytes (the journal's ``response_size`` and
    ``response_body``: :func:`sent`). Mixed in after the callbacks' ``write``,
    which turns text and dicts into bytes first.
    """

    _sent_size = 0
    _sent_pieces: list[bytes] | None = None
    #: How much of the body is kept (a forwarded answer keeps it whole).
    kept_body = KEPT_BODY

    def write(self, data: bytes) -> None:
        size = self._sent_size
        kept = self.kept_body
        if data and size < kept:
            if self._sent_pieces is None:
                self._sent_pieces = []
            self._sent_pieces.append(data[: kept - size] if size + len(data) > kept else data)
        self._sent_size = size + len(data)
        super().write(data)  # type: ignore[misc]


class ServerRequest(HTTP1Actions, HandlerMethods, SentBody, Request):
    """
    A Request that keeps at most ``body_limit`` bytes of its body, goes
    straight to the one resource, and answers test_server's callback methods
    too (:class:`~txtestserver._http.callbacks.HandlerMethods`), and what
    an answer does to its connection (:class:`HTTP1Actions`, which the
    HTTP/2 request overrides).

    The body is kept in memory as it arrives, up to the limit; what lies
    beyond is dropped as it arrives (twisted.web would spool a large body
    whole to a temporary file: 200 MiB on disk for a 64 MiB limit), so
    ``request.content`` holds what ``request['data']`` holds.

    twisted.web's ``process`` would walk a resource tree (there is one leaf),
    set a ``Server`` header that the renderer replaces, and answer ``*``
    targets (``OPTIONS * HTTP/1.1``) itself, so they would be neither
    recorded nor answered as the test set.
    """

    #: The reactor that serves this request (set in :meth:`process`), for
    #: callbacks that schedule work of their own.
    reactor: TimeReactor
    #: The kept pieces of the body while it arrives.
    _pieces: list[bytes]
    #: Bytes of the body that may still be kept.
    _room = 0
    #: The connection's read size to restore once a large body is in.
    _read_size: int | None = None

    def gotLength(self, length: int | None) -> None:
        # Growing a BytesIO piece by piece copies the body over and over
        # (tens of reallocations for 10 MiB); one join at the end copies once.
        self.content = BytesIO()
        self._pieces = []
        channel: Any = self.channel
        self._room = channel.site.body_limit
        transport: Any = channel.transport
        size = getattr(transport, "bufferSize", None)
        if length is not None and isinstance(size, int) and length > size:
            # A large body is read in large pieces, not Twisted's 64 KiB:
            # fewer trips round the reactor (a 10 MiB upload: 160 -> 10).
            self._read_size = size
            transport.bufferSize = min(length, _LARGE_READ)

    def handleContentChunk(self, data: bytes) -> None:
        room = self._room
        if room <= 0:
            return  # beyond the body limit: dropped
        if len(data) > room:
            data = data[:room]
        self._room = room - len(data)
        self._pieces.append(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._pieces:
            self.content = BytesIO(b"".join(self._pieces))  # shares the joined bytes
            self._pieces = []
        if self._read_size is not None:
            self.channel.transport.bufferSize = self._read_size
            self._read_size = None
        receive_request(self, command, path, version)

    def process(self) -> None:
        request: Any = self  # twisted.web.server.Request is not annotated
        request.site = site = request.channel.site
        # For callbacks that schedule work: the reactor that serves them (for
        # TestServer, a private one, not twisted.internet.reactor).
        request.reactor = site.reactor
        request.setHeader(b"date", http_date())
        request.prepath, request.sitepath = [], []
        path = request.path
        request.postpath = [] if path == b"*" else list(map(unquote_to_bytes, path[1:].split(b"/")))
        try:
            request.render(site.resource)
        except BaseException:
            request.processingFailed(Failure())
