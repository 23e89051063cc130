"""
``response['forward']``: the answer comes from an upstream server
(``server.forward(upstream)``). The request goes to the upstream with a
Twisted ``Agent`` on the reactor that serves (the test process's in the
thread engine, the server process's in the subprocess engine); the
upstream's status, headers and body come back to the client as they arrive,
piece by piece, and the journal keeps the whole body and the pace of its
pieces (``FORWARDED``), so that a HAR of it replays the stream as it came.

Where a request goes is :func:`target`: the upstream's URL with the
request's target after it, or, for ``response['forward'] = True`` (a
proxy's ``server.forward()`` with no upstream), the scheme and host the
client meant (absolute form, a ``CONNECT`` tunnel, SOCKS5) with its target:
each request goes on to the real host, over a new TLS connection when the
client meant ``https``. ``response['forward_verify']`` says how that TLS
connection checks the upstream's certificate (:mod:`.upstream_tls`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from ..._model.record import HOST, PROXY, SCHEME, URI, VIA
from ..request import actions
from ..writing import gone, render_error

if TYPE_CHECKING:
    from ..exchange import Exchange

__all__ = ["ForwardAnswer", "target"]

#: Headers that belong to one connection, not to the message (RFC 9110,
#: 7.6.1), plus those the Agent writes itself: never forwarded either way.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
#: Request headers not forwarded: the upstream answers in identity, so the
#: body recorded is the body (a HAR holds bodies decoded).
NOT_ASKED = frozenset({b"accept-encoding"})


def target(upstream: str | bool, exchange: Exchange) -> tuple[str, bytes]:
    """
    Where a request is forwarded: ``(origin, url)``, the upstream as the
    journal names it (``FORWARDED``) and the URL the request goes to.

    :param upstream: the checked ``response['forward']``: an upstream's URL
        (no trailing slash), whose path goes before the request's target; or
        True, the scheme and host the client meant (a request through the
        proxy), with the request's target.
    :param exchange: the request's exchange.
    :raise ValueError: True, and the request did not come through the proxy
        (the message says so).
    """
    record = exchange.record
    uri: bytes = record[URI]  # origin form: capture() took it out of an absolute form
    if upstream is True:
        via = record[VIA]
        if via[PROXY] is None or not via[SCHEME] or not via[HOST]:
            raise ValueError(
                "forward() with no upstream sends each request on to the host the client "
                "meant, and this request did not come through the proxy (no absolute-form "
                "target, CONNECT tunnel or SOCKS5): send it through server.proxy_url, or "
                "give forward() an upstream"
            )
        origin = f"{via[SCHEME]}://{via[HOST]}"
    else:
        origin = str(upstream)
    return origin, origin.encode("latin-1") + uri


class ForwardAnswer(NamedTuple):
    """
    The answer of an upstream.

    :ivar upstream: where requests go (``response['forward']``): a URL, or
        True for the host each request was meant for.
    :ivar verify: how the upstream's TLS certificate is checked
        (``response['forward_verify']``).
    """

    upstream: str | bool
    verify: bool | str = True
    sleep: float = 0.0
    immediate: bool = False
    closes: bool = False
    fault: str | None = None

    @classmethod
    def from_values(cls, values: Any) -> ForwardAnswer:
        """``response['forward']``, after the request's ``sleep``."""
        return cls(values["forward"], values["forward_verify"], values["sleep"])

    def render(self, exchange: Exchange) -> Deferred[None]:
        try:
            origin, url = target(self.upstream, exchange)
        except ValueError as e:
            render_error(exchange, 502, str(e))
            return succeed(None)
        return _Forwarding(exchange, origin, url, self.verify).run()


