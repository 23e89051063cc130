"""
WebSocket routes in the asyncio face (aiohttp's ``ws_connect``, httpx-ws,
``websockets``) and over ``wss://`` (``tls=True``) in the blocking face; the
Deferred face is tested under trial (tests/trial/test_websocket.py). Each
runs in both engines.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import aiohttp
import httpx
import pytest
from httpx_ws import aconnect_ws
from websockets.asyncio.client import connect

from txtestserver import AsyncTestServer, DeferredTestServer, TestServer, WebSocketRoute


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_asyncio_face_with_aiohttp(engine: str) -> None:
    async with AsyncTestServer(engine=engine) as server:
        ws = server.websocket("/chat", subprotocols=["v2"])
        ws.on_connect(send=["hello"])
        ws.reply(when={"op": "ping"}, send=[{"op": "pong"}])
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws.url, protocols=["v2"]) as client:
                assert client.protocol == "v2"
                assert await client.receive_str() == "hello"
                await client.send_json({"op": "ping"})
                assert await client.receive_json() == {"op": "pong"}
                (connection,) = await ws.wait_connections(1)
                await ws.send("pushed", connection=connection["id"])
                assert await client.receive_str() == "pushed"
                got = await ws.wait_for(lambda m: m["data"] == '{"op": "ping"}')
                assert got["direction"] == "received"
                await ws.close(4001, "bye")
                message = await client.receive()
                assert message.type == aiohttp.WSMsgType.CLOSE
                assert client.close_code == 4001 or message.data == 4001
        closed = await ws.wait_closed(connection["id"])
        assert (closed["closed_by"], closed["close_code"]) == ("server", 4001)


@pytest.mark.anyio
async def test_asyncio_face_with_httpx_ws(engine: str) -> None:
    async with AsyncTestServer(engine=engine) as server:
        ws = server.websocket("/echo")
        ws.echo()
        async with httpx.AsyncClient() as http:
            async with aconnect_ws(ws.url.replace("ws://", "http://"), http) as client:
                await client.send_text("one")
                assert await client.receive_text() == "one"
                await client.send_bytes(b"\x00two")
                assert await client.receive_bytes() == b"\x00two"
        messages = await ws.wait_messages(2, direction="sent")
        assert [m["data"] for m in messages] == ["one", b"\x00two"]
        await ws.wait_closed()


@pytest.mark.anyio
async def test_asyncio_face_waits_are_coroutines(engine: str) -> None:
    async with AsyncTestServer(engine=engine) as server:
        ws = server.websocket("/c")
        wait = ws.wait_connections(0, timeout=1)
        assert inspect.iscoroutine(wait)
        assert await wait == []
        push = ws.send("nobody")
        assert inspect.iscoroutine(push)
        await push


def test_wss_with_tls(engine: str) -> None:
    with TestServer(tls=True, engine=engine) as server:
        ws = server.websocket("/secure")
        ws.echo()
        assert ws.url.startswith("wss://")

        async def talk() -> Any:
            async with connect(ws.url, ssl=server.client_ssl_context()) as client:
                await client.send("over tls")
                return await client.recv()

        assert asyncio.run(asyncio.wait_for(talk(), 10)) == "over tls"
        (connection,) = ws.wait_closed()
        assert connection["closed_by"] == "client"
        assert connection["request"]["websocket"]["version"] == "13"


@pytest.mark.anyio
@pytest.mark.filterwarnings(
    # Python 3.10's asyncio leaves the transport of a closed TLS connection to
    # be collected unclosed (3.11 rewrote its sslproto): the client's leak.
    "ignore:Exception ignored in. <function _SSLProtocolTransport.__del__"
    ":pytest.PytestUnraisableExceptionWarning"
)
async def test_wss_asyncio_face_with_aiohttp(engine: str) -> None:
    async with AsyncTestServer(tls=True, engine=engine) as server:
        ws = server.websocket("/secure")
        ws.echo()
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws.url, ssl=server.client_ssl_context()) as client:
                await client.send_str("tls")
                assert await client.receive_str() == "tls"


def test_websocket_route_is_the_same_class_in_every_face() -> None:
    for face in (TestServer, AsyncTestServer, DeferredTestServer):
        signature = inspect.signature(face.websocket)
        assert signature == inspect.signature(TestServer.websocket), face
        assert inspect.signature(face.websocket).return_annotation in (
            "WebSocketRoute",
            WebSocketRoute,
        )
