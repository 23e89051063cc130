"""
vcrpy / pytest-recording cassettes (issue 22): ``server.load_cassette(path)``
replays a cassette that vcrpy itself records in the test, to httpx and
aiohttp through a real socket, in both engines; a cassette recorded through
``forward()`` is one vcrpy replays.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import requests
import vcr

from txtestserver import TestServer, TestServerError


def record_with_vcrpy(path: Path) -> None:
    """vcrpy records a conversation with a service (a txtestserver) made by requests and httpx."""
    with TestServer() as service:
        service.route("/users", method="POST").response.update(
            {"code": 201, "json": {"id": 7}, "headers": {"X-Made": "yes"}}
        )
        ping = service.route("/ping")
        ping.add_response(code=503)
        ping.add_response(data=b"pong")
        service.route("/logo").response["data"] = b"\x89PNG\xff\x00"
        service.route("/zipped").response.update(
            {"data": gzip.compress(b"unzipped"), "headers": {"Content-Encoding": "gzip"}}
        )
        base = service.get_url("")
        with vcr.use_cassette(str(path), record_mode="all"):
            assert requests.post(base + "users?team=a", json={"name": "x"}).status_code == 201
            assert httpx.get(base + "ping").status_code == 503
            assert httpx.get(base + "ping").content == b"pong"
            assert httpx.get(base + "logo").content == b"\x89PNG\xff\x00"
            assert httpx.get(base + "zipped").content == b"unzipped"  # kept compressed
            assert requests.get(base + "zipped").content == b"unzipped"  # kept decoded


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_vcrpy_cassette_replays_to_httpx_and_aiohttp(
    server: TestServer, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"cassette{suffix}"
    if suffix == ".json":
        with TestServer() as service:
            service.response["json"] = {"id": 7}
            with vcr.use_cassette(str(path), record_mode="all", serializer="json"):
                httpx.post(service.get_url("/users?team=a"), json={"name": "x"})
        server.load_cassette(path)
        answer = httpx.post(server.get_url("/users?team=a"), json={"name": "x"})
        assert answer.json() == {"id": 7}
        return
    record_with_vcrpy(path)
    server.load_cassette(path)
    base = server.get_url("")
    made = httpx.post(base + "users?team=a", json={"name": "x"})
    assert (made.status_code, made.json(), made.headers["X-Made"]) == (201, {"id": 7}, "yes")
    assert httpx.get(base + "ping").status_code == 503  # in sequence
    assert httpx.get(base + "ping").content == b"pong"

    async def fetch() -> list[Any]:
        async with aiohttp.ClientSession() as session:
            found = []
            for name in ("logo", "zipped", "zipped"):
                async with session.get(base + name) as answer:
                    found.append(await answer.read())
            return found

    assert asyncio.run(fetch()) == [b"\x89PNG\xff\x00", b"unzipped", b"unzipped"]
    server.check()


def test_a_cassette_recorded_through_forward_replays_in_vcrpy(engine: str, tmp_path: Path) -> None:
    path = tmp_path / "recorded.yaml"
    with TestServer() as service:
        service.response["json"] = {"ok": True}
        with TestServer(engine=engine) as recorder:
            recorder.forward(service.get_url(""))
            recorder.load_cassette(path, mode="once")
            assert requests.get(recorder.get_url("/status?full=1"), timeout=5).json() == {
                "ok": True
            }
            url = recorder.get_url("/status?full=1")
    # vcrpy serves the cassette to requests, with no server at all.
    with vcr.use_cassette(str(path), record_mode="none"):
        assert requests.get(url, timeout=5).json() == {"ok": True}
    # And txtestserver replays it again.
    with TestServer(engine=engine) as replayer:
        replayer.load_cassette(path)
        assert requests.get(replayer.get_url("/status?full=1"), timeout=5).json() == {"ok": True}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("interactions: [", "is not valid YAML"),
        ("version: 1\n", "holds no 'interactions' list"),
        ("interactions:\n- request: {}\n", "interaction 0 is not a request and response"),
    ],
)
def test_a_broken_cassette_is_refused(
    server: TestServer, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(content)
    with pytest.raises(TestServerError, match=message):
        server.load_cassette(path)
    assert server.routes == []


def test_json_cassette_errors(server: TestServer, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"interactions": {}}))
    with pytest.raises(TestServerError, match="holds no 'interactions' list"):
        server.load_cassette(path)
