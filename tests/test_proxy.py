"""
Proxy mode (``proxy=True``): routes on ``host``, ``scheme`` and ``port``; the
journal's ``host``, ``url`` and ``proxy``; absolute-form requests; ``CONNECT``
tunnels with TLS (a certificate per host, an IP address's too, HTTP/2 by
ALPN) or plain HTTP inside; proxy authentication; strict mode's words.
Real clients over real sockets, against every engine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import aiohttp
import httpx
import pytest
import requests

from tests._raw import connect
from tests.conftest import ENGINES
from txtestserver import AsyncTestServer, ServerSideError, TestServer, TestServerError

API = "api.example.com"


@pytest.fixture(scope="module")
def proxies() -> Iterator[dict[str, TestServer]]:
    """One proxy server per engine, shared by the module's tests."""
    servers: dict[str, TestServer] = {}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def proxy(engine: str, proxies: dict[str, TestServer]) -> TestServer:
    """A started proxy (``proxy=True``) with nothing set and nothing recorded."""
    server = proxies.get(engine)
    if server is None:
        server = proxies[engine] = TestServer(engine=engine, proxy=True)
        server.start()
    else:
        server.reset()
    return server


# -- clients, each with only its proxy setting changed ---------------------------------


def _requests(server: TestServer, url: str) -> tuple[int, bytes]:
    proxies = {"http": server.proxy_url, "https": server.proxy_url}
    response = requests.get(url, proxies=proxies, verify=server.ca_path, timeout=10)
    return response.status_code, response.content


def _httpx(server: TestServer, url: str) -> tuple[int, bytes]:
    with httpx.Client(proxy=server.proxy_url, verify=server.client_ssl_context()) as client:
        response = client.get(url, timeout=10)
    return response.status_code, response.content


def _urllib(server: TestServer, url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": server.proxy_url, "https": server.proxy_url}),
        urllib.request.HTTPSHandler(context=server.client_ssl_context()),
    )
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _aiohttp(server: TestServer, url: str) -> tuple[int, bytes]:
    async def get() -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as session:
            async with session.get(
                url, proxy=server.proxy_url, ssl=server.client_ssl_context()
            ) as response:
                return response.status, await response.read()

    return asyncio.run(get())


CLIENTS: dict[str, Callable[[TestServer, str], tuple[int, bytes]]] = {
    "requests": _requests,
    "httpx": _httpx,
    "urllib": _urllib,
    "aiohttp": _aiohttp,
}


# -- routes on the host, and the journal --------------------------------------------------


def test_a_direct_request_is_routed_by_its_host_header(server: TestServer) -> None:
    server.route("/a").response["data"] = b"any"  # the most recent match wins: first
    server.route("/a", host=API).response["data"] = b"api"
    server.route("/a", host=re.compile(r".*\.example\.org")).response["data"] = b"org"
    url = server.get_url("/a?x=1")
    assert requests.get(url, headers={"Host": "API.example.com:8080"}).content == b"api"
    request = server.request
    assert (request["host"], request["port"], request["scheme"]) == (API, 8080, "http")
    assert request["url"] == "http://api.example.com:8080/a?x=1"
    assert request["proxy"] is None
    assert requests.get(url, headers={"Host": "www.example.org"}).content == b"org"
    assert requests.get(url).content == b"any"  # a route without host: any host
    assert server.request["host"] == "127.0.0.1"


def test_scheme_and_port_conditions(proxy: TestServer) -> None:
    proxy.route("/s", scheme="https").response["data"] = b"tls"
    proxy.route("/s", scheme="http", port=8080).response["data"] = b"8080"
    assert _requests(proxy, f"https://{API}/s") == (200, b"tls")
    assert _requests(proxy, f"http://{API}:8080/s") == (200, b"8080")
    assert _requests(proxy, f"http://{API}/s")[0] == 404


def test_a_host_condition_with_a_port_says_to_use_port() -> None:
    server = TestServer()
    with pytest.raises(TestServerError, match="port=8443"):
        server.route("/", host="api.example.com:8443")
    with pytest.raises(TestServerError, match="host name"):
        server.route("/", host="http://api.example.com")


