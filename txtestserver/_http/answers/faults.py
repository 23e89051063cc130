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

Every fault acts through the request's actions
(:class:`~txtestserver._http.request.HTTP1Actions`): over HTTP/2 the
request overrides them to act on its stream (a reset is RST_STREAM), and a
request that cannot carry raw bytes says why (``raw_refused``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ..request import HTTP1Actions, actions
from ..writing import gone, render_error
from .base import Head
from .error import ErrorAnswer
from .static import StaticAnswer

if TYPE_CHECKING:
    from ..exchange import Exchange

__all__ = ["FAULTS", "GARBAGE", "FaultAnswer", "RawAnswer"]

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
    head: Head
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
        return cls(values["fault"], static.head, static.sleep, static.body or FILLER)

    def render(self, exchange: Exchange) -> None:
        request = actions(exchange.request)
        if self.fault in WRITES_RAW and request.raw_refused is not None:
            render_error(
                exchange,
                500,
                f"response['fault'] {self.fault!r} needs HTTP/1.x ({WRITES_RAW[self.fault]}); "
                "over HTTP/2 use 'reset', 'empty', 'truncated', 'reset_mid_body', 'stall' "
                "or 'no_answer'",
            )
            return
        FAULTS[self.fault](self, exchange, request)

    def headers_then(self, exchange: Exchange, body: bytes) -> None:
        """The status line and headers announcing the whole body, then ``body``."""
        request = exchange.request
        self.head.start(exchange)
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
        request = actions(exchange.request)
        if request.raw_refused is not None:
            render_error(
                exchange,
                500,
                "response['raw'] needs HTTP/1.x: an HTTP/2 stream has no bytes of its own "
                "to replace",
            )
        elif not gone(exchange.request):
            request.write_raw(self.data)
            request.close()


# -- the faults ------------------------------------------------------------------------------

#: The faults that write bytes of their own outside HTTP framing, and why
#: HTTP/2 has no such thing (a request whose ``raw_refused`` says why it
#: cannot carry them refuses them: a server-side error, a 500).
WRITES_RAW = {
    "garbage": "its bytes would break the whole HTTP/2 connection, not one answer",
    "malformed_chunk": "HTTP/2 has no chunked encoding",
}


def _reset(answer: FaultAnswer, exchange: Exchange, request: HTTP1Actions) -> None:
    request.reset()


def _empty(answer: FaultAnswer, exchange: Exchange, request: HTTP1Actions) -> None:
    request.close()  # (an HTTP/2 stream cannot end without headers: it is reset)


def _garbage(answer: FaultAnswer, exchange: Exchange, request: HTTP1Actions) -> None:
    request.write_raw(GARBAGE)
    request.close()


def _malformed_chunk(answer: FaultAnswer, exchange: Exchange, request: HTTP1Actions) -> None:
    web = exchange.request
    answer.head.start(exchange)
    web.responseHeaders.removeHeader(b"content-length")
    web.setHeader(b"transfer-encoding", b"chunked")
    web.write(b"")  # the status line and headers
    # A chunk whose size line is not hexadecimal.
    request.write_raw(b"not-a-chunk-size\r\n" + answer.body + b"\r\n")
    request.close()


def _truncated(answer: FaultAnswer, exchange: Exchange, request: HTTP1Actions) -> None:
    answer.headers_then(exchange, answer.body[: len(answer.body) // 2])
    request.close()


def _reset_mid_body(answer: FaultAnswer, exchange: Exchange, request: HTTP1Actions) -> None:
    answer.headers_then(exchange, answer.body[: len(answer.body) // 2])
    request.reset_when_sent()


def _stall(answer: FaultAnswer, exchange: Exchange, request: HTTP1Actions) -> None:
    answer.headers_then(exchange, b"")


def _no_answer(answer: FaultAnswer, exchange: Exchange, request: HTTP1Actions) -> None:
    pass


#: How each fault is carried out, by name (the names of
#: :data:`txtestserver._model.keys.FAULTS`).
FAULTS: dict[str, Callable[[FaultAnswer, Exchange, HTTP1Actions], None]] = {
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
