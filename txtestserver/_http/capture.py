"""
Where a request is captured: a twisted.web request becomes a flat
:data:`~txtestserver._model.record.Record`, with no parsing.
"""

from __future__ import annotations

from io import BytesIO

from twisted.web.server import Request

from .._model.record import Record

__all__ = ["capture"]


def capture(request: Request, body_limit: int, now: float) -> Record:
    """
    Record what a client sent.

    :param request: the twisted.web request, with its body fully received.
    :param body_limit: keep at most this many bytes of the body.
    :param now: the time it arrived (``time.time()`` seconds).
    """
    lines = []
    for name, values in request.requestHeaders.getAllRawHeaders():
        for value in values:
            lines.append(b"%s: %s\r\n" % (name, value))
    content = request.content
    assert content is not None, "twisted.web gives every request a content buffer"
    if isinstance(content, BytesIO):
        # Share the buffer instead of copying it (a whole upload may be there).
        body = content.getvalue()[:body_limit]
    else:
        content.seek(0)
        body = content.read(body_limit)
    content.seek(0)
    address = request.getClientAddress()
    host = getattr(address, "host", None) or str(address)
    # What is known of the connection (an HTTP/2 stream has it from its own).
    channel = request.channel
    return (
        request.method,
        request.uri,
        b"".join(lines),
        body,
        host,
        request.clientproto,
        now,
        getattr(channel, "number", 0),
        getattr(channel, "client_cert", None),
    )
