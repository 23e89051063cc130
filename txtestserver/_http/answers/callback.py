"""
``response['callback']``: a function of the test's writes the answer, or
returns its body (:class:`CallbackAnswer`). How it is called and what it
may return or yield is the protocol of :mod:`txtestserver._http.callbacks`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET, Request

from ..._model.keys import load_callback
from ..callbacks import call, drive, response_dict
from ..global_reactor import GLOBAL_REACTOR, GlobalReactorWatch
from ..writing import finish, render_error
from .base import Head

if TYPE_CHECKING:
    from ..exchange import Exchange

__all__ = ["CallbackAnswer"]

_log = Logger()


class CallbackAnswer(NamedTuple):
    """
    A function of the test's writes the answer, or returns its body.

    The status and headers the test set are written first; the callback
    receives the twisted.web request and may return bytes or str (the body),
    None or ``NOT_DONE_YET`` (it writes and finishes the request itself), a
    Deferred firing with one of those, or test_server 0.1's ``{"type":
    "response", ...}`` dict; a generator callback may pause. The protocol is
    that of :mod:`txtestserver._http.callbacks`.
    """

    head: Head
    sleep: float
    callback: Callable[[Request], Any]
    immediate: bool = False
    closes: bool = False
    fault: str | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> CallbackAnswer:
        """Imports a callback given as ``'package.module:function'``."""
        callback = values["callback"]
        if isinstance(callback, str):
            callback = load_callback(callback)
        return cls(Head.from_values(values), values["sleep"], callback)

    def render(self, exchange: Exchange) -> Deferred[Any] | None:
        request = exchange.request
        reactor = exchange.reply.reactor
        self.head.start(exchange)
        watch = GlobalReactorWatch.start(reactor)
        try:
            result: Any = call(self.callback, request)
            if isinstance(result, Generator):
                result = drive(result, request, reactor)
        except BaseException:
            # KeyboardInterrupt and SystemExit too: a callback is test code,
            # and whatever it raises is answered like any failure of it.
            _callback_failed(exchange, Failure())
            return None
        if watch is not None and watch.added():
            _used_global_reactor(exchange, watch, result)
            return None
        if isinstance(result, Deferred):
            result.addCallbacks(
                lambda body: _callback_result(exchange, body),
                lambda failure: _callback_failed(exchange, failure),
            )
            if watch is not None and not result.called:
                _watch_while_waiting(exchange, watch, result)
            return result
        _callback_result(exchange, result)
        return None


#: Seconds between two looks at the global reactor while a callback's
#: Deferred waits.
WATCH_INTERVAL = 0.2


def _used_global_reactor(exchange: Exchange, watch: GlobalReactorWatch, result: object) -> None:
    """
    The callback scheduled work on the global reactor, which does not run:
    cancel that work and what waits for it, and answer 500 saying so (only
    report it if the answer is complete already).
    """
    if isinstance(result, Deferred):
        result.addErrback(lambda _: None)  # its CancelledError: nobody waits for it
        result.cancel()  # (first: cancelling it may cancel its own timed call)
    watch.cancel_added()
    render_error(exchange, 500, GLOBAL_REACTOR)


def _watch_while_waiting(
    exchange: Exchange, watch: GlobalReactorWatch, pending: Deferred[Any]
) -> None:
    """
    While the callback's Deferred waits, look at the global reactor now and
    then: work scheduled there since the callback started (a generator's
    later step, a chained call) means the Deferred waits for ever.
    """
    clock: Any = exchange.reply.reactor

    def look() -> None:
        if pending.called:
            return
        if watch.added():
            render_error(exchange, 500, GLOBAL_REACTOR)
            pending.cancel()
            watch.cancel_added()
            return
        looking[0] = clock.callLater(WATCH_INTERVAL, look)

    looking = [clock.callLater(WATCH_INTERVAL, look)]

    def stop(result: object) -> object:
        if looking[0].active():
            looking[0].cancel()
        return result

    pending.addBoth(stop)


def _callback_result(exchange: Exchange, result: object) -> None:
    request = exchange.request
    if result is None or result is NOT_DONE_YET:
        return  # the callback wrote, or will write, the answer itself
    if isinstance(result, str):
        result = result.encode("utf-8")
    elif isinstance(result, Mapping):
        try:
            status, headers, result = response_dict(result)
        except ValueError as e:
            render_error(exchange, 500, f"response['callback'] returned a bad dict: {e}")
            return
        if status is not None:
            request.setResponseCode(status)
        grouped: dict[bytes, list[bytes]] = {}
        for name, value in headers:
            grouped.setdefault(name.lower().encode("latin-1"), []).append(value.encode())
        for key, values in grouped.items():
            request.responseHeaders.setRawHeaders(key, values)
    if not isinstance(result, bytes):
        render_error(
            exchange,
            500,
            f"response['callback'] returned {type(result).__name__}; "
            "return bytes, str, None, a dict {'type': 'response', ...} "
            "or a Deferred firing with one of them",
        )
        return
    finish(request, result)


def _callback_failed(exchange: Exchange, failure: Failure) -> Failure | None:
    if failure.check(CancelledError):
        return failure  # the client left or the server stopped: nothing to answer
    _log.failure("response['callback'] raised", failure)
    render_error(
        exchange,
        500,
        f"response['callback'] raised {getattr(failure.type, '__name__', 'an error')}: "
        f"{failure.getErrorMessage()}",
        failure.getTraceback(),
    )
    return None
