"""
``response['websocket']``: the answer of a WebSocket route. It checks the
handshake (RFC 6455, 4.2.1), writes the ``101`` that accepts it (or the
test's refusal, ``ws.reject()``), then takes the connection over from
twisted.web (the request's ``take_over`` action) and hands it to a
:class:`~txtestserver._http.websocket.WebSocketConnection`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ..request import actions
from ..writing import finish, gone, render_error, start

if TYPE_CHECKING:
    from ..exchange import Exchange

__all__ = ["WebSocketAnswer", "offered"]


def offered(request: Any, name: bytes) -> list[str]:
    """The comma-separated tokens of every ``name`` header of ``request``."""
    values = request.requestHeaders.getRawHeaders(name) or []
    return [
        token.strip()
        for value in values
        for token in value.decode("latin-1").split(",")
        if token.strip()
    ]


class WebSocketAnswer(NamedTuple):
    """Accept (or refuse) a WebSocket handshake, then speak WebSocket."""

    script: dict[str, Any]
    sleep: float
    immediate: bool = True
    closes: bool = True
    fault: str | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> WebSocketAnswer:
        return cls(values["websocket"], values["sleep"])

    def render(self, exchange: Exchange) -> None:
        request: Any = exchange.request
        if gone(request):
            return
        script = self.script
        if script["rejection"] is not None:
            code, headers, data = script["rejection"]
            start(request, code, exchange.reply, headers)
            finish(request, data)
            return
        problem = _handshake_problem(request)
        if problem is not None:
            render_error(exchange, problem[0], problem[1])
            return
        refused = actions(request).take_over_refused
        if refused is not None:
            render_error(exchange, 505, refused)
            return
        # Here, not above: wsproto is imported by servers with WebSocket routes only.
        from wsproto.utilities import generate_accept_token

        from ..websocket import WebSocketConnection

        chosen = next(
            (p for p in script["subprotocols"] if p in offered(request, b"sec-websocket-protocol")),
            None,
        )
        exchange.websocket = json.dumps(
            {
                "version": "13",
                "subprotocols": offered(request, b"sec-websocket-protocol"),
                "extensions": offered(request, b"sec-websocket-extensions"),
                "subprotocol": chosen,
            }
        )
        key = request.getHeader(b"sec-websocket-key")
        request.setResponseCode(101)
        out = request.responseHeaders
        out.setRawHeaders(b"upgrade", [b"websocket"])
        out.setRawHeaders(b"connection", [b"Upgrade"])
        out.setRawHeaders(b"sec-websocket-accept", [generate_accept_token(key)])
        if chosen is not None:
            out.setRawHeaders(b"sec-websocket-protocol", [chosen.encode()])
        extensions = _negotiate(request, out) if script["compression"] else []
        # twisted.web would send a 1xx chunked: as HEAD, it sends the head alone.
        method, request.method = request.method, b"HEAD"
        request.write(b"")
        request.method = method
        site = request.channel.site
        peer = request.getClientAddress()
        assert exchange.route_id is not None  # a WebSocket route answers
        protocol = WebSocketConnection(
            site.resource.websockets,
            exchange.route_id,
            script,
            getattr(request.channel, "number", 0),
            chosen,
            lambda message: site.connection_error(message, peer),
            site.config.strict,
            extensions,
        )
        actions(request).take_over(protocol)


def _negotiate(request: Any, out: Any) -> list[Any]:
    """
    permessage-deflate (RFC 7692) if the client offers it: its response
    header set on ``out``; the wsproto extensions the connection uses.
    """
    from wsproto.extensions import PerMessageDeflate

    for offer in offered(request, b"sec-websocket-extensions"):
        name, _, parameters = offer.partition(";")
        if name.strip().lower() != "permessage-deflate":
            continue
        extension = PerMessageDeflate()
        accepted = extension.accept(parameters)
        if accepted is None:
            continue
        value = "permessage-deflate" + (f"; {accepted}" if accepted else "")
        out.setRawHeaders(b"sec-websocket-extensions", [value.encode()])
        return [extension]
    return []


def _handshake_problem(request: Any) -> tuple[int, str] | None:
    """Why ``request`` is no WebSocket handshake: ``(code, message)``, or None."""
    upgrade = [t.lower() for t in offered(request, b"upgrade")]
    if request.method != b"GET" or "websocket" not in upgrade:
        return (
            426,
            "this is a WebSocket route: connect with a WebSocket client (a GET with "
            "Upgrade: websocket), not plain HTTP",
        )
    if "upgrade" not in [t.lower() for t in offered(request, b"connection")]:
        return 400, "a WebSocket handshake needs Connection: Upgrade"
    if request.getHeader(b"sec-websocket-version") != b"13":
        return 426, "a WebSocket handshake needs Sec-WebSocket-Version: 13"
    if not request.getHeader(b"sec-websocket-key"):
        return 400, "a WebSocket handshake needs a Sec-WebSocket-Key header"
    return None
