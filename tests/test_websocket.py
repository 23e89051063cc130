"""
WebSocket routes (``server.websocket()``), with real clients: ``websockets``
(asyncio) and ``websocket-client`` (sync), over real sockets.

Each test runs in both engines (the ``server`` and ``engine`` fixtures of
``conftest.py``), but for ``on_message``: a function cannot cross to the
subprocess engine's server process, which refuses it with a clear error.
"""

from __future__ import annotations

import asyncio
import re
import socket
from typing import Any

import pytest
import websocket as websocket_client
import websockets
from websockets.asyncio.client import connect

from txtestserver import TestServer, TestServerError, WaitTimeoutError, WebSocketRoute


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 10))


def test_handshake_subprotocol_and_journal(server: TestServer) -> None:
    ws = server.websocket("/chat", subprotocols=["v2.chat", "v1.chat"], name="chat")
    ws.on_connect(send=["hello"])

    async def talk() -> tuple[str | None, Any]:
        async with connect(ws.url, subprotocols=["v1.chat", "v2.chat"]) as client:
            return client.subprotocol, await client.recv()

    assert run(talk()) == ("v2.chat", "hello")
    (connection,) = ws.wait_closed()
    assert connection["subprotocol"] == "v2.chat"
    assert connection["closed_by"] == "client"
    assert connection["close_code"] == 1000
    request = connection["request"]
    assert request["response_code"] == 101
    assert request["route"] == "chat"
    assert request["connection"] == connection["id"]
    assert request["websocket"]["version"] == "13"
    assert request["websocket"]["subprotocols"] == ["v1.chat", "v2.chat"]
    assert request["websocket"]["subprotocol"] == "v2.chat"
    assert server.requests[0]["websocket"] == request["websocket"]
    assert set(connection) == {
        "id",
        "request",
        "subprotocol",
        "opened",
        "closed",
        "closed_by",
        "close_code",
        "close_reason",
    }
    assert server.routes == [ws]
    assert isinstance(server.routes[0], WebSocketRoute)
    assert ws.url == server.get_url("/chat", scheme="ws")
    assert ws.url.startswith("ws://")


def test_no_subprotocol_offered(server: TestServer) -> None:
    ws = server.websocket("/chat", subprotocols=["v2"])
    ws.echo()

    async def talk() -> Any:
        async with connect(ws.url) as client:
            await client.send("x")
            return client.subprotocol, await client.recv()

    assert run(talk()) == (None, "x")
    assert server.requests[0]["websocket"]["subprotocol"] is None


def test_reply_rules(server: TestServer) -> None:
    ws = server.websocket("/rules")
    ws.reply(when="ping", send=["pong"])
    ws.reply(when=b"\x00", send=[b"\x01", "two"])
    ws.reply(when=re.compile(r"^count \d+$"), send=["counted"], count=1)
    ws.reply(when={"op": "sum"}, send=[{"total": 3}])
    ws.reply(when={"op": "quit"}, close=(4000, "bye"))
    ws.echo()

    async def talk() -> list[Any]:
        got = []
        async with connect(ws.url) as client:
            for message in ("ping", b"\x00", "count 1", "count 2", '{"op": "sum", "x": [1]}'):
                await client.send(message)
                got.append(await client.recv())
                if message == b"\x00":
                    got.append(await client.recv())  # "two" after b"\x01"
            await client.send('{"op": "quit"}')
            try:
                await client.recv()
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd is not None
                got.append((closed.rcvd.code, closed.rcvd.reason))
        return got

    assert run(talk()) == [
        "pong",
        b"\x01",
        "two",
        "counted",
        "count 2",  # the counted rule is used up: the echo answers
        '{"total": 3}',
        (4000, "bye"),
    ]
    (connection,) = ws.wait_closed()
    assert (connection["closed_by"], connection["close_code"]) == ("server", 4000)
    received = [m["data"] for m in ws.messages if m["direction"] == "received"]
    assert received[:2] == ["ping", b"\x00"]
    assert {m["type"] for m in ws.messages} == {"text", "binary", "close"}


