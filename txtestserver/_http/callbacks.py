"""
The protocol of ``response['callback']``: how a callback is called, what
the request it receives answers, and what it may return or yield.

- It is called with the twisted.web request, or with nothing if it takes no
  argument (test_server 0.1's ``Response(callback=...)`` did that).
- The request also answers test_server's (2017, tornado) handler methods,
  :class:`HandlerMethods`: ``set_status``, ``set_header``, ``add_header``,
  ``write`` (bytes, str or a dict as JSON) and ``finish``.
- It returns the body (bytes or str), None or ``NOT_DONE_YET`` (it answers
  itself), a Deferred firing with one of them, or test_server 0.1's dict
  ``{"type": "response", "status": ..., "headers": ..., "data": ...}``
  (:func:`response_dict`).
- A generator callback may ``yield {"type": "sleep", "time": seconds}`` to
  pause without blocking the reactor, and yield a Deferred to wait for it
  (its result is sent back into the generator); :func:`drive` runs it.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.web.server import Request

from .._types import TimeReactor

__all__ = ["HandlerMethods", "call", "drive", "response_dict"]


class HandlerMethods:
    """
    test_server's callback methods (those of a tornado ``RequestHandler``),
    mixed into the twisted.web request a callback receives. Names and
    values may be str or bytes; the twisted.web methods keep working.
    """

    if TYPE_CHECKING:  # the twisted.web Request this is mixed into
        responseHeaders: Any

        def setResponseCode(self, code: int, message: bytes | None = None) -> None: ...

    def set_status(self, code: int, reason: str | None = None) -> None:
        """The status code (and reason phrase)."""
        self.setResponseCode(code, None if reason is None else reason.encode("latin-1"))

    def set_header(self, name: str | bytes, value: str | bytes | int) -> None:
        """Set a header, replacing any of that name (the defaults too)."""
        self.responseHeaders.setRawHeaders(_raw(name), [_raw(value)])

    def add_header(self, name: str | bytes, value: str | bytes | int) -> None:
        """Add a header, keeping those of that name already set."""
        self.responseHeaders.addRawHeader(_raw(name), _raw(value))

    def write(self, data: bytes | str | dict[str, Any]) -> None:
        """
        Write part of the body: bytes, str (UTF-8) or a dict, sent as JSON
        with ``Content-Type: application/json; charset=UTF-8`` (as tornado).
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif isinstance(data, dict):
            self.responseHeaders.setRawHeaders(
                b"content-type", [b"application/json; charset=UTF-8"]
            )
            data = json.dumps(data).encode("utf-8")
        super().write(data)  # type: ignore[misc]

    def finish(self, chunk: bytes | str | dict[str, Any] | None = None) -> None:
        """End the answer, writing ``chunk`` first if given (as tornado)."""
        if chunk is not None:
            self.write(chunk)
        super().finish()  # type: ignore[misc]


def _raw(value: str | bytes | int) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("latin-1" if isinstance(value, str) and value.isascii() else "utf-8")


# -- calling ------------------------------------------------------------------------------


def call(callback: Callable[..., Any], request: Request) -> Any:
    """Call ``callback`` with the request, or with nothing if it takes no argument."""
    if _takes_request(callback):
        return callback(request)
    return callback()


def _takes_request(callback: Callable[..., Any]) -> bool:
    try:
        return _cached_takes_request(callback)
    except TypeError:  # unhashable callable
        return _signature_takes_request(callback)


@functools.lru_cache(maxsize=256)
def _cached_takes_request(callback: Callable[..., Any]) -> bool:
    return _signature_takes_request(callback)


def _signature_takes_request(callback: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):  # no signature: call it as documented
        return True
    try:
        signature.bind(None)
    except TypeError:
        try:
            signature.bind()
        except TypeError:
            return True  # neither: let the call fail with Python's own message
        return False
    return True


# -- what it returns ---------------------------------------------------------------------


def response_dict(result: Mapping[str, Any]) -> tuple[int | None, list[tuple[str, str]], bytes]:
    """
    test_server 0.1's callback result
    ``{"type": "response", "status": ..., "headers": ..., "data": ...}``
    (every key but ``type`` optional) as ``(status, headers, body)``.

    :raise ValueError: not such a dict; the message says what is wrong.
    """
    if result.get("type") != "response":
        raise ValueError(
            f"a callback's dict needs 'type': 'response', not {result.get('type', '(none)')!r}"
        )
    unknown = set(result) - {"type", "status", "headers", "data"}
    if unknown:
        raise ValueError(f"a callback's dict has unknown keys {sorted(unknown)}")
    status = result.get("status")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
        raise ValueError(f"a callback's 'status' is an int, not {status!r}")
    raw = result.get("headers") or []
    items = raw.items() if isinstance(raw, Mapping) else raw
    headers = [(str(name), str(value)) for name, value in items]
    data = result.get("data", b"")
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes):
        raise ValueError(f"a callback's 'data' is bytes or str, not {type(data).__name__}")
    return status, headers, data


# -- generators ---------------------------------------------------------------------------


def drive(
    generator: Generator[Any, Any, Any], request: Request, clock: TimeReactor
) -> Deferred[Any]:
    """
    Run a generator callback to its end without blocking the reactor.

    It may yield ``{"type": "sleep", "time": seconds}`` (a pause) or a
    Deferred (its result is sent back in, its failure thrown in). Its return
    value is the callback's result; if it returns None with an answer not
    finished, the answer is finished here (with an empty body if it wrote
    nothing).

    :param clock: schedules the pauses (the server's reactor).
    :return: fires with the result; cancelling it cancels the pause or
        Deferred it waits on and closes the generator (the client left).
    """
    waiting: list[Deferred[Any]] = []
    stopped: list[bool] = []

    def cancel(_: Deferred[Any]) -> None:
        stopped.append(True)
        for pending in waiting:
            pending.cancel()
        generator.close()

    done: Deferred[Any] = Deferred(cancel)

    def step(value: Any = None, failure: Failure | None = None) -> None:
        waiting.clear()
        if stopped:
            return
        try:
            if failure is not None:
                item = failure.throwExceptionIntoGenerator(generator)
            else:
                item = generator.send(value)
        except StopIteration as stop:
            done.callback(_end(request, stop.value))
            return
        except BaseException:
            done.errback(Failure())
            return
        try:
            pending = _wait_for(item, clock)
        except ValueError as e:
            generator.close()
            done.errback(Failure(e))
            return
        waiting.append(pending)
        pending.addCallbacks(step, lambda f: step(failure=f))

    step()
    return done


def _wait_for(item: Any, clock: Any) -> Deferred[Any]:
    """What a yielded item waits for, as a Deferred."""
    if isinstance(item, Deferred):
        return item
    if isinstance(item, Mapping) and item.get("type") == "sleep":
        seconds = item.get("time")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"a sleep's 'time' is a number of seconds >= 0, not {seconds!r}")
        return deferLater(clock, seconds, lambda: None)
    raise ValueError(
        f"a callback generator yielded {item!r}: yield {{'type': 'sleep', 'time': seconds}} "
        "or a Deferred"
    )


def _end(request: Request, value: Any) -> Any:
    """A generator's return value as the callback's result."""
    if value is not None or request.finished or request.channel is None:
        return value
    if not request.startedWriting:
        return b""  # nothing written: an empty body, with its length
    request.finish()
    return None
