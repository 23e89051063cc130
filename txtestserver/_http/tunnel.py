"""
A proxy tunnel, once the proxy has said yes (a ``CONNECT``'s ``200``, a
SOCKS5 reply): :class:`Tunnel`, the protocol the connection becomes.

The first byte the client sends through it says what it speaks: ``0x16``
opens a TLS handshake, which is served with a certificate for the name
the client asked for (its SNI, else the tunnel's host) from the site's
:class:`~txtestserver._http.issuer.Issuer`; anything else is plain HTTP.
Either way the requests inside go to a new connection of the same site
(:class:`~txtestserver._http.site.Channel`), which records them with the
tunnel's ``request['proxy']`` and the scheme the client meant, and answers
them from the same routes.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from .._model.record import split_authority
from .proxy import proxy_json

__all__ = ["Tunnel"]

#: The first byte of a TLS handshake record.
_HANDSHAKE = b"\x16"


class Tunnel(Protocol):
    """
    The connection after the proxy's yes.

    :param site: the server's site: it makes the connection inside, and its
        ``issuer`` the certificates.
    :param kind: ``'connect'`` or ``'socks5'`` (``request['proxy']['kind']``).
    :param authority: the target, ``host:port``.
    :param auth: the proxy credentials the client presented, or None.
    :param certificate: the bad certificate ``server.tunnel()`` set for it,
        or None.
    :param peer: the client's address.
    """

    #: The protocol inside (TLS over the connection, or the connection itself).
    inner: Any = None
    #: The site's connection inside, which answers the requests.
    channel: Any = None
    #: The name the client sent in its ClientHello (SNI), or None.
    sni: str | None = None

    def __init__(
        self,
        site: Any,
        kind: str,
        authority: str,
        auth: tuple[str, str] | None,
        certificate: str | None,
        peer: Any,
    ) -> None:
        self.site = site
        self.kind = kind
        self.authority = authority
        self.auth = auth
        self.certificate = certificate
        self.peer = peer
        self.host = split_authority(authority, "")[0] or ""

    def dataReceived(self, data: bytes) -> None:
        inner = self.inner
        if inner is None:
            inner = self._open(data[:1] == _HANDSHAKE)
        inner.dataReceived(data)

    def _open(self, tls: bool) -> Any:
        """The connection inside, made on the first bytes."""
        channel = self.channel = self.site.buildProtocol(self.peer)
        channel.scheme = "https" if tls else "http"
        channel.tunnel_tls = tls
        channel.proxy = self._journal()
        inner = channel
        if tls:
            from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol

            creator: Any = _TunnelTLS(self)
            from .._twisted_compat import without_alpn_of_its_own

            # The site offers no ALPN of its own: the tunnel's certificate
            # context chooses (Twisted before 26.4 would set the site's offer
            # on the shared context for each tunnel, pyOpenSSL 25.1+ warns).
            factory = TLSMemoryBIOFactory(
                creator, False, without_alpn_of_its_own(self.site), clock=self.site.reactor
            )
            inner = TLSMemoryBIOProtocol(factory, channel)
            inner.tunnel = self  # type: ignore[attr-defined]  # (for the SNI callback)
        self.inner = inner
        inner.makeConnection(self.transport)
        return inner

    def _journal(self) -> str:
        """``request['proxy']`` of the requests inside, as the journal keeps it."""
        return proxy_json(self.kind, self.authority, "", self.sni, self.auth)

    def select(self, connection: Any) -> None:
        """
        The SNI callback: the client named the host it wants, so serve that
        host's certificate (issued now, or kept from before).
        """
        name = connection.get_servername()
        if not name:
            return
        self.sni = name.decode("ascii", "replace").lower()
        self.channel.proxy = self._journal()
        connection.set_context(self.site.issuer.context(self.sni, self.certificate, _select))

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self.inner is not None:
            self.inner.connectionLost(reason)


def _select(connection: Any) -> None:
    """The SNI callback of every tunnel context: the tunnel decides."""
    protocol = connection.get_app_data()
    tunnel = getattr(protocol, "tunnel", None)
    if tunnel is not None:
        tunnel.select(connection)


@implementer(IOpenSSLServerConnectionCreator)
class _TunnelTLS:
    """
    The TLS of one tunnel: the certificate of the tunnel's host until the
    client's SNI names another (an IP address: one with that IP address).
    """

    def __init__(self, tunnel: Tunnel) -> None:
        self._tunnel = tunnel

    def serverConnectionForTLS(self, protocol: Any) -> Any:
        from OpenSSL import SSL

        tunnel = self._tunnel
        context = tunnel.site.issuer.context(tunnel.host, tunnel.certificate, _select)
        connection = SSL.Connection(context, None)
        connection.set_app_data(protocol)
        return connection