def test_sync_client_and_pushes(server: TestServer) -> None:
    ws = server.websocket("/push")
    client = websocket_client.create_connection(ws.url, timeout=5)
    try:
        (connection,) = ws.wait_connections(1)
        ws.send("news")
        ws.send(b"\x02", connection=connection["id"])
        ws.send({"a": 1})
        assert client.recv() == "news"
        assert client.recv() == b"\x02"
        assert client.recv() == '{"a": 1}'
        ws.ping(b"hi")
        opcode, frame = client.recv_data_frame(control_frame=True)
        assert (opcode, frame.data) == (websocket_client.ABNF.OPCODE_PING, b"hi")
        ws.close(1001, "restart")
        opcode, frame = client.recv_data_frame(control_frame=True)
        assert opcode == websocket_client.ABNF.OPCODE_CLOSE
        client.send_close()
    finally:
        client.close()
        client.shutdown()
    closed = ws.wait_closed(connection["id"])
    assert (closed["closed_by"], closed["close_code"], closed["close_reason"]) == (
        "server",
        1001,
        "restart",
    )
    assert [m["type"] for m in ws.messages if m["direction"] == "sent"] == [
        "text",
        "binary",
        "text",
        "ping",
        "close",
    ]


def test_drop_and_wait_messages(server: TestServer) -> None:
    ws = server.websocket("/drop")

    async def talk() -> Any:
        async with connect(ws.url) as client:
            await client.send("one")
            await client.send("two")
            try:
                await client.recv()
            except websockets.ConnectionClosed as closed:
                return closed.rcvd

    async def drive() -> Any:
        task = asyncio.ensure_future(talk())
        got = await asyncio.to_thread(ws.wait_messages, 2)
        assert [m["data"] for m in got] == ["one", "two"]
        await asyncio.to_thread(ws.drop)
        return await task

    assert run(drive()) is None  # no close frame came
    (connection,) = ws.wait_closed()
    assert connection["closed_by"] == "dropped"


def test_client_ping_auto_pong_and_off(server: TestServer) -> None:
    on = server.websocket("/on")
    off = server.websocket("/off", auto_pong=False)

    async def ping(url: str) -> bool:
        async with connect(url) as client:
            waiter = await client.ping(b"p")
            try:
                await asyncio.wait_for(waiter, 0.5)
            except asyncio.TimeoutError:
                return False
            return True

    assert run(ping(on.url)) is True
    assert run(ping(off.url)) is False
    assert [m["type"] for m in on.messages if m["connection"] == on.connections[0]["id"]][:2] == [
        "ping",
        "pong",
    ]


def test_fragment_and_max_message_size(server: TestServer) -> None:
    ws = server.websocket("/frag", fragment=4, max_message_size=10)
    ws.echo()
    client = websocket_client.create_connection(ws.url, timeout=5)
    try:
        client.send("abcdefghij")
        assert client.recv() == "abcdefghij"
        client.send("x" * 11)
        opcode, frame = client.recv_data_frame(control_frame=True)
        assert (opcode, frame.data[:2]) == (websocket_client.ABNF.OPCODE_CLOSE, b"\x03\xf1")
    finally:
        client.close()
        client.shutdown()
    sent = ws.wait_for(lambda m: m["direction"] == "sent" and m["type"] == "text")
    assert sent["fragmented"] is True
    (connection,) = ws.wait_closed()
    assert connection["close_code"] == 1009


def test_fragmented_message_is_one_entry(server: TestServer) -> None:
    ws = server.websocket("/in")
    ws.echo()
    client = websocket_client.create_connection(ws.url, timeout=5)
    try:
        client.send_frame(
            websocket_client.ABNF.create_frame("ab", websocket_client.ABNF.OPCODE_TEXT, 0)
        )
        client.send_frame(
            websocket_client.ABNF.create_frame("cd", websocket_client.ABNF.OPCODE_CONT, 1)
        )
        assert client.recv() == "abcd"
    finally:
        client.close()
        client.shutdown()
    (message,) = ws.wait_messages(1)
    assert (message["data"], message["fragmented"]) == ("abcd", True)


