"""
Where a response is rendered: an :class:`~txtestserver._response.Answer`
written onto a twisted.web request.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET, Request

from .._model.keys import Answer
from .._version import __version__

__all__ = ["SERVER_HEADER", "render_answer", "render_error"]

#: The default ``Server`` header.
SERVER_HEADER = f"txtestserver/{__version__}".encode()

_log = Logger()


def _start(request: Request, code: int, answer: Answer | None, keep_alive: bool) -> None:
    """Status line and headers: defaults first, then what the test set."""
    charset = answer.charset if answer else "utf-8"
    request.setResponseCode(code)
    headers = request.responseHeaders
    headers.setRawHeaders(b"server", [SERVER_HEADER])
    headers.setRawHeaders(b"content-type", [f"text/html; charset={charset}".encode()])
    if answer is not None:
        grouped: dict[bytes, list[bytes]] = {}
        for name, value in answer.headers:
            grouped.setdefault(name.lower().encode("latin-1"), []).append(value.encode("utf-8"))
        for key, values in grouped.items():
            headers.setRawHeaders(key, values)
        for name, value in answer.cookies:
            headers.addRawHeader(b"set-cookie", f"{name}={value}".encode())
    if not keep_alive:
        headers.setRawHeaders(b"connection", [b"close"])
        request.channel.persistent = False


def _finish(request: Request, body: bytes) -> None:
    if request.finished or request.channel is None:
        return  # the client went away
    if not request.responseHeaders.hasHeader(b"content-length"):
        request.setHeader(b"content-length", b"%d" % len(body))
    if request.method != b"HEAD":
        request.write(body)
    request.finish()


def render_answer(request: Request, answer: Answer, keep_alive: bool) -> None:
    """
    Write ``answer`` onto ``request`` and finish it (now, or when the
    callback's Deferred fires).
    """
    if answer.error is not None:
        render_error(request, answer.code, answer.error, keep_alive)
        return
    _start(request, answer.code, answer, keep_alive)
    if answer.callback is None:
        _finish(request, answer.body)
        return
    try:
        result: Any = answer.callback(request)
    except Exception:
        _fail(request, Failure(), keep_alive)
        return
    if hasattr(result, "addCallbacks"):
        result.addCallbacks(
            lambda body: _callback_result(request, body, keep_alive),
            lambda failure: _fail(request, failure, keep_alive),
        )
    else:
        _callback_result(request, result, keep_alive)


def _callback_result(request: Request, result: object, keep_alive: bool) -> None:
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
            keep_alive,
        )
        return
    _finish(request, result)


def _fail(request: Request, failure: Failure, keep_alive: bool) -> None:
    _log.failure("response['callback'] raised", failure)
    render_error(
        request,
        500,
        f"response['callback'] raised {getattr(failure.type, '__name__', 'an error')}: "
        f"{failure.getErrorMessage()}",
        keep_alive,
    )


def render_error(request: Request, code: int, message: str, keep_alive: bool) -> None:
    """Answer ``code`` with ``message`` as a plain-text body."""
    if request.finished or request.channel is None:
        return
    if request.startedWriting:
        # Too late for a clean status: cut the connection so the client sees
        # the failure instead of a truncated body that looks complete.
        request.channel.transport.abortConnection()  # type: ignore[union-attr]
        return
    _log.error("txtestserver answers {code}: {reason}", code=code, reason=message)
    _start(request, code, None, keep_alive)
    request.responseHeaders.setRawHeaders(b"content-type", [b"text/plain; charset=utf-8"])
    request.responseHeaders.removeHeader(b"content-length")
    _finish(request, f"txtestserver: {message}\n".encode())
