"""
Streams and faults through the asyncio face (``AsyncTestServer``) with the
asyncio clients (aiohttp, httpx's AsyncClient), in both engines: what each
raises for each fault, streams read as they arrive, Server-Sent Events with
an SSE client, and ``stop()`` awaited mid-stream.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import httpx
import pytest
from httpx_sse import aconnect_sse

from tests._clients import FAULT_OUTCOMES, HANGING, PATIENCE, TIMEOUT, full_name, resolve
from tests._leaks import assert_nothing_held
from txtestserver import AsyncTestServer, sse

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("logged_errors")]

BODY = b"0123456789" * 10


async def get_with(client: str, url: str, timeout: float) -> bytes:
    """One GET through an asyncio client; the body."""
    if client == "aiohttp":
        session_timeout = aiohttp.ClientTimeout(total=timeout)
        async with aiohttp.ClientSession(timeout=session_timeout) as session:
            async with session.get(url) as answer:
                return await answer.read()
    async with httpx.AsyncClient(timeout=timeout) as http:
        return (await http.get(url)).content


@pytest.mark.parametrize("client", ["aiohttp", "httpx"])
@pytest.mark.parametrize("fault", list(FAULT_OUTCOMES))
async def test_what_each_asyncio_client_raises(engine: str, fault: str, client: str) -> None:
    """The asyncio clients raise what the table says (httpx: as its blocking client)."""
    async with AsyncTestServer(engine=engine) as server:
        server.response["data"] = BODY
        server.response["fault"] = fault
        timeout = TIMEOUT if fault in HANGING else PATIENCE
        with pytest.raises(Exception) as caught:
            await get_with(client, server.get_url(f"/{fault}"), timeout)
        expected = FAULT_OUTCOMES[fault][client].raised
        assert full_name(type(caught.value)) == full_name(resolve(expected))
        assert {r["fault"] for r in server.requests} == {fault}
        assert server.request["done"] is (fault not in HANGING)
        if fault not in HANGING:
            await server.wait_request(5)
        del server.response["fault"]
        await asyncio.to_thread(assert_nothing_held, server)
        assert await get_with(client, server.get_url("/after"), PATIENCE) == BODY


async def test_streams_arrive_as_they_are_written(engine: str) -> None:
    async with AsyncTestServer(engine=engine) as server:
        server.response["chunks"] = [b"one ", "two ", b"three"]
        server.response["chunk_delay"] = 0.05
        async with aiohttp.ClientSession() as session:
            async with session.get(server.get_url("/aiohttp")) as answer:
                assert answer.headers["Transfer-Encoding"] == "chunked"
                pieces = [piece async for piece in answer.content.iter_any()]
        assert b"".join(pieces) == b"one two three"
        async with httpx.AsyncClient() as http:
            async with http.stream("GET", server.get_url("/httpx")) as answer:
                body = b"".join([piece async for piece in answer.aiter_raw()])
        assert body == b"one two three"
        await server.wait_requests(2, 5)


async def test_sse_with_an_asyncio_sse_client(engine: str) -> None:
    async with AsyncTestServer(engine=engine) as server:
        server.response["headers"] = {"Content-Type": "text/event-stream"}
        server.response["chunks"] = sse(["hello", {"event": "update", "data": [1, 2]}])
        async with httpx.AsyncClient() as http:
            async with aconnect_sse(http, "GET", server.get_url("/events")) as source:
                events = [(e.event, e.data) async for e in source.aiter_sse()]
        assert events == [("message", "hello"), ("update", "[1, 2]")]


async def test_stop_awaited_mid_stream(engine: str) -> None:
    server = AsyncTestServer(engine=engine)
    await server.start()
    server.response["chunks"] = [b"first", b"never"]
    server.response["chunk_delay"] = 30.0
    received: list[bytes] = []
    async with aiohttp.ClientSession() as session:
        async with session.get(server.get_url("/cut")) as answer:
            received.append(await answer.content.readany())
            await server.stop()  # returns once no connection or pending call is left
            with pytest.raises(aiohttp.ClientPayloadError):
                received.append(await answer.content.read())
    assert received == [b"first"]
    assert server.request["done"] is False
    if engine == "thread":
        reactor: Any = server._reactor
        assert [c for c in reactor.getDelayedCalls() if "Pacer" in repr(c)] == []
