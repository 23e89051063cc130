"""
Where an answer is chosen and rendered: the answer kinds.

Each kind is a class that makes itself from the response values a request
takes (``from_values``) and writes itself onto a twisted.web request
(``render``). :func:`choose` picks the kind from :data:`KINDS`: the first
entry whose key has a value wins, else a :class:`StaticAnswer`. A new kind
(a stream, a fault, raw bytes) is one class here and one entry in
:data:`KINDS`; the resource does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET, Request

from .._model.keys import load_callback
from .._version import __version__

__all__ = [
    "KINDS",
    "SERVER_HEADER",
    "Answer",
    "CallbackAnswer",
    "ErrorAnswer",
    "Reply",
    "StaticAnswer",
    "choose",
]

#: The default ``Server`` header.
SERVER_HEADER = f"txtestserver/{__version__}".encode()

_log = Logger()


class Reply(NamedTuple):
    """
    How this server replies, whatever the answer: the settings an answer
    needs from its server.

    :ivar keep_alive: keep the connection open after the answer.
    """

    keep_alive: bool


class Answer(Protocol):
    """
    One kind of answer, made for one request.

    :ivar sleep: seconds to wait (without blocking the reactor) before
        :meth:`render`.
    :ivar immediate: :meth:`render` finishes the request before it returns
        and runs no test code, so the resource may record the request once
        it is answered (one store update instead of two).
    """

    @property
    def sleep(self) -> float: ...

    @property
    def immediate(self) -> bool: ...

    def render(self, request: Request, reply: Reply) -> Deferred[Any] | None:
        """
        Write the answer; return a Deferred if it finishes later (the
        resource cancels it when the client leaves or the server stops).
        """


# -- writing ------------------------------------------------------------------------------


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
    out.setRawHeaders(b"content-type", [f"text/html; charset={charset}".encode()])
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


def finish(request: Request, body: bytes) -> None:
    """The body (with its length, unless the test set one), then the end."""
    if request.finished or request.channel is None:
        return  # the client went away
    if not request.responseHeaders.hasHeader(b"content-length"):
        request.setHeader(b"content-length", b"%d" % len(body))
    if request.method != b"HEAD":
        request.write(body)
    request.finish()


# -- the kinds ------------------------------------------------------------------------------


class ErrorAnswer(NamedTuple):
    """
    The configured answer could not be produced: ``code`` with ``message``
    as a plain-text body, and the message logged as an error.
    """

    code: int
    message: str
    sleep: float = 0.0
    immediate: bool = True

    def render(self, request: Request, reply: Reply) -> None:
        render_error(request, self.code, self.message, reply)


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

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> StaticAnswer | ErrorAnswer:
        """
        Takes the next item of an iterator ``data`` and encodes ``str`` data
        with the charset; an exhausted iterator or an item that is not
        bytes or str gives an :class:`ErrorAnswer`.
        """
        charset: str = values["charset"]
        data = values["data"]
        if isinstance(data, Iterator):
            try:
                data = next(data)
            except StopIteration:
                return ErrorAnswer(
                    500,
                    "response['data'] iterator is exhausted: every item has been served",
                    values["sleep"],
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

    def render(self, request: Request, reply: Reply) -> None:
        start(request, self.code, reply, self.headers, self.cookies, self.charset)
        finish(request, self.body)


class CallbackAnswer(NamedTuple):
    """
    A function of the test's writes the answer, or returns its body.

    The status and headers the test set are written first; the callback
    receives the twisted.web request and may return bytes or str (the body),
    None or ``NOT_DONE_YET`` (it writes and finishes the request itself), or
    a Deferred firing with one of those.
    """

    code: int
    headers: list[tuple[str, str]]
    cookies: list[tuple[str, str]]
    charset: str
    sleep: float
    callback: Callable[[Request], Any]
    immediate: bool = False

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

    def render(self, request: Request, reply: Reply) -> Deferred[Any] | None:
        start(request, self.code, reply, self.headers, self.cookies, self.charset)
        try:
            result: Any = self.callback(request)
        except Exception:
            _callback_failed(request, Failure(), reply)
            return None
        if isinstance(result, Deferred):
            result.addCallbacks(
                lambda body: _callback_result(request, body, reply),
                lambda failure: _callback_failed(request, failure, reply),
            )
            return result
        _callback_result(request, result, reply)
        return None


def _callback_result(request: Request, result: object, reply: Reply) -> None:
    if result is None or result is NOT_DONE_YET:
        return  # the callback wrote, or will write, the answer itself
    if isinstance(result, str):
        result = result.encode("utf-8")
    if not isinstance(result, bytes):
        render_error(
            request,
            500,
            f"response['callback'] returned {type(result).__name__}; "
            "return bytes, str, None or a Deferred firing with one of them",
            reply,
        )
        return
    finish(request, result)


def _callback_failed(request: Request, failure: Failure, reply: Reply) -> Failure | None:
    if failure.check(CancelledError):
        return failure  # the client left or the server stopped: nothing to answer
    _log.failure("response['callback'] raised", failure)
    render_error(
        request,
        500,
        f"response['callback'] raised {getattr(failure.type, '__name__', 'an error')}: "
        f"{failure.getErrorMessage()}",
        reply,
    )
    return None


def render_error(request: Request, code: int, message: str, reply: Reply) -> None:
    """Answer ``code`` with ``message`` as a plain-text body."""
    if request.finished or request.channel is None:
        return
    if request.startedWriting:
        # Too late for a clean status: cut the connection so the client sees
        # the failure instead of a truncated body that looks complete.
        request.channel.transport.abortConnection()  # type: ignore[union-attr]
        return
    _log.error("txtestserver answers {code}: {reason}", code=code, reason=message)
    start(request, code, reply)
    request.responseHeaders.setRawHeaders(b"content-type", [b"text/plain; charset=utf-8"])
    request.responseHeaders.removeHeader(b"content-length")
    finish(request, f"txtestserver: {message}\n".encode())


# -- choosing -------------------------------------------------------------------------------

#: ``(key, make)``, highest precedence first: the first key whose value is
#: not None makes the answer (``make(values)``); else :class:`StaticAnswer`.
KINDS: list[tuple[str, Callable[[Mapping[str, Any]], Answer]]] = [
    ("callback", CallbackAnswer.from_values),
]


def choose(values: Mapping[str, Any]) -> Answer:
    """
    The answer to one request, from the response values it took.

    :param values: every response key's value (defaults included).
    """
    for key, make in KINDS:
        if values[key] is not None:
            return make(values)
    return StaticAnswer.from_values(values)
