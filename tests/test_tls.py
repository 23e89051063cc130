"""
HTTPS (``tls=True``), mutual TLS (``client_cert``) and HTTP/2 (``http2=True``)
through the blocking API, with requests, urllib, httpx, aiohttp and raw
sockets as clients. Every test runs against every engine; the Deferred API
is tested in tests/trial/test_tls.py.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import stat
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import requests
from cryptography import x509
from twisted.logger import formatEvent

from tests._raw import connect, read_all
from tests.conftest import ENGINES
from txtestserver import AsyncTestServer, ServerSideError, TestServer, TestServerError
from txtestserver._certificates import authority
from txtestserver._http.site import WRONG_PROTOCOL
from txtestserver._http.tls import PLAIN_AT_TLS

TLS_MESSAGE = "a TLS client connected to the plain-HTTP server: start it with tls=True"


@pytest.fixture(scope="module", params=ENGINES)
def shared_tls_server(request: pytest.FixtureRequest) -> Iterator[TestServer]:
    with TestServer(engine=request.param, tls=True) as server:
        yield server


@pytest.fixture(scope="module", params=ENGINES)
def shared_h2_server(request: pytest.FixtureRequest) -> Iterator[TestServer]:
    with TestServer(engine=request.param, tls=True, http2=True) as server:
        yield server


@pytest.fixture
def tls_server(shared_tls_server: TestServer) -> TestServer:
    """A started HTTPS server (one per engine for the module), reset."""
    shared_tls_server.reset()
    return shared_tls_server


@pytest.fixture
def h2_server(shared_h2_server: TestServer) -> TestServer:
    """A started HTTPS server that offers HTTP/2 (one per engine), reset."""
    shared_h2_server.reset()
    return shared_h2_server


def server_certificate(server: TestServer, host: str = "127.0.0.1") -> x509.Certificate:
    """The certificate the server presents, read with a verifying client."""
    context = server.client_ssl_context()
    with socket.create_connection((host, server.port or 0), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


# -- HTTPS with each client ----------------------------------------------------------


def test_requests_with_ca_path(tls_server: TestServer) -> None:
    tls_server.response["data"] = b"secret"
    url = tls_server.get_url("/path?x=1")
    assert url == f"https://127.0.0.1:{tls_server.port}/path?x=1"
    response = requests.post(url, data=b"body", verify=tls_server.ca_path, timeout=10)
    assert (response.status_code, response.content) == (200, b"secret")
    assert tls_server.request["path"] == "/path"
    assert tls_server.request["args"]["x"] == "1"
    assert tls_server.request["data"] == b"body"
    assert tls_server.request["done"] is True


def test_urllib_with_client_ssl_context(tls_server: TestServer) -> None:
    tls_server.response["data"] = b"over tls"
    context = tls_server.client_ssl_context()
    with urllib.request.urlopen(tls_server.get_url(), context=context, timeout=10) as response:
        assert response.read() == b"over tls"
    assert tls_server.request["method"] == "GET"


def test_httpx_with_client_ssl_context(tls_server: TestServer) -> None:
    tls_server.response["headers"] = [("X-Tls", "yes")]
    with httpx.Client(verify=tls_server.client_ssl_context()) as client:
        response = client.put(tls_server.get_url("/x"), content=b"put")
    assert response.headers["X-Tls"] == "yes"
    assert response.http_version == "HTTP/1.1"
    assert tls_server.request["data"] == b"put"


def test_aiohttp_with_client_ssl_context(tls_server: TestServer) -> None:
    tls_server.response["data"] = b"async"

    async def fetch() -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as session:
            async with session.get(
                tls_server.get_url("/aio"), ssl=tls_server.client_ssl_context()
            ) as response:
                return response.status, await response.read()

    assert asyncio.run(fetch()) == (200, b"async")
    assert tls_server.request["path"] == "/aio"


def test_a_client_that_does_not_trust_the_authority_fails(tls_server: TestServer) -> None:
    # The system's authorities do not know the test authority.
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(tls_server.get_url(), timeout=10)
    assert len(tls_server.requests) == 0
    assert requests.get(tls_server.get_url(), verify=tls_server.ca_path, timeout=10).ok


# -- the certificate -------------------------------------------------------------------


def test_certificate_names(tls_server: TestServer) -> None:
    names = server_certificate(tls_server).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert {str(ip) for ip in names.value.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "::1",
    }
    assert names.value.get_values_for_type(x509.DNSName) == ["localhost"]


def test_localhost_url_verifies(tls_server: TestServer) -> None:
    url = tls_server.get_url("/by-name").replace("127.0.0.1", "localhost")
    assert requests.get(url, verify=tls_server.ca_path, timeout=10).ok
    assert tls_server.request["path"] == "/by-name"


def test_ipv6(engine: str) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with TestServer(address="::1", engine=engine, tls=True) as server:
        assert server.get_url() == f"https://[::1]:{server.port}/"
        assert requests.get(server.get_url(), verify=server.ca_path, timeout=10).ok
        assert server.request["client_ip"] == "::1"


def test_a_new_certificate_at_each_start_from_one_authority(engine: str) -> None:
    server = TestServer(engine=engine, tls=True)
    other = TestServer(engine=engine, tls=True)
    assert server.ca_path == other.ca_path == authority().ca_path
    serials = []
    for _ in range(2):
        with server:
            serials.append(server_certificate(server).serial_number)
    assert serials[0] != serials[1]


def test_ca_path_is_there_before_start(engine: str) -> None:
    server = TestServer(engine=engine, tls=True)
    assert Path(server.ca_path).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert server.port is None


def test_subprocess_state_directory_holds_no_authority_key() -> None:
    server = TestServer(engine="subprocess", tls=True, client_cert="optional")
    server.start()
    try:
        directory = Path(server._engine.store.directory)  # type: ignore[attr-defined]
        files = {path.name: path for path in directory.iterdir()}
        assert {"tls-identity.pem", "tls-authority.pem"} <= set(files)
        authority_key = authority()._ca.private_key_pem.bytes()
        for name in ("tls-identity.pem", "tls-authority.pem"):
            assert stat.S_IMODE(os.stat(files[name]).st_mode) == 0o600
        for path in files.values():
            if path.is_file():
                assert authority_key not in path.read_bytes(), path
        assert b"PRIVATE KEY" not in files["tls-authority.pem"].read_bytes()
        assert b"PRIVATE KEY" in files["tls-identity.pem"].read_bytes()
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert requests.get(server.get_url(), verify=server.ca_path, timeout=10).ok
    finally:
        server.stop()
    assert not directory.exists()


# -- stop, keep-alive ---------------------------------------------------------------------


def test_stop_closes_kept_alive_tls_connections(engine: str) -> None:
    server = TestServer(engine=engine, tls=True)
    server.start(keep_alive=True)
    try:
        context = server.client_ssl_context()
        sock = context.wrap_socket(
            socket.create_connection(("127.0.0.1", server.port or 0), timeout=10),
            server_hostname="127.0.0.1",
        )
        sock.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
    finally:
        server.stop()
    with sock:
        try:
            assert sock.recv(4096) == b""
        except (ConnectionResetError, ssl.SSLError):
            pass  # closed either way
    assert server.requests[-1]["path"] == "/one"


def test_kept_alive_tls_connection_is_reused(engine: str) -> None:
    server = TestServer(engine=engine, tls=True)
    server.start(keep_alive=True)
    try:
        with requests.Session() as session:
            for i in range(3):
                response = session.get(server.get_url(f"/{i}"), verify=server.ca_path, timeout=10)
                assert response.ok
            pool = session.get_adapter(server.get_url()).poolmanager
            assert sum(p.num_connections for p in pool.pools._container.values()) == 1
        assert [r["path"] for r in server.requests] == ["/0", "/1", "/2"]
    finally:
        server.stop()


# -- mutual TLS ---------------------------------------------------------------------------


CLIENT = {"O": "txtestserver", "OU": "tests", "CN": "txtestserver client"}


def test_client_cert_required_accepts_the_issued_certificate(engine: str) -> None:
    with TestServer(engine=engine, tls=True, client_cert="required") as server:
        response = requests.get(
            server.get_url("/mtls"),
            verify=server.ca_path,
            cert=server.client_cert_path,
            timeout=10,
        )
        assert response.ok
        assert server.request["client_cert"] == CLIENT
        with httpx.Client(verify=server.client_ssl_context()) as client:
            assert client.get(server.get_url("/ctx")).status_code == 200
        assert [r["path"] for r in server.requests] == ["/mtls", "/ctx"]
        assert [r["client_cert"] for r in server.requests] == [CLIENT, CLIENT]


def test_client_cert_over_http2(engine: str) -> None:
    with TestServer(engine=engine, tls=True, http2=True, client_cert="required") as server:
        with h2_client(server) as client:
            answer = client.get(server.get_url())
        assert answer.http_version == "HTTP/2"
        assert server.request["client_cert"] == CLIENT
        assert server.request["http_version"] == "HTTP/2"


def test_client_cert_of_another_subject(engine: str, tmp_path: Path) -> None:
    pem = tmp_path / "other.pem"
    authority()._ca.issue_cert(
        "someone@example.test", common_name="Some One", organization_name="Example, Inc."
    ).private_key_and_cert_chain_pem.write_to_path(str(pem))
    with TestServer(engine=engine, tls=True, client_cert="required") as server:
        requests.get(server.get_url(), verify=server.ca_path, cert=str(pem), timeout=10)
        assert server.request["client_cert"]["CN"] == "Some One"
        assert server.request["client_cert"]["O"] == "Example, Inc."


def test_client_cert_required_refuses_a_client_without_one(engine: str) -> None:
    with TestServer(engine=engine, tls=True, client_cert="required") as server:
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(server.get_url("/anonymous"), verify=server.ca_path, timeout=10)
        assert len(server.requests) == 0
        # The server keeps serving clients that have one.
        assert requests.get(
            server.get_url(), verify=server.ca_path, cert=server.client_cert_path, timeout=10
        ).ok


def test_client_cert_of_another_authority_is_refused(engine: str, tmp_path: Path) -> None:
    import trustme

    stranger = trustme.CA().issue_cert("client@elsewhere.test")
    pem = tmp_path / "stranger.pem"
    stranger.private_key_and_cert_chain_pem.write_to_path(str(pem))
    with TestServer(engine=engine, tls=True, client_cert="optional") as server:
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(server.get_url(), verify=server.ca_path, cert=str(pem), timeout=10)
        assert len(server.requests) == 0


def test_client_cert_optional(engine: str) -> None:
    with TestServer(engine=engine, tls=True, client_cert="optional") as server:
        assert requests.get(server.get_url("/without"), verify=server.ca_path, timeout=10).ok
        assert requests.get(
            server.get_url("/with"),
            verify=server.ca_path,
            cert=server.client_cert_path,
            timeout=10,
        ).ok
        assert [r["path"] for r in server.requests] == ["/without", "/with"]
        assert [r["client_cert"] for r in server.requests] == [None, CLIENT]


def test_client_cert_is_none_without_mutual_tls(tls_server: TestServer) -> None:
    # A client certificate a server did not ask for is never sent.
    cert = authority().client_cert_path
    requests.get(tls_server.get_url(), verify=tls_server.ca_path, cert=cert, timeout=10)
    assert tls_server.request["client_cert"] is None


def test_client_cert_file_holds_certificate_and_key(engine: str) -> None:
    server = TestServer(engine=engine, tls=True, client_cert="required")
    pem = Path(server.client_cert_path).read_bytes()
    assert b"PRIVATE KEY" in pem
    certificate = x509.load_pem_x509_certificate(pem)
    ca = x509.load_pem_x509_certificate(Path(server.ca_path).read_bytes())
    assert certificate.issuer == ca.subject
    assert stat.S_IMODE(os.stat(server.client_cert_path).st_mode) == 0o600


# -- HTTP/2 ---------------------------------------------------------------------------------


def h2_client(server: TestServer, **kwargs: Any) -> httpx.Client:
    return httpx.Client(http2=True, verify=server.client_ssl_context(), timeout=10, **kwargs)


def test_http2_is_negotiated_and_http1_still_works(h2_server: TestServer) -> None:
    h2_server.response["data"] = b"hello"
    with h2_client(h2_server) as client:
        response = client.get(h2_server.get_url("/h2?x=1"))
    assert (response.http_version, response.content) == ("HTTP/2", b"hello")
    assert h2_server.request["path"] == "/h2"
    assert h2_server.request["args"]["x"] == "1"
    assert h2_server.request["headers"]["Host"] == f"127.0.0.1:{h2_server.port}"
    # A client that offers only HTTP/1.1 gets it.
    response = requests.get(h2_server.get_url("/h1"), verify=h2_server.ca_path, timeout=10)
    assert (response.status_code, response.content) == (200, b"hello")
    assert h2_server.request["path"] == "/h1"


def test_http_version_is_recorded(h2_server: TestServer) -> None:
    with h2_client(h2_server) as client:
        client.get(h2_server.get_url("/2"))
    requests.get(h2_server.get_url("/1.1"), verify=h2_server.ca_path, timeout=10)
    context = h2_server.client_ssl_context()
    with socket.create_connection(("127.0.0.1", h2_server.port or 0), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /1.0 HTTP/1.0\r\n\r\n")
            assert read_all(tls).startswith(b"HTTP/1.0 200 ")
    assert [(r["path"], r["http_version"]) for r in h2_server.requests] == [
        ("/2", "HTTP/2"),
        ("/1.1", "HTTP/1.1"),
        ("/1.0", "HTTP/1.0"),
    ]


def test_http2_streams_of_one_connection_share_its_number(h2_server: TestServer) -> None:
    for _ in range(2):
        with h2_client(h2_server) as client:
            for _ in range(3):
                client.get(h2_server.get_url())
    numbers = [r["connection"] for r in h2_server.requests]
    assert numbers[0] == numbers[1] == numbers[2] != numbers[3] == numbers[4] == numbers[5]


def test_without_http2_an_http2_client_gets_http1(tls_server: TestServer) -> None:
    with h2_client(tls_server) as client:
        response = client.get(tls_server.get_url())
    assert response.http_version == "HTTP/1.1"


def test_http2_response_keys(h2_server: TestServer) -> None:
    response = h2_server.response
    response["code"] = 418
    response["data"] = "чай"
    response["charset"] = "cp1251"
    response["headers"] = [("X-One", "1"), ("X-Rep", "a"), ("X-Rep", "b"), ("Connection", "close")]
    response["cookies"] = [("session", "xyz"), ("lang", "ru")]
    with h2_client(h2_server) as client:
        answer = client.get(h2_server.get_url())
    assert answer.http_version == "HTTP/2"
    assert answer.status_code == 418
    assert answer.content == "чай".encode("cp1251")
    assert answer.headers["content-type"] == "text/html; charset=cp1251"
    assert answer.headers["x-one"] == "1"
    assert answer.headers.get_list("x-rep") == ["a", "b"]
    assert "connection" not in answer.headers  # HTTP/2 has no such header
    assert answer.headers.get_list("set-cookie") == ["session=xyz", "lang=ru"]
    assert answer.cookies["session"] == "xyz"


def test_http2_method_keys_and_response_once(h2_server: TestServer) -> None:
    h2_server.response["data"] = b"plain"
    h2_server.response["post.data"] = b"for POST"
    h2_server.response_once["code"] = 503
    with h2_client(h2_server) as client:
        first = client.get(h2_server.get_url())
        second = client.get(h2_server.get_url())
        posted = client.post(h2_server.get_url(), content=b"x" * 100_000)
    assert (first.status_code, second.status_code) == (503, 200)
    assert second.content == b"plain"
    assert posted.content == b"for POST"
    assert h2_server.request["data"] == b"x" * 100_000
    assert h2_server.request["method"] == "POST"


def test_http2_large_bodies(h2_server: TestServer) -> None:
    big = os.urandom(4 * 1024 * 1024)
    h2_server.response["data"] = big
    with h2_client(h2_server) as client:
        answer = client.post(h2_server.get_url("/big"), content=big[::-1])
    assert (answer.http_version, answer.content == big) == ("HTTP/2", True)
    assert h2_server.request["data"] == big[::-1]


@pytest.mark.parametrize(
    ("callback", "status", "body"),
    [
        ("tests.callbacks:returns_bytes", 200, b"callback:/cb?x=1"),
        ("tests.callbacks:writes_itself", 201, b"written by the callback"),
        ("tests.callbacks:returns_deferred", 200, b"later:GET"),
    ],
)
def test_http2_callback(h2_server: TestServer, callback: str, status: int, body: bytes) -> None:
    h2_server.response["callback"] = callback
    with h2_client(h2_server) as client:
        answer = client.get(h2_server.get_url("/cb?x=1"))
    assert (answer.http_version, answer.status_code, answer.content) == ("HTTP/2", status, body)
    assert h2_server.request["done"] is True


def test_http2_callback_that_raises_gives_500(
    h2_server: TestServer, logged_errors: list[dict[str, Any]]
) -> None:
    h2_server.response["callback"] = "tests.callbacks:raises"
    with h2_client(h2_server) as client:
        answer = client.get(h2_server.get_url())
        assert answer.status_code == 500
        assert b"callback exploded" in answer.content
        h2_server.response["callback"] = None
        assert client.get(h2_server.get_url()).status_code == 200
    # The subprocess engine's server process logs it on its stderr, read by
    # the reactor thread a moment after the answer: wait for it (bounded).
    deadline = time.monotonic() + 10
    while not any("callback exploded" in formatEvent(e) for e in list(logged_errors)):
        assert time.monotonic() < deadline, [formatEvent(e) for e in logged_errors]
        time.sleep(0.01)
    logged_errors.clear()


def test_http2_sleep_does_not_hold_up_other_streams(h2_server: TestServer) -> None:
    h2_server.response["get.sleep"] = 0.5
    h2_server.response["post.data"] = b"fast"
    finished: list[str] = []

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            http2=True, verify=h2_server.client_ssl_context(), timeout=10
        ) as client:

            async def one(method: str, path: str) -> httpx.Response:
                answer = await client.request(method, h2_server.get_url(path))
                finished.append(path)
                return answer

            slow = asyncio.ensure_future(one("GET", "/slow"))
            await asyncio.sleep(0)  # the GET goes first
            fast = await one("POST", "/fast")
            return [await slow, fast]

    started = time.monotonic()
    slow, fast = asyncio.run(run())
    assert time.monotonic() - started >= 0.5
    assert (slow.http_version, fast.http_version) == ("HTTP/2", "HTTP/2")
    assert fast.content == b"fast"
    assert finished == ["/fast", "/slow"]  # one connection, the POST not held up
    assert sorted(r["path"] for r in h2_server.requests) == ["/fast", "/slow"]


@pytest.mark.parametrize("fault", ["stall", "no_answer"])
def test_http2_hanging_faults(h2_server: TestServer, fault: str) -> None:
    h2_server.response_once["fault"] = fault
    with h2_client(h2_server) as client, pytest.raises(httpx.ReadTimeout):
        client.get(h2_server.get_url("/hang"), timeout=0.5)
    assert h2_server.request["done"] is False


def test_http2_streamed_and_throttled_bodies(h2_server: TestServer) -> None:
    h2_server.response["get.chunks"] = [b"one ", "two ", b"three"]
    h2_server.response["get.chunk_delay"] = 0.01
    h2_server.response["post.data"] = b"y" * 20_000
    h2_server.response["post.throttle"] = 1_000_000
    with h2_client(h2_server) as client:
        streamed = client.get(h2_server.get_url())
        throttled = client.post(h2_server.get_url())
    assert (streamed.http_version, streamed.content) == ("HTTP/2", b"one two three")
    assert "transfer-encoding" not in streamed.headers
    assert throttled.content == b"y" * 20_000


def test_http2_connection_is_reused_without_keep_alive(h2_server: TestServer) -> None:
    # keep_alive=False closes HTTP/1.1 connections; an HTTP/2 connection carries
    # many streams and stays open.
    connections: list[Any] = []

    def count(event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            connections.append(info)

    with h2_client(h2_server) as client:
        answers = [
            client.get(h2_server.get_url(f"/{i}"), extensions={"trace": count}) for i in range(3)
        ]
    assert [a.http_version for a in answers] == ["HTTP/2"] * 3
    assert len(connections) == 1
    assert [r["path"] for r in h2_server.requests] == ["/0", "/1", "/2"]


def test_http2_header_count_limit(engine: str) -> None:
    with TestServer(engine=engine, tls=True, http2=True, header_count_limit=10) as server:
        with h2_client(server) as client:
            headers = {f"X-{i}": "v" for i in range(20)}
            refused = client.get(server.get_url("/many"), headers=headers)
            assert refused.http_version == "HTTP/2"
            assert refused.status_code == 400
            assert b"header_count_limit=10" in refused.content
            assert len(server.requests) == 0
            # The connection keeps serving.
            assert client.get(server.get_url("/few")).status_code == 200
        assert [r["path"] for r in server.requests] == ["/few"]


def test_http2_header_size_limit(engine: str) -> None:
    with TestServer(engine=engine, tls=True, http2=True, header_size_limit=2000) as server:
        with h2_client(server) as client:
            refused = client.get(server.get_url("/big"), headers={"X-Big": "v" * 3000})
            assert refused.status_code == 400
            assert b"header_size_limit=2000" in refused.content
            assert client.get(server.get_url("/small")).status_code == 200
        assert [r["path"] for r in server.requests] == ["/small"]


def raw_h2_get(server: TestServer, headers: list[tuple[str, str]]) -> int | None:
    """
    One HTTP/2 GET with the h2 library, its headers sent without Huffman
    coding (pure-Python Huffman takes seconds for 100 KB); the status, or
    None when the server ended the connection instead.
    """
    import functools

    import h2.connection
    import h2.events

    context = server.client_ssl_context()
    context.set_alpn_protocols(["h2"])
    conn = h2.connection.H2Connection()
    conn.encoder.encode = functools.partial(conn.encoder.encode, huffman=False)  # type: ignore[method-assign]
    with socket.create_connection(("127.0.0.1", server.port or 0), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            conn.initiate_connection()
            request = [
                (":method", "GET"),
                (":path", "/"),
                (":scheme", "https"),
                (":authority", "127.0.0.1"),
                *headers,
            ]
            conn.send_headers(1, request, end_stream=True)
            tls.sendall(conn.data_to_send())
            while data := tls.recv(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        return int(dict(event.headers)[b":status"])
                    if isinstance(event, h2.events.ConnectionTerminated):
                        return None
                tls.sendall(conn.data_to_send())
            return None


def test_http2_headers_above_64_kib(engine: str) -> None:
    # h2 alone would end the connection past 64 KiB of headers.
    limit = 200_000
    with TestServer(engine=engine, tls=True, http2=True, header_size_limit=limit) as server:
        assert raw_h2_get(server, [("x-big", "v" * 100_000)]) == 200
        assert server.request["headers"]["X-Big"] == "v" * 100_000
        # Over the limit: 400, as over HTTP/1.1.
        assert raw_h2_get(server, [("x-big", "v" * 201_000)]) == 400
        # Far over it, the header block is not even decoded: the connection
        # ends (HTTP/1.1 closes it too for a line longer than the limit).
        assert raw_h2_get(server, [("x-big", "v" * 300_000)]) is None
        assert len(server.requests) == 1
        assert raw_h2_get(server, [("x-small", "v")]) == 200


# -- a TLS or HTTP/2 client at a plain-HTTP server --------------------------------------------


def wrong_protocol_errors(logged: list[dict[str, Any]]) -> list[str]:
    texts = [formatEvent(event) for event in logged]
    found = [t for t in texts if any(m in t for m in WRONG_PROTOCOL.values())]
    assert len(found) == len(texts), texts  # nothing else was logged
    logged.clear()
    return found


def wait_logged(logged: list[dict[str, Any]], count: int) -> None:
    """The server process's log lines arrive over a pipe: wait for them."""
    deadline = time.monotonic() + 10
    while len(logged) < count and time.monotonic() < deadline:
        time.sleep(0.005)