def test_journal_keeps_message_data_up_to_journal_limit(server: TestServer) -> None:
    """
    The route's journal keeps journal_limit bytes of message data in all
    (both directions); the messages beyond keep what was left, their size
    and truncated. The conversation itself is whole.
    """
    ws = server.websocket("/big", journal_limit=12)
    ws.echo()
    client = websocket_client.create_connection(ws.url, timeout=5)
    try:
        client.send("short")
        assert client.recv() == "short"
        client.send("é" * 6)  # 12 bytes of UTF-8: 2 left, cut between characters
        assert client.recv() == "é" * 6
        client.send_binary(bytes(range(20)))
        assert client.recv() == bytes(range(20))
    finally:
        client.close()
        client.shutdown()
    messages = ws.wait_messages(6, direction=None)
    kept = [(m["direction"], m["data"], m["size"], m["truncated"]) for m in messages]
    assert kept == [
        ("received", "short", 5, False),
        ("sent", "short", 5, False),
        ("received", "é", 12, True),
        ("sent", "", 12, True),
        ("received", b"", 20, True),
        ("sent", b"", 20, True),
    ]


def test_journal_limit_default_zero_and_none(server: TestServer) -> None:
    """64 MiB by default; 0 keeps sizes only; None keeps every byte."""
    routes = {
        "default": server.websocket("/default"),
        "zero": server.websocket("/zero", journal_limit=0),
        "none": server.websocket("/none", journal_limit=None),
    }
    for ws in routes.values():
        ws.echo()
        client = websocket_client.create_connection(ws.url, timeout=5)
        try:
            client.send_binary(b"x" * 70000)
            assert len(client.recv()) == 70000
        finally:
            client.close()
            client.shutdown()
    got = {
        name: [(len(m["data"]), m["size"], m["truncated"]) for m in ws.wait_messages(2, None)]
        for name, ws in routes.items()
    }
    assert got == {
        "default": [(70000, 70000, False)] * 2,
        "zero": [(0, 70000, True)] * 2,
        "none": [(70000, 70000, False)] * 2,
    }
    with pytest.raises(TestServerError, match="journal_limit"):
        server.websocket("/bad", journal_limit=-1)


def test_reject(server: TestServer) -> None:
    ws = server.websocket("/no")
    ws.reject(code=403, headers={"X-Why": "nope"}, data=b"go away")

    async def talk() -> None:
        async with connect(ws.url):
            pass

    with pytest.raises(websockets.InvalidStatus) as caught:
        run(talk())
    assert caught.value.response.status_code == 403
    assert caught.value.response.headers["X-Why"] == "nope"
    assert caught.value.response.body == b"go away"
    assert server.request["response_code"] == 403
    assert ws.connections == []


def test_plain_http_to_a_websocket_route(server: TestServer) -> None:
    import urllib.error
    import urllib.request

    ws = server.websocket("/ws")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(server.get_url("/ws"), timeout=5)
    caught.value.close()
    assert caught.value.code == 426
    assert "WebSocket client" in server.errors[0]["message"]
    assert ws.connections == []


def test_conditions_and_strict(engine: str) -> None:
    strict = TestServer(strict=True, engine=engine)
    with strict:
        ws = strict.websocket("/s", query={"room": "1"})
        ws.reply(when="known", send=["ok"])

        async def talk() -> Any:
            async with connect(ws.url + "?room=1") as client:
                await client.send("known")
                assert await client.recv() == "ok"
                await client.send("unknown")
            with pytest.raises(websockets.InvalidStatus) as caught:
                async with connect(ws.url + "?room=2"):
                    pass
            return caught.value.response.status_code

        assert run(talk()) == 404
        ws.wait_closed()
        messages = [e["message"] for e in strict.errors]
        assert any("no reply rule matched the message 'unknown'" in m for m in messages)


def test_on_message_callback_thread_engine_only() -> None:
    """on_message takes a function: the thread engine only (the subprocess engine refuses it)."""
    with TestServer(engine="thread") as server:
        on_message_conversation(server)


