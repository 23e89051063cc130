"""ServerConfig: one frozen value, checked once, crossing to the server process as JSON."""

from __future__ import annotations

import dataclasses

import pytest

from txtestserver import DeferredTestServer, TestServer, TestServerError
from txtestserver._config import ServerConfig


def test_round_trips_through_json() -> None:
    config = ServerConfig(
        address="::1", port=8123, keep_alive=True, body_limit=0, header_count_limit=3
    )
    assert ServerConfig.from_json(config.to_json()) == config


def test_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ServerConfig().port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "document",
    ['{"port": "80"}', '{"nope": 1}', "not json", "[]"],
)
def test_a_bad_document_is_refused_with_a_clear_error(document: str) -> None:
    with pytest.raises(TestServerError, match=r"not a server configuration|port must be"):
        ServerConfig.from_json(document)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("port", -1, "port must be an int from 0 to 65535"),
        ("port", 70000, "port must be an int from 0 to 65535"),
        ("port", "80", "port must be an int from 0 to 65535"),
        ("address", "", "address must name an interface"),
    ],
)
def test_every_face_checks_its_parameters_in_the_constructor(
    name: str, value: object, message: str
) -> None:
    for cls in (TestServer, DeferredTestServer):
        with pytest.raises(TestServerError, match=message):
            cls(**{name: value})  # type: ignore[arg-type]


def test_keep_alive_is_set_by_start() -> None:
    with TestServer() as server:
        assert server.config.keep_alive is False
    server.start(keep_alive=True)
    try:
        assert server.config.keep_alive is True
    finally:
        server.stop()
