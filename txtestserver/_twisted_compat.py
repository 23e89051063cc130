"""
Workarounds for older Twisted releases, all in this one module.

Each names the release that no longer needs it: when the floor in
pyproject.toml passes that release, delete the workaround (``tox -e mindeps``
runs the suite on the floor).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, TypeVar

import twisted
from twisted.internet.protocol import Factory
from twisted.web.http import parse_qs
from twisted.web.server import Request

T = TypeVar("T")

__all__ = [
    "SITE_OPTIONS",
    "TWISTED_VERSION",
    "close_failed_listener",
    "receive_request",
    "strict_header_values",
    "without_alpn_of_its_own",
]

#: (major, minor) of the running Twisted.
TWISTED_VERSION: tuple[int, int] = tuple(  # type: ignore[assignment]
    int(part) for part in twisted.__version__.split(".")[:2]
)

# Twisted before 25.5 parses every form POST body itself (into
# ``request.args``) before the resource sees it, and answers 400 to a
# multipart body it cannot parse, so such a request would be neither recorded
# nor answered as the test set. 25.5 added ``Site(parsePOSTFormSubmission=)``
# to turn that off; before it, :func:`receive_request` does Request's work
# without the form parsing.
_SITE_CAN_SKIP_FORMS = TWISTED_VERSION >= (25, 5)

#: Keyword arguments for ``twisted.web.server.Site``.
SITE_OPTIONS: dict[str, Any] = {"parsePOSTFormSubmission": False} if _SITE_CAN_SKIP_FORMS else {}


def _received_without_forms(request: Any, command: bytes, path: bytes, version: bytes) -> None:
    """
    ``Request.requestReceived`` of Twisted 25.5 with form parsing off: the
    method, URI, path and query arguments are set, then the request is
    processed.
    """
    request.content.seek(0, 0)
    request.method, request.uri = command, path
    request.clientproto = version
    request.path, question, query = path.partition(b"?")
    request.args = parse_qs(query, 1) if question else {}
    request.process()


#: ``Request.requestReceived`` with no form parsing, called as
#: ``receive_request(request, command, path, version)``.
receive_request: Callable[[Any, bytes, bytes, bytes], None] = (
    Request.requestReceived if _SITE_CAN_SKIP_FORMS else _received_without_forms
)


def strict_header_values(channel_class: type[T]) -> type[T]:
    """
    Class decorator for the ``HTTPChannel`` subclass: a header value holding
    NUL, CR or LF gets ``400 Bad Request``, as in Twisted 26.10 (RFC 9110
    section 5.5). Twisted before 26.10 accepts a bare CR or a NUL in a value.
    """
    if TWISTED_VERSION >= (26, 10):
        return channel_class
    header_received = channel_class.headerReceived  # type: ignore[attr-defined]

    def headerReceived(self: Any, line: bytes) -> bool:
        value = line.partition(b":")[2].strip(b" \t")
        if len(value.translate(None, b"\x00\r\n")) != len(value):
            self._respondToBadRequestAndDisconnect()
            return False
        return bool(header_received(self, line))

    channel_class.headerReceived = headerReceived  # type: ignore[attr-defined]
    return channel_class


def close_failed_listener(error: BaseException) -> None:
    """
    Close the socket a failed ``listenTCP`` left open. Twisted before 26.10
    does not close it when ``bind`` fails (the port is taken, say): it stays
    referenced by the traceback of ``error`` until garbage collection, which
    then warns (a ``ResourceWarning``, an error under ``-W error``).
    """
    if TWISTED_VERSION >= (26, 10):
        return
    traceback = error.__traceback__
    while traceback is not None:
        for value in traceback.tb_frame.f_locals.values():
            if isinstance(value, socket.socket):
                value.close()
        traceback = traceback.tb_next


def without_alpn_of_its_own(site: Any) -> Any:
    """
    The factory to put under TLS for ``site``. Twisted before 26.4 lets a
    wrapped factory that offers protocols (``HTTPFactory`` does: ``h2`` and
    ``http/1.1``) set them on the shared OpenSSL context for each new
    connection: that overrides the server's own ALPN choice
    (:func:`txtestserver._http.tls.server_tls`), and mutating a context in
    use is deprecated by pyOpenSSL 25.1 (an error under ``-W error``). A
    plain factory in front of the site offers nothing.
    """
    if TWISTED_VERSION >= (26, 4):
        return site
    return _PlainFactory(site)


class _PlainFactory(Factory):
    """Builds the site's protocols, and is nothing more (no ALPN offers)."""

    noisy = False

    def __init__(self, site: Any) -> None:
        self._site = site

    def buildProtocol(self, addr: Any) -> Any:
        return self._site.buildProtocol(addr)

    def doStart(self) -> None:
        self._site.doStart()

    def doStop(self) -> None:
        self._site.doStop()
