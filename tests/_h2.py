"""
A raw HTTP/2 client (the h2 package's state machine over a TLS socket), for
what no HTTP client library sends on purpose: resets in the same read, the
rapid-reset flood.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import h2.config
import h2.connection
import h2.events

from txtestserver import TestServer

HEADERS = [(":method", "GET"), (":scheme", "https"), (":authority", "127.0.0.1")]


class RawH2:
    """An HTTP/2 client connection made of the h2 state machine and a TLS socket."""

    def __init__(self, server: TestServer) -> None:
        context = server.client_ssl_context()
        context.set_alpn_protocols(["h2"])
        plain = socket.create_connection(("127.0.0.1", server.port or 0), timeout=10)
        self.sock: ssl.SSLSocket = context.wrap_socket(plain, server_hostname="127.0.0.1")
        assert self.sock.selected_alpn_protocol() == "h2"
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        self.flush()

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def request(self, stream_id: int, path: str, reset: bool = False) -> None:
        """Queue a complete GET (and, with ``reset``, its RST_STREAM at once)."""
        self.conn.send_headers(stream_id, [*HEADERS, (":path", path)], end_stream=True)
        if reset:
            self.conn.reset_stream(stream_id)

    def events_until(self, done: Any) -> list[Any]:
        """Read and acknowledge frames until ``done(events)`` or the server closes."""
        events: list[Any] = []
        while not done(events):
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, ssl.SSLError, ConnectionError):
                break
            if not data:
                break
            events.extend(self.conn.receive_data(data))
            try:
                self.flush()
            except OSError:
                break
        return events

    def close(self) -> None:
        self.sock.close()


def closed(events: list[Any]) -> bool:
    """The server ended the connection (GOAWAY)."""
    return any(isinstance(event, h2.events.ConnectionTerminated) for event in events)


def settled(events: list[Any]) -> bool:
    """The server closed the connection, or acknowledged the PING sent last."""
    return closed(events) or any(isinstance(e, h2.events.PingAckReceived) for e in events)


def rapid_reset(server: TestServer, streams: int) -> list[Any]:
    """
    The rapid-reset pattern (CVE-2023-44487): ``streams`` complete GETs, each
    reset at once, sent in batches of 100, then a PING; read until the
    server closes the connection (Twisted's defence, where it has one) or
    acknowledges the PING (it has handled every frame before it).

    :return: the events the client read.
    """
    client = RawH2(server)
    try:
        try:
            for i in range(streams):
                client.request(1 + 2 * i, f"/reset/{i}", reset=True)
                if i % 100 == 99:
                    client.flush()
            client.conn.ping(b"settled!")
            client.flush()
        except OSError:
            pass  # the server closed the connection: the flood was seen
        return client.events_until(settled)
    finally:
        client.close()