# -- as a proxy ----------------------------------------------------------------------------


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_client_gets_the_routes_answer_for_any_host(
    proxy: TestServer, client: str, scheme: str
) -> None:
    """Only the client's proxy setting changes: the routes answer as that host."""
    proxy.route("/v1/users").response["code"] = 418  # another host
    proxy.route("/v1/users", host=API).response["json"] = [{"id": 1}]
    assert CLIENTS[client](proxy, f"{scheme}://{API}/v1/users?page=2") == (200, b'[{"id": 1}]')
    request = proxy.request
    assert request["url"] == f"{scheme}://{API}/v1/users?page=2"
    assert (request["host"], request["path"], request["args"]["page"]) == (API, "/v1/users", "2")
    port = 443 if scheme == "https" else 80
    kind = "connect" if scheme == "https" else "absolute"
    assert request["proxy"] == {
        "kind": kind,
        "target": f"{API}:{port}",
        "sni": API if scheme == "https" else None,
        "auth": None,
    }
    if scheme == "https":
        connects = [r for r in proxy.requests if r["method"] == "CONNECT"]
        assert [r["response_code"] for r in connects] == [200]
    assert CLIENTS[client](proxy, f"{scheme}://other.example.com/v1/users")[0] == 418


def test_plain_http_inside_a_connect_tunnel(proxy: TestServer) -> None:
    proxy.route("/p", host=API).response["data"] = b"plain"
    with connect(proxy.port or 0) as sock:
        sock.sendall(b"CONNECT api.example.com:80 HTTP/1.1\r\nHost: api.example.com:80\r\n\r\n")
        assert sock.recv(1024) == b"HTTP/1.1 200 Connection established\r\n\r\n"
        sock.sendall(b"GET /p HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(4096), b""))
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"plain")
    request = proxy.request
    assert (request["url"], request["proxy"]["kind"]) == ("http://api.example.com/p", "connect")
    assert request["proxy"]["target"] == "api.example.com:80"


def test_a_tunnel_to_an_ip_address_without_sni_gets_that_address(proxy: TestServer) -> None:
    """Python sends no SNI for an address; the certificate is for the address."""
    proxy.route("/ip", host="10.1.2.3").response["data"] = b"by address"
    with connect(proxy.port or 0) as sock:
        sock.sendall(b"CONNECT 10.1.2.3:8443 HTTP/1.1\r\nHost: 10.1.2.3:8443\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200 ")
        context = proxy.client_ssl_context()  # checks the name: here, the address
        with context.wrap_socket(sock, server_hostname="10.1.2.3") as tls:
            tls.sendall(b"GET /ip HTTP/1.1\r\nHost: 10.1.2.3:8443\r\nConnection: close\r\n\r\n")
            answer = b"".join(iter(lambda: tls.recv(4096), b""))
    assert answer.endswith(b"by address")
    assert proxy.request["proxy"] == {
        "kind": "connect",
        "target": "10.1.2.3:8443",
        "sni": None,
        "auth": None,
    }
    assert proxy.request["url"] == "https://10.1.2.3:8443/ip"


def test_a_kept_alive_tunnel_serves_many_requests_after_one_connect(engine: str) -> None:
    with TestServer(engine=engine, proxy=True) as proxy:
        proxy.stop()
        proxy.start(keep_alive=True)
        with httpx.Client(proxy=proxy.proxy_url, verify=proxy.client_ssl_context()) as client:
            for _ in range(3):
                assert client.get(f"https://{API}/k").status_code == 200
        methods = [r["method"] for r in proxy.requests]
        assert methods == ["CONNECT", "GET", "GET", "GET"]
        assert len({r["connection"] for r in proxy.requests[1:]}) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_http2_inside_a_tunnel(engine: str) -> None:
    with TestServer(engine=engine, proxy=True, http2=True) as server:
        with httpx.Client(
            proxy=server.proxy_url, verify=server.client_ssl_context(), http2=True
        ) as client:
            response = client.get(f"https://{API}/h2")
        assert (response.status_code, response.http_version) == (200, "HTTP/2")
        request = server.request
        assert (request["http_version"], request["url"]) == ("HTTP/2", f"https://{API}/h2")
        assert request["proxy"]["sni"] == API


def test_the_asyncio_face_is_a_proxy_too(engine: str) -> None:
    async def main() -> None:
        async with AsyncTestServer(engine=engine, proxy=True) as server:
            server.route("/a", host=API).response["data"] = b"async"
            async with httpx.AsyncClient(
                proxy=server.proxy_url, verify=server.client_ssl_context()
            ) as client:
                assert (await client.get(f"https://{API}/a")).content == b"async"
            assert server.request["proxy"]["kind"] == "connect"

    asyncio.run(main())


def test_proxy_url_needs_proxy_mode(server: TestServer) -> None:
    with pytest.raises(TestServerError, match="proxy=True"):
        server.proxy_url  # noqa: B018


