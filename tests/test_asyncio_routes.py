"""
Routes, answer queues, JSON and the test_server compatibility API through
the asyncio face (``AsyncTestServer``), with httpx and aiohttp as clients,
in both engines.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
import httpx
import pytest

from txtestserver import AsyncTestServer, Response, TestServerError

pytestmark = pytest.mark.asyncio


async def test_a_conversation_with_routes_and_a_queue(engine: str) -> None:
    async with AsyncTestServer(engine=engine) as server:
        server.response["code"] = 401
        token = server.route("/oauth/token", method="POST", form={"grant": "x"})
        token.response["json"] = {"access_token": "t"}
        api = server.route(re.compile(r"/api/items/\d+"), headers={"Authorization": "Bearer t"})
        api.add_response(code=503, count=1)
        api.response["json"] = {"id": 7}
        async with httpx.AsyncClient() as client:
            grant = await client.post(server.get_url("/oauth/token"), data={"grant": "x"})
            assert grant.headers["content-type"] == "application/json"
            headers = {"Authorization": f"Bearer {grant.json()['access_token']}"}
            first = await client.get(server.get_url("/api/items/7"), headers=headers)
            second = await client.get(server.get_url("/api/items/7"), headers=headers)
            unauthorised = await client.get(server.get_url("/api/items/7"))
        assert (first.status_code, second.status_code) == (503, 200)
        assert second.json() == {"id": 7}
        assert unauthorised.status_code == 401
        await server.wait_requests(4)
        assert [r.path for r in api.requests] == ["/api/items/7"] * 2
        assert [r["route"] for r in server.requests] == [token.name, api.name, api.name, None]
        assert server.routes == [token, api]


async def test_concurrent_clients_take_each_queued_answer_once(engine: str) -> None:
    async with AsyncTestServer(engine=engine) as server:
        for n in range(20):
            server.add_response(Response(data=b"%d" % n))
        server.response["data"] = b"after"
        async with aiohttp.ClientSession() as session:

            async def one() -> bytes:
                async with session.get(server.get_url()) as response:
                    return await response.read()

            bodies = await asyncio.gather(*(one() for _ in range(25)))
        assert sorted(bodies) == sorted([b"%d" % n for n in range(20)] + [b"after"] * 5)


async def test_json_request_get_request_and_compat_callbacks(engine: str) -> None:
    async with AsyncTestServer(engine=engine) as server:
        with pytest.raises(TestServerError, match="no request has arrived yet"):
            server.get_request()
        server.route("/h").response["callback"] = "tests.callbacks:handler_methods"
        server.route("/g").response["callback"] = "tests.callbacks:sleeps_then_returns"
        async with httpx.AsyncClient() as client:
            handled = await client.get(server.get_url("/h"))
            paused = await client.get(server.get_url("/g"))
            await client.put(server.get_url("/doc"), json={"title": "t"})
        assert handled.status_code == 201
        assert handled.headers.get_list("x-step") == ["one", "two"]
        assert paused.content == b"returned after a pause"
        request = server.get_request()
        assert (request.method, request.path, request.json) == ("PUT", "/doc", {"title": "t"})