def test_tls_client_at_plain_server_fails_fast_and_is_logged(
    server: TestServer, logged_errors: list[dict[str, Any]]
) -> None:
    url = server.get_url("/x").replace("http://", "https://")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, verify=False, timeout=30)  # fails at once, not after 30 s
    wait_logged(logged_errors, 1)
    (text,) = wrong_protocol_errors(logged_errors)
    assert TLS_MESSAGE in text
    assert len(server.requests) == 0
    assert server.errors == [{"message": TLS_MESSAGE, "traceback": None, "request": None}]
    with pytest.raises(ServerSideError, match="no request in particular: a TLS client"):
        server.check()
    assert requests.get(server.get_url("/after"), timeout=10).ok


def test_plain_http_client_at_tls_server_gets_400_and_is_recorded(
    tls_server: TestServer, logged_errors: list[dict[str, Any]]
) -> None:
    """The mirror of the case above (issue 19, defect 7)."""
    url = tls_server.get_url("/x").replace("https://", "http://")
    answer = requests.get(url, timeout=30)  # answered at once, not after 30 s
    assert answer.status_code == 400
    assert PLAIN_AT_TLS in answer.text
    wait_logged(logged_errors, 1)
    texts = [formatEvent(event) for event in logged_errors]
    assert len(texts) == 1 and PLAIN_AT_TLS in texts[0], texts
    logged_errors.clear()
    assert len(tls_server.requests) == 0
    assert tls_server.errors == [{"message": PLAIN_AT_TLS, "traceback": None, "request": None}]
    with pytest.raises(ServerSideError, match="no request in particular: a plain-HTTP client"):
        tls_server.check()
    assert requests.get(tls_server.get_url("/after"), verify=tls_server.ca_path, timeout=10).ok


