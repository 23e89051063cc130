"""The engine registry: an engine is chosen by name."""

from __future__ import annotations

import pytest

from txtestserver import DeferredTestServer, TestServer, TestServerError
from txtestserver._engines import ENGINES


@pytest.mark.parametrize("name", ["threads", "", None, 3])
def test_an_unknown_engine_names_the_known_ones(name: object) -> None:
    for cls in (TestServer, DeferredTestServer):
        with pytest.raises(TestServerError, match=r"unknown engine.*'thread' or 'subprocess'"):
            cls(engine=name)  # type: ignore[arg-type]


def test_every_registered_engine_serves(engine: str) -> None:
    assert set(ENGINES) == {"thread", "subprocess"}
    with TestServer(engine=engine) as server:
        from urllib.request import urlopen

        server.response["data"] = engine
        assert urlopen(server.get_url()).read() == engine.encode()
