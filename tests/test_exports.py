"""The public names are what ``txtestserver`` exports, and nothing private leaks."""

from __future__ import annotations

import subprocess
import sys

import txtestserver


def test_all_names_resolve() -> None:
    for name in txtestserver.__all__:
        assert getattr(txtestserver, name) is not None, name


def test_public_names() -> None:
    expected = {
        "AsyncTestServer",
        "DeferredTestServer",
        "ServerSideError",
        "TestServer",
        "TestServerError",
        "WaitTimeoutError",
        "ndjson",
        "sse",
    }
    assert expected <= set(txtestserver.__all__)
    assert all(not name.startswith("_") or name == "__version__" for name in txtestserver.__all__)
    assert set(dir(txtestserver)) >= set(txtestserver.__all__)


def test_importing_the_package_imports_no_twisted() -> None:
    code = "import sys, txtestserver; print('twisted' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter; its standard output."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.strip()


def test_the_server_classes_are_at_hand_without_twisted() -> None:
    code = (
        "import sys\nfrom txtestserver import AsyncTestServer, TestServer\n"
        "print(sorted(m for m in ('twisted', 'crochet', 'OpenSSL', 'h2') if m in sys.modules))"
    )
    assert _run(code) == "[]"


#: What a plain-HTTP server does not need (issue 23): TLS, HTTP/2, their packages,
#: UDP and UNIX sockets, twisted.web's error-page templates.
NOT_FOR_PLAIN = (
    "OpenSSL",
    "cryptography",
    "h2",
    "twisted.internet.ssl",
    "twisted.protocols.tls",
    "twisted.internet.udp",
    "twisted.internet.unix",
    "twisted.web.util",
)
#: What each engine's plain server does need of those: the subprocess engine
#: talks to its fork server over UNIX sockets (Twisted's UNIX transport
#: imports its UDP one).
NEEDED_BY = {"thread": (), "subprocess": ("twisted.internet.unix", "twisted.internet.udp")}


def test_a_plain_server_imports_no_tls_nor_http2(engine: str) -> None:
    code = f"""
import sys, urllib.request
from txtestserver import TestServer
with TestServer(engine={engine!r}) as server:
    server.response["data"] = b"plain"
    assert urllib.request.urlopen(server.get_url()).read() == b"plain"
loaded = [m for m in {NOT_FOR_PLAIN!r} if m in sys.modules and m not in {NEEDED_BY[engine]!r}]
if {engine!r} == "thread" and "txtestserver._engines.subprocess" in sys.modules:
    loaded.append("txtestserver._engines.subprocess")
print(loaded)
"""
    assert _run(code) == "[]"


def test_twisted_gets_its_tls_and_http2_on_first_use() -> None:
    """After a plain server, Twisted's own TLS and HTTP/2 names are the real ones
    once used (the stand-ins of txtestserver._twisted_imports step aside)."""
    code = """
import sys
from txtestserver import TestServer
with TestServer():
    pass
from twisted.internet import _newtls, posixbase
from twisted.internet.protocol import Factory
from twisted.internet.ssl import CertificateOptions
from twisted.protocols import tls
from twisted.web import _http2, http
made = _newtls.TLSMemoryBIOFactory(CertificateOptions(), True, Factory())
assert isinstance(made, tls.TLSMemoryBIOFactory), made
assert _newtls.TLSMemoryBIOFactory is tls.TLSMemoryBIOFactory
assert posixbase.tls is tls
assert posixbase.ssl.CertificateOptions is CertificateOptions
assert posixbase.ssl is sys.modules["twisted.internet.ssl"]
assert http.H2_ENABLED
assert isinstance(http.H2Connection(), _http2.H2Connection)
assert http.H2Connection is _http2.H2Connection
print("ok")
"""
    assert _run(code) == "ok"


def test_twisted_gets_udp_unix_and_its_error_pages_on_first_use() -> None:
    """After a plain server, the UDP and UNIX transports and twisted.web's error
    pages work, and Twisted's modules hold the real ones once used."""
    code = """
import os, socket, sys, tempfile
from txtestserver import TestServer
with TestServer():
    pass
from twisted.internet import posixbase, reactor
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.web import server
unused = 'twisted.web.util' not in sys.modules
received = []
class Echo(DatagramProtocol):
    def datagramReceived(self, data, address):
        received.append(data)
        reactor.stop()
port = reactor.listenUDP(0, Echo(), interface="127.0.0.1")
path = os.path.join(tempfile.mkdtemp(), "s")
unix_port = reactor.listenUNIX(path, Factory.forProtocol(Protocol))
reactor.callWhenRunning(
    lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
        b"hi", ("127.0.0.1", port.getHost().port)
    )
)
reactor.run()
assert received == [b"hi"], received
assert posixbase.udp is sys.modules["twisted.internet.udp"]
assert posixbase.unix is sys.modules["twisted.internet.unix"]
from twisted.python.failure import Failure
page = server.util.formatFailure(Failure(ValueError("a boom to show")))
assert b"a boom to show" in page, page
assert server.util is sys.modules["twisted.web.util"]
print("ok" if unused else "imported before first use")
"""
    assert _run(code) == "ok"


def test_tls_after_a_plain_server() -> None:
    """A TLS server (HTTP/2 on offer) started after a plain one in the same process serves."""
    code = """
import urllib.request
from txtestserver import TestServer
with TestServer() as plain:
    plain.response["data"] = b"plain"
    assert urllib.request.urlopen(plain.get_url()).read() == b"plain"
with TestServer(tls=True, http2=True) as secure:
    secure.response["data"] = b"secure"
    context = secure.client_ssl_context()
    assert urllib.request.urlopen(secure.get_url(), context=context).read() == b"secure"
print("ok")
"""
    assert _run(code) == "ok"
