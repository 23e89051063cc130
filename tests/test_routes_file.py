"""
A conversation from a routes document: ``server.load_routes(path)`` with
JSON and TOML files and dicts, in both engines, checked with requests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from txtestserver import TestServer, TestServerError

DOCUMENT: dict[str, Any] = {
    "response": {"code": 404, "data": "no such page"},
    "routes": [
        {
            "path": "/api/token",
            "method": "POST",
            "form": {"grant_type": "client_credentials"},
            "name": "token",
            "response": {"code": 201, "json": {"token": "t"}},
        },
        {
            "pattern": r"/items/\d+",
            "query": {"page": "2"},
            "queue": [{"code": 503, "count": 2}],
            "response": {"json": {"id": 1}, "headers": {"X-Item": "yes"}},
        },
        {
            "path": "/events",
            "response": {
                "headers": {"Content-Type": "text/event-stream"},
                "chunks": ["data: one\n\n", "data: two\n\n"],
            },
        },
        {"path": "/flaky", "response_once": {"fault": "reset"}, "response": {"data": "ok"}},
    ],
}

TOML = """
[response]
code = 404

[[routes]]
path = "/api/token"
method = "POST"
name = "token"
response = { code = 201, json = { token = "t" } }

[[routes]]
pattern = '/items/\\d+'
queue = [{ code = 503, count = 1 }]
response = { json = { id = 1 } }
"""


def _conversation(server: TestServer) -> None:
    token = requests.post(server.get_url("/api/token"), data={"grant_type": "client_credentials"})
    assert (token.status_code, token.json()) == (201, {"token": "t"})
    assert server.request["route"] == "token"


def test_a_json_file_serves_the_whole_conversation(server: TestServer, tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(DOCUMENT), encoding="utf-8")
    routes = server.load_routes(path)
    assert routes[0].name == "token"
    assert [route.name for route in server.routes] == [route.name for route in routes]
    assert len(server.routes) == 4

    _conversation(server)
    url = server.get_url("/items/7?page=2")
    assert [requests.get(url).status_code for _ in range(3)] == [503, 503, 200]
    item = requests.get(url)
    assert (item.json(), item.headers["X-Item"]) == ({"id": 1}, "yes")
    assert requests.get(server.get_url("/items/7?page=3")).status_code == 404
    with requests.get(server.get_url("/events"), stream=True) as events:
        assert b"".join(events.iter_content(None)) == b"data: one\n\ndata: two\n\n"
    with pytest.raises(requests.ConnectionError):
        requests.get(server.get_url("/flaky"))
    assert requests.get(server.get_url("/flaky")).text == "ok"
    missing = requests.get(server.get_url("/nowhere"))
    assert (missing.status_code, missing.text) == (404, "no such page")


def test_a_toml_file_by_its_suffix(server: TestServer, tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(TOML, encoding="utf-8")
    server.load_routes(str(path))
    _conversation(server)
    statuses = [requests.get(server.get_url("/items/3")).status_code for _ in range(2)]
    assert statuses == [503, 200]
    assert requests.get(server.get_url("/other")).status_code == 404


def test_a_dict_and_a_server_queue_for_one_method(server: TestServer) -> None:
    server.load_routes({"queue": [{"code": 202, "method": "POST", "count": 1}]})
    assert requests.get(server.get_url("/")).status_code == 200
    assert requests.post(server.get_url("/")).status_code == 202
    assert requests.post(server.get_url("/")).status_code == 200


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"routs": []}, r"unknown name 'routs' \(did you mean 'routes'\?\)"),
        ({"routes": [{"path": "/a", "respons": {}}]}, r"routes\[0\]: unknown name 'respons'"),
        ({"routes": [{"path": "/a", "pattern": "/a"}]}, r"routes\[0\] gives both"),
        ({"routes": [{"pattern": "/a("}]}, r"routes\[0\]: 'pattern' '/a\(' does not compile"),
        ({"routes": [{"path": "/a", "response": {"code": 1000}}]}, r"routes\[0\]: .*code"),
        ({"routes": [{"path": "/a", "response": {"jsn": 1}}]}, r"routes\[0\]: .*jsn"),
        ({"routes": [{"path": "/a", "queue": [{"code": 503, "cont": 2}]}]}, r"'queue'\[0\]"),
        ({"routes": {"path": "/a"}}, r"'routes' is a list"),
        ({"response": ["code"]}, r"'response' is an object"),
    ],
)
def test_a_mistake_is_named_and_leaves_no_route(
    server: TestServer, document: dict[str, Any], message: str
) -> None:
    document = (
        {"routes": [{"path": "/before"}], **document} if "routes" not in document else document
    )
    with pytest.raises(TestServerError, match=message):
        server.load_routes(document)
    assert server.routes == []
    assert requests.get(server.get_url("/a")).status_code == 200


def test_a_file_that_is_not_json_names_the_file(server: TestServer, tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text("{'routes': []}", encoding="utf-8")
    with pytest.raises(TestServerError, match=r"routes.json' is not valid JSON"):
        server.load_routes(path)
    with pytest.raises(TestServerError, match="cannot read the routes file"):
        server.load_routes(tmp_path / "missing.json")
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(TestServerError, match="must hold an object with a 'routes' list"):
        server.load_routes(path)