class _Forwarding:
    """One request forwarded: the upstream's answer relayed as it comes."""

    def __init__(self, exchange: Exchange, upstream: str, url: bytes, verify: bool | str) -> None:
        self._exchange = exchange
        self._upstream = upstream
        self._url = url
        self._verify = verify
        self._request: Any = exchange.request
        self._reactor: Any = exchange.reply.reactor
        self._pending: Deferred[Any] | None = None
        self._body: _Relay | None = None
        self.done: Deferred[None] = Deferred(self._cancel)

    def run(self) -> Deferred[None]:
        request = self._request
        headers = Headers()
        for name, values in request.requestHeaders.getAllRawHeaders():
            lower = name.lower()
            if lower not in HOP_BY_HOP and lower not in NOT_ASKED:
                headers.setRawHeaders(name, values)
        body = request.content.getvalue() if request.content is not None else b""
        producer: Any = _Body(body) if body else None
        try:
            agent = self._exchange.upstream_agent(self._verify)
        except (ValueError, OSError) as e:
            render_error(self._exchange, 502, f"forwarding to {self._upstream} failed: {e}")
            self._stopped()
            return self.done
        self._pending = agent.request(request.method, self._url, headers, producer)
        self._pending.addCallbacks(self._answered, self._failed)
        return self.done

    def _answered(self, response: Any) -> None:
        self._pending = None
        request = self._request
        if gone(request):
            response.deliverBody(_Discard())
            self._stopped()
            return
        request.setResponseCode(response.code, response.phrase)
        out = request.responseHeaders
        for name in list(out.getAllRawHeaders()):
            out.removeHeader(name[0])
        head = request.method == b"HEAD"  # no body: the upstream's length stands as it is
        for name, values in response.headers.getAllRawHeaders():
            lower = name.lower()
            if lower not in HOP_BY_HOP or (head and lower == b"content-length"):
                out.setRawHeaders(name, values)
        length = response.length
        if isinstance(length, int) and not head:
            request.setHeader(b"content-length", b"%d" % length)
        if hasattr(request, "kept_body"):
            request.kept_body = 1 << 62  # the whole body: the recording needs it
        self._body = _Relay(self, self._reactor.seconds())
        request.write(b"")  # the head at once, as the upstream sent it
        response.deliverBody(self._body)

    def _failed(self, failure: Failure) -> None:
        self._pending = None
        if failure.check(CancelledError):
            self._stopped()
            return
        render_error(
            self._exchange,
            502,
            f"forwarding to {self._upstream} failed: {failure.getErrorMessage()}",
        )
        self._stopped()

    def wrote(self, pieces: list[list[float]]) -> None:
        """The upstream's body has ended: record its pieces, end the answer."""
        self._exchange.forwarded = json.dumps({"upstream": self._upstream, "pieces": pieces})
        if not gone(self._request):
            self._request.finish()
        self._stopped()

    def broken(self, reason: Failure, pieces: list[list[float]]) -> None:
        """The upstream's body was cut: cut the client's answer too."""
        self._exchange.forwarded = json.dumps({"upstream": self._upstream, "pieces": pieces})
        self._exchange.report(
            f"the upstream {self._upstream} cut its answer: {reason.getErrorMessage()}"
        )
        if not gone(self._request):
            actions(self._request).reset_when_sent()
        self._stopped()

    def _cancel(self, _: Deferred[None]) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()
        if self._body is not None:
            self._body.stop()

    def _stopped(self) -> None:
        if not self.done.called:
            self.done.callback(None)


@implementer(IBodyProducer)
class _Body:
    """The request's body, given to the upstream whole (it is in memory already)."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: Any) -> Deferred[None]:
        consumer.write(self._body)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class _Relay(Protocol):
    """The upstream's body, written to the client piece by piece as it comes."""

    def __init__(self, forwarding: _Forwarding, started: float) -> None:
        self._forwarding = forwarding
        self._last = started
        self._pieces: list[list[float]] = []

    def dataReceived(self, data: bytes) -> None:
        now = self._forwarding._reactor.seconds()
        self._pieces.append([round(now - self._last, 6), len(data)])
        self._last = now
        request = self._forwarding._request
        if not gone(request):
            request.write(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        from twisted.web.client import ResponseDone
        from twisted.web.http import PotentialDataLoss

        if reason.check(ResponseDone, PotentialDataLoss):
            self._forwarding.wrote(self._pieces)
        else:
            self._forwarding.broken(reason, self._pieces)

    def stop(self) -> None:
        """The client left: stop reading the upstream's answer."""
        transport = self.transport
        if transport is not None:
            transport.stopProducing()


class _Discard(Protocol):
    """A body nobody reads any more."""

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        pass