# -- proxy authentication ------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_authentication(engine: str, scheme: str) -> None:
    with TestServer(engine=engine, proxy=True, proxy_auth=("user", "secret")) as server:
        url = f"{scheme}://{API}/secret"
        proxies = {scheme: server.proxy_url}
        with pytest.raises(requests.exceptions.ProxyError, match="407"):
            if scheme == "http":
                response = requests.get(url, proxies=proxies, timeout=10)
                assert response.status_code == 407
                assert response.headers["Proxy-Authenticate"] == 'Basic realm="txtestserver"'
                raise requests.exceptions.ProxyError("407")
            requests.get(url, proxies=proxies, verify=server.ca_path, timeout=10)
        refused = server.request
        assert refused["response_code"] == 407
        assert refused["proxy"]["auth"] is None
        wrong = server.proxy_url.replace("http://", "http://user:nope@")
        with pytest.raises(requests.exceptions.ProxyError, match="407"):
            if scheme == "http":
                code = requests.get(url, proxies={scheme: wrong}, timeout=10).status_code
                raise requests.exceptions.ProxyError(str(code))
            requests.get(url, proxies={scheme: wrong}, verify=server.ca_path, timeout=10)
        assert server.request["proxy"]["auth"] == ("user", "nope")
        right = server.proxy_url.replace("http://", "http://user:secret@")
        response = requests.get(url, proxies={scheme: right}, verify=server.ca_path, timeout=10)
        assert response.status_code == 200
        assert server.request["proxy"]["auth"] == ("user", "secret")
        assert server.request["url"] == url
        server.check()  # a 407 is no server-side error


def test_proxy_auth_needs_a_pair_and_proxy_mode() -> None:
    with pytest.raises(TestServerError, match="needs proxy=True"):
        TestServer(proxy_auth=("u", "p"))
    with pytest.raises(TestServerError, match="pair of str"):
        TestServer(proxy=True, proxy_auth="u:p")  # type: ignore[arg-type]


# -- strict mode ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_strict_mode_names_the_host_asked_and_the_hosts_known(engine: str, scheme: str) -> None:
    with TestServer(engine=engine, proxy=True, strict=True) as server:
        server.route("/v1", host=API)
        server.route("/v1", host=re.compile(r".*\.example\.org"))
        code, body = _requests(server, f"{scheme}://other.example.com/v1")
        assert code == 404
        text = body.decode()
        assert "host 'other.example.com' was asked for" in text
        assert "'api.example.com'" in text and r"re'.*\\.example\\.org'" in text
        with pytest.raises(ServerSideError, match=r"other\.example\.com"):
            server.check()


# -- the raw protocol ----------------------------------------------------------------------


def test_a_connect_answer_has_no_length_and_basic_auth_is_decoded(proxy: TestServer) -> None:
    token = base64.b64encode(b"me:p:w").decode()
    with connect(proxy.port or 0) as sock:
        sock.sendall(
            f"CONNECT {API}:443 HTTP/1.1\r\nHost: {API}:443\r\n"
            f"Proxy-Authorization: Basic {token}\r\n\r\n".encode()
        )
        assert sock.recv(1024) == b"HTTP/1.1 200 Connection established\r\n\r\n"
        sock.shutdown(socket.SHUT_RDWR)
    connect_request = proxy.wait_for(lambda r: r["method"] == "CONNECT")
    assert connect_request["proxy"]["auth"] == ("me", "p:w")
    assert connect_request["url"] is None and connect_request["host"] == API


# -- faults: server.tunnel(), and the HTTP faults inside a tunnel ----------------------------


def test_a_tunnel_refused_with_a_status(proxy: TestServer) -> None:
    proxy.route("/x")  # tunnel() adds a route: /x needs its own, as with any route
    route = proxy.tunnel(API, code=403)
    with pytest.raises(requests.exceptions.ProxyError, match="403"):
        _requests(proxy, f"https://{API}/x")
    refused = route.requests[-1]
    assert (refused["method"], refused["response_code"]) == ("CONNECT", 403)
    assert refused["route"] == "tunnel api.example.com"
    assert _requests(proxy, "https://other.example.com/x")[0] == 200  # another host: a tunnel


def test_a_tunnel_reset_after_its_200(proxy: TestServer) -> None:
    proxy.tunnel(API, fault="reset")
    with connect(proxy.port or 0) as sock:
        sock.sendall(f"CONNECT {API}:443 HTTP/1.1\r\nHost: {API}:443\r\n\r\n".encode())
        received = b""
        with pytest.raises(ConnectionResetError):
            while True:
                chunk = sock.recv(1024)
                if not chunk:
                    break  # (a FIN would fail the test: a reset is wanted)
                received += chunk
    assert received == b"HTTP/1.1 200 Connection established\r\n\r\n"
    connect_request = proxy.wait_for(lambda r: r["method"] == "CONNECT")
    assert (connect_request["response_code"], connect_request["fault"]) == (200, "reset")


