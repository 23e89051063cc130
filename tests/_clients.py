"""
The HTTP clients that streams and faults are tested against, each driven
the way its users call it, and what each one raises for each fault.

:data:`FAULT_OUTCOMES` is the table that docs/streams-and-faults.rst shows;
tests/test_fault_answers.py (requests, urllib3, httpx, aiohttp) and
tests/trial/test_streams.py (treq) assert every cell, and tests/test_docs.py
checks that the page's table says the same.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import aiohttp
import httpx
import requests
import urllib3

#: The blocking and asyncio clients (treq runs in trial: tests/trial/).
CLIENTS = ["requests", "urllib3", "httpx", "aiohttp"]
#: Every client the table covers, in its column order.
ALL_CLIENTS = [*CLIENTS, "treq"]

#: The read timeout given to a client for ``stall`` and ``no_answer`` (the
#: others answer at once; they get :data:`PATIENCE`). Long enough for a
#: loaded machine to send a stall's headers before it (a client that times
#: out before the headers raises something else).
TIMEOUT = 0.5
PATIENCE = 30.0

#: Faults that leave the request unanswered until the client gives up.
HANGING = ("stall", "no_answer")


class Outcome(NamedTuple):
    """
    What one client does with one fault, called with its defaults (and a
    read timeout).

    :ivar raised: the exception's public name (``requests.ConnectionError``).
    :ivar underlying: the OS-level or protocol error found inside it (its
        cause, context, ``reason`` or ``reasons``), the deepest one; None if
        it wraps none.
    :ivar sent: how many requests the client sent before giving up (more
        than 1: it retried on its own).
    """

    raised: str
    underlying: str | None
    sent: int = 1


_RESET = "ConnectionResetError"
_CLOSED = "http.client.RemoteDisconnected"
_TIMEOUT = "TimeoutError"

#: fault -> client -> what it raises. Measured with the versions the
#: ``test`` extra installs; a new client version may change a cell (the
#: tests then say which).
FAULT_OUTCOMES: dict[str, dict[str, Outcome]] = {
    "reset": {
        "requests": Outcome("requests.ConnectionError", _RESET),
        "urllib3": Outcome("urllib3.exceptions.MaxRetryError", _RESET, 4),
        "httpx": Outcome("httpx.ReadError", _RESET),
        "aiohttp": Outcome("aiohttp.ClientOSError", _RESET, 2),
        "treq": Outcome(
            "twisted.web.client.ResponseNeverReceived", "twisted.internet.error.ConnectionLost"
        ),
    },
    "empty": {
        "requests": Outcome("requests.ConnectionError", _CLOSED),
        "urllib3": Outcome("urllib3.exceptions.MaxRetryError", _CLOSED, 4),
        "httpx": Outcome("httpx.RemoteProtocolError", None),
        "aiohttp": Outcome("aiohttp.ServerDisconnectedError", None, 2),
        "treq": Outcome(
            "twisted.web.client.ResponseNeverReceived", "twisted.internet.error.ConnectionDone"
        ),
    },
    "garbage": {
        "requests": Outcome("requests.ConnectionError", "http.client.BadStatusLine"),
        "urllib3": Outcome("urllib3.exceptions.MaxRetryError", "http.client.BadStatusLine", 4),
        "httpx": Outcome("httpx.RemoteProtocolError", None),
        "aiohttp": Outcome("aiohttp.ClientResponseError", None),
        "treq": Outcome(
            "twisted.web.client.ResponseFailed", "twisted.internet.error.ConnectionDone"
        ),
    },
    "malformed_chunk": {
        "requests": Outcome("requests.exceptions.ChunkedEncodingError", None),
        "urllib3": Outcome("urllib3.exceptions.MaxRetryError", "http.client.IncompleteRead", 4),
        "httpx": Outcome("httpx.RemoteProtocolError", None),
        "aiohttp": Outcome("aiohttp.ClientResponseError", None),
        "treq": Outcome("twisted.web.client.ResponseFailed", None),
    },
    "truncated": {
        "requests": Outcome("requests.exceptions.ChunkedEncodingError", None),
        "urllib3": Outcome("urllib3.exceptions.MaxRetryError", "http.client.IncompleteRead", 4),
        "httpx": Outcome("httpx.RemoteProtocolError", None),
        "aiohttp": Outcome("aiohttp.ClientPayloadError", None),
        "treq": Outcome(
            "twisted.web.client.ResponseFailed", "twisted.internet.error.ConnectionDone"
        ),
    },
    "reset_mid_body": {
        "requests": Outcome("requests.exceptions.ChunkedEncodingError", _RESET),
        "urllib3": Outcome("urllib3.exceptions.MaxRetryError", _RESET, 4),
        "httpx": Outcome("httpx.ReadError", _RESET),
        "aiohttp": Outcome("aiohttp.ClientPayloadError", None),
        "treq": Outcome(
            "twisted.web.client.ResponseFailed", "twisted.internet.error.ConnectionLost"
        ),
    },
    "stall": {
        "requests": Outcome("requests.ConnectionError", _TIMEOUT),
        "urllib3": Outcome("urllib3.exceptions.MaxRetryError", _TIMEOUT, 4),
        "httpx": Outcome("httpx.ReadTimeout", _TIMEOUT),
        "aiohttp": Outcome("TimeoutError", None),
        # treq's timeout ends with the headers: the body is timed out with
        # addTimeout (the connection stays open until the server closes it).
        "treq": Outcome("twisted.internet.defer.TimeoutError", None),
    },
    "no_answer": {
        "requests": Outcome("requests.ReadTimeout", _TIMEOUT),
        "urllib3": Outcome("urllib3.exceptions.MaxRetryError", _TIMEOUT, 4),
        "httpx": Outcome("httpx.ReadTimeout", _TIMEOUT),
        "aiohttp": Outcome("TimeoutError", None),
        "treq": Outcome(
            "twisted.web.client.ResponseNeverReceived", "twisted.internet.defer.CancelledError"
        ),
    },
}


# -- naming what was raised --------------------------------------------------------------


def resolve(name: str) -> type:
    """The class a public name such as ``requests.ConnectionError`` names."""
    module, _, attribute = name.rpartition(".")
    found: type = getattr(importlib.import_module(module or "builtins"), attribute)
    return found


def full_name(kind: type) -> str:
    name = f"{kind.__module__}.{kind.__qualname__}"
    # Python 3.10's asyncio has a TimeoutError of its own (3.11 made it the
    # builtin one): aiohttp raises it for a timeout.
    return "builtins.TimeoutError" if name == "asyncio.exceptions.TimeoutError" else name


#: Errors worth naming as what lies under a client's exception.
_UNDERLYING_MODULES = ("http.client", "twisted.internet.error", "twisted.internet.defer")


def _name(error: BaseException) -> str | None:
    kind = type(error)
    if kind.__module__ == "builtins":
        return kind.__qualname__ if isinstance(error, OSError) else None
    if kind.__module__ in _UNDERLYING_MODULES:
        return f"{kind.__module__}.{kind.__qualname__}"
    return None


def _inner(error: BaseException) -> Iterator[BaseException]:
    """The errors one error wraps: cause, context, urllib3's ``reason``,
    exceptions among its args, Twisted's ``reasons`` (Failures)."""
    for found in (error.__cause__, error.__context__, getattr(error, "reason", None)):
        if isinstance(found, BaseException):
            yield found
    for arg in getattr(error, "args", ()):
        if isinstance(arg, BaseException):
            yield arg
    for failure in getattr(error, "reasons", None) or ():
        value = getattr(failure, "value", None)
        if isinstance(value, BaseException):
            yield value


