"""
The journal as HAR 1.2 (issue 22): ``server.requests.to_har()`` and
``server.save_har(path)``, in both engines, with real clients, validated
against the published HAR 1.2 JSON schema (tests/data/har-schema).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import requests
from referencing import Registry, Resource

from txtestserver import TestServer

SCHEMA_DIR = Path(__file__).parent / "data" / "har-schema"


def _registry() -> Registry[Any]:
    resources = []
    for path in SCHEMA_DIR.glob("*.json"):
        schema = json.loads(path.read_text())
        resources.append((path.name, Resource.from_contents(schema)))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


REGISTRY = _registry()
HAR_SCHEMA = json.loads((SCHEMA_DIR / "har.json").read_text())


def validate(document: dict[str, Any]) -> None:
    """Fail unless ``document`` is a valid HAR 1.2 document."""
    validator = jsonschema.Draft6Validator(
        HAR_SCHEMA, registry=REGISTRY, format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER
    )
    validator.validate(document)


def test_schema_rejects_a_broken_document() -> None:
    """The validator is live: a HAR without its entries' request fails."""
    with pytest.raises(jsonschema.ValidationError):
        validate(
            {"log": {"version": "1.2", "creator": {"name": "x", "version": "1"}, "entries": [{}]}}
        )


def test_every_field(server: TestServer) -> None:
    route = server.route("/items", method="POST", name="items")
    route.response["json"] = {"made": 1}
    route.response["code"] = 201
    route.response["headers"] = {"X-Made": "yes"}
    route.response["cookies"] = {"sid": "abc"}
    url = server.get_url("/items?q=a+b&n=1")
    answer = requests.post(url, json={"name": "x"}, cookies={"c1": "v1"}, timeout=5)
    assert answer.status_code == 201
    har = server.requests.to_har()
    validate(har)
    [entry] = har["log"]["entries"]
    request, response = entry["request"], entry["response"]
    assert request["method"] == "POST"
    assert request["url"] == url.replace("+", "+")
    assert request["httpVersion"] == "HTTP/1.1"
    assert {"name": "Content-Type", "value": "application/json"} in request["headers"]
    assert request["cookies"] == [{"name": "c1", "value": "v1"}]
    assert request["queryString"] == [{"name": "q", "value": "a b"}, {"name": "n", "value": "1"}]
    assert request["postData"] == {"mimeType": "application/json", "text": '{"name": "x"}'}
    assert request["bodySize"] == len('{"name": "x"}')
    assert response["status"] == 201
    assert response["statusText"] == "Created"
    names = {h["name"].lower(): h["value"] for h in response["headers"]}
    assert names["x-made"] == "yes"
    assert response["cookies"][0]["name"] == "sid"
    assert response["cookies"][0]["value"] == "abc"
    assert json.loads(response["content"]["text"]) == {"made": 1}
    assert response["content"]["size"] == len(answer.content)
    assert response["content"]["mimeType"].startswith("application/json")
    assert entry["connection"] == str(server.requests[0]["connection"])
    assert entry["serverIPAddress"] == "127.0.0.1"
    assert entry["_route"] == "items"
    assert entry["time"] >= 0 and entry["timings"]["wait"] >= 0
    assert entry["startedDateTime"].endswith("+00:00")


@pytest.mark.parametrize("client", ["httpx", "curl"])
def test_clients_and_binary_bodies(server: TestServer, client: str) -> None:
    server.response["data"] = bytes(range(256))
    server.response["headers"] = {"Content-Type": "application/octet-stream"}
    url = server.get_url("/bin")
    if client == "httpx":
        httpx.put(url, content=b"\xff\x00raw", timeout=5)
    else:
        subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-X", "PUT", "--data-binary", "@-", url],
            input=b"\xff\x00raw",
            check=True,
            timeout=10,
        )
    har = server.requests.to_har()
    validate(har)
    [entry] = har["log"]["entries"]
    assert entry["request"]["postData"]["comment"] == "base64"
    content = entry["response"]["content"]
    assert content["encoding"] == "base64" and content["size"] == 256


def test_faults_and_the_server_s_own_answer(server: TestServer) -> None:
    """What a fault did, and a request no route answered, say so."""
    server.route("/reset").response["fault"] = "reset"
    with pytest.raises(requests.ConnectionError):
        requests.get(server.get_url("/reset"), timeout=5)
    server.wait_requests(1)
    requests.get(server.get_url("/plain"), timeout=5)
    har = server.requests.to_har()
    validate(har)
    reset, plain = har["log"]["entries"]
    assert reset["_fault"] == "reset" and reset["response"]["status"] == 0
    assert "reset" in reset["response"]["comment"]
    assert plain["_route"] is None and plain["response"]["status"] == 404  # no route answers it


def test_save_har_after_stop(engine: str, tmp_path: Path) -> None:
    """save_har() writes the journal as it was, also once stopped."""
    with TestServer(engine=engine) as server:
        server.response["data"] = b"x" * 100_000
        requests.get(server.get_url("/big"), timeout=5)
    path = server.save_har(tmp_path / "sub" / "out.har")
    document = json.loads(path.read_text(encoding="utf-8"))
    validate(document)
    [entry] = document["log"]["entries"]
    assert entry["request"]["url"].endswith("/big")
    assert entry["response"]["content"]["size"] == 100_000
    assert len(entry["response"]["content"]["text"]) == 64 * 1024
    assert "65536 of 100000" in entry["response"]["content"]["comment"]


def test_route_requests_to_har(server: TestServer) -> None:
    route = server.route("/a")
    requests.get(server.get_url("/a"), timeout=5)
    requests.get(server.get_url("/b"), timeout=5)
    [entry] = route.requests.to_har()["log"]["entries"]
    assert entry["request"]["url"].endswith("/a")
    assert len(server.requests.to_har()["log"]["entries"]) == 2


def test_websocket_messages(engine: str) -> None:
    """
    A WebSocket handshake's entry carries its messages in
    ``_webSocketMessages``, as Chromium writes them.
    """
    import websocket  # websocket-client

    with TestServer(engine=engine) as server:
        ws = server.websocket("/ws")
        ws.echo()
        client = websocket.create_connection(ws.url, timeout=5)
        client.send("hi")
        assert client.recv() == "hi"
        client.send_binary(b"\x00\x01")
        assert client.recv() == b"\x00\x01"
        client.close()
        ws.wait_messages(6, direction=None)
        har = server.requests.to_har()
    validate(har)
    [entry] = har["log"]["entries"]
    assert entry["response"]["status"] == 101
    assert entry["_resourceType"] == "websocket"
    messages = [(m["type"], m["opcode"], m["data"]) for m in entry["_webSocketMessages"]]
    assert messages[:4] == [
        ("send", 1, "hi"),
        ("receive", 1, "hi"),
        ("send", 2, "AAE="),
        ("receive", 2, "AAE="),
    ]


def test_timings_of_a_later_answer(server: TestServer) -> None:
    """An answer given after a sleep has its wait in ``time`` and ``timings``."""
    server.response["sleep"] = 0.05
    requests.get(server.get_url("/slow"), timeout=5)
    server.wait_request()
    [entry] = server.requests.to_har()["log"]["entries"]
    assert entry["time"] >= 45 and entry["timings"]["wait"] == entry["time"]
