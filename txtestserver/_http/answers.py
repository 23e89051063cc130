"""
The answer kinds every server has: what an answer is (:class:`Answer`), a
static one, a callback's, an error.

Each kind is a class that makes itself from the response values a request
takes (``from_values``) and writes itself onto a twisted.web request
(``render``). :mod:`.kinds` chooses the kind for a request; the kinds that
stream (:mod:`.streams`) or misbehave on purpose (:mod:`.faults`) have
modules of their own.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET, Request

from .._model.keys import load_callback
from .callbacks import call, drive, response_dict
from .writing import SERVER_HEADER, Reply, finish, render_error, start

if TYPE_CHECKING:
    from .exchange import Exchange

__all__ = [
    "SERVER_HEADER",
    "Answer",
    "CallbackAnswer",
    "ErrorAnswer",
    "Reply",
    "StaticAnswer",
    "json_answer",
]

_log = Logger()


class Answer(Protocol):
    """
    One kind of answer, made for one request.

    :ivar sleep: seconds to wait (without blocking the reactor) before
        :meth:`render`.
    :ivar immediate: :meth:`render` does all it will do before it returns
        (it finishes the request, or carries out a fault) and runs no test
        code, so the resource may record the request once it is answered
        (one store update instead of two).
    :ivar closes: :meth:`render` ends the exchange by closing the
        connection instead of finishing the request (a fault, raw bytes):
        the request counts as answered once :meth:`render` has returned.
    :ivar fault: the ``response['fault']`` this answer carries out, recorded
        with the request (``request['fault']``); None for a normal answer.
    """

    @property
    def sleep(self) -> float: ...

    @property
    def immediate(self) -> bool: ...

    @property
    def closes(self) -> bool: ...

    @property
    def fault(self) -> str | None: ...

    def render(self, exchange: Exchange) -> Deferred[Any] | None:
        """
        Write the answer on ``exchange.request``; return a Deferred if it finishes later (the
        resource cancels it when the client leaves or the server stops).
        """


# -- the kinds ------------------------------------------------------------------------------


class ErrorAnswer(NamedTuple):
    """
    The configured answer could not be produced: ``code`` with ``message``
    as a plain-text body; the message is logged and reported as a
    server-side error (with ``traceback`` when an exception caused it).
    """

    code: int
    message: str
    sleep: float = 0.0
    immediate: bool = True
    closes: bool = False
    fault: str | None = None
    traceback: str | None = None

    def render(self, exchange: Exchange) -> None:
        render_error(exchange, self.code, self.message, self.traceback)


class StaticAnswer(NamedTuple):
    """
    Status, headers, cookies and a body, all known in advance.

    A NamedTuple, not a frozen dataclass: one is made per request, and it is
    four times cheaper to make.
    """

    code: int
    body: bytes
    headers: list[tuple[str, str]]
    cookies: list[tuple[str, str]]
    charset: str
    sleep: float
    immediate: bool = True
    closes: bool = False
    fault: str | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> StaticAnswer | ErrorAnswer:
        """
        Takes the next item of an iterator ``data`` and encodes ``str`` data
        with the charset. An exhausted iterator answers ``405`` with the body
        ``data generator has no more data``, as test_server did; an item that
        is not bytes or str gives an :class:`ErrorAnswer`.
        """
        charset: str = values["charset"]
        data = values["data"]
        if isinstance(data, Iterator):
            try:
                data = next(data)
            except StopIteration:
                _log.warn(
                    "txtestserver answers 405: the response['data'] iterator is exhausted, "
                    "every item has been served"
                )
                return cls(
                    405, EXHAUSTED, values["headers"], values["cookies"], charset, values["sleep"]
                )
        if isinstance(data, str):
            data = data.encode(charset)
        elif not isinstance(data, bytes):
            return ErrorAnswer(
                500,
                f"response['data'] iterator gave {type(data).__name__}, not bytes or str",
                values["sleep"],
            )
        return cls(
            values["code"], data, values["headers"], values["cookies"], charset, values["sleep"]
        )

    def render(self, exchange: Exchange) -> None:
        request = exchange.request
        start(request, self.code, exchange.reply, self.headers, self.cookies, self.charset)
        finish(request, self.body)


#: The body of the answer to a request after an iterator ``data`` is
#: exhausted (with status 405), as test_server answered.
EXHAUSTED = b"data generator has no more data"


def json_answer(values: Mapping[str, Any]) -> StaticAnswer:
    """
    ``response['json']``: the value as a JSON document, encoded with the
    response charset, with ``Content-Type: application/json`` unless the
    test set a content type (``; charset=...`` added for a charset other
    than UTF-8). It wins over ``data``.
    """
    charset: str = values["charset"]
    text = json.dumps(values["json"], ensure_ascii=False)
    try:
        body = text.encode(charset)
    except UnicodeEncodeError:  # \u escapes: ASCII, which every charset here encodes
        body = json.dumps(values["json"]).encode(charset)
    headers: list[tuple[str, str]] = values["headers"]
    if not any(name.lower() == "content-type" for name, _ in headers):
        utf8 = codecs.lookup(charset).name == "utf-8"
        ctype = "application/json" if utf8 else f"application/json; charset={charset}"
        headers = [("Content-Type", ctype), *headers]
    return StaticAnswer(values["code"], body, headers, values["cookies"], charset, values["sleep"])


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

    code: int
    headers: list[tuple[str, str]]
    cookies: list[tuple[str, str]]
    charset: str
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
        return cls(
            values["code"],
            values["headers"],
            values["cookies"],
            values["charset"],
            values["sleep"],
            callback,
        )

    def render(self, exchange: Exchange) -> Deferred[Any] | None:
        request = exchange.request
        start(request, self.code, exchange.reply, self.headers, self.cookies, self.charset)
        try:
            result: Any = call(self.callback, request)
        except BaseException:
            # KeyboardInterrupt and SystemExit too: a callback is test code,
            # and whatever it raises is answered like any failure of it.
            _callback_failed(exchange, Failure())
            return None
        if isinstance(result, Generator):
            result = drive(result, request, exchange.reply.reactor)
        if isinstance(result, Deferred):
            result.addCallbacks(
                lambda body: _callback_result(exchange, body),
                lambda failure: _callback_failed(exchange, failure),
            )
            return result
        _callback_result(exchange, result)
        return None


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
