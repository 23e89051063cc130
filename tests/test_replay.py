"""
Replaying a recorded conversation (issue 22): ``server.load_har(path)``
and ``txtestserver --har FILE``. Each test records a conversation with one
txtestserver (save_har), then replays it with another, in both engines, to
real clients (requests, httpx, aiohttp, curl).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import requests

from txtestserver import ServerSideError, TestServer, TestServerError

from .test_cli import WAIT, Command, command  # noqa: F401 (the fixture)


def record(tmp_path: Path, script: Callable[[TestServer], None]) -> Path:
    """Serve routes set by ``script``'s first lines, run it, save the HAR."""
    with TestServer() as upstream:
        script(upstream)
        return upstream.save_har(tmp_path / "recorded.har")


def api(upstream: TestServer) -> None:
    """A small API's conversation: a token, a retried list, a binary file, a cookie."""
    upstream.route("/token", method="POST").response["json"] = {"token": "t1"}
    items = upstream.route("/items", method="GET")
    items.add_response(code=503, headers={"Retry-After": "0"})
    items.add_response(json=[1, 2])
    upstream.route("/items", method="GET", query={"page": "2"}).response["json"] = [3]
    upstream.route("/logo.png").response.update(
        {"data": b"\x89PNG\x00\xff", "headers": {"Content-Type": "image/png"}}
    )
    login = upstream.route("/login")
    login.response["cookies"] = {"session": "s1"}
    base = upstream.get_url("")
    assert requests.post(base + "token", timeout=5).json() == {"token": "t1"}
    assert requests.get(base + "items", timeout=5).status_code == 503
    assert requests.get(base + "items", timeout=5).json() == [1, 2]
    assert requests.get(base + "items?page=2", timeout=5).json() == [3]
    assert requests.get(base + "logo.png", timeout=5).content == b"\x89PNG\x00\xff"
    requests.get(base + "login", timeout=5)


def test_replays_to_requests_in_sequence(server: TestServer, tmp_path: Path) -> None:
    path = record(tmp_path, api)
    routes = server.load_har(path)
    assert [r.name for r in routes][:2] == ["recorded POST /token", "recorded GET /items"]
    base = server.get_url("")
    assert requests.post(base + "token", timeout=5).json() == {"token": "t1"}
    first = requests.get(base + "items", timeout=5)
    assert (first.status_code, first.headers["Retry-After"]) == (503, "0")
    assert requests.get(base + "items", timeout=5).json() == [1, 2]
    assert requests.get(base + "items", timeout=5).json() == [1, 2]  # the last one repeats
    assert requests.get(base + "items?page=2", timeout=5).json() == [3]
    logo = requests.get(base + "logo.png", timeout=5)
    assert (logo.content, logo.headers["Content-Type"]) == (b"\x89PNG\x00\xff", "image/png")
    assert requests.get(base + "login", timeout=5).cookies["session"] == "s1"
    server.check()  # nothing unexpected


def test_replays_to_httpx_aiohttp_and_curl(server: TestServer, tmp_path: Path) -> None:
    path = record(tmp_path, api)
    server.load_har(path)
    url = server.get_url("/items?page=2")
    assert httpx.get(url, timeout=5).json() == [3]

    async def fetch() -> Any:
        async with aiohttp.ClientSession() as session:
            async with session.post(server.get_url("/token")) as answer:
                return await answer.json()

    assert asyncio.run(fetch()) == {"token": "t1"}
    out = subprocess.run(
        ["curl", "-s", server.get_url("/logo.png")], capture_output=True, check=True, timeout=10
    )
    assert out.stdout == b"\x89PNG\x00\xff"


def test_an_unknown_request_is_a_server_side_error(server: TestServer, tmp_path: Path) -> None:
    server.load_har(record(tmp_path, api))
    missing = requests.get(server.get_url("/itemz"), timeout=5)
    assert missing.status_code == 404
    assert "the closest is route 'recorded GET" in missing.text
    with pytest.raises(ServerSideError, match="unexpected request"):
        server.check()
    # The method counts too (match_on has it by default).
    assert requests.delete(server.get_url("/token"), timeout=5).status_code == 404
    server.errors.clear()


def bodies(upstream: TestServer) -> None:
    search = upstream.route("/search", method="POST")
    search.add_response(json={"found": "a"})
    search.add_response(json={"found": "b"})
    url = upstream.get_url("/search")
    requests.post(url, json={"q": "a"}, headers={"X-Tenant": "one"}, timeout=5)
    requests.post(url, json={"q": "b"}, headers={"X-Tenant": "two"}, timeout=5)


