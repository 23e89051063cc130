"""
Recording from an upstream (issue 22): ``server.forward(upstream)``, the
record modes of ``load_har``, redaction, and streams recorded and replayed
with their pieces and pace. A second txtestserver stands in for the real
service (no network here); the server under test runs in both engines.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import requests

from txtestserver import DEFAULT_REDACTED, TestServer, TestServerError

from .test_har import validate


@pytest.fixture(scope="module")
def upstream() -> Iterator[TestServer]:
    """The real service, in the thread engine; reset for each test."""
    with TestServer() as service:
        yield service


@pytest.fixture
def service(upstream: TestServer) -> TestServer:
    upstream.reset()
    upstream.route("/items", method="GET").response["json"] = [1, 2]
    upstream.route("/items", method="POST").response.update(
        {"code": 201, "json": {"made": True}, "cookies": {"session": "s3cret"}}
    )
    return upstream


def test_what_no_route_answers_comes_from_the_upstream(
    server: TestServer, service: TestServer
) -> None:
    server.forward(service.get_url(""))
    server.route("/local").response["data"] = b"mine"
    assert requests.get(server.get_url("/local"), timeout=5).content == b"mine"
    answer = requests.get(server.get_url("/items?page=1"), timeout=5)
    assert answer.json() == [1, 2]
    assert answer.headers["Content-Type"].startswith("application/json")
    made = requests.post(
        server.get_url("/items"),
        json={"name": "x"},
        headers={"Authorization": "Bearer t0ken"},
        timeout=5,
    )
    assert (made.status_code, made.json(), made.cookies["session"]) == (
        201,
        {"made": True},
        "s3cret",
    )
    # The upstream got what the client sent (redaction is for what is written).
    sent = service.requests[-1]
    assert (sent["method"], sent["path"], sent["json"]) == ("POST", "/items", {"name": "x"})
    assert sent["headers"]["Authorization"] == "Bearer t0ken"
    assert service.requests[0]["args"]["page"] == "1"
    assert [r["route"] for r in server.requests] == ["* /local", None, None]
    server.check()


def test_other_clients(server: TestServer, service: TestServer) -> None:
    server.forward(service.get_url(""))
    assert httpx.get(server.get_url("/items"), timeout=5).json() == [1, 2]

    async def post() -> Any:
        async with aiohttp.ClientSession() as session:
            async with session.post(server.get_url("/items"), json={}) as answer:
                return answer.status, await answer.json()

    assert asyncio.run(post()) == (201, {"made": True})
    out = subprocess.run(
        ["curl", "-s", server.get_url("/items")], capture_output=True, check=True, timeout=10
    )
    assert json.loads(out.stdout) == [1, 2]


def test_a_har_of_forwarded_exchanges_is_redacted(
    server: TestServer, service: TestServer, tmp_path: Path
) -> None:
    service.route("/login").response["json"] = {
        "user": "u",
        "password": "p",
        "deep": [{"token": "t"}],
    }
    server.forward(service.get_url(""), redact=(*DEFAULT_REDACTED, "token", "password"))
    requests.post(
        server.get_url("/items?token=abc&x=1"),
        json={"password": "hunter2", "keep": 1},
        headers={"Authorization": "Bearer t0ken"},
        cookies={"c": "v"},
        timeout=5,
    )
    requests.get(server.get_url("/login"), timeout=5)
    text = server.save_har(tmp_path / "out.har").read_text()
    for secret in ("t0ken", "hunter2", "s3cret", "abc", '"p"', '"t"'):
        assert secret not in text, secret
    document = json.loads(text)
    validate(document)
    post, login = document["log"]["entries"]
    request = post["request"]
    assert {"name": "Authorization", "value": "REDACTED"} in request["headers"]
    assert request["cookies"] == [{"name": "c", "value": "REDACTED"}]
    assert request["url"].endswith("/items?token=REDACTED&x=1")
    assert json.loads(request["postData"]["text"]) == {"password": "REDACTED", "keep": 1}
    assert post["response"]["cookies"][0]["value"] == "REDACTED"
    assert json.loads(login["response"]["content"]["text"]) == {
        "user": "u",
        "password": "REDACTED",
        "deep": [{"token": "REDACTED"}],
    }
    assert post["_forwarded"] == service.get_url("").rstrip("/")


def test_record_once_then_replay(engine: str, service: TestServer, tmp_path: Path) -> None:
    path = tmp_path / "cassette.har"
    with TestServer(engine=engine) as recorder:
        recorder.forward(service.get_url(""))
        assert recorder.load_har(path, mode="once") == []
        assert requests.get(recorder.get_url("/items"), timeout=5).json() == [1, 2]
        assert requests.post(recorder.get_url("/items"), timeout=5).status_code == 201
        assert not path.exists()  # written at stop()
    assert [e["request"]["method"] for e in json.loads(path.read_text())["log"]["entries"]] == [
        "GET",
        "POST",
    ]
    calls = len(service.requests)
    with TestServer(engine=engine) as replayer:
        replayer.forward(service.get_url(""))
        replayer.load_har(path, mode="once")  # the file exists: replay only
        assert requests.get(replayer.get_url("/items"), timeout=5).json() == [1, 2]
        assert requests.get(replayer.get_url("/other"), timeout=5).status_code == 404
        replayer.errors.clear()
    assert len(service.requests) == calls  # the upstream was not asked again


def test_new_episodes_and_all(server: TestServer, service: TestServer, tmp_path: Path) -> None:
    path = tmp_path / "cassette.har"
    server.forward(service.get_url(""))
    server.load_har(path, mode="all")
    requests.get(server.get_url("/items"), timeout=5)
    assert server.save_har() == path  # written now, before stop()
    assert len(json.loads(path.read_text())["log"]["entries"]) == 1
    server.reset()
    server.forward(service.get_url(""))
    server.load_har(path, mode="new_episodes")
    calls = len(service.requests)
    assert requests.get(server.get_url("/items"), timeout=5).json() == [1, 2]  # replayed
    assert len(service.requests) == calls
    assert requests.post(server.get_url("/items"), timeout=5).status_code == 201  # forwarded
    assert len(service.requests) == calls + 1
    server.reset()  # writes what was recorded, and ends the recording
    entries = json.loads(path.read_text())["log"]["entries"]
    assert [(e["request"]["method"], e["response"]["status"]) for e in entries] == [
        ("GET", 200),
        ("POST", 201),
    ]
    server.forward(service.get_url(""))
    server.load_har(path, mode="all")  # anew: what the file had is dropped
    requests.post(server.get_url("/items"), timeout=5)
    entries = json.loads(server.save_har().read_text())["log"]["entries"]
    assert [e["request"]["method"] for e in entries] == ["POST"]


def test_a_stream_replays_with_its_pieces_and_pace(
    server: TestServer, service: TestServer, tmp_path: Path
) -> None:
    """An SSE stream recorded through forward() replays piece by piece, at its pace."""
    events = ["data: one\n\n", "data: two\n\n", "data: three\n\n"]
    service.route("/events").response.update(
        {
            "headers": {"Content-Type": "text/event-stream"},
            "chunks": events,
            "chunk_delay": 0.15,
        }
    )
    server.forward(service.get_url(""))
    with httpx.stream("GET", server.get_url("/events"), timeout=5) as answer:
        assert b"".join(answer.iter_raw()).decode() == "".join(events)
    path = server.save_har(tmp_path / "events.har")
    [entry] = json.loads(path.read_text())["log"]["entries"]
    assert [size for _, size in entry["_chunks"]] == [len(e) for e in events]
    assert all(seconds >= 0.1 for seconds, _ in entry["_chunks"][1:])
    with TestServer() as replayer:
        replayer.load_har(path)
        pieces, times = [], []
        started = time.monotonic()
        with httpx.stream("GET", replayer.get_url("/events"), timeout=5) as answer:
            assert answer.headers["Content-Type"] == "text/event-stream"
            for piece in answer.iter_raw():
                pieces.append(piece.decode())
                times.append(time.monotonic() - started)
    assert pieces == events
    assert times[1] - times[0] >= 0.1 and times[2] - times[1] >= 0.1


def test_an_unreachable_upstream_is_a_502_and_a_server_side_error(server: TestServer) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    server.forward(f"http://127.0.0.1:{port}")
    answer = requests.get(server.get_url("/x"), timeout=5)
    assert answer.status_code == 502 and f"forwarding to http://127.0.0.1:{port}" in answer.text
    assert "forwarding to" in server.errors[0]["message"]
    server.errors.clear()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, p: s.forward("ftp://x"), "must be an http:// or https:// URL"),
        (
            lambda s, p: s.forward("http://x", redact="Authorization"),
            r"forward\(redact\) is a list",
        ),
        (lambda s, p: s.load_har(p, mode="once"), r"call server.forward\(upstream\) first"),
        (lambda s, p: s.save_har(), "nothing is being recorded"),
    ],
)
def test_mistakes(server: TestServer, tmp_path: Path, call: Any, message: str) -> None:
    with pytest.raises(TestServerError, match=message):
        call(server, tmp_path / "x.har")


def test_the_connection_to_the_upstream_is_kept(engine: str) -> None:
    """Forwarded requests share one kept-alive connection to the upstream."""
    with TestServer() as service, TestServer(engine=engine) as server:
        service.stop()
        service.start(keep_alive=True)
        server.forward(service.get_url(""))
        for _ in range(3):
            requests.get(server.get_url("/x"), timeout=5)
        assert len({r["connection"] for r in service.requests}) == 1


def test_the_asyncio_face(engine: str, tmp_path: Path) -> None:
    """forward(), a recording mode and load_har() from an AsyncTestServer."""
    from txtestserver import AsyncTestServer

    path = tmp_path / "recorded.har"

    async def run() -> list[Any]:
        async with AsyncTestServer() as service:
            service.response["json"] = {"ok": 1}
            async with AsyncTestServer(engine=engine) as recorder:
                recorder.forward(service.get_url(""))
                recorder.load_har(path, mode="once")
                async with httpx.AsyncClient() as client:
                    first = (await client.get(recorder.get_url("/a"))).json()
            async with AsyncTestServer(engine=engine) as replayer:
                replayer.load_har(path, mode="none")
                async with httpx.AsyncClient() as client:
                    second = (await client.get(replayer.get_url("/a"))).json()
        return [first, second]

    assert asyncio.run(run()) == [{"ok": 1}, {"ok": 1}]


def test_a_route_forwards_and_nothing_is_redacted_without_forward(
    server: TestServer, service: TestServer
) -> None:
    """response['forward'] on a route forwards that route only; forward() alone redacts."""
    server.route("/items").response["forward"] = service.get_url("")
    server.response["data"] = b"local"
    headers = {"Authorization": "Bearer visible"}
    assert requests.get(server.get_url("/items"), headers=headers, timeout=5).json() == [1, 2]
    assert requests.get(server.get_url("/other"), timeout=5).content == b"local"
    har = server.requests.to_har()
    assert har["log"]["entries"][0]["_forwarded"] == service.get_url("").rstrip("/")
    assert "_forwarded" not in har["log"]["entries"][1]
    assert {"name": "Authorization", "value": "Bearer visible"} in har["log"]["entries"][0][
        "request"
    ]["headers"]


def test_over_http2(engine: str, service: TestServer) -> None:
    """A client speaking HTTP/2 to the server is forwarded (the upstream hears HTTP/1.1)."""
    with TestServer(engine=engine, tls=True, http2=True) as server:
        server.forward(service.get_url(""))
        with httpx.Client(http2=True, verify=server.client_ssl_context()) as client:
            answer = client.post(server.get_url("/items?page=1"), json={"b": 2})
        assert (answer.http_version, answer.status_code) == ("HTTP/2", 201)
        assert answer.json() == {"made": True}
        assert (service.request["path"], service.request["json"]) == ("/items", {"b": 2})
        [entry] = server.requests.to_har()["log"]["entries"]
        validate(
            {
                "log": {
                    "version": "1.2",
                    "creator": {"name": "t", "version": "1"},
                    "entries": [entry],
                }
            }
        )
        assert entry["request"]["url"] == server.get_url("/items?page=1")
        assert entry["request"]["httpVersion"] == "HTTP/2"


def test_head_keeps_the_upstream_s_length(server: TestServer, service: TestServer) -> None:
    service.route("/file").response["data"] = b"12345"
    server.forward(service.get_url(""))
    answer = requests.head(server.get_url("/file"), timeout=5)
    assert (answer.status_code, answer.headers["Content-Length"]) == (200, "5")


# -- proxy mode: forward() with no upstream, to the host each request was meant for -----


@pytest.fixture(scope="module")
def tls_upstream() -> Iterator[TestServer]:
    """A real service over TLS (its certificate from the test authority)."""
    with TestServer(tls=True) as service:
        yield service


@pytest.fixture
def secure(tls_upstream: TestServer) -> TestServer:
    tls_upstream.reset()
    tls_upstream.route("/items", method="GET").response["json"] = ["secure"]
    return tls_upstream


def _via(proxy: TestServer) -> dict[str, str]:
    return {"http": proxy.proxy_url, "https": proxy.proxy_url}


def test_a_proxy_forwards_to_the_host_each_request_meant(
    engine: str, service: TestServer, secure: TestServer
) -> None:
    """
    forward() with no upstream: an absolute-form request goes to its host,
    a request in a CONNECT tunnel to its host over a new TLS connection
    trusted through verify=; the journal and the HAR name the URL meant.
    """
    plain = f"http://localhost:{service.port}/items?page=1"
    tls = f"https://localhost:{secure.port}/items"
    with TestServer(engine=engine, proxy=True) as proxy:
        proxy.forward(verify=secure.ca_path)
        proxy.route("/local", host="localhost").response["data"] = b"mine"
        answer = requests.get(plain, proxies=_via(proxy), timeout=5)
        assert answer.json() == [1, 2]
        answer = requests.get(tls, proxies=_via(proxy), verify=proxy.ca_path, timeout=5)
        assert answer.json() == ["secure"]
        with httpx.Client(proxy=proxy.proxy_url, verify=proxy.client_ssl_context()) as client:
            assert client.get(tls).json() == ["secure"]
            assert client.post(plain, json={"a": 1}).status_code == 201
            assert client.get(f"http://localhost:{service.port}/local").content == b"mine"
        assert (service.requests[0]["path"], service.requests[0]["args"]["page"]) == (
            "/items",
            "1",
        )
        assert service.requests[1]["json"] == {"a": 1}
        assert [r["scheme"] for r in secure.requests] == ["https", "https"]
        urls = [plain, tls, tls, plain, f"http://localhost:{service.port}/local"]
        assert [r["url"] for r in proxy.requests if r["method"] != "CONNECT"] == urls
        har = proxy.requests.to_har()
        validate(har)
        entries = [e for e in har["log"]["entries"] if e["request"]["method"] != "CONNECT"]
        assert [e["request"]["url"] for e in entries] == urls
        assert [e.get("_forwarded") for e in entries] == [
            f"http://localhost:{service.port}",
            f"https://localhost:{secure.port}",
            f"https://localhost:{secure.port}",
            f"http://localhost:{service.port}",
            None,
        ]
        proxy.check()


def test_the_upstream_s_certificate_is_checked(engine: str, secure: TestServer) -> None:
    """Without the upstream's CA (verify=True: the system's), forwarding fails with a 502."""
    tls = f"https://localhost:{secure.port}/items"
    with TestServer(engine=engine, proxy=True) as proxy:
        proxy.forward()
        answer = requests.get(tls, proxies=_via(proxy), verify=proxy.ca_path, timeout=5)
        assert answer.status_code == 502
        assert f"forwarding to https://localhost:{secure.port} failed" in answer.text
        proxy.errors.clear()
        proxy.forward(verify=False)
        answer = requests.get(tls, proxies=_via(proxy), verify=proxy.ca_path, timeout=5)
        assert answer.json() == ["secure"]


def test_a_socks_request_is_forwarded_to_its_target(engine: str, secure: TestServer) -> None:
    with TestServer(engine=engine, proxy=True) as proxy:
        proxy.forward(verify=secure.ca_path)
        with httpx.Client(proxy=proxy.socks_url, verify=proxy.client_ssl_context()) as client:
            answer = client.get(f"https://localhost:{secure.port}/items")
        assert answer.json() == ["secure"]
        assert proxy.request["proxy"]["kind"] == "socks5"
        assert proxy.request["url"] == f"https://localhost:{secure.port}/items"


def test_record_through_the_proxy_then_replay_by_host(
    engine: str, service: TestServer, secure: TestServer, tmp_path: Path
) -> None:
    """
    load_har(mode='once') through the proxy records both hosts; replayed
    through a proxy, each route matches its host, so the same path on two
    hosts keeps its own answer; new_episodes forwards what is new.
    """
    path = tmp_path / "proxy.har"
    plain = f"http://localhost:{service.port}/items"
    tls = f"https://localhost:{secure.port}/items"

    def get(proxy: TestServer, url: str) -> Any:
        return requests.get(url, proxies=_via(proxy), verify=proxy.ca_path, timeout=5)

    with TestServer(engine=engine, proxy=True) as recorder:
        recorder.forward(verify=secure.ca_path)
        assert recorder.load_har(path, mode="once") == []
        assert get(recorder, plain).json() == [1, 2]
        assert get(recorder, tls).json() == ["secure"]
    calls = len(service.requests), len(secure.requests)
    with TestServer(engine=engine, proxy=True) as replayer:
        replayer.forward(verify=secure.ca_path)
        routes = replayer.load_har(path, mode="once")
        assert {r.name for r in routes} == {
            f"recorded GET localhost:{service.port}/items",
            f"recorded GET localhost:{secure.port}/items",
        }
        assert get(replayer, tls).json() == ["secure"]
        assert get(replayer, plain).json() == [1, 2]
        other = get(replayer, f"http://127.0.0.1:{secure.port}/items")
        assert other.status_code == 404, other.text  # another host: no recorded answer
        replayer.errors.clear()
    assert (len(service.requests), len(secure.requests)) == calls  # nothing forwarded
    with TestServer(engine=engine, proxy=True) as recorder:
        recorder.forward(verify=secure.ca_path)
        recorder.load_har(path, mode="new_episodes")
        assert get(recorder, tls).json() == ["secure"]  # replayed
        assert get(recorder, f"https://localhost:{secure.port}/other").status_code == 404
    assert len(secure.requests) == calls[1] + 1  # the new one was forwarded
    entries = json.loads(path.read_text())["log"]["entries"]
    assert [e["request"]["url"] for e in entries] == [
        plain,
        tls,
        f"https://localhost:{secure.port}/other",
    ]


def test_forward_without_upstream_needs_a_proxy(server: TestServer) -> None:
    with pytest.raises(TestServerError, match=r"start the server with proxy=True"):
        server.forward()
    with pytest.raises(TestServerError, match="does not exist"):
        server.forward("http://x", verify="/no/such/ca.pem")
    with pytest.raises(TestServerError, match="must be True, False or the path of a CA file"):
        server.forward("http://x", verify=3)  # type: ignore[arg-type]


def test_a_ca_file_without_certificates_is_a_502(
    server: TestServer, secure: TestServer, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("no certificate here\n")
    server.forward(secure.get_url(""), verify=empty)
    answer = requests.get(server.get_url("/items"), timeout=5)
    assert answer.status_code == 502 and "holds no PEM certificate" in answer.text
    assert "holds no PEM certificate" in server.errors[0]["message"]
    server.errors.clear()


def test_a_direct_request_to_a_proxy_forwarding_to_the_host_meant_is_a_502(engine: str) -> None:
    with TestServer(engine=engine, proxy=True) as proxy:
        proxy.forward()
        answer = requests.get(proxy.get_url("/x"), timeout=5)
        assert answer.status_code == 502 and "did not come through the proxy" in answer.text
        assert "did not come through the proxy" in proxy.errors[0]["message"]
        proxy.errors.clear()


def test_an_https_upstream_trusted_through_its_ca(engine: str, secure: TestServer) -> None:
    """
    forward(https upstream, verify=its CA file): the TLS connection to the
    upstream is flushed by the serving reactor (it hung in the thread engine,
    whose global reactor does not run).
    """
    with TestServer(engine=engine) as server:
        server.forward(secure.get_url(""), verify=Path(secure.ca_path))
        assert requests.get(server.get_url("/items"), timeout=5).json() == ["secure"]
        assert server.response["forward_verify"] == secure.ca_path