def on_message_conversation(server: TestServer) -> None:
    ws = server.websocket("/cb")
    seen: list[Any] = []

    def answer(connection: Any, message: dict[str, Any]) -> None:
        seen.append((connection.id, message["data"]))
        connection.send(message["data"].upper())
        if message["data"] == "bye":
            connection.close(4001, "done")

    ws.on_message(answer)
    client = websocket_client.create_connection(ws.url, timeout=5)
    try:
        client.send("hi")
        assert client.recv() == "HI"
        client.send("bye")
        assert client.recv() == "BYE"
        opcode, _ = client.recv_data_frame(control_frame=True)
        assert opcode == websocket_client.ABNF.OPCODE_CLOSE
    finally:
        client.close()
        client.shutdown()
    (connection,) = ws.wait_closed()
    assert seen == [(connection["id"], "hi"), (connection["id"], "bye")]
    assert connection["close_code"] == 4001


def test_wait_timeout_says_what_arrived(server: TestServer) -> None:
    ws = server.websocket("/t")
    client = websocket_client.create_connection(ws.url, timeout=5)
    try:
        client.send("only one")
        with pytest.raises(WaitTimeoutError, match=r"1 message\(s\).*'only one'"):
            ws.wait_messages(2, timeout=0.3)
        with pytest.raises(WaitTimeoutError, match=r"1 connection\(s\) opened"):
            ws.wait_connections(2, timeout=0.1)
    finally:
        client.close()
        client.shutdown()


def test_on_connect_close_and_delay(server: TestServer) -> None:
    ws = server.websocket("/bye")
    ws.on_connect(send=["hi"], delay=0.05, close=(1011, "oops"))

    async def talk() -> Any:
        async with connect(ws.url) as client:
            assert await client.recv() == "hi"
            try:
                await client.recv()
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None

    assert run(talk()) == 1011


def test_reset_clears_the_websocket_routes(server: TestServer) -> None:
    server.websocket("/r")
    server.reset()
    assert server.routes == []


def test_a_route_made_after_a_reset_never_reaches_older_connections(server: TestServer) -> None:
    """Route ids are never reused: a new route's script and journal are not an old connection's."""
    old = server.websocket("/old")
    client = websocket_client.create_connection(old.url, timeout=5)
    try:
        old.wait_connections(1)
        server.reset()
        new = server.websocket("/new")
        new.echo()
        client.send("from the old connection")
        client.ping(b"after")
        opcode, frame = client.recv_data_frame(control_frame=True)
        assert (opcode, frame.data) == (websocket_client.ABNF.OPCODE_PONG, b"after")
        assert new.messages == []
    finally:
        client.close()
        client.shutdown()


def test_bad_arguments(engine: str) -> None:
    server = TestServer(engine=engine)
    with pytest.raises(TestServerError, match="subprotocols"):
        server.websocket("/x", subprotocols="v1")  # type: ignore[arg-type]
    ws = server.websocket("/x")
    with pytest.raises(TestServerError, match="when="):
        ws.reply(when=3)  # type: ignore[arg-type]
    with pytest.raises(TestServerError, match="unknown fault"):
        ws.reply(fault="nope")
    with pytest.raises(TestServerError, match="close="):
        ws.on_connect(close=(99, "x"))
    with pytest.raises(TestServerError, match="needs a running server"):
        ws.send("x")


def test_subprocess_engine_refuses_on_message_clearly() -> None:
    server = TestServer(engine="subprocess")
    ws = server.websocket("/x")
    with pytest.raises(TestServerError, match=r"cannot cross to the server process.*ws\.reply"):
        ws.on_message(lambda connection, message: None)


