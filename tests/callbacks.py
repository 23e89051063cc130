"""
Response callbacks used by the tests, importable as ``'tests.callbacks:NAME'``
so that the same tests run against the subprocess engine.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.web.server import Request


def returns_bytes(request: Request) -> bytes:
    return b"callback:" + request.uri


def writes_itself(request: Request) -> None:
    request.setResponseCode(201)
    request.setHeader(b"content-type", b"text/plain")
    request.write(b"written ")
    request.write(b"by the callback")
    request.finish()


def returns_deferred(request: Request) -> Deferred[bytes]:
    # request.reactor: the reactor that serves (not twisted.internet.reactor).
    reactor = request.reactor  # type: ignore[attr-defined]
    return deferLater(reactor, 0.01, lambda: b"later:" + request.method)


def raises(request: Request) -> bytes:
    raise ValueError("callback exploded")


def returns_number(request: Request) -> int:
    return 42


not_callable = "just a string"


def pid(request: Request) -> bytes:
    """The id of the process that serves (the server process in subprocess mode)."""
    import os

    return str(os.getpid()).encode()


def environment_mark(request: Request) -> bytes:
    """The server process's ``TXTESTSERVER_MARK`` environment variable."""
    import os

    return os.environ.get("TXTESTSERVER_MARK", "unset").encode()


def prints(request: Request) -> bytes:
    """Writes to stdout without a newline: must not disturb the server."""
    print("stray output, no newline", end="", flush=True)
    return b"printed"


def blocks(request: Request) -> bytes:
    """Blocks the server's reactor, so that a polite stop cannot work."""
    import time

    time.sleep(60)
    return b"too late"


def body_digest(request: Request) -> bytes:
    """The SHA-256 of the body as the callback reads it from ``request.content``."""
    import hashlib

    assert request.content is not None
    return hashlib.sha256(request.content.read()).hexdigest().encode()


# -- test_server compatibility (tests/test_compat.py) ----------------------------------


def handler_methods(handler: Any) -> None:
    """The 2017 (tornado) handler methods."""
    handler.set_status(201, "Made")
    handler.set_header("Content-Type", "text/plain")
    handler.set_header("X-Replaced", "by the handler")
    handler.add_header("X-Step", "one")
    handler.add_header(b"X-Step", b"two")
    handler.write("written, ")
    handler.write("ещё".encode())
    handler.finish(", and finished")


def writes_a_dict(handler: Any) -> None:
    handler.write({"written": "as json"})
    handler.finish()


def sleeps_in_steps(handler: Any) -> Any:
    """A generator callback that pauses without blocking the reactor."""
    handler.set_status(202)
    handler.write(b"before the pause, ")
    yield {"type": "sleep", "time": 0.5}
    handler.write(b"after the pause")


def sleeps_then_returns(handler: Any) -> Any:
    yield {"type": "sleep", "time": 0.01}
    result = yield deferLater(handler.reactor, 0.01, lambda: b"returned after a pause")
    return result


def yields_nonsense(handler: Any) -> Any:
    yield "nonsense"


def raises_after_a_pause(handler: Any) -> Any:
    yield {"type": "sleep", "time": 0.01}
    raise RuntimeError("after the pause")


def dict_answer() -> dict[str, Any]:
    """test_server 0.1's callback: no argument, a dict."""
    return {
        "type": "response",
        "status": 418,
        "headers": [("X-Tea", "earl grey"), ("X-Tea", "green")],
        "data": b"tea",
    }


def bad_dict_answer(request: Request) -> dict[str, Any]:
    return {"status": 200}


def leaks(request: Request) -> bytes:
    """
    What the server holds besides this request, as JSON: its other open
    connections, and the pending calls of streams, faults and sleeps in the
    reactor that serves it (either engine: this runs where the server does).
    """
    import json

    from txtestserver._http.answers.streams import _Pacer

    channel: Any = request.channel
    serving: Any = channel.transport.reactor
    pending = [
        repr(call)
        for call in serving.getDelayedCalls()
        if isinstance(getattr(call.func, "__self__", None), (_Pacer, Deferred))
    ]
    connections = len(channel.site.channels) - 1  # this request's own
    return json.dumps({"connections": connections, "pending": pending}).encode()


def largest_unlinked_file(request: Request) -> bytes:
    """
    The size of the largest unlinked regular file the serving process holds
    open (a request body spooled to a temporary file is one), as text.
    """
    import os
    import stat

    largest = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            info = os.stat(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 0:
            largest = max(largest, info.st_size)
    return str(largest).encode()


def raises_keyboard_interrupt(request: Request) -> bytes:
    raise KeyboardInterrupt("pressed in a callback")


def raises_system_exit(request: Request) -> bytes:
    raise SystemExit(3)


def fails_later_with_keyboard_interrupt(request: Request) -> Deferred[bytes]:
    def interrupt() -> bytes:
        raise KeyboardInterrupt("pressed later")

    return deferLater(request.reactor, 0.01, interrupt)  # type: ignore[attr-defined]


def answers_in_20_s(request: Request) -> Deferred[bytes]:
    """Returns a Deferred that fires only after 20 s (a pending timer meanwhile)."""
    return deferLater(request.reactor, 20, lambda: b"much later")  # type: ignore[attr-defined]


def uses_global_reactor(request: Request) -> Deferred[bytes]:
    """Schedules on twisted.internet.reactor, not request.reactor (issue 19, defect 1)."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    return deferLater(reactor, 0.05, lambda: b"late")  # type: ignore[arg-type]


def uses_global_reactor_later(request: Request) -> Any:
    """A generator that pauses on request.reactor, then on the global reactor."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    yield {"type": "sleep", "time": 0.01}
    body = yield deferLater(reactor, 0.05, lambda: b"late")  # type: ignore[arg-type]
    return body
