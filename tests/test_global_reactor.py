"""
A callback that schedules work on ``twisted.internet.reactor`` (issue 19,
defect 1). The blocking and asyncio faces serve from a private reactor: the
client gets a ``500`` naming ``request.reactor`` within a second, and the
same is a server-side error, instead of waiting for ever. The server process
of the subprocess engine serves from its own global reactor: there the
callback works. (``DeferredTestServer`` under trial: tests/trial/test_deferred.py.)
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import requests

from txtestserver import AsyncTestServer, TestServer
from txtestserver._http.global_reactor import GLOBAL_REACTOR

CALLBACKS = ["tests.callbacks:uses_global_reactor", "tests.callbacks:uses_global_reactor_later"]


def expect(engine: str, status: int, text: str, errors: list[Any], seconds: float) -> None:
    assert seconds < 1
    if engine == "subprocess":
        assert (status, text, errors) == (200, "late", [])
        return
    assert status == 500
    assert "request.reactor" in text and GLOBAL_REACTOR in text
    assert [e["message"] for e in errors] == [GLOBAL_REACTOR]


@pytest.mark.parametrize("callback", CALLBACKS, ids=["at-once", "in-a-later-step"])
def test_blocking_face(engine: str, callback: str) -> None:
    with TestServer(engine=engine) as server:
        server.response["callback"] = callback
        started = time.monotonic()
        answer = requests.get(server.get_url(), timeout=10)
        expect(
            engine, answer.status_code, answer.text, list(server.errors), time.monotonic() - started
        )
        server.errors.clear()
        # The server goes on serving.
        server.response["callback"] = None
        assert requests.get(server.get_url(), timeout=10).ok


@pytest.mark.parametrize("callback", CALLBACKS, ids=["at-once", "in-a-later-step"])
def test_asyncio_face(engine: str, callback: str) -> None:
    async def main() -> None:
        async with AsyncTestServer(engine=engine) as server:
            server.response["callback"] = callback
            started = time.monotonic()
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.get(server.get_url())
            seconds = time.monotonic() - started
            expect(engine, answer.status_code, answer.text, list(server.errors), seconds)
            server.errors.clear()

    asyncio.run(main())
