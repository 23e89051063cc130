"""
SOCKS5 on the proxy's port (``server.socks_url``): httpx (socksio), urllib3's
``SOCKSProxyManager`` and requests (PySocks), with TLS or plain HTTP inside,
to domain names, IPv4 and IPv6 addresses; RFC 1929 authentication; and a
client speaking SOCKS4 or breaking the protocol, refused at once.
"""

from __future__ import annotations

import gc
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import requests
import urllib3
from urllib3.contrib.socks import SOCKSProxyManager

from tests._raw import connect
from txtestserver import TestServer
from txtestserver._http.site import STOPPED

API = "api.example.com"


def _httpx(server: TestServer, url: str, proxy: str) -> tuple[int, bytes]:
    with httpx.Client(proxy=proxy, verify=server.client_ssl_context(), timeout=10) as client:
        response = client.get(url)
    return response.status_code, response.content


def _urllib3(server: TestServer, url: str, proxy: str) -> tuple[int, bytes]:
    manager = SOCKSProxyManager(proxy, ca_certs=server.ca_path, timeout=10)
    try:
        response = manager.request("GET", url, retries=False)
        return response.status, response.data
    finally:
        manager.clear()


def _requests(server: TestServer, url: str, proxy: str) -> tuple[int, bytes]:
    with requests.Session() as session:
        response = session.get(
            url, proxies={"http": proxy, "https": proxy}, verify=server.ca_path, timeout=10
        )
        return response.status_code, response.content


#: SOCKS clients; each takes the proxy URL (socks5:// or socks5h://).
CLIENTS: dict[str, Callable[[TestServer, str, str], tuple[int, bytes]]] = {
    "httpx": _httpx,
    "urllib3": _urllib3,
    "requests": _requests,
}


@pytest.fixture(params=[None, ("user", "secret")], ids=["no-auth", "user-password"])
def socks_proxy(engine: str, request: pytest.FixtureRequest) -> TestServer:
    with TestServer(engine=engine, proxy=True, proxy_auth=request.param) as server:
        yield server  # type: ignore[misc]


def _url(server: TestServer, remote_dns: bool) -> str:
    url = server.socks_url.replace("socks5://", "socks5h://" if remote_dns else "socks5://")
    if server.config.proxy_auth is not None:
        user, password = server.config.proxy_auth
        url = url.replace("://", f"://{user}:{password}@")
    return url


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_socks_client_gets_the_routes_answer(
    socks_proxy: TestServer, client: str, scheme: str
) -> None:
    socks_proxy.route("/s", host=API).response["data"] = b"socks"
    proxy = _url(socks_proxy, remote_dns=client != "httpx")  # httpx: always the name
    assert CLIENTS[client](socks_proxy, f"{scheme}://{API}/s", proxy) == (200, b"socks")
    request = socks_proxy.request
    assert request["url"] == f"{scheme}://{API}/s"
    assert request["proxy"] == {
        "kind": "socks5",
        "target": f"{API}:{443 if scheme == 'https' else 80}",
        "sni": API if scheme == "https" else None,
        "auth": socks_proxy.config.proxy_auth,
    }
    assert socks_proxy.socks_url == f"socks5://127.0.0.1:{socks_proxy.port}"


