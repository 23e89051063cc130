"""
How an answer is written onto a twisted.web request: the settings every
answer needs from its server (:class:`Reply`), the status line and headers
(:func:`start`), a whole body (:func:`finish`) and an error answer
(:func:`render_error`). The answer kinds (:mod:`.answers`) are built on these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from twisted.logger import Logger
from twisted.web.server import Request

from .._types import TimeReactor
from .._version import __version__
from .request import actions

if TYPE_CHECKING:
    from .exchange import Exchange

__all__ = [
    "SERVER_HEADER",
    "Reply",
    "bodiless",
    "finish",
    "gone",
    "render_error",
    "render_plain_error",
    "start",
]

#: The default ``Server`` header.
SERVER_HEADER = f"txtestserver/{__version__}".encode()
#: The default ``Content-Type`` by charset, encoded once.
_CONTENT_TYPES: dict[str, bytes] = {}

_log = Logger()


class Reply(NamedTuple):
    """
    How this server replies, whatever the answer: the settings an answer
    needs from its server.

    :ivar keep_alive: keep the connection open after the answer.
    :ivar reactor: paces what an answer writes over time (a stream's
        pieces, a throttled body); a ``Clock`` in unit tests.
    """

    keep_alive: bool
    reactor: TimeReactor


def start(
    request: Request,
    code: int,
    reply: Reply,
    headers: Sequence[tuple[str, str]] = (),
    cookies: Sequence[tuple[str, str]] = (),
    charset: str = "utf-8",
) -> None:
    """The status line and headers: defaults first, then what the test set."""
    request.setResponseCode(code)
    out = request.responseHeaders
    out.setRawHeaders(b"server", [SERVER_HEADER])
    content_type = _CONTENT_TYPES.get(charset)
    if content_type is None:
        content_type = _CONTENT_TYPES[charset] = f"text/html; charset={charset}".encode()
    out.setRawHeaders(b"content-type", [content_type])
    grouped: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        grouped.setdefault(name.lower().encode("latin-1"), []).append(value.encode("utf-8"))
    for key, values in grouped.items():
        out.setRawHeaders(key, values)
    for name, value in cookies:
        out.addRawHeader(b"set-cookie", f"{name}={value}".encode())
    if not reply.keep_alive:
        out.setRawHeaders(b"connection", [b"close"])
        request.channel.persistent = False


def gone(request: Request) -> bool:
    """The request is answered already, or its client went away."""
    return bool(request.finished) or request.channel is None


def bodiless(code: int) -> bool:
    """An answer with status ``code`` has no body (RFC 9110, 6.4.1): 1xx, 204, 304."""
    return code < 200 or code == 204 or code == 304


def finish(request: Request, body: bytes) -> None:
    """
    The body (with its length, unless the test set one), then the end. An
    answer whose status has no body (:func:`bodiless`) gets neither body
    nor ``Content-Length`` (RFC 9110, 8.6; the answer kinds refuse a body
    set for one before they get here).
    """
    if gone(request):
        return
    if bodiless(request.code):
        if not request.startedWriting and request.code < 200:
            # twisted.web knows 204 and 304 have no body, not 1xx: it would
            # send a 1xx chunked. It sends no body for HEAD, whatever the code.
            method, request.method = request.method, b"HEAD"
            request.write(b"")
            request.method = method
        request.finish()
        return
    if not request.responseHeaders.hasHeader(b"content-length"):
        request.setHeader(b"content-length", b"%d" % len(body))
    if request.method != b"HEAD":
        request.write(body)
    request.finish()


def send_now(channel: object) -> None:
    """
    Send what the answers on ``channel`` wrote now, on a kept-alive TCP
    connection, instead of on the reactor's next turn: the client gets an
    answer one trip round the reactor sooner (a poll and its dispatch per
    request, which a kept-alive client waits on). Called once the request is
    recorded, so that a client never sees an answer before the journal has
    it. What the socket does not take stays
    buffered, and the reactor sends it (or finds the connection lost) as
    usual. A connection that is closing is left to the reactor, which
    closes it once the buffer is sent; TLS and HTTP/2 have their own
    transports and are left alone too.
    """
    transport: Any = getattr(channel, "transport", None)
    do_write = getattr(transport, "doWrite", None)
    if do_write is not None and transport.connected and not transport.disconnecting:
        do_write()


def render_error(exchange: Exchange, code: int, message: str, traceback: str | None = None) -> None:
    """
    Report ``message`` as a server-side error of ``exchange``, and answer
    ``code`` with it as a plain-text body (if the client is still there).
    """
    exchange.report(message, traceback)
    request = exchange.request
    if gone(request):
        return
    if request.startedWriting:
        # Too late for a clean status: cut the connection (an HTTP/2 stream:
        # reset it) so the client sees the failure instead of a truncated
        # body that looks complete.
        actions(request).reset()
        return
    _log.error("txtestserver answers {code}: {reason}", code=code, reason=message)
    render_plain_error(request, code, message, exchange.reply)


def render_plain_error(request: Request, code: int, message: str, reply: Reply) -> None:
    """``code`` with ``message`` as a plain-text body, nothing reported."""
    start(request, code, reply)
    request.responseHeaders.setRawHeaders(b"content-type", [b"text/plain; charset=utf-8"])
    request.responseHeaders.removeHeader(b"content-length")
    finish(request, f"txtestserver: {message}\n".encode())
