"""
How a forwarded request (:mod:`.answers.forward`) checks an ``https``
upstream's certificate: the Twisted ``IPolicyForHTTPS`` its ``Agent`` is
given, from ``response['forward_verify']``: True, the system's trust store
(Twisted's browser-like policy); the path of a PEM file, the CA
certificates in it (an upstream txtestserver's ``ca_path``); False, no
check at all (the name is still sent, as SNI).

And :class:`Endpoints`, the ``Agent``'s endpoints: Twisted's own
(``Agent(reactor, contextFactory)``) wrap TLS without a clock, so the TLS
layer flushes its writes with a ``callLater`` on the global reactor, which
does not run in the thread engine (the private reactor serves): the
ClientHello would never leave. These give the serving reactor as the clock.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IStreamClientEndpoint
from twisted.web.client import BrowserLikePolicyForHTTPS
from twisted.web.iweb import IAgentEndpointFactory, IPolicyForHTTPS
from zope.interface import implementer

__all__ = ["Endpoints", "policy"]

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def policy(verify: bool | str) -> Any:
    """
    The TLS policy of an upstream connection.

    :param verify: True, False or a CA file's path (checked when set).
    :raise ValueError: the CA file holds no PEM certificate (the message
        names it).
    """
    if verify is True:
        return BrowserLikePolicyForHTTPS()
    if verify is False:
        return _Unverified()
    with open(verify, "rb") as f:
        blocks = _PEM.findall(f.read())
    if not blocks:
        raise ValueError(f"the CA file {verify!r} holds no PEM certificate")
    roots = [ssl.Certificate.loadPEM(block) for block in blocks]
    return BrowserLikePolicyForHTTPS(trustRoot=ssl.trustRootFromCertificates(roots))


@implementer(IPolicyForHTTPS)
class _Unverified:
    """Any certificate is accepted (``forward(verify=False)``)."""

    def __init__(self) -> None:
        self._options = ssl.CertificateOptions(verify=False)

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        return _UnverifiedCreator(self._options, hostname.decode("ascii"))


@implementer(IOpenSSLClientConnectionCreator)
class _UnverifiedCreator:
    """One connection's TLS, unchecked, with the host name as SNI (unless an address)."""

    def __init__(self, options: Any, hostname: str) -> None:
        self._options = options
        self._hostname = hostname

    def clientConnectionForTLS(self, tlsProtocol: Any) -> Any:
        from OpenSSL import SSL
        from twisted.internet.abstract import isIPAddress, isIPv6Address

        connection = SSL.Connection(self._options.getContext(), None)
        connection.set_app_data(tlsProtocol)
        if not (isIPAddress(self._hostname) or isIPv6Address(self._hostname)):
            connection.set_tlsext_host_name(self._hostname.encode("idna"))
        connection.set_connect_state()
        return connection


@implementer(IAgentEndpointFactory)
class Endpoints:
    """
    The endpoint of each upstream an ``Agent`` connects to: TCP, with TLS
    for ``https`` flushed by the serving reactor.

    :param reactor: the serving reactor.
    :param tls: the ``IPolicyForHTTPS`` (:func:`policy`).
    """

    def __init__(self, reactor: Any, tls: Any) -> None:
        self._reactor = reactor
        self._tls = tls

    def endpointForURI(self, uri: Any) -> Any:
        from twisted.internet.endpoints import HostnameEndpoint

        endpoint = HostnameEndpoint(self._reactor, uri.host.decode("ascii"), uri.port)
        if uri.scheme == b"http":
            return endpoint
        creator = self._tls.creatorForNetloc(uri.host, uri.port)
        return _TLSEndpoint(endpoint, creator, self._reactor)


@implementer(IStreamClientEndpoint)
class _TLSEndpoint:
    """
    TLS over ``endpoint``, as ``wrapClientTLS`` makes it, with the serving
    reactor as the TLS layer's clock (``wrapClientTLS`` takes no clock on
    Twisted 24.7).
    """

    def __init__(self, endpoint: Any, creator: Any, reactor: Any) -> None:
        self._endpoint = endpoint
        self._creator = creator
        self._reactor = reactor

    def connect(self, protocolFactory: Any) -> Any:
        from twisted.protocols.tls import TLSMemoryBIOFactory

        tls = TLSMemoryBIOFactory(self._creator, True, protocolFactory, clock=self._reactor)
        connecting = self._endpoint.connect(tls)
        return connecting.addCallback(lambda protocol: protocol.wrappedProtocol)