def test_a_stalled_connect_ends_with_the_clients_timeout(proxy: TestServer) -> None:
    proxy.tunnel(re.compile(r".*\.example\.com"), fault="stall")
    with httpx.Client(proxy=proxy.proxy_url, timeout=0.3) as client:
        with pytest.raises(httpx.TimeoutException):
            client.get(f"https://{API}/x")
    stalled = proxy.requests[-1]
    assert (stalled["method"], stalled["response_code"], stalled["fault"]) == (
        "CONNECT",
        None,
        "stall",
    )


@pytest.mark.parametrize(
    ("certificate", "reason"),
    [
        ("expired", "certificate has expired"),
        ("wrong_name", "Hostname mismatch"),
        ("unknown_authority", "unable to get local issuer certificate"),
    ],
)
def test_a_tunnel_with_a_bad_certificate(proxy: TestServer, certificate: str, reason: str) -> None:
    proxy.route("/x")
    proxy.tunnel(API, certificate=certificate)
    with pytest.raises(requests.exceptions.SSLError, match=reason):
        _requests(proxy, f"https://{API}/x")
    assert _requests(proxy, "https://other.example.com/x")[0] == 200  # other hosts: good ones


def test_tunnel_checks_its_values(proxy: TestServer, server: TestServer) -> None:
    with pytest.raises(TestServerError, match="reset, stall"):
        proxy.tunnel(API, fault="garbage")
    with pytest.raises(TestServerError, match="expired, wrong_name, unknown_authority"):
        proxy.tunnel(API, certificate="self_signed")
    with pytest.raises(TestServerError, match="proxy=True"):
        server.tunnel(API, code=403)


@pytest.mark.parametrize("fault", ["reset", "empty", "garbage", "truncated", "reset_mid_body"])
def test_the_http_faults_work_inside_a_tunnel(proxy: TestServer, fault: str) -> None:
    proxy.route("/f", host=API).response.update(fault=fault, data=b"x" * 100_000)
    with pytest.raises(requests.exceptions.RequestException):
        _requests(proxy, f"https://{API}/f")
    faulty = proxy.wait_for(lambda r: r["path"] == "/f")
    assert (faulty["fault"], faulty["proxy"]["kind"]) == (fault, "connect")