def test_websocket_over_a_raw_socket_keeps_pipelined_bytes(server: TestServer) -> None:
    """Bytes sent right after the handshake, in the same packet, reach the WebSocket."""
    ws = server.websocket("/raw")
    ws.echo()
    frame = bytes([0x81, 0x82, 1, 2, 3, 4]) + bytes(
        a ^ b for a, b in zip(b"hi", b"\x01\x02", strict=True)
    )
    head = (
        b"GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head + frame)
        data = b""
        while not data.endswith(b"\x81\x02hi"):
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 101 ")
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in data


# -- faults ---------------------------------------------------------------------------------

#: fault -> the close code the client sends back (None: it gets no close frame and sends none).
PROTOCOL_FAULTS = {
    "bad_opcode": 1002,
    "reserved_bits": 1002,
    "masked_frame": 1002,
    "oversize_control": 1002,
    "fragmented_control": 1002,
    "invalid_utf8": 1007,
    "bad_close_code": 1002,
}


async def closed_by_fault(url: str) -> websockets.ConnectionClosed:
    async with connect(url, close_timeout=1) as client:
        try:
            while True:
                await client.recv()
        except websockets.ConnectionClosed as closed:
            return closed
    raise AssertionError("the connection did not close")


@pytest.mark.parametrize("fault", sorted(PROTOCOL_FAULTS))
def test_protocol_fault_makes_the_client_close(server: TestServer, fault: str) -> None:
    ws = server.websocket("/f")
    ws.on_connect(fault=fault)
    closed = run(closed_by_fault(ws.url))
    assert isinstance(closed, websockets.ConnectionClosedError)
    assert closed.sent is not None
    assert closed.sent.code == PROTOCOL_FAULTS[fault]
    (connection,) = ws.wait_closed()
    assert connection["closed_by"] == "client"
    assert connection["close_code"] == PROTOCOL_FAULTS[fault]


@pytest.mark.parametrize("fault", ["reset", "drop", "truncated_frame"])
def test_fault_that_cuts_the_connection(server: TestServer, fault: str) -> None:
    ws = server.websocket("/cut")
    ws.on_connect(send=["before"], fault=fault)

    async def talk() -> tuple[list[Any], websockets.ConnectionClosed]:
        got = []
        async with connect(ws.url, close_timeout=1) as client:
            try:
                while True:
                    got.append(await client.recv())
            except websockets.ConnectionClosed as closed:
                return got, closed
        raise AssertionError("the connection did not close")

    got, closed = run(talk())
    assert isinstance(closed, websockets.ConnectionClosedError)
    assert closed.rcvd is None  # no close frame came
    if fault != "reset":  # a reset may drop what was not yet read
        assert got == ["before"]
    (connection,) = ws.wait_closed()
    assert connection["closed_by"] == "dropped"


def test_fault_pushed_by_the_test(server: TestServer) -> None:
    ws = server.websocket("/push-fault")
    client = websocket_client.create_connection(ws.url, timeout=5)
    try:
        ws.wait_connections(1)
        ws.fault("reset")
        with pytest.raises((websocket_client.WebSocketConnectionClosedException, OSError)):
            client.recv()
    finally:
        client.shutdown()
    assert ws.wait_closed()[0]["closed_by"] == "dropped"


def test_reply_fault_no_close_reply(server: TestServer) -> None:
    ws = server.websocket("/nc")
    ws.reply(when="quiet", fault="no_close_reply")

    async def talk() -> float:
        async with connect(ws.url, close_timeout=0.3) as client:
            await client.send("quiet")
            await asyncio.to_thread(ws.wait_messages, 1)
            loop = asyncio.get_running_loop()
            began = loop.time()
            await client.close()
            return loop.time() - began

    assert run(talk()) >= 0.3  # the client waited for a close reply that never came
    (connection,) = ws.wait_closed()
    assert connection["closed_by"] == "client"
    assert [m["type"] for m in ws.messages if m["direction"] == "sent"] == []


def test_stall_is_seen_by_the_client_timeout(server: TestServer) -> None:
    ws = server.websocket("/stall")
    ws.reply(when="stall", fault="stall")
    ws.echo()

    async def talk() -> None:
        async with connect(ws.url, close_timeout=0.2) as client:
            await client.send("a")
            assert await client.recv() == "a"
            await client.send("stall")
            await client.send("b")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.recv(), 0.3)

    run(talk())
    # A stalled connection reads nothing, not even the client's leaving: stop() ends it.
    assert ws.connections[0]["closed"] is None
    server.stop()
    assert ws.connections[0]["closed_by"] == "dropped"


