"""
The server side of TLS: the :class:`Credentials` a TLS server is given, and
the OpenSSL set-up that serves them (:func:`server_tls`).

This runs in the server process too, so it needs pyOpenSSL and cryptography
(Twisted's ``tls`` extra) but not the certificate authority: the test
process issues the credentials (:mod:`txtestserver._certificates`) and hands
them over, through the state directory for the subprocess engine
(:meth:`Credentials.save`, :meth:`Credentials.load`).

The OpenSSL context is built here from ``cryptography`` objects, not with
Twisted's ``CertificateOptions``, which passes pyOpenSSL ``X509`` objects
that pyOpenSSL deprecates (a ``DeprecationWarning`` is an error in suites
that run with ``-W error``).
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from zope.interface import implementer

from .._config import ServerConfig
from .._errors import TestServerError

__all__ = ["PLAIN_AT_TLS", "Credentials", "client_subject", "server_tls", "tls_factory"]

#: The files of :meth:`Credentials.save` in a state directory.
IDENTITY_FILE = "tls-identity.pem"
AUTHORITY_FILE = "tls-authority.pem"
AUTHORITY_KEY_FILE = "tls-authority-key.pem"

#: What ALPN offers, in order of preference.
_HTTP2_PROTOCOLS = (b"h2", b"http/1.1")
_HTTP1_PROTOCOLS = (b"http/1.1",)


class Credentials(NamedTuple):
    """
    What one TLS server needs.

    :ivar identity: PEM: the server's private key, then its certificate chain.
    :ivar authority: PEM: the certificate of the authority that issued it,
        which client certificates must chain to.
    :ivar authority_key: PEM: that authority's key, for a proxy, which
        issues a certificate for each host a client asks for; None for a
        server that is no proxy (the key stays in the test process).
    """

    identity: bytes
    authority: bytes
    authority_key: bytes | None = None

    def save(self, directory: str) -> None:
        """
        Write both into ``directory`` as files only this user can read (mode
        0600), for the server process.
        """
        files = [(IDENTITY_FILE, self.identity), (AUTHORITY_FILE, self.authority)]
        if self.authority_key is not None:
            files.append((AUTHORITY_KEY_FILE, self.authority_key))
        for name, data in files:
            fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    @classmethod
    def load(cls, directory: str) -> Credentials:
        """
        Read what :meth:`save` wrote.

        :raise TestServerError: a file is missing or unreadable.
        """
        try:
            with open(os.path.join(directory, IDENTITY_FILE), "rb") as identity:
                with open(os.path.join(directory, AUTHORITY_FILE), "rb") as authority:
                    key = None
                    path = os.path.join(directory, AUTHORITY_KEY_FILE)
                    if os.path.exists(path):
                        with open(path, "rb") as f:
                            key = f.read()
                    return cls(identity.read(), authority.read(), key)
        except OSError as e:
            raise TestServerError(f"cannot read the TLS credentials in {directory}: {e}") from e


def server_tls(config: ServerConfig, credentials: Credentials) -> Any:
    """
    The connection creator a ``TLSMemoryBIOFactory`` needs to serve
    ``credentials`` as ``config`` says: ALPN offers ``h2`` only with
    ``config.http2``, and client certificates are asked for as
    ``config.client_cert`` says.

    :return: an ``IOpenSSLServerConnectionCreator``.
    :raise TestServerError: the credentials cannot be loaded.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from OpenSSL import SSL, crypto

    try:
        key: Any = load_pem_private_key(credentials.identity, password=None)
        chain = x509.load_pem_x509_certificates(credentials.identity)
        authority = x509.load_pem_x509_certificate(credentials.authority)
    except ValueError as e:
        raise TestServerError(f"the TLS credentials are not valid PEM: {e}") from e
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.use_certificate(chain[0])
    for certificate in chain[1:]:
        context.add_extra_chain_cert(certificate)
    context.use_privatekey(key)
    context.check_privatekey()
    offered = _HTTP2_PROTOCOLS if config.http2 else _HTTP1_PROTOCOLS

    def choose(connection: Any, protocols: list[bytes]) -> Any:
        for protocol in offered:
            if protocol in protocols:
                return protocol
        return SSL.NO_OVERLAPPING_PROTOCOLS

    context.set_alpn_select_callback(choose)
    if config.client_cert is not None:
        flags = SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE
        if config.client_cert == "required":
            flags |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
        context.set_verify(flags)
        trusted = crypto.X509.from_cryptography(authority)
        context.get_cert_store().add_cert(trusted)  # type: ignore[union-attr]
        context.add_client_ca(authority)  # named in the request for a certificate
        # OpenSSL refuses to resume a session with a client certificate
        # unless the context has a session id context.
        context.set_session_id(b"txtestserver")
    return _ServerCreator(context)


@implementer(IOpenSSLServerConnectionCreator)
class _ServerCreator:
    """An ``IOpenSSLServerConnectionCreator`` over one OpenSSL context."""

    def __init__(self, context: Any) -> None:
        #: The OpenSSL context (a proxy's issuer serves a tunnel with it).
        self.context = context

    def serverConnectionForTLS(self, protocol: Any) -> Any:
        from OpenSSL import SSL

        connection = SSL.Connection(self.context, None)
        connection.set_app_data(protocol)
        return connection


def client_subject(transport: Any) -> str | None:
    """
    The subject of the certificate the client presented on ``transport``, as
    JSON text of ``[name, value]`` pairs with RFC 4514 attribute names
    (``CN``, ``O``, ``OU``...): flat, for the request journal; None when it
    presented none (or the connection is not TLS).
    """
    get = getattr(transport, "getPeerCertificate", None)
    if get is None:
        return None
    certificate = get()
    if certificate is None:
        return None
    subject = certificate.to_cryptography().subject
    return json.dumps([[item.rfc4514_attribute_name, str(item.value)] for item in subject])


# -- a plain-HTTP client at the HTTPS server ---------------------------------------------------

#: The server-side error when a client speaks plain HTTP to a TLS server
#: (the mirror of :data:`txtestserver._http.site.WRONG_PROTOCOL`).
PLAIN_AT_TLS = "a plain-HTTP client connected to the HTTPS server: use https:// and server.ca_path"


def tls_factory(context: Any, factory: Any, clock: Any, report: Any) -> Any:
    """
    TLS in front of ``factory`` (a ``TLSMemoryBIOFactory``), which notices a
    client that speaks plain HTTP instead: it gets a plain ``400`` saying to
    use ``https://`` and a close, at once, and ``report(message, peer)``
    records :data:`PLAIN_AT_TLS` (without it, the client would get a TLS
    alert it cannot read, and nothing would be recorded).

    :param context: the server's OpenSSL context creator (:func:`server_tls`).
    :param clock: flushes TLS writes: the serving reactor.
    """
    from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol

    class SniffingTLS(TLSMemoryBIOProtocol):
        _sniffed = False

        def dataReceived(self, data: bytes) -> None:
            if not self._sniffed:
                self._sniffed = True
                # A TLS connection opens with a handshake record (0x16); an
                # HTTP request, with its method's first letter.
                if data[:1].isalpha():
                    transport: Any = self.transport
                    body = f"txtestserver: {PLAIN_AT_TLS}\n".encode()
                    transport.write(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8"
                        b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                    transport.loseConnection()
                    report(PLAIN_AT_TLS, transport.getPeer())
                    return
            super().dataReceived(data)  # type: ignore[no-untyped-call]

    tls = TLSMemoryBIOFactory(context, False, factory, clock=clock)
    tls.protocol = SniffingTLS
    return tls