def underlying(error: BaseException) -> str | None:
    """The deepest OS-level or protocol error inside ``error`` (not itself)."""
    found: str | None = None
    seen: set[int] = {id(error)}
    layer = list(_inner(error))
    while layer:
        following = []
        for inner in layer:
            if id(inner) in seen:
                continue
            seen.add(id(inner))
            found = _name(inner) or found
            following.extend(_inner(inner))
        layer = following
    return found


# -- calling the clients -----------------------------------------------------------------


def _aiohttp(coroutine: Callable[[aiohttp.ClientSession], Any], timeout: float) -> Any:
    async def run() -> Any:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            return await coroutine(session)

    return asyncio.run(run())


def get(client: str, url: str, timeout: float) -> bytes:
    """
    A GET as the client's users write it (its default retries included),
    with a read timeout; the body.
    """
    if client == "requests":
        return requests.get(url, timeout=timeout).content
    if client == "urllib3":
        with urllib3.PoolManager(timeout=timeout) as pool:
            return pool.request("GET", url).data
    if client == "httpx":
        return httpx.get(url, timeout=timeout).content

    async def fetch(session: aiohttp.ClientSession) -> bytes:
        async with session.get(url) as answer:
            return await answer.read()

    return _aiohttp(fetch, timeout)  # type: ignore[no-any-return]