@pytest.mark.parametrize(
    ("address", "packed", "target"),
    [
        ("10.1.2.3", b"\x01" + socket.inet_aton("10.1.2.3"), "10.1.2.3:80"),
        ("::1", b"\x04" + socket.inet_pton(socket.AF_INET6, "::1"), "[::1]:80"),
        (API, b"\x03" + bytes([len(API)]) + API.encode(), f"{API}:80"),
    ],
)
def test_each_address_type(engine: str, address: str, packed: bytes, target: str) -> None:
    with TestServer(engine=engine, proxy=True) as server:
        with connect(server.port or 0) as sock:
            sock.sendall(b"\x05\x01\x00")
            assert sock.recv(2) == b"\x05\x00"
            sock.sendall(b"\x05\x01\x00" + packed + struct.pack("!H", 80))
            assert sock.recv(10)[:2] == b"\x05\x00"
            host = f"[{address}]" if ":" in address else address
            sock.sendall(f"GET /a HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            answer = b"".join(iter(lambda: sock.recv(4096), b""))
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert server.request["proxy"]["target"] == target
        assert server.request["host"] == address


def test_wrong_socks_credentials_get_the_rfc1929_failure(engine: str) -> None:
    with TestServer(engine=engine, proxy=True, proxy_auth=("user", "secret")) as server:
        with connect(server.port or 0) as sock:
            sock.sendall(b"\x05\x01\x02")
            assert sock.recv(2) == b"\x05\x02"
            sock.sendall(b"\x01\x04user\x04nope")
            assert sock.recv(2) == b"\x01\x01"
            assert sock.recv(10) == b""  # closed
        with connect(server.port or 0) as sock:  # offers no credentials
            sock.sendall(b"\x05\x01\x00")
            assert sock.recv(2) == b"\x05\xff"
        server.check()  # the client's failure, not the server's


@pytest.mark.parametrize(
    ("greeting", "reply", "error"),
    [
        (b"\x04\x01\x00\x50\x0a\x01\x02\x03\x00", b"\x00\x5b", "SOCKS4 client"),
        (b"\x05\x01\x00\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", b"\x05\x00\x05\x07", "command 2"),
        (b"\x05\x01\x00\x05\x01\x00\x09\x00", b"\x05\x00\x05\x08", "unknown address type 9"),
        (b"\x05\x01\x00\x05\x01\x00\x03\x03a b\x00\x50", b"\x05\x00\x05\x08", "malformed address"),
    ],
    ids=["socks4", "bind-command", "address-type", "malformed-name"],
)
def test_bad_socks_input_is_refused_at_once_and_recorded(
    engine: str, greeting: bytes, reply: bytes, error: str
) -> None:
    with TestServer(engine=engine, proxy=True) as server:
        with connect(server.port or 0) as sock:
            sock.sendall(greeting)
            answer = b"".join(iter(lambda: sock.recv(4096), b""))  # closed, no hang
        assert answer.startswith(reply)
        assert error in server.errors[-1]["message"]
        server.errors.clear()


def test_urllib3_proxy_manager_on_the_same_port(engine: str) -> None:
    """urllib3 without SOCKS: the HTTP proxy on the same port (ProxyManager)."""
    with TestServer(engine=engine, proxy=True) as server:
        server.route("/pm", host=API).response["data"] = b"pm"
        manager = urllib3.ProxyManager(server.proxy_url, ca_certs=server.ca_path)
        try:
            for scheme in ("http", "https"):
                assert manager.request("GET", f"{scheme}://{API}/pm").data == b"pm"
        finally:
            manager.clear()


def _socks_connect(port: int, host: str) -> socket.socket:
    """A raw SOCKS5 connection (no authentication) that has asked for ``host``:443."""
    sock = connect(port)
    sock.sendall(b"\x05\x01\x00")
    assert sock.recv(2) == b"\x05\x00"
    sock.sendall(b"\x05\x01\x00\x03" + bytes([len(host)]) + host.encode() + struct.pack("!H", 443))
    return sock


def test_server_tunnel_applies_to_socks_too(engine: str) -> None:
    with TestServer(engine=engine, proxy=True) as server:
        server.route("/x")
        server.tunnel("refused.example", code=403)
        server.tunnel("reset.example", fault="reset")
        server.tunnel("stalled.example", fault="stall")
        server.tunnel(API, certificate="expired")
        with _socks_connect(server.port or 0, "refused.example") as sock:
            assert sock.recv(10)[:2] == b"\x05\x02"  # not allowed by the ruleset
            assert sock.recv(10) == b""
        with _socks_connect(server.port or 0, "reset.example") as sock:
            received = b""
            with pytest.raises(ConnectionResetError):
                while chunk := sock.recv(1024):
                    received += chunk
            assert received[:2] == b"\x05\x00"
        with _socks_connect(server.port or 0, "stalled.example") as sock:
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(10)
        proxy = server.socks_url.replace("socks5://", "socks5h://")
        with pytest.raises(requests.exceptions.SSLError, match="certificate has expired"):
            _requests(server, f"https://{API}/x", proxy)
        assert _requests(server, "https://other.example/x", proxy)[0] == 200
        assert server.errors == []


# -- the journal: each SOCKS5 attempt is an entry, as a CONNECT is ------------------------


def _socks_attempts(server: TestServer) -> list[dict[str, object]]:
    return [r for r in server.requests if r["http_version"] == "SOCKS/5"]


@pytest.mark.parametrize("client", list(CLIENTS))
def test_a_socks_attempt_is_recorded_before_the_requests_inside(
    socks_proxy: TestServer, client: str
) -> None:
    socks_proxy.route("/s", host=API).response["data"] = b"socks"
    proxy = _url(socks_proxy, remote_dns=client != "httpx")
    assert CLIENTS[client](socks_proxy, f"https://{API}/s", proxy) == (200, b"socks")
    attempt, inside = socks_proxy.requests
    assert attempt["method"] == "CONNECT" and attempt["http_version"] == "SOCKS/5"
    assert attempt["response_code"] == 200
    assert (attempt["host"], attempt["port"], attempt["url"]) == (API, 443, None)
    assert attempt["path"] == f"{API}:443"
    assert attempt["proxy"] == {
        "kind": "socks5",
        "target": f"{API}:443",
        "sni": None,
        "auth": socks_proxy.config.proxy_auth,
    }
    assert inside["proxy"] == {**attempt["proxy"], "sni": API}  # as before
    assert inside["connection"] != attempt["connection"]


#: httpcore leaves the socket of a failed SOCKS5 login unclosed: the
#: client's leak, not the server's.
_HTTPCORE_LEAK = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)