def test_tls_client_hello_on_a_raw_socket_is_closed_at_once(
    server: TestServer, logged_errors: list[dict[str, Any]]
) -> None:
    with connect(server.port or 0, timeout=10) as sock:
        # The start of a ClientHello: no line end ever comes.
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        assert read_all(sock) == b""
    wait_logged(logged_errors, 1)
    assert TLS_MESSAGE in wrong_protocol_errors(logged_errors)[0]
    assert len(server.requests) == 0


def test_http2_preface_at_plain_server_is_closed_and_logged(
    server: TestServer, logged_errors: list[dict[str, Any]]
) -> None:
    with pytest.raises(httpx.TransportError):
        with httpx.Client(http1=False, http2=True, timeout=30) as client:
            client.get(server.get_url())  # prior knowledge: the preface, in clear
    wait_logged(logged_errors, 1)
    (text,) = wrong_protocol_errors(logged_errors)
    assert WRONG_PROTOCOL[b"PRI * HTTP/2.0"] in text
    assert "tls=True, http2=True" in text
    assert len(server.requests) == 0
    assert [e["message"] for e in server.errors] == [WRONG_PROTOCOL[b"PRI * HTTP/2.0"]]
    assert requests.get(server.get_url(), timeout=10).ok


def test_http2_prior_knowledge_over_tls(h2_server: TestServer) -> None:
    # A client that sends the preface without ALPN still gets HTTP/2.
    context = h2_server.client_ssl_context()
    with socket.create_connection(("127.0.0.1", h2_server.port or 0), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() is None
            tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            answer = tls.recv(9)
    assert answer[3] == 0x04  # the server's SETTINGS frame: it speaks HTTP/2


# -- mistakes in the set-up ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"http2": True}, "http2=True needs tls=True"),
        ({"client_cert": "required"}, "client_cert='required' needs tls=True"),
        ({"tls": True, "client_cert": "yes"}, "client_cert must be one of None, 'optional'"),
        ({"tls": True, "client_cert": True}, "client_cert must be one of"),
        ({"tls": 1}, "tls must be True or False"),
        ({"tls": True, "http2": "yes"}, "http2 must be True or False"),
    ],
)
def test_bad_tls_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TestServerError, match=message):
        TestServer(**kwargs)


