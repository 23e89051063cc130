"""
The proxy's answers to a request that asks the proxy itself: a ``CONNECT``
(:class:`TunnelAnswer`: ``200`` and a tunnel, or what ``server.tunnel()``
set instead), and a request without the proxy credentials the server
requires (:class:`ProxyAuthAnswer`: ``407``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ..._model.record import HOST, PROXY, VIA
from ..request import actions
from ..writing import finish, gone, render_error, start

if TYPE_CHECKING:
    from ..exchange import Exchange

__all__ = ["ESTABLISHED", "ProxyAuthAnswer", "TunnelAnswer"]

#: The head of a ``CONNECT``'s yes: no ``Content-Length``, no
#: ``Transfer-Encoding`` (RFC 9110, 9.3.6), the tunnel follows at once.
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"


class TunnelAnswer(NamedTuple):
    """
    A ``CONNECT``: ``200`` then a :class:`~txtestserver._http.tunnel.Tunnel`,
    or what ``server.tunnel()`` set: another status (with a body saying
    so), a reset after the ``200``, a stall (no answer at all), or a tunnel
    whose certificate is bad.
    """

    code: int = 200
    fault: str | None = None
    certificate: str | None = None
    sleep: float = 0.0
    immediate: bool = True
    closes: bool = True

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> TunnelAnswer:
        """The answer of a ``server.tunnel()`` route (``response['tunnel']``)."""
        tunnel = values["tunnel"]
        if tunnel is None:
            return cls(sleep=values["sleep"])
        return cls(
            tunnel["code"],
            tunnel["fault"],
            tunnel["certificate"],
            values["sleep"],
            closes=tunnel["fault"] != "stall",
        )

    def render(self, exchange: Exchange) -> None:
        request: Any = exchange.request
        if gone(request) or self.fault == "stall":
            return
        refused = actions(request).take_over_refused
        if refused is not None:
            render_error(exchange, 505, f"CONNECT over this connection: {refused}")
            return
        authority = exchange.record[VIA][HOST]
        if self.code != 200:
            start(request, self.code, exchange.reply)
            request.responseHeaders.setRawHeaders(b"content-type", [b"text/plain; charset=utf-8"])
            actions(request).close_after()
            finish(request, f"txtestserver: server.tunnel() refuses {authority}\n".encode())
            return
        do = actions(request)
        do.write_raw(ESTABLISHED)
        request.setResponseCode(200)
        request.startedWriting = 1
        if self.fault == "reset":
            do.reset_when_sent()
            return
        from ..tunnel import Tunnel

        auth = json.loads(exchange.record[VIA][PROXY] or "{}").get("auth")
        site = request.channel.site
        do.take_over(
            Tunnel(
                site,
                "connect",
                authority,
                None if auth is None else tuple(auth),
                self.certificate,
                request.getClientAddress(),
            )
        )


class ProxyAuthAnswer(NamedTuple):
    """
    ``407 Proxy Authentication Required`` with ``Proxy-Authenticate: Basic``:
    the client did not present the credentials of ``proxy_auth``. The
    attempt is recorded (a client's proxy authentication is what a test
    checks), and it is no server-side error.
    """

    message: str
    sleep: float = 0.0
    immediate: bool = True
    closes: bool = False
    fault: str | None = None

    def render(self, exchange: Exchange) -> None:
        request: Any = exchange.request
        if gone(request):
            return
        start(request, 407, exchange.reply)
        headers = request.responseHeaders
        headers.setRawHeaders(b"proxy-authenticate", [b'Basic realm="txtestserver"'])
        headers.setRawHeaders(b"content-type", [b"text/plain; charset=utf-8"])
        finish(request, f"txtestserver: {self.message}\n".encode())
