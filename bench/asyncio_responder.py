"""
A bare asyncio HTTP/1.1 responder: the practical limit the benchmark compares
against. It records each request as a flat tuple and answers a fixed body,
keeping connections alive unless the client asks to close. Its event loop runs
in a background thread, as crochet's reactor does for txtestserver.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

_loop: asyncio.AbstractEventLoop | None = None


def _shared_loop() -> asyncio.AbstractEventLoop:
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
        threading.Thread(target=_loop.run_forever, daemon=True).start()
    return _loop


class _Responder(asyncio.Protocol):
    def __init__(self, server: AsyncioServer) -> None:
        self.server = server
        self.buffer = b""
        self.chunks: list[bytes] = []  # body bytes still arriving
        self.missing = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.server.connections.add(transport)

    def connection_lost(self, exc: object) -> None:
        self.server.connections.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        if self.missing > len(data):
            # The middle of a large body: keep the pieces, join them once.
            self.chunks.append(data)
            self.missing -= len(data)
            return
        if self.chunks:
            self.chunks.append(data)
            data, self.chunks, self.missing = b"".join(self.chunks), [], 0
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            lines = head.split(b"\r\n")
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
            if len(self.buffer) < end + 4 + length:
                self.chunks = [self.buffer]
                self.missing = end + 4 + length - len(self.buffer)
                self.buffer = b""
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, uri, _ = lines[0].split(b" ", 2)
            self.server.history.append((method, uri, head, body))
            data = self.server.data
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n%s\r\n"
                % (len(data), b"Connection: close\r\n" if close else b"")
                + data
            )
            if close:
                self.transport.close()
                return


class AsyncioServer:
    """Start/stop from any thread; the loop runs in a shared background thread."""

    def __init__(self) -> None:
        self.history: list[tuple[bytes, bytes, bytes, bytes]] = []
        self.connections: set[Any] = set()
        self.data = b""
        self.port = 0
        self._server: Any = None

    def start(self) -> None:
        loop = _shared_loop()

        async def start() -> Any:
            return await loop.create_server(lambda: _Responder(self), "127.0.0.1", 0)

        self._server = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def stop() -> None:
            self._server.close()
            for transport in list(self.connections):
                transport.abort()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), _shared_loop()).result(10)