@pytest.mark.parametrize(
    "use",
    [
        lambda s: s.ca_path,
        lambda s: s.client_cert_path,
        lambda s: s.client_ssl_context(),
        lambda s: s.tls_client_policy(),
    ],
)
def test_tls_helpers_of_a_plain_server(use: Any) -> None:
    with pytest.raises(TestServerError, match="is for a TLS server: make it with tls=True"):
        use(TestServer())


# -- the asyncio face ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_server_with_httpx_over_http2(engine: str) -> None:
    async with AsyncTestServer(engine=engine, tls=True, http2=True) as server:
        server.response["data"] = b"async h2"
        async with httpx.AsyncClient(http2=True, verify=server.client_ssl_context()) as client:
            sending = asyncio.ensure_future(client.get(server.get_url("/a")))
            await server.wait_requests(1, timeout=10)  # the loop runs on meanwhile
            answer = await sending
        assert (answer.http_version, answer.content) == ("HTTP/2", b"async h2")
        assert server.request["http_version"] == "HTTP/2"
        assert server.get_url().startswith("https://")


@pytest.mark.asyncio
@pytest.mark.filterwarnings(
    # Python 3.10's asyncio leaves the transport of a failed TLS handshake
    # unclosed (3.11 rewrote its sslproto): the client's leak, not the server's.
    "ignore:Exception ignored in. <function _SSLProtocolTransport.__del__"
    ":pytest.PytestUnraisableExceptionWarning"
)
async def test_async_server_with_aiohttp_and_a_client_certificate(engine: str) -> None:
    async with AsyncTestServer(engine=engine, tls=True, client_cert="required") as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.get_url(), ssl=server.client_ssl_context()) as answer:
                assert answer.status == 200
        await server.wait_request(10)
        assert server.request["client_cert"] == CLIENT
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):  # no certificate presented
                plain = ssl.create_default_context(cafile=server.ca_path)
                async with session.get(server.get_url(), ssl=plain) as answer:
                    await answer.read()
        assert len(server.requests) == 1


#: A test process that starts a TLS server, prints the directory of its
#: certificate authority's files, and waits to be killed.
_TLS_TEST_PROCESS = """
import os, sys
from txtestserver import TestServer
server = TestServer(tls=True, engine=sys.argv[1])
server.start()
print(os.path.dirname(server.ca_path), flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("end", ["SIGTERM", "SIGKILL"])
def test_the_authority_directory_is_removed_when_the_test_process_is_killed(
    engine: str, end: str
) -> None:
    """No exit function runs, yet the authority's temporary directory goes."""
    import signal
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-c", _TLS_TEST_PROCESS, engine],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(root)),
    )
    try:
        assert process.stdout is not None
        directory = process.stdout.readline().decode().strip()
        assert os.path.isfile(os.path.join(directory, "ca.pem"))
        process.send_signal(getattr(signal, end))
        process.wait(30)
        deadline = time.monotonic() + 10
        while os.path.exists(directory) and time.monotonic() < deadline:
            time.sleep(0.01)  # the cleaner runs once the killed process is gone
        assert not os.path.exists(directory), "the authority's directory outlived the process"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()