@pytest.mark.parametrize(
    "client", [pytest.param(c, marks=[_HTTPCORE_LEAK] if c == "httpx" else []) for c in CLIENTS]
)
def test_wrong_socks_credentials_are_recorded_for_the_client_to_test(
    engine: str, client: str
) -> None:
    with TestServer(engine=engine, proxy=True, proxy_auth=("user", "secret")) as server:
        proxy = server.socks_url.replace("://", "://user:nope@")
        if client != "httpx":  # httpx sends the name anyway, and knows socks5:// only
            proxy = proxy.replace("socks5:", "socks5h:")
        with pytest.raises(Exception, match=r"(?i)auth|socks|proxy|password"):
            CLIENTS[client](server, f"https://{API}/s", proxy)
        # httpcore's unclosed socket is garbage once the exception is gone:
        # collected here, under this test's filter, not in whichever test
        # the next collection falls in.
        gc.collect()
        # The client may retry: every attempt is recorded, each the same.
        attempt = server.wait_for(lambda r: r["response_code"] == 407, timeout=5)
        assert attempt["method"] == "CONNECT" and attempt["http_version"] == "SOCKS/5"
        assert attempt["proxy"] == {
            "kind": "socks5",
            "target": None,  # RFC 1929 comes before the request: no target yet
            "sni": None,
            "auth": ("user", "nope"),
        }
        assert attempt["host"] is None
        assert all(r["response_code"] == 407 for r in server.requests)
        assert server.errors == []  # the client's failure, not the server's
        server.check()


def test_no_socks_credentials_offered_is_recorded_as_407(engine: str) -> None:
    with TestServer(engine=engine, proxy=True, proxy_auth=("user", "secret")) as server:
        with connect(server.port or 0) as sock:
            sock.sendall(b"\x05\x01\x00")
            assert sock.recv(2) == b"\x05\xff"
        [attempt] = server.requests
        assert attempt["response_code"] == 407
        assert attempt["proxy"] == {"kind": "socks5", "target": None, "sni": None, "auth": None}
        assert server.errors == []


def test_only_credentials_offered_to_a_proxy_without_auth_is_recorded_as_400(
    engine: str,
) -> None:
    with TestServer(engine=engine, proxy=True) as server:
        with connect(server.port or 0) as sock:
            sock.sendall(b"\x05\x01\x02")
            assert sock.recv(2) == b"\x05\xff"
        [attempt] = server.requests
        assert attempt["response_code"] == 400
        assert attempt["proxy"]["target"] is None
        assert server.errors == []