@pytest.mark.parametrize(
    "target",
    [b"api.example.com", b"api.example.com:0", b"api.example.com:99999", b"a b:1", b":443"],
)
def test_a_malformed_connect_target_is_refused_and_recorded(
    proxy: TestServer, target: bytes
) -> None:
    with connect(proxy.port or 0) as sock:
        sock.sendall(b"CONNECT %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
        answer = b"".join(iter(lambda: sock.recv(4096), b""))  # closed: no hang
    assert answer.startswith(b"HTTP/1.1 400 ")
    if b" " not in target:  # (twisted.web refuses a request line of four words itself)
        assert b"malformed target" in answer
        assert "malformed target" in proxy.errors[-1]["message"]
        proxy.errors.clear()


def test_a_clients_own_proxy_support_checked_with_the_journal(engine: str) -> None:
    """
    What httpcore's proxy tests start ``pproxy`` for: its HTTP proxy pool
    sends one CONNECT per origin with the credentials, keeps the tunnel
    for the next request, and sends plain HTTP in absolute form.
    """
    import httpcore

    with TestServer(engine=engine, proxy=True, proxy_auth=("me", "pw")) as server:
        server.stop()
        server.start(keep_alive=True)
        with httpcore.ConnectionPool(
            proxy=httpcore.Proxy(server.proxy_url, auth=("me", "pw")),
            ssl_context=server.client_ssl_context(),
        ) as pool:
            for url in (f"https://{API}/a", f"https://{API}/b", f"http://{API}/c"):
                assert pool.request("GET", url).status == 200
        journal = [(r["method"], r["url"], r["proxy"]["kind"]) for r in server.requests]
        assert journal == [
            ("CONNECT", None, "connect"),
            ("GET", f"https://{API}/a", "connect"),
            ("GET", f"https://{API}/b", "connect"),
            ("GET", f"http://{API}/c", "absolute"),
        ]
        assert {r["proxy"]["auth"] for r in server.requests} == {("me", "pw")}
        assert server.requests[0]["headers"]["Proxy-Authorization"].startswith("Basic ")


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_a_websocket_client_through_the_proxy(engine: str, scheme: str) -> None:
    """websockets sends a CONNECT for ws:// too."""
    from websockets.sync.client import connect as ws_connect

    with TestServer(engine=engine, proxy=True) as server:
        server.websocket("/ws", host=API).echo()
        context = server.client_ssl_context() if scheme == "wss" else None
        with ws_connect(f"{scheme}://{API}/ws", proxy=server.proxy_url, ssl=context) as ws:
            ws.send("through")
            assert ws.recv(timeout=10) == "through"
        handshake = server.requests[-1]
        assert handshake["url"] == f"{scheme.replace('ws', 'http')}://{API}/ws"
        assert handshake["proxy"]["kind"] == "connect"


def test_stop_cuts_an_open_tunnel_and_records_the_answer_as_aborted(engine: str) -> None:
    """As for a direct connection (tests/test_aborted.py): the tunnel's connection too."""
    from txtestserver._http.site import STOPPED

    server = TestServer(engine=engine, proxy=True)
    server.start()
    try:
        server.route("/large", host=API).response["data"] = b"x" * (32 * 1024 * 1024)
        with connect(server.port or 0) as sock:
            sock.sendall(f"CONNECT {API}:80 HTTP/1.1\r\nHost: {API}:80\r\n\r\n".encode())
            assert sock.recv(1024).startswith(b"HTTP/1.1 200 ")
            sock.sendall(f"GET /large HTTP/1.1\r\nHost: {API}\r\n\r\n".encode())
            assert sock.recv(100).startswith(b"HTTP/1.1 200")  # then not read
            server.wait_for(lambda r: r["path"] == "/large", timeout=10)
            server.stop()
            with contextlib.suppress(ConnectionResetError):
                while sock.recv(1 << 20):  # closed by stop(): no hang
                    pass
        cut = next(r for r in server.requests if r["path"] == "/large")
        assert (cut["aborted"], cut["proxy"]["kind"]) == (STOPPED, "connect")
    finally:
        server.stop()


def test_a_routes_document_names_hosts(proxy: TestServer) -> None:
    proxy.load_routes(
        {
            "routes": [
                {"path": "/v1", "host": API, "scheme": "https", "response": {"data": "api"}},
                {
                    "path": "/v1",
                    "host": "other.example.com",
                    "port": 8443,
                    "response": {"code": 202},
                },
            ]
        }
    )
    assert _requests(proxy, f"https://{API}/v1") == (200, b"api")
    assert _requests(proxy, "https://other.example.com:8443/v1")[0] == 202
    assert _requests(proxy, f"http://{API}/v1")[0] == 404


def test_the_url_of_a_direct_request_over_http2(engine: str) -> None:
    """HTTP/2 names the host in :authority: the journal reads it as the Host header."""
    with TestServer(engine=engine, tls=True, http2=True) as server:
        url = server.get_url("/x?y=1").replace("127.0.0.1", "localhost")
        with httpx.Client(http2=True, verify=server.client_ssl_context()) as client:
            assert client.get(url).http_version == "HTTP/2"
        request = server.request
        assert (request["url"], request["host"], request["scheme"]) == (url, "localhost", "https")
        assert request["proxy"] is None


def test_a_subprocess_proxy_reads_the_authority_key_from_a_private_file() -> None:
    """The server process issues the tunnels' certificates: it needs the key."""
    import os
    import stat
    from pathlib import Path

    with TestServer(engine="subprocess", proxy=True) as server:
        directory = Path(server._engine.store.directory)  # type: ignore[attr-defined]
        key = directory / "tls-authority-key.pem"
        assert b"PRIVATE KEY" in key.read_bytes()
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert _requests(server, f"https://{API}/k")[0] == 200


def test_an_https_proxy_tls_to_the_proxy_and_tls_in_the_tunnel(engine: str) -> None:
    """tls=True with proxy=True: the proxy itself speaks TLS (https:// proxy URL)."""
    with TestServer(engine=engine, tls=True, proxy=True) as server:
        server.route("/x", host=API).response["data"] = b"tls in tls"
        assert server.proxy_url.startswith("https://127.0.0.1:")
        context = server.client_ssl_context()
        proxy = httpx.Proxy(server.proxy_url, ssl_context=context)
        with httpx.Client(proxy=proxy, verify=context) as client:
            for scheme in ("http", "https"):
                assert client.get(f"{scheme}://{API}/x").content == b"tls in tls"
        assert server.request["proxy"]["sni"] == API
