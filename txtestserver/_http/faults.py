"""
Answers that misbehave on purpose, at the socket: ``response['fault']``
(:class:`FaultAnswer`, one function per fault in :data:`FAULTS`) and
``response['raw']`` (:class:`RawAnswer`, exact bytes then a close).

A closing fault is carried out when :meth:`FaultAnswer.render` returns (the
bytes it sends are on their way; the close follows once they are out), so
the request counts as answered then; ``stall`` and ``no_answer`` are never
carried out: they leave the connection open, unanswered, until the client
leaves or the server stops.

A reset is a TCP RST: Twisted's ``abortConnection`` closes the socket with
``SO_LINGER`` set to zero, which makes the kernel send RST instead of FIN
(and drop what is still unsent). A reset after some bytes of the body waits
until Twisted has handed those bytes to the kernel, so that the client gets
them before the reset.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from twisted.internet.interfaces import IPullProducer
from twisted.web.server import Request
from zope.interface import implementer

from .answers import ErrorAnswer, StaticAnswer
from .writing import Reply, gone, render_error, start

if TYPE_CHECKING:
    from .exchange import Exchange

__all__ = ["FAULTS", "GARBAGE", "FaultAnswer", "RawAnswer", "reset_when_sent"]

#: What ``garbage`` sends: 512 random bytes (not HTTP), the same every run,
#: so that what a client does with them is the same every run.
GARBAGE = random.Random(15).randbytes(512)
#: The body a fault cuts in half when the test set none (``truncated``,
#: ``reset_mid_body``), or announces (``stall``).
FILLER = b"x" * 1024


class FaultAnswer(NamedTuple):
    """
    ``response['fault']``: the status, headers and body the test set, used
    by the faults that send some of an answer.
    """

    fault: str
    code: int
    headers: list[tuple[str, str]]
    cookies: list[tuple[str, str]]
    charset: str
    sleep: float
    body: bytes
    immediate: bool = True

    @property
    def closes(self) -> bool:
        """Every fault but ``stall`` and ``no_answer`` ends the exchange."""
        return self.fault not in _NEVER_DONE

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> FaultAnswer | ErrorAnswer:
        static = StaticAnswer.from_values(values)
        if isinstance(static, ErrorAnswer):
            return static
        return cls(
            values["fault"],
            static.code,
            static.headers,
            static.cookies,
            static.charset,
            static.sleep,
            static.body or FILLER,
        )

    def render(self, exchange: Exchange) -> None:
        request = exchange.request
        if over_http2(request) and self.fault in HTTP1_ONLY:
            render_error(
                exchange,
                500,
                f"response['fault'] {self.fault!r} needs HTTP/1.x ({HTTP1_ONLY[self.fault]}); "
                "over HTTP/2 use 'reset', 'empty', 'truncated', 'reset_mid_body', 'stall' "
                "or 'no_answer'",
            )
            return
        FAULTS[self.fault](self, request, exchange.reply)

    def headers_then(self, request: Request, reply: Reply, body: bytes) -> None:
        """The status line and headers announcing the whole body, then ``body``."""
        start(request, self.code, reply, self.headers, self.cookies, self.charset)
        request.setHeader(b"content-length", b"%d" % len(self.body))
        request.write(body)


class RawAnswer(NamedTuple):
    """``response['raw']``: these exact bytes on the socket, then a close."""

    data: bytes
    sleep: float
    immediate: bool = True
    closes: bool = True
    fault: str | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> RawAnswer:
        data = values["raw"]
        if isinstance(data, str):
            data = data.encode(values["charset"])
        return cls(data, values["sleep"])

    def render(self, exchange: Exchange) -> None:
        request = exchange.request
        if over_http2(request):
            render_error(
                exchange,
                500,
                "response['raw'] needs HTTP/1.x: an HTTP/2 stream has no bytes of its own "
                "to replace",
            )
        elif not gone(request):
            request.channel.write(self.data)
            _close(request)


# -- the faults ------------------------------------------------------------------------------

#: The faults that write HTTP/1.x bytes of their own, and why HTTP/2 has no
#: such thing (over HTTP/2 they are refused: a server-side error, a 500).
HTTP1_ONLY = {
    "garbage": "its bytes would break the whole HTTP/2 connection, not one answer",
    "malformed_chunk": "HTTP/2 has no chunked encoding",
}


def over_http2(request: Request) -> bool:
    """
    The request came on an HTTP/2 stream: faults then act on the stream (a
    reset is RST_STREAM), not on the connection its neighbours share.
    """
    return request.clientproto == b"HTTP/2"


def _transport(request: Request) -> Any:
    """The TCP transport under the request (under TLS too)."""
    transport: Any = request.channel.transport
    while getattr(transport, "transport", None) is not None:
        transport = transport.transport
    return transport


def _abort(request: Request) -> None:
    """Reset: TCP RST (HTTP/1.x), RST_STREAM (HTTP/2), dropping what is unsent."""
    if over_http2(request):
        channel: Any = request.channel
        channel.abortConnection()
    else:
        _transport(request).abortConnection()


def _close(request: Request) -> None:
    """Close (FIN) once what was written is sent."""
    channel: Any = request.channel
    # HTTPChannel.loseConnection: the channel is the transport's producer,
    # which would otherwise keep the connection open.
    channel.loseConnection()


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


def reset_when_sent(request: Request) -> None:
    """
    Reset the connection once what was written to it is sent. (An HTTP/2
    stream is reset at once: what it queued may be dropped.)
    """
    if over_http2(request):
        _abort(request)
        return
    transport = _transport(request)
    transport.setTcpNoDelay(True)  # no byte held back when the reset comes
    transport.unregisterProducer()  # the channel, which is done with
    transport.registerProducer(_ResetWhenSent(transport), False)


def _reset(answer: FaultAnswer, request: Request, reply: Reply) -> None:
    _abort(request)


def _empty(answer: FaultAnswer, request: Request, reply: Reply) -> None:
    if over_http2(request):
        _abort(request)  # a stream cannot end without headers: it is reset
    else:
        _close(request)


def _garbage(answer: FaultAnswer, request: Request, reply: Reply) -> None:
    request.channel.write(GARBAGE)
    _close(request)


def _malformed_chunk(answer: FaultAnswer, request: Request, reply: Reply) -> None:
    start(request, answer.code, reply, answer.headers, answer.cookies, answer.charset)
    request.responseHeaders.removeHeader(b"content-length")
    request.setHeader(b"transfer-encoding", b"chunked")
    request.write(b"")  # the status line and headers
    # A chunk whose size line is not hexadecimal.
    request.channel.write(b"not-a-chunk-size\r\n" + answer.body + b"\r\n")
    _close(request)


def _truncated(answer: FaultAnswer, request: Request, reply: Reply) -> None:
    answer.headers_then(request, reply, answer.body[: len(answer.body) // 2])
    _close(request)


def _reset_mid_body(answer: FaultAnswer, request: Request, reply: Reply) -> None:
    answer.headers_then(request, reply, answer.body[: len(answer.body) // 2])
    reset_when_sent(request)


def _stall(answer: FaultAnswer, request: Request, reply: Reply) -> None:
    answer.headers_then(request, reply, b"")


def _no_answer(answer: FaultAnswer, request: Request, reply: Reply) -> None:
    pass


#: How each fault is carried out, by name (the names of
#: :data:`txtestserver._model.keys.FAULTS`).
FAULTS: dict[str, Callable[[FaultAnswer, Request, Reply], None]] = {
    "reset": _reset,
    "empty": _empty,
    "garbage": _garbage,
    "malformed_chunk": _malformed_chunk,
    "truncated": _truncated,
    "reset_mid_body": _reset_mid_body,
    "stall": _stall,
    "no_answer": _no_answer,
}
_NEVER_DONE = frozenset({"stall", "no_answer"})