def test_a_socks_attempt_wakes_a_wait(engine: str) -> None:
    """A wait already waiting is woken by a SOCKS attempt, as by a request."""
    with TestServer(engine=engine, proxy=True, proxy_auth=("user", "secret")) as server:
        started = threading.Event()

        def wait() -> dict[str, object]:
            started.set()
            return server.wait_for(lambda r: r["proxy"] and r["proxy"]["auth"], timeout=10)

        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(wait)
            assert started.wait(5)
            with connect(server.port or 0) as sock:
                sock.sendall(b"\x05\x01\x02")
                assert sock.recv(2) == b"\x05\x02"
                sock.sendall(b"\x01\x04user\x04nope")
                assert sock.recv(2) == b"\x01\x01"
            # Woken by the attempt, not found at the wait's own timeout.
            found = waiting.result(timeout=5)
        assert found["proxy"] == {
            "kind": "socks5",
            "target": None,
            "sni": None,
            "auth": ("user", "nope"),
        }


def test_refused_stalled_and_reset_socks_targets_are_recorded(engine: str) -> None:
    with TestServer(engine=engine, proxy=True) as server:
        server.route("/x")
        refusing = server.tunnel("refused.example", code=403)
        server.tunnel("reset.example", fault="reset")
        server.tunnel("stalled.example", fault="stall")
        with _socks_connect(server.port or 0, "refused.example") as sock:
            assert sock.recv(10)[:2] == b"\x05\x02"
        with _socks_connect(server.port or 0, "reset.example") as sock:
            with pytest.raises(ConnectionResetError):
                while sock.recv(1024):
                    pass
        stalled_sock = _socks_connect(server.port or 0, "stalled.example")
        server.wait_requests(2, timeout=5)  # the refused and reset ones
        with stalled_sock:
            server.stop()  # has read the stalled one: the journal stays readable
        refused, reset, stalled = server.requests
        assert (refused["host"], refused["response_code"]) == ("refused.example", 403)
        assert [r["host"] for r in refusing.requests] == ["refused.example"]  # its route's
        assert (reset["host"], reset["response_code"], reset["fault"]) == (
            "reset.example",
            200,
            "reset",
        )
        assert (stalled["host"], stalled["response_code"]) == ("stalled.example", None)
        assert stalled["fault"] == "stall"
        assert stalled["aborted"] == STOPPED  # as for a stalled CONNECT
        assert server.errors == []


@pytest.mark.parametrize(
    ("request_", "method", "target", "code"),
    [
        (b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", "BIND", "127.0.0.1:80", 501),
        (b"\x05\x01\x00\x09\x00", "CONNECT", None, 400),
        (b"\x05\x01\x00\x03\x03a b\x00\x50", "CONNECT", "a b:80", 400),
        (b"\x04\x01\x00\x01\x7f\x00\x00\x01\x00\x50", "CONNECT", "127.0.0.1:80", 400),
    ],
    ids=["bind-command", "address-type", "malformed-name", "request-version"],
)
def test_a_malformed_socks_request_is_recorded_with_its_error(
    engine: str, request_: bytes, method: str, target: str | None, code: int
) -> None:
    with TestServer(engine=engine, proxy=True) as server:
        with connect(server.port or 0) as sock:
            sock.sendall(b"\x05\x01\x00" + request_)
            b"".join(iter(lambda: sock.recv(4096), b""))  # closed, no hang
        [attempt] = server.requests
        assert (attempt["method"], attempt["response_code"]) == (method, code)
        assert attempt["proxy"]["target"] == target
        assert len(server.errors) == 1
        server.errors.clear()


def test_socks_attempts_in_the_har(engine: str) -> None:
    from tests.test_har import validate

    with TestServer(engine=engine, proxy=True, proxy_auth=("user", "secret")) as server:
        server.route("/s", host=API).response["data"] = b"socks"
        with connect(server.port or 0) as sock:
            sock.sendall(b"\x05\x01\x02")
            assert sock.recv(2) == b"\x05\x02"
            sock.sendall(b"\x01\x04user\x04nope")
            assert sock.recv(2) == b"\x01\x01"
        proxy = server.socks_url.replace("://", "://user:secret@")
        assert _httpx(server, f"https://{API}/s", proxy) == (200, b"socks")
        har = server.requests.to_har()
        validate(har)
        failed, opened, inside = har["log"]["entries"]
        assert (failed["request"]["method"], failed["response"]["status"]) == ("CONNECT", 407)
        assert opened["response"]["status"] == 200
        assert opened["request"]["httpVersion"] == "SOCKS/5"
        # A CONNECT's URL is its target, asked of the proxy (not glued to the proxy's own).
        assert opened["request"]["url"] == f"http://{API}:443"
        assert inside["request"]["url"] == f"https://{API}/s"
