"""
The asyncio API (``AsyncTestServer``) with asyncio HTTP clients (httpx,
aiohttp), under pytest-asyncio and under anyio's pytest plugin (asyncio
backend), in both engines.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import anyio
import httpx
import pytest

from txtestserver import AsyncTestServer, ServerSideError, TestServerError, WaitTimeoutError

Get = Callable[..., Awaitable[tuple[int, bytes]]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextlib.asynccontextmanager
async def open_client(kind: str) -> AsyncIterator[Get]:
    """``get(url, method=..., body=...) -> (status, body)`` over a client of ``kind``."""
    if kind == "httpx":
        async with httpx.AsyncClient() as client:

            async def get_httpx(
                url: str, method: str = "GET", body: bytes | None = None
            ) -> tuple[int, bytes]:
                response = await client.request(method, url, content=body)
                return response.status_code, response.content

            yield get_httpx
    else:
        async with aiohttp.ClientSession() as session:

            async def get_aiohttp(
                url: str, method: str = "GET", body: bytes | None = None
            ) -> tuple[int, bytes]:
                async with session.request(method, url, data=body) as response:
                    return response.status, await response.read()

            yield get_aiohttp


async def in_reactor(server: AsyncTestServer, function: Callable[[], Any]) -> Any:
    """Run ``function`` in the thread that serves (after every call queued before)."""
    return await server._call("probe", 0.0, function)


async def leftovers(server: AsyncTestServer) -> tuple[int, int]:
    """(pending delayed calls on the serving reactor, waiters of the server)."""
    return await in_reactor(
        server,
        lambda: (len(server._reactor.getDelayedCalls()), len(server._waits)),  # type: ignore[attr-defined]
    )


class AsyncScenarios:
    """The tests, run by each subclass under one pytest plugin."""

    runner = ""

    @pytest.mark.parametrize("client", ["httpx", "aiohttp"])
    async def test_wait_request_while_the_request_is_in_flight(
        self, client: str, engine: str
    ) -> None:
        """wait_request is awaited while the client's request is under way: the loop runs on."""
        async with AsyncTestServer(engine=engine) as server:
            server.response["data"] = b"async"
            server.response["post.data"] = b"posted"
            server.response_once["code"] = 201
            async with open_client(client) as get:
                request = asyncio.create_task(get(server.get_url("/in-flight?x=1")))
                await server.wait_request(5)
                assert server.request["path"] == "/in-flight"
                assert server.request["args"]["x"] == "1"
                assert await request == (201, b"async")
                assert await get(server.get_url(), method="POST", body=b"body") == (200, b"posted")
                await server.wait_request(5)
                assert server.request["data"] == b"body"
                assert len(server.requests) == 2

    async def test_wait_request_for_a_sleeping_answer(self, engine: str) -> None:
        """The request is recorded at once; done only after the sleep."""
        async with AsyncTestServer(engine=engine) as server:
            server.response["sleep"] = 0.3
            async with open_client("httpx") as get:
                request = asyncio.create_task(get(server.get_url("/slow")))
                deadline = asyncio.get_running_loop().time() + 10
                while server.request["path"] != "/slow":  # recorded before the sleep
                    assert asyncio.get_running_loop().time() < deadline, "no request came"
                    await asyncio.sleep(0.005)
                assert server.request["done"] is False
                await server.wait_request(5)
                assert server.request["done"] is True
                assert (await request)[0] == 200

    async def test_cancelled_wait_leaves_no_timer_or_waiter(self, engine: str) -> None:
        async with AsyncTestServer(engine=engine) as server:
            before = await leftovers(server)
            if self.runner == "anyio":
                with anyio.move_on_after(0.1) as scope:
                    await server.wait_request(30)
                assert scope.cancelled_caught
            else:
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(server.wait_request(30), 0.1)
            assert await leftovers(server) == before
            # The server still serves and a new wait works.
            async with open_client("aiohttp") as get:
                request = asyncio.create_task(get(server.get_url("/after")))
                await server.wait_request(5)
                assert (await request)[0] == 200

    async def test_cancelled_task_cancels_its_wait(self, engine: str) -> None:
        async with AsyncTestServer(engine=engine) as server:
            before = await leftovers(server)
            waiting = asyncio.create_task(server.wait_request(30))
            await asyncio.sleep(0.05)  # the wait is now registered in the reactor
            assert (await leftovers(server))[1] == 1
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert await leftovers(server) == before

    async def test_wait_request_timeout(self, engine: str) -> None:
        async with AsyncTestServer(engine=engine) as server:
            with pytest.raises(WaitTimeoutError, match=r"within 0\.1 s"):
                await server.wait_request(0.1)
            assert await leftovers(server) == (await leftovers(server))

    async def test_wait_request_timeout_is_checked(self, engine: str) -> None:
        async with AsyncTestServer(engine=engine) as server:
            before = await leftovers(server)
            for timeout in [float("inf"), float("nan"), -1, "1", None, True]:
                with pytest.raises(TestServerError, match=r"wait_request\(timeout\) must be a"):
                    await server.wait_request(timeout)  # type: ignore[arg-type]
            assert await leftovers(server) == before

    async def test_wait_requests_and_wait_for(self, engine: str) -> None:
        async with AsyncTestServer(engine=engine) as server:
            async with open_client("aiohttp") as get:
                first = asyncio.create_task(server.wait_requests(2))
                chosen = asyncio.create_task(server.wait_for(lambda r: r["path"] == "/b"))
                for path in ("/a", "/b", "/c"):
                    assert (await get(server.get_url(path)))[0] == 200
                assert [r["path"] for r in await first] == ["/a", "/b"]
                assert (await chosen)["path"] == "/b"
            with pytest.raises(WaitTimeoutError):
                await server.wait_requests(5, timeout=0.1)
            with pytest.raises(TestServerError, match="timeout"):
                await server.wait_for(lambda r: True, timeout=-1)

    async def test_route_wait_and_a_wait_cancelled_halfway(self, engine: str) -> None:
        async with AsyncTestServer(engine=engine) as server:
            before = await leftovers(server)
            token = server.route("/token", method="POST", name="token")
            async with open_client("httpx") as get:
                waiting = asyncio.create_task(token.wait(count=2, timeout=10))
                halfway = asyncio.create_task(server.wait_requests(3, timeout=30))
                await get(server.get_url("/token"), method="POST", body=b"1")
                await get(server.get_url("/token"))  # a GET: not the route's
                assert not halfway.done()  # it has seen two of its three
                halfway.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await halfway
                await get(server.get_url("/token"), method="POST", body=b"2")
                requests = await waiting
            assert [(r["data"], r["route"]) for r in requests] == [(b"1", "token"), (b"2", "token")]
            assert await leftovers(server) == before

    async def test_strict_mode_and_server_side_errors(self, engine: str) -> None:
        async with AsyncTestServer(engine=engine, strict=True) as server:
            server.route("/items", name="items").response["data"] = b"[]"
            async with open_client("aiohttp") as get:
                assert await get(server.get_url("/items")) == (200, b"[]")
                status, body = await get(server.get_url("/item"))
            assert status == 404
            assert b"the closest is route 'items' (* /items): path '/item' (the route wants" in body
            with pytest.raises(ServerSideError, match=r"1\. GET /item HTTP/1\.1: unexpected"):
                server.check()
            assert list(server.errors) == []

    async def test_errors_come_back_as_exceptions(self) -> None:
        server = AsyncTestServer()
        with pytest.raises(TestServerError, match="needs a running server"):
            await server.wait_request(1)
        await server.start()
        with pytest.raises(TestServerError, match="already running"):
            await server.start()
        await server.stop()
        await server.stop()  # stopping a stopped server does nothing
        with pytest.raises(TestServerError, match="get_url"):
            server.get_url()

    async def test_stop_while_waiting_fails_the_wait(self, engine: str) -> None:
        server = AsyncTestServer(engine=engine)
        await server.start()
        waiting = asyncio.create_task(server.wait_request(30))
        await asyncio.sleep(0.05)
        await server.stop()
        with pytest.raises(TestServerError, match="stopped while waiting"):
            await waiting

    async def test_keep_alive_and_many_servers(self, engine: str) -> None:
        # Three server processes start at once: a generous bound on a busy machine.
        servers = [AsyncTestServer(engine=engine, call_timeout=60) for _ in range(3)]
        await asyncio.gather(*(server.start(keep_alive=True) for server in servers))
        try:
            async with open_client("httpx") as get:
                for i, server in enumerate(servers):
                    server.response["data"] = str(i)
                answers = await asyncio.gather(*(get(server.get_url()) for server in servers))
                assert [body for _, body in answers] == [b"0", b"1", b"2"]
        finally:
            await asyncio.gather(*(server.stop() for server in servers))


@pytest.mark.asyncio
class TestUnderPytestAsyncio(AsyncScenarios):
    runner = "pytest-asyncio"


@pytest.mark.anyio
class TestUnderAnyio(AsyncScenarios):
    runner = "anyio"


def test_awaiting_needs_a_running_loop() -> None:
    server = AsyncTestServer()
    coroutine = server.start()
    with pytest.raises(RuntimeError, match="no running event loop"):
        coroutine.send(None)
    coroutine.close()


def test_asyncio_run_without_a_plugin() -> None:
    """Plain ``asyncio.run``: the loop closes while the server serves on, unharmed."""

    async def main() -> bytes:
        async with AsyncTestServer() as server:
            server.response["data"] = b"plain"
            async with open_client("aiohttp") as get:
                return (await get(server.get_url()))[1]

    assert asyncio.run(main()) == b"plain"
