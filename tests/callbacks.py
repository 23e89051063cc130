"""
Response callbacks used by the tests, importable as ``'tests.callbacks:NAME'``
so that the same tests run against the subprocess engine.
"""

from __future__ import annotations

from twisted.internet import reactor
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
