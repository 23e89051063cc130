"""
Where a request is captured: a twisted.web request becomes a flat
:data:`~txtestserver._model.record.Record`, with no parsing.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from twisted.web.server import Request

from .._model.record import Record
from .proxy import target
from .request import actions

__all__ = ["capture"]

#: Values of a small set (methods, protocol versions, client addresses), one
#: object each, so that the journal keeps one copy, not one per request.
_shared: dict[object, object] = {}
#: At most this many shared values (a client can send any method).
SHARED_LIMIT = 256
#: The target and header lines of the latest request: a client that repeats
#: them (a kept-alive client, a load test) is recorded with the same objects.
_latest: list[bytes] = [b"", b""]


def _one_copy(value: Any) -> Any:
    """``value``, or the equal value kept already (one object for each)."""
    kept = _shared.get(value)
    if kept is not None:
        return kept
    if len(_shared) < SHARED_LIMIT:
        _shared[value] = value
    return value


def capture(request: Request, body_limit: int, now: float) -> Record:
    """
    Record what a client sent.

    :param request: the twisted.web request, with its body fully received.
    :param body_limit: keep at most this many bytes of the body.
    :param now: the time it arrived (``time.time()`` seconds).
    """
    lines = [
        b"%s: %s\r\n" % (name, value)
        for name, values in request.requestHeaders.getAllRawHeaders()
        for value in values
    ]
    content = request.content
    assert content is not None, "twisted.web gives every request a content buffer"
    if isinstance(content, BytesIO):  # always, from ServerRequest
        # Share the buffer instead of copying it (a whole upload may be there).
        body = content.getvalue()[:body_limit]
    else:  # a plain twisted.web Request (unit tests) may spool to a file
        content.seek(0)
        body = content.read(body_limit)
        content.seek(0)
    address = request.getClientAddress()
    host = getattr(address, "host", None) or str(address)
    # What is known of the connection (an HTTP/2 stream has it from its own).
    channel = request.channel
    connection = actions(request).connection()
    scheme, authority, uri, proxy = target(request, connection)
    # Equal values share one object (an entry holds references only): the
    # same few methods, versions and addresses come again and again, and a
    # request often repeats the target and headers of the one before.
    headers = b"".join(lines)
    latest_uri, latest_headers = _latest
    if uri == latest_uri:
        uri = latest_uri
    if headers == latest_headers:
        headers = latest_headers
    _latest[:] = uri, headers
    return (
        _one_copy(request.method),
        uri,
        headers,
        body,
        _one_copy(host),
        _one_copy(request.clientproto),
        now,
        getattr(channel, "number", 0),
        _one_copy((getattr(channel, "client_cert", None), scheme, authority, proxy)),
    )
