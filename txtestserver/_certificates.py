"""
The certificate authority of the test process, and what clients need to
trust it.

One authority (a ``trustme.CA``) is made per process, the first time a server
with ``tls=True`` is made. It issues each server's certificate at start
(:meth:`Authority.issue`) and one client certificate for mutual TLS. Its
own key stays in this process's memory, but for a proxy, which issues a
certificate for each host its clients ask for: a subprocess proxy reads it
from its private state directory (mode 0600). The files it writes (in a
private temporary directory) hold its certificate and the client
certificate with that certificate's key. The directory is removed at exit,
and also when this process dies without exit functions (SIGTERM, SIGKILL):
a small shell process (:class:`_Cleaner`) waits for the end of a pipe from
this process and then removes it, as the subprocess engine's server
process removes its state directory when its stdin ends.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import weakref
from typing import Any

from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from ._errors import TestServerError
from ._http.tls import Credentials

__all__ = ["Authority", "authority"]

#: The names every server certificate is valid for.
SERVER_NAMES = ("127.0.0.1", "::1", "localhost")
#: The client certificate's subject (``request['client_cert']``).
CLIENT_SUBJECT = {"O": "txtestserver", "OU": "tests", "CN": "txtestserver client"}
#: The client certificate's identity (subject alternative name).
CLIENT_IDENTITY = "client@txtestserver.test"

_lock = threading.Lock()
_authority: Authority | None = None


def authority() -> Authority:
    """
    The authority of this process, made on first use.

    :raise TestServerError: trustme or pyOpenSSL is not installed.
    """
    global _authority
    with _lock:
        if _authority is None:
            _authority = Authority()
        return _authority


class Authority:
    """
    A certificate authority for tests: it issues server and client
    certificates, and makes client-side TLS settings that trust it.

    :raise TestServerError: trustme or pyOpenSSL is not installed.
    """

    def __init__(self) -> None:
        try:
            import OpenSSL  # noqa: F401  (the server side needs it)
            import trustme
        except ImportError as e:
            raise TestServerError(
                f"tls=True needs {e.name}: pip install 'txtestserver[tls]'"
            ) from e
        self._ca: Any = trustme.CA(organization_name="txtestserver test CA")
        self._client: Any = None
        self._client_path: str | None = None
        self._proxy: Credentials | None = None
        self._lock = threading.Lock()
        self._directory = tempfile.mkdtemp(prefix="txtestserver-ca-")  # mode 0700
        atexit.register(_remove, self._directory, os.getpid())
        self._cleaner = _Cleaner(self._directory)
        #: A PEM file holding the authority's certificate.
        self.ca_path = self._write("ca.pem", self._ca.cert_pem.bytes())

    def _write(self, name: str, data: bytes) -> str:
        path = os.path.join(self._directory, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return path

    def issue(self, address: str, proxy: bool = False) -> Credentials:
        """
        A new server certificate, valid for 127.0.0.1, ::1, localhost and
        ``address`` (when it is a single address of its own).

        :param proxy: the server is a proxy: the credentials carry this
            authority's key too, with which it issues a certificate for each
            host its clients ask for (written, mode 0600, into the private
            state directory of a subprocess server).
        """
        names = list(SERVER_NAMES)
        if address not in names and not _is_wildcard(address):
            names.append(address)
        leaf = self._ca.issue_cert(*names)
        key = self._ca.private_key_pem.bytes() if proxy else None
        return Credentials(
            leaf.private_key_and_cert_chain_pem.bytes(), self._ca.cert_pem.bytes(), key
        )

    def proxy_credentials(self) -> Credentials:
        """
        What a proxy that serves no TLS itself needs (``proxy=True``,
        ``tls=False``): no certificate of its own, the authority's
        certificate and key to issue its tunnels' certificates with.
        """
        if self._proxy is None:  # the same every time: made once
            self._proxy = Credentials(
                b"", self._ca.cert_pem.bytes(), self._ca.private_key_pem.bytes()
            )
        return self._proxy

    @property
    def client_cert_path(self) -> str:
        """A PEM file holding the client certificate and its key (issued on first use)."""
        with self._lock:
            if self._client_path is None:
                self._client = self._ca.issue_cert(
                    CLIENT_IDENTITY,
                    common_name=CLIENT_SUBJECT["CN"],
                    organization_name=CLIENT_SUBJECT["O"],
                    organization_unit_name=CLIENT_SUBJECT["OU"],
                )
                self._client_path = self._write(
                    "client.pem", self._client.private_key_and_cert_chain_pem.bytes()
                )
            return self._client_path

    def ssl_context(self, client_cert: bool) -> ssl.SSLContext:
        """
        An ``ssl.SSLContext`` that trusts this authority (and no other).

        :param client_cert: present the client certificate.
        """
        context = ssl.create_default_context(cafile=self.ca_path)
        if client_cert:
            context.load_cert_chain(self.client_cert_path)
        return context

    def policy(self, client_cert: bool) -> Any:
        """
        A Twisted ``IPolicyForHTTPS`` (for ``Agent`` and treq) that trusts
        this authority (and no other) and checks the server's name.

        :param client_cert: present the client certificate.
        """
        return _Policy(self, client_cert)


@implementer(IPolicyForHTTPS)
class _Policy:
    """Client TLS for ``Agent``: trust one authority, check the host name."""

    def __init__(self, authority: Authority, client_cert: bool) -> None:
        self._authority = authority
        self._client_cert = client_cert

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        from twisted.internet.ssl import Certificate, optionsForClientTLS

        with open(self._authority.ca_path, "rb") as f:
            trusted = Certificate.loadPEM(f.read())
        options = optionsForClientTLS(hostname.decode("ascii"), trustRoot=trusted)
        if not self._client_cert:
            return options
        with open(self._authority.client_cert_path, "rb") as f:
            return _WithClientCert(options, f.read())


@implementer(IOpenSSLClientConnectionCreator)
class _WithClientCert:
    """
    Client TLS options that also present a client certificate, set on each
    connection from ``cryptography`` objects (``optionsForClientTLS``'s own
    ``clientCertificate`` passes pyOpenSSL ``X509`` objects, which pyOpenSSL
    deprecates: an error under ``-W error``).
    """

    def __init__(self, options: Any, pem: bytes) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        self._options = options
        self._certificate = x509.load_pem_x509_certificate(pem)
        self._key = load_pem_private_key(pem, password=None)

    def clientConnectionForTLS(self, protocol: Any) -> Any:
        connection = self._options.clientConnectionForTLS(protocol)
        connection.use_certificate(self._certificate)
        connection.use_privatekey(self._key)
        return connection


def _is_wildcard(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False  # a host name


class _Cleaner:
    """
    Removes ``directory`` once this process is gone, however it ends.

    A ``/bin/sh`` started in a session of its own (the terminal's Ctrl-C
    does not end it first) leaves a background job behind and exits; the
    job, no child of ours (nothing to reap, nothing left running at exit),
    reads a pipe whose only writer is this process and removes the
    directory when that pipe ends: when this process exits or is killed. A
    fork of this process lets go of the pipe at once, so it does not keep
    the directory alive.
    """

    # A background job's stdin is /dev/null: the pipe goes to it as fd 3.
    _SCRIPT = 'exec 3<&0; (read -r _ <&3; rm -rf -- "$1") >/dev/null 2>&1 &'

    def __init__(self, directory: str) -> None:
        self.fd: int | None = None
        read, write = os.pipe()  # neither is inherited by other children
        try:
            subprocess.run(
                ["/bin/sh", "-c", self._SCRIPT, "txtestserver-ca-cleaner", directory],
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                check=True,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError):
            os.close(write)  # no shell: the exit hook alone removes the directory
            return
        finally:
            os.close(read)
        self.fd = write
        _CLEANERS.add(self)


#: The cleaners of this process (one per authority: one per process).
_CLEANERS: weakref.WeakSet[_Cleaner] = weakref.WeakSet()


def _let_go_in_forked_child() -> None:
    """After ``os.fork()``, in the child: the cleaners' pipes become ``/dev/null``."""
    fds = [cleaner.fd for cleaner in list(_CLEANERS) if cleaner.fd is not None]
    if not fds:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.dup2(null, fd)
    finally:
        os.close(null)


os.register_at_fork(after_in_child=_let_go_in_forked_child)


def _remove(directory: str, pid: int) -> None:
    if os.getpid() == pid:  # not in a forked child
        shutil.rmtree(directory, ignore_errors=True)
