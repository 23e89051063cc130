"""The response key registry: one default and one check per key."""

from __future__ import annotations

from typing import Any

import pytest

from txtestserver import TestServer, TestServerError
from txtestserver._model.keys import KEYS, check_value, defaults


def test_every_key_has_its_default_in_the_view(server: TestServer) -> None:
    assert {name: server.response[name] for name in KEYS} == defaults()


@pytest.mark.parametrize("name", sorted(KEYS))
def test_every_default_passes_its_own_check(name: str) -> None:
    assert check_value(name, KEYS[name].default, portable=True) == KEYS[name].default


@pytest.mark.parametrize(
    ("key", "value"),
    [("code", 99), ("sleep", -1), ("charset", "no-such-codec"), ("headers", 5)],
)
def test_the_same_check_applies_to_every_slot_and_method(
    server: TestServer, key: str, value: Any
) -> None:
    for view, name in ((server.response, "response"), (server.response_once, "response_once")):
        for where in (key, f"post.{key}"):
            with pytest.raises(TestServerError, match=rf"{name}\['{where}'\]"):
                view[where] = value
