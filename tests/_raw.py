"""
Raw-socket helpers for the reliability tests (malformed input, client faults,
load): send exact bytes, read whatever comes back, and check that a server
still serves and records correctly afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import socket
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

from txtestserver import TestServer
from txtestserver._http.h2 import RAPID_RESET
from txtestserver._http.site import WRONG_PROTOCOL

_ids = itertools.count()


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    """A connected client socket to the server on ``port`` (127.0.0.1)."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_all(sock: socket.socket) -> bytes:
    """Read until the server closes (a reset counts as a close)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def exchange(
    port: int,
    data: bytes = b"",
    *,
    pieces: list[bytes] | None = None,
    half_close: bool = True,
    timeout: float = 10.0,
) -> bytes:
    """
    Send ``data`` (or each of ``pieces`` in its own send), half-close, and
    return everything the server sent before closing.

    :param half_close: ``shutdown(SHUT_WR)`` after sending, so that a server
        waiting for more (an incomplete request) sees the end of the data.
    :raise socket.timeout: the server neither answered nor closed in time.
    """
    with connect(port, timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for piece in pieces if pieces is not None else [data]:
                sock.sendall(piece)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the server rejected early and closed: read what it said
        return read_all(sock)


def final_response(answer: bytes) -> bytes:
    """``answer`` without the interim ``100 Continue`` responses before it."""
    while answer.startswith(b"HTTP/1.1 100 "):
        answer = answer.partition(b"\r\n\r\n")[2]
    return answer


def closed_unanswered(answer: bytes) -> bool:
    """The server closed without a final response (interim ``100`` aside)."""
    return final_response(answer) == b""


def status(answer: bytes) -> int | None:
    """The status code of the final response in ``answer`` (None if none)."""
    line = final_response(answer).split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1].isdigit():
        return int(parts[1])
    return None


def statuses(answer: bytes) -> list[int]:
    """
    The status of every response in ``answer`` (a kept-alive connection can
    carry several), interim ``100`` ones included. Only for answers whose
    bodies cannot contain a status line, such as ``b"ok"``.
    """
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", answer)]


def body(answer: bytes) -> bytes:
    """The body of the final response (a single, complete one)."""
    return final_response(answer).partition(b"\r\n\r\n")[2]


def snapshot(server: TestServer) -> dict[str, Any]:
    """
    ``server.request`` as one plain dict; read twice to prove that nothing
    changed in between (the server must be idle).
    """
    first = server.request.copy()
    assert server.request == first
    return first


def check_serving(server: TestServer) -> dict[str, Any]:
    """
    Send a normal request that carries one marker in its path, query,
    header, cookie and body; assert that it is answered with
    ``server.response`` and recorded whole, as the latest request.

    :return: the recorded request.
    """
    marker = f"m{next(_ids)}"
    request = Request(
        server.get_url(f"/ok/{marker}?id={marker}"),
        data=f"field={marker}".encode(),
        headers={"X-Id": marker, "Cookie": f"id={marker}"},
    )
    try:
        with urlopen(request, timeout=10) as response:
            code, content = response.status, response.read()
    except urllib.error.HTTPError as e:
        code, content = e.code, e.read()
    assert code == server.response["code"]
    assert content == server.response["data"]
    recorded = snapshot(server)
    assert recorded["done"] is True
    assert recorded["method"] == "POST"
    assert recorded["path"] == f"/ok/{marker}"
    assert recorded["args"].getall("id") == [marker]
    assert recorded["args"].getall("field") == [marker]
    assert recorded["headers"]["X-Id"] == marker
    assert recorded["cookies"]["id"]["value"] == marker
    assert recorded["data"] == f"field={marker}".encode()
    latest = dict(server.requests[-1])
    latest.pop("done", None)
    assert latest == {k: v for k, v in recorded.items() if k in latest}
    return recorded


_LOGGED_ERROR = re.compile(r"#(error|critical)\]|Traceback|Unhandled")


def wrong_protocol(data: bytes) -> bool:
    """
    ``data`` opens like a TLS or HTTP/2 client: a plain-HTTP server closes
    such a connection and logs an error on purpose (tested on its own in
    tests/test_tls.py), so the malformed-input tests leave it out.
    """
    return data.startswith(tuple(WRONG_PROTOCOL))


def is_wrong_protocol_error(text: str) -> bool:
    """
    ``text`` is the error logged on purpose for a client that misbehaves at
    the connection: a :func:`wrong_protocol` client, or an HTTP/2 client
    closed for a rapid-reset flood.
    """
    return any(message in text for message in (*WRONG_PROTOCOL.values(), RAPID_RESET))


def server_log_errors(server: TestServer) -> list[str]:
    """
    The error lines of a subprocess server's own log (``server.log`` in its
    state directory), except those logged on purpose for a client that spoke
    TLS or HTTP/2 to the plain port; nothing for the thread engine, whose
    errors reach the ``logged_errors`` fixture of this process.
    """
    directory = getattr(server._engine.store, "directory", None)
    if directory is None:
        return []
    log = Path(directory, "server.log")
    if not log.exists():
        return []
    lines = log.read_text(errors="replace").splitlines()
    return [
        line for line in lines if _LOGGED_ERROR.search(line) and not is_wrong_protocol_error(line)
    ]


@contextlib.contextmanager
def busy(server: TestServer, timeout: float = 30.0) -> Iterator[None]:
    """
    While inside: the server accepts no connection (its reactor is busy).

    The thread engine's reactor is held by a callback that blocks until the
    block ends; the subprocess engine's server process is stopped (SIGSTOP)
    and continued after.
    """
    if server.engine == "subprocess":
        server.response_once["callback"] = "tests.callbacks:pid"
        with urlopen(server.get_url(), timeout=10) as response:
            pid = int(response.read())
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)
        return
    entered, release = threading.Event(), threading.Event()

    def hold(request: Any) -> bytes:
        entered.set()
        release.wait(timeout)
        return b"held"

    server.response_once["callback"] = hold
    holder = threading.Thread(target=lambda: urlopen(server.get_url(), timeout=timeout).read())
    holder.start()
    try:
        assert entered.wait(10), "the holding callback did not run"
        yield
    finally:
        release.set()
        holder.join(timeout)
