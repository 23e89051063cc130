"""
``request['aborted']`` for an answer ``stop()`` cut off (issue 19, defect
6): the journal no longer says 200 for an answer the client never got whole,
and still does for one the client read.
"""

from __future__ import annotations

import socket

from txtestserver import TestServer
from txtestserver._http.site import STOPPED

#: Much more than the socket buffers of both ends hold.
LARGE = b"x" * (32 * 1024 * 1024)


def test_an_answer_cut_off_by_stop_is_recorded_aborted(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start()
    try:
        server.response["data"] = LARGE
        with socket.create_connection(("127.0.0.1", server.port or 0), timeout=10) as sock:
            sock.sendall(b"GET /large HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200")  # then not read
            server.wait_request(timeout=5)
            assert server.request["response_code"] == 200  # written, not sent
            server.stop()
            received = 0
            try:
                while piece := sock.recv(1 << 20):
                    received += len(piece)
            except ConnectionResetError:
                pass
            assert received < len(LARGE)
        request = server.requests[0]
        assert request["aborted"] == STOPPED
        assert request["response_code"] is None
    finally:
        server.stop()


def test_an_answer_read_whole_stays_answered_after_stop(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start()
    try:
        server.response["data"] = b"small"
        with socket.create_connection(("127.0.0.1", server.port or 0), timeout=10) as sock:
            sock.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            while not received.endswith(b"small"):
                received += sock.recv(4096)
            server.wait_request(timeout=5)
            server.stop()  # the connection is still open: stop() drops it
        request = server.requests[0]
        assert (request["aborted"], request["response_code"]) == (None, 200)
    finally:
        server.stop()