@pytest.mark.parametrize(
    ("match_on", "send", "expected"),
    [
        # Method and URL only: the answers in sequence, whatever the body.
        (("method", "url"), [({"q": "b"}, "one"), ({"q": "a"}, "one")], ["a", "b"]),
        # The body too: each body gets its own answer.
        (("method", "url", "body"), [({"q": "b"}, "one"), ({"q": "a"}, "one")], ["b", "a"]),
        # A header too.
        (("method", "path", "headers"), [({}, "two"), ({}, "one")], ["b", "a"]),
    ],
)
def test_match_on(
    server: TestServer,
    tmp_path: Path,
    match_on: tuple[str, ...],
    send: list[tuple[Any, str]],
    expected: list[str],
) -> None:
    server.load_har(record(tmp_path, bodies), match_on=match_on)
    found = [
        requests.post(
            server.get_url("/search"), json=body, headers={"X-Tenant": tenant}, timeout=5
        ).json()["found"]
        for body, tenant in send
    ]
    assert found == expected


def test_match_on_body_refuses_another_body(server: TestServer, tmp_path: Path) -> None:
    server.load_har(record(tmp_path, bodies), match_on=("method", "url", "body"))
    answer = requests.post(server.get_url("/search"), json={"q": "c"}, timeout=5)
    assert answer.status_code == 404 and "the route wants exactly" in answer.text
    server.errors.clear()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{nope", "is not valid JSON"),
        ('{"log": {}}', "holds no log.entries list"),
        ('{"log": {"entries": [{"request": {}}]}}', "HAR entry 0 is not a request and response"),
    ],
)
def test_a_broken_file_is_refused(
    server: TestServer, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "broken.har"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TestServerError, match=message):
        server.load_har(path)
    assert server.routes == []


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"mode": "sometimes"}, "mode is one of none, once, new_episodes, all"),
        ({"match_on": ("method", "uri")}, "match_on names 'uri': the matchers are method, url"),
        ({"mode": "once"}, r"call server.forward\(upstream\) first"),
    ],
)
def test_bad_arguments(server: TestServer, tmp_path: Path, keywords: Any, message: str) -> None:
    with pytest.raises(TestServerError, match=message):
        server.load_har(record(tmp_path, api), **keywords)
    with pytest.raises(TestServerError, match="cannot read the HAR file"):
        server.load_har(tmp_path / "missing.har")


def test_command_line_har(command: type[Command], engine: str, tmp_path: Path) -> None:  # noqa: F811
    path = record(tmp_path, api)
    cli = command("--port=0", f"--engine={engine}", f"--har={path}")
    base = f"http://127.0.0.1:{cli.port()}/"
    assert requests.get(base + "items", timeout=WAIT).status_code == 503
    assert requests.get(base + "items", timeout=WAIT).json() == [1, 2]
    cli.read_until(r"GET /items: answered 200 by the route 'recorded GET /items'")
    assert cli.stop(signal.SIGINT) == 0


def test_a_devtools_style_har_replays(server: TestServer, tmp_path: Path) -> None:
    """A HAR another tool wrote (absolute URLs of another host, gzip named, base64 body)."""
    path = tmp_path / "browser.har"
    entry = {
        "startedDateTime": "2026-01-01T00:00:00.000Z",
        "time": 1,
        "request": {
            "method": "GET",
            "url": "https://api.example.com/v1/users%20list?id=7",
            "httpVersion": "HTTP/2",
            "cookies": [],
            "headers": [{"name": ":authority", "value": "api.example.com"}],
            "queryString": [{"name": "id", "value": "7"}],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": 200,
            "statusText": "",
            "httpVersion": "HTTP/2",
            "cookies": [],
            "headers": [
                {"name": "content-encoding", "value": "gzip"},
                {"name": "content-type", "value": "application/json"},
            ],
            "content": {
                "size": 8,
                "mimeType": "application/json",
                "text": "eyJpZCI6N30=",
                "encoding": "base64",
            },
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 1, "receive": 0},
    }
    path.write_text(json.dumps({"log": {"version": "1.2", "entries": [entry]}}))
    server.load_har(path)
    answer = requests.get(server.get_url("/v1/users%20list?id=7"), timeout=5)
    assert answer.json() == {"id": 7}
    assert "Content-Encoding" not in answer.headers  # the HAR holds the body decoded


def test_a_recorded_fault_is_replayed(server: TestServer, tmp_path: Path) -> None:
    def faulty(upstream: TestServer) -> None:
        upstream.route("/reset").response["fault"] = "reset"
        with pytest.raises(requests.ConnectionError):
            requests.get(upstream.get_url("/reset"), timeout=5)
        upstream.wait_requests(1)

    server.load_har(record(tmp_path, faulty))
    with pytest.raises(requests.ConnectionError):
        requests.get(server.get_url("/reset"), timeout=5)
    server.wait_requests(1)
    assert server.requests[0]["fault"] == "reset"