class Received(NamedTuple):
    """A streamed answer as a client saw it."""

    status: int
    reason: str
    headers: dict[str, str]
    pieces: list[bytes]

    @property
    def body(self) -> bytes:
        return b"".join(self.pieces)


def stream(
    client: str,
    url: str,
    *,
    timeout: float = PATIENCE,
    on_piece: Callable[[bytes], None] = lambda piece: None,
) -> Received:
    """
    A GET whose body is read as it arrives, the way each client streams;
    ``on_piece`` is called with each piece as soon as it is read.

    :return: the status, reason, headers (names in lower case) and pieces.
    """
    pieces: list[bytes] = []

    def got(piece: bytes) -> None:
        if piece:
            pieces.append(piece)
            on_piece(piece)

    if client == "requests":
        with requests.get(url, stream=True, timeout=timeout) as answer:
            for piece in answer.iter_content(None):
                got(piece)
            return Received(answer.status_code, answer.reason, _lower(answer.headers), pieces)
    if client == "urllib3":
        with urllib3.PoolManager(timeout=timeout) as pool:
            answer = pool.request("GET", url, preload_content=False)
            for piece in answer.stream(None):
                got(piece)
            answer.release_conn()
            return Received(answer.status, answer.reason or "", _lower(answer.headers), pieces)
    if client == "httpx":
        with httpx.stream("GET", url, timeout=timeout) as answer:
            for piece in answer.iter_raw():
                got(piece)
            return Received(
                answer.status_code, answer.reason_phrase, _lower(answer.headers), pieces
            )

    async def fetch(session: aiohttp.ClientSession) -> Received:
        async with session.get(url) as answer:
            async for piece in answer.content.iter_any():
                got(piece)
            return Received(answer.status, answer.reason or "", _lower(answer.headers), pieces)

    return _aiohttp(fetch, timeout)  # type: ignore[no-any-return]


def _lower(headers: Any) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in headers.items()}


# -- the table in the docs -------------------------------------------------------------


def cell(outcome: Outcome) -> str:
    """One cell of the docs' table."""
    text = f"``{outcome.raised}``"
    if outcome.underlying:
        text += f" from ``{outcome.underlying}``"
    if outcome.sent > 1:
        text += f" ({outcome.sent} requests sent)"
    return text


def table() -> str:
    """The ``list-table`` rows of docs/streams-and-faults.rst, as RST lines."""
    lines = ["   * - fault", *(f"     - {client}" for client in ALL_CLIENTS)]
    for fault, outcomes in FAULT_OUTCOMES.items():
        lines.append(f"   * - ``{fault}``")
        lines.extend(f"     - {cell(outcomes[client])}" for client in ALL_CLIENTS)
    return "\n".join(lines) + "\n"