def test_slow_pacing(server: TestServer) -> None:
    ws = server.websocket("/slow")
    ws.on_connect(send=["x" * 100], slow=1000)  # ~0.1 s for the frame's 102 bytes

    async def talk() -> float:
        async with connect(ws.url) as client:
            loop = asyncio.get_running_loop()
            began = loop.time()
            assert await client.recv() == "x" * 100
            return loop.time() - began

    assert run(talk()) >= 0.05


# -- compression --------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [True, False])
def test_compression_is_negotiated_only_when_asked(server: TestServer, compression: bool) -> None:
    ws = server.websocket("/z", compression=compression)
    ws.echo()

    async def talk() -> Any:
        async with connect(ws.url) as client:  # websockets offers permessage-deflate
            await client.send("a" * 10_000)
            assert await client.recv() == "a" * 10_000
            return client.response.headers.get("Sec-WebSocket-Extensions")

    extensions = run(talk())
    if compression:
        assert extensions is not None and extensions.startswith("permessage-deflate")
    else:
        assert extensions is None
    offered = server.requests[0]["websocket"]["extensions"]
    assert offered and offered[0].startswith("permessage-deflate")


def test_stop_ends_open_connections(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start()
    ws = server.websocket("/open")
    client = websocket_client.create_connection(ws.url, timeout=5)
    try:
        ws.wait_connections(1)
        server.stop()
        with pytest.raises((websocket_client.WebSocketConnectionClosedException, OSError)):
            client.recv()
    finally:
        client.shutdown()
    assert ws.connections[0]["closed_by"] == "dropped"
    with pytest.raises(TestServerError, match="needs a running server"):
        ws.wait_messages(1)


#: fault -> (what websocket-client's recv() raises or returns, aiohttp's
#: receive() type and close code): the fault table of docs/websocket.rst.
CLIENT_FAULTS: dict[str, tuple[str, tuple[str, int | None]]] = {
    "reset": ("ConnectionResetError", ("CLOSED", 1006)),
    "drop": ("WebSocketConnectionClosedException", ("CLOSED", 1006)),
    "truncated_frame": ("WebSocketConnectionClosedException", ("CLOSED", 1006)),
    "bad_opcode": ("WebSocketProtocolException", ("ERROR", 1002)),
    "reserved_bits": ("WebSocketProtocolException", ("ERROR", 1002)),
    "masked_frame": ("returned 'masked'", ("TEXT", None)),  # both unmask it
    "oversize_control": ("WebSocketProtocolException", ("ERROR", 1002)),
    "fragmented_control": ("WebSocketProtocolException", ("ERROR", 1002)),
    "invalid_utf8": ("WebSocketPayloadException", ("ERROR", 1007)),
    "bad_close_code": ("WebSocketProtocolException", ("ERROR", 1002)),
}


@pytest.mark.parametrize("fault", sorted(CLIENT_FAULTS))
def test_fault_with_websocket_client_and_aiohttp(server: TestServer, fault: str) -> None:
    import aiohttp

    ws = server.websocket("/f")
    ws.on_connect(fault=fault)
    client = websocket_client.create_connection(ws.url, timeout=5)
    try:
        got = f"returned {client.recv()!r}"
    except Exception as e:
        got = type(e).__name__
    finally:
        client.shutdown()

    async def with_aiohttp() -> tuple[str, int | None]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws.url) as socket_:
                message = await socket_.receive()
                return message.type.name, socket_.close_code

    assert (got, run(with_aiohttp())) == CLIENT_FAULTS[fault]


def test_a_delay_per_message(server: TestServer) -> None:
    ws = server.websocket("/d")
    ws.reply(when="go", send=["now", ("later", 0.2), "right after"], close=(1000, "done"))

    async def talk() -> list[tuple[str, float]]:
        got = []
        async with connect(ws.url) as client:
            loop = asyncio.get_running_loop()
            began = loop.time()
            await client.send("go")
            try:
                while True:
                    got.append((await client.recv(), loop.time() - began))
            except websockets.ConnectionClosedOK:
                return got

    got = run(talk())
    assert [m for m, _ in got] == ["now", "later", "right after"]
    assert got[0][1] < 0.15 <= got[1][1]
    with pytest.raises(TestServerError, match="delay"):
        ws.reply(send=[("x", -1)])
