"""
Answers whose body is written over time: ``response['chunks']`` (the body
piece by piece, ``chunk_delay`` seconds apart) and ``response['throttle']``
(the body, plain or in pieces, trickling at so many bytes a second).

The status line and headers go at once; each piece is written when it is
due, on the reactor's clock (``callLater``: the reactor is never blocked,
and a ``Clock`` drives it in unit tests). With no ``Content-Length`` set by
the test, an HTTP/1.1 client gets ``Transfer-Encoding: chunked`` and an
HTTP/1.0 client a body that ends when the connection closes (twisted.web
decides both). A client that leaves, or ``stop()``, cancels the Deferred that
:meth:`StreamAnswer.render` returns, and with it the pending call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..request import actions
from ..writing import bodiless, gone
from .base import Head
from .error import ErrorAnswer
from .static import StaticAnswer, body_refused

if TYPE_CHECKING:
    from ..exchange import Exchange

__all__ = ["StreamAnswer"]

_log = Logger()

#: A throttled body is written in slices this many seconds apart (or one
#: byte at a time when the rate is lower than 1 / TICK bytes a second).
TICK = 0.05
#: Without any delay, a stream gives the reactor back after writing this
#: many bytes, so a long (or endless) generator does not hold it.
_BURST = 256 * 1024


class StreamAnswer(NamedTuple):
    """
    A body written over time.

    :ivar pieces: the body's pieces (bytes or str), a list or the test's
        iterator.
    :ivar delay: seconds to wait before each piece after the first.
    :ivar times: seconds to wait before each piece, the first included (a
        recorded stream's pace, ``chunk_times``), instead of ``delay`` for
        the pieces it covers; or None.
    :ivar rate: bytes a second, or None for as fast as the client reads.
    :ivar length: the ``Content-Length`` to send (a throttled plain body),
        or None.
    """

    head: Head
    sleep: float
    pieces: Iterable[Any]
    delay: float
    rate: float | None
    length: int | None = None
    times: list[float] | None = None
    immediate: bool = False
    closes: bool = False
    fault: str | None = None

    @property
    def code(self) -> int:
        """The status."""
        return self.head.code

    @classmethod
    def from_chunks(cls, values: Mapping[str, Any]) -> StreamAnswer | ErrorAnswer:
        """``response['chunks']``, paced by ``chunk_delay`` and ``throttle``."""
        if bodiless(values["code"]):
            return body_refused(values["code"], "chunks", values["sleep"])
        return cls(
            Head.from_values(values),
            values["sleep"],
            values["chunks"],
            values["chunk_delay"],
            values["throttle"],
            times=values["chunk_times"],
        )

    @classmethod
    def from_data(cls, values: Mapping[str, Any]) -> StreamAnswer | ErrorAnswer:
        """``response['data']`` in one piece, trickling at ``throttle``."""
        static = StaticAnswer.from_values(values)
        if isinstance(static, ErrorAnswer):
            return static
        return cls(
            static.head,
            static.sleep,
            [static.body],
            0.0,
            values["throttle"],
            len(static.body),
        )

    def render(self, exchange: Exchange) -> Deferred[None]:
        request = exchange.request
        self.head.start(exchange)
        if self.length is not None and not request.responseHeaders.hasHeader(b"content-length"):
            request.setHeader(b"content-length", b"%d" % self.length)
        return _Pacer(exchange, self).run()


class _Pacer:
    """
    Writes one stream: each piece (in slices when throttled, each slice
    after the time its bytes take at the rate), ``chunk_delay`` apart;
    finishes the request with the last byte.

    The next piece is taken from the test's iterator as soon as the one
    before it is written (so the stream ends as soon as its last piece is
    written, not a ``chunk_delay`` later), and written when it is due.
    """

    def __init__(self, exchange: Exchange, answer: StreamAnswer) -> None:
        self._exchange = exchange
        self._reactor: Any = exchange.reply.reactor
        self._request = exchange.request
        self._pieces: Iterator[Any] = iter(answer.pieces)
        self._charset = answer.head.charset
        self._delay = answer.delay
        self._times = iter(answer.times or ())
        self._rate = answer.rate
        # A throttled body is written in slices of this many bytes.
        self._slice = max(1, int(answer.rate * TICK)) if answer.rate else 0
        self._pending = b""
        self._call: Any = None  # the pending IDelayedCall
        self.done: Deferred[None] = Deferred(self._cancel)

    def run(self) -> Deferred[None]:
        if self._request.method == b"HEAD":
            self._end()  # headers only: twisted.web drops a HEAD body anyway
            return self.done
        self._request.write(b"")  # the status line and headers, at once
        first = self._pull()
        if first is not None:
            self._pending = first
            self._after(next(self._times, 0.0) + self._cost(), self._send)
        elif not self.done.called:
            self._end()  # no pieces at all
        return self.done

    def _send(self) -> None:
        """Write what is due now (a piece, or a slice of one), then schedule the rest."""
        self._call = None
        budget = _BURST
        while not gone(self._request):
            self._write_some()
            if self._pending:  # throttled: the next slice of this piece
                self._after(self._cost(), self._send)
                return
            following = self._pull()
            if following is None:
                if not self.done.called:  # (else the iterator failed: the connection is cut)
                    self._end()
                return
            self._pending = following
            due = next(self._times, self._delay) + self._cost()
            budget -= len(following) + 64  # empty pieces cost something too
            if due or budget <= 0:
                self._call = self._reactor.callLater(due, self._send)
                return
        self._stopped()

    def _pull(self) -> bytes | None:
        """
        The next piece as bytes; None once the stream has ended, or when the
        iterator failed (then the connection is cut and ``done`` fired).
        """
        try:
            piece = next(self._pieces)
        except StopIteration:
            return None
        except BaseException:  # test code: KeyboardInterrupt too
            self._broken(Failure(), "response['chunks'] raised while streaming")
            return None
        if isinstance(piece, str):
            return piece.encode(self._charset)
        if isinstance(piece, bytes):
            return piece
        if isinstance(piece, (bytearray, memoryview)):
            return bytes(piece)
        self._broken(
            None,
            f"response['chunks'] gave a {type(piece).__name__}, not bytes or str: "
            "the connection was cut",
        )
        return None

    def _cost(self) -> float:
        """Seconds to wait before the next write: the time its bytes take at the rate."""
        if self._rate is None:
            return 0.0
        return min(len(self._pending), self._slice) / self._rate

    def _write_some(self) -> None:
        """Write the pending bytes (one slice of them when throttled)."""
        if self._rate is None:
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[: self._slice], self._pending[self._slice :]
        if data:
            self._request.write(data)

    def _after(self, seconds: float, step: Any) -> None:
        if seconds:
            self._call = self._reactor.callLater(seconds, step)
        else:
            step()

    def _end(self) -> None:
        self._call = None
        if not gone(self._request):
            self._request.finish()
        self._stopped()

    def _broken(self, failure: Failure | None, message: str) -> None:
        """
        The test's iterator failed mid-stream: log why, report it as a
        server-side error, and reset the connection once what was written
        is sent (the headers are out: a clean error status is too late, and
        an ended body would look whole).
        """
        if failure is not None:
            _log.failure(message, failure)
            message = f"{message}: {failure.getErrorMessage()}"
        else:
            _log.error(message)
        traceback = failure.getTraceback() if failure is not None else None
        self._exchange.report(message, traceback)
        if not gone(self._request):
            actions(self._request).reset_when_sent()
        self._stopped()

    def _stopped(self) -> None:
        if not self.done.called:
            self.done.callback(None)

    def _cancel(self, _: Deferred[None]) -> None:
        """The client left or the server stopped: nothing more is written."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
