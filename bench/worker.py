"""
One measurement in a fresh process: ``python -m bench.worker ITEM CONTENDER
PARAMS_JSON`` prints one JSON object on its last line of stdout.

``serve`` is the exception: it starts a server, prints its port, and then
answers ``mark``, ``stats`` and ``quit`` commands on stdin, so that the load
generator (another process) can drive it while the orchestrator asks for its
memory and garbage-collection figures.
"""

from __future__ import annotations

import gc
import http.client
import json
import re
import ssl
import statistics
import sys
import time
import urllib.request
from typing import Any

from .contenders import make
from .proxy import proxy
from .timing import WARM_UP, timed_requests

MiB = 1024 * 1024


def _get(url: str, context: ssl.SSLContext | None = None) -> bytes:
    with urllib.request.urlopen(url, context=context) as response:
        return response.read()  # type: ignore[no-any-return]


def _connection(server: Any) -> http.client.HTTPConnection:
    """An http.client connection to ``server``, over TLS if it serves TLS."""
    context = server.client_context()
    if context is None:
        return http.client.HTTPConnection("127.0.0.1", server.port)
    return http.client.HTTPSConnection("127.0.0.1", server.port, context=context)


def cycle(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """
    Make + start + (one request) + stop, repeated; seconds per cycle. With
    ``websocket_routes``, that many scripted WebSocket routes are set on
    each server before its start (txtestserver only).
    """
    with_request = p.get("with_request", False)
    websocket_routes = p.get("websocket_routes", 0)
    tls = p.get("tls", False)
    times: list[float] = []
    starts: list[float] = []
    first = None
    deadline = time.perf_counter() + p["seconds"]
    while len(times) < p["cycles"] and (len(times) < 3 or time.perf_counter() < deadline):
        t = time.perf_counter()
        server = make(name, tls)
        for i in range(websocket_routes):
            ws = server.server.websocket(f"/ws{i}", subprotocols=["v1"])
            ws.on_connect(send=["hello"])
            ws.reply(when=re.compile("^ping"), send=["pong"])
            ws.echo()
        server.start()
        started = time.perf_counter() - t
        if with_request:
            assert _get(server.url(), server.client_context()) == b""
        server.stop()
        elapsed = time.perf_counter() - t
        if first is None:
            first = elapsed  # includes one-time set-up (crochet's reactor thread)
        else:
            times.append(elapsed)
            starts.append(started)
    return {
        "value": statistics.median(times) * 1000,
        "start": statistics.median(starts) * 1000,
        "first": first * 1000,
        "n": len(times),
    }


def start_in_a_run(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """
    start() of each server in a run of tests that each take ``pause``
    seconds (the server serves that long before its stop); milliseconds,
    the first start (one-time set-up) left out. For the subprocess engine
    the gap is when the next server process is started ahead.
    """
    starts: list[float] = []
    for _ in range(p["cycles"] + 1):
        t = time.perf_counter()
        server = make(name, False)
        server.start()
        starts.append(time.perf_counter() - t)
        time.sleep(p["pause"])  # the test
        server.stop()
    return {"value": statistics.median(starts[1:]) * 1000}


def newconn(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """
    Sequential urllib requests, a new connection each (with ``tls``: a TLS
    handshake each); requests/s.
    """
    server = make(name, p.get("tls", False))
    server.start()
    server.set_data(b"ok")
    url = server.url("/path?x=1")
    context = server.client_context()
    for _ in range(20):
        _get(url, context)
    n = p["requests"]
    t = time.perf_counter()
    for _ in range(n):
        _get(url, context)
    elapsed = time.perf_counter() - t
    recorded = server.recorded()
    server.stop()
    assert recorded == n + 20, recorded
    return {"value": n / elapsed}


def keepalive(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """Sequential http.client requests on one connection object; requests/s."""
    server = make(name, p.get("tls", False))
    server.start(keep_alive=True)
    server.set_data(b"ok")
    conn = _connection(server)
    connects = 0
    real_connect = conn.connect

    def counting_connect() -> None:
        nonlocal connects
        connects += 1
        real_connect()

    conn.connect = counting_connect  # type: ignore[method-assign]
    n = p["requests"]
    elapsed = timed_requests(conn, "/path?x=1", n)  # connections made: 1 when kept alive
    conn.close()
    recorded = server.recorded()
    server.stop()
    assert recorded == n + WARM_UP, recorded
    return {"value": n / elapsed, "connections": connects}


def routes(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """
    txtestserver only: sequential requests on one kept-alive connection with
    ``routes`` routes registered; requests/s, and the seconds the
    registration took (``register``). The ``kind`` of request: ``literal``,
    literal-path routes and the request's path is the middle one's;
    ``pattern``, pattern routes (a literal prefix each) and the request
    matches the middle one; ``none``, literal-path routes and the request
    matches none (the server answers). Without ``kind`` (the older items),
    with ``hit``, the request matches the oldest route (every newer one is
    tested first); without, it matches none.
    """
    server = make(name)
    server.start(keep_alive=True)
    server.set_data(b"ok")
    ts = server.server  # type: ignore[attr-defined]
    count = p["routes"]
    kind = p.get("kind")
    path = "/path?x=1"
    t = time.perf_counter()
    if kind is None:
        if p.get("hit"):
            ts.route("/path", method="GET", query={"x": "1"}).response["data"] = b"ok"
            count -= 1
        for i in range(count):
            ts.route(f"/other/{i}", method="GET", query={"x": "1"}).response["data"] = b"no"
    else:
        middle = count // 2
        for i in range(count):
            route = (
                ts.route(re.compile(rf"/other/{i}/\d+"), method="GET")
                if kind == "pattern"
                else ts.route(f"/other/{i}", method="GET")
            )
            route.response["data"] = b"ok" if i == middle else b"no"
        if kind == "literal":
            path = f"/other/{middle}"
        elif kind == "pattern":
            path = f"/other/{middle}/7"
    register = time.perf_counter() - t
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    n = p["requests"]
    elapsed = timed_requests(conn, path, n)
    conn.close()
    recorded = server.recorded()
    server.stop()
    assert recorded == n + WARM_UP, recorded
    return {"value": n / elapsed, "register": register}


def upload(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """POST a 10 MiB body and read the answer; MiB/s."""
    server = make(name)
    server.start()
    server.set_data(b"ok")
    body = b"x" * (p["mib"] * MiB)
    times = []
    for _ in range(p["times"]):
        t = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        conn.request("POST", "/upload", body, {"Content-Type": "application/octet-stream"})
        assert conn.getresponse().read() == b"ok"
        conn.close()
        times.append(time.perf_counter() - t)
        assert server.last_body_length() == len(body)
    server.stop()
    return {"value": p["mib"] / statistics.median(times)}


def download(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """GET a 10 MiB answer; MiB/s."""
    server = make(name)
    server.start()
    body = b"x" * (p["mib"] * MiB)
    server.set_data(body)
    times = []
    for _ in range(p["times"]):
        t = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        conn.request("GET", "/download")
        assert len(conn.getresponse().read()) == len(body)
        conn.close()
        times.append(time.perf_counter() - t)
    server.stop()
    return {"value": p["mib"] / statistics.median(times)}


def state(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """txtestserver only: cost of one state write and one state read, in µs."""
    server = make(name)
    server.start()
    ts = server.server  # type: ignore[attr-defined]
    _get(server.url("/x?a=1"))
    ts.wait_request()
    n = p["ops"]

    def per_op(fn: Any) -> float:
        for _ in range(10):
            fn()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t) / n * 1e6

    write = per_op(lambda: ts.response.__setitem__("data", b"hello"))
    read_response = per_op(lambda: ts.response["data"])
    read_request = per_op(lambda: ts.request["path"])
    server.stop()
    return {"value": write, "write": write, "read": read_request, "read_response": read_response}


def har(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """
    txtestserver only: record ``requests`` requests on one kept-alive
    connection, then time ``server.requests.to_har()`` (seconds).
    """
    server = make(name)
    server.start(keep_alive=True)
    server.set_data(b"ok")
    ts = server.server  # type: ignore[attr-defined]
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    n = p["requests"]
    for i in range(n):
        conn.request("GET", f"/path/{i}?x=1", headers={"Accept": "text/plain"})
        assert conn.getresponse().read() == b"ok"
    conn.close()
    ts.wait_requests(n)
    t = time.perf_counter()
    document = ts.requests.to_har()
    export = time.perf_counter() - t
    assert len(document["log"]["entries"]) == n
    server.stop()
    return {"value": export}


def replay(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """
    txtestserver only: sequential requests on one kept-alive connection to
    a server replaying a HAR of ``entries`` entries (``kind`` ``har``), or
    with as many literal routes answering the same (``routes``); the
    request asks for the middle entry; requests/s.
    """
    import tempfile
    from pathlib import Path

    server = make(name)
    server.start(keep_alive=True)
    ts = server.server  # type: ignore[attr-defined]
    count = p["entries"]
    middle = count // 2
    if p["kind"] == "har":
        entries = [
            {
                "startedDateTime": "2026-01-01T00:00:00.000Z",
                "time": 0,
                "request": {"method": "GET", "url": f"http://x/other/{i}", "queryString": []},
                "response": {
                    "status": 200,
                    "headers": [],
                    "content": {"text": "ok" if i == middle else "no"},
                },
            }
            for i in range(count)
        ]
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "replay.har"
            path.write_text(json.dumps({"log": {"entries": entries}}))
            ts.load_har(path)
    else:
        for i in range(count):
            route = ts.route(f"/other/{i}", method="GET")
            route.response["data"] = b"ok" if i == middle else b"no"
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    n = p["requests"]
    elapsed = timed_requests(conn, f"/other/{middle}", n)
    conn.close()
    server.stop()
    return {"value": n / elapsed}


def forward(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """
    txtestserver only: milliseconds a request through ``server.forward()``
    takes more than the same request to the upstream directly (sequential
    requests on one kept-alive connection each; the upstream is a
    txtestserver of the same engine).
    """
    upstream = make(name)
    upstream.start(keep_alive=True)
    upstream.set_data(b"ok")
    server = make(name)
    server.start(keep_alive=True)
    server.server.forward(upstream.server.get_url(""))  # type: ignore[attr-defined]
    n = p["requests"]

    def per_request(port: int) -> float:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        elapsed = timed_requests(conn, "/path?x=1", n)
        conn.close()
        return elapsed / n * 1000

    direct = per_request(upstream.port)
    forwarded = per_request(server.port)
    server.stop()
    upstream.stop()
    return {"value": forwarded - direct, "direct": direct, "forwarded": forwarded}


def imports(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """
    Time of the first import of the contender's module, in ms; with
    ``with_class``, until its server class is at hand (txtestserver imports
    Twisted only then).
    """
    module, cls = {
        "txtestserver": ("txtestserver", "TestServer"),
        "test_server": ("test_server", "TestServer"),
        "pytest-httpserver": ("pytest_httpserver", "HTTPServer"),
        "asyncio": ("bench.asyncio_responder", "AsyncioServer"),
    }[name]
    import importlib

    t = time.perf_counter()
    loaded = importlib.import_module(module)
    if p.get("with_class"):
        getattr(loaded, cls)
    return {"value": (time.perf_counter() - t) * 1000}


def _rss() -> int:
    """Resident memory of this process and its children, in bytes."""
    import psutil

    me = psutil.Process()
    total = int(me.memory_info().rss)
    for child in me.children(recursive=True):
        try:
            total += int(child.memory_info().rss)
        except psutil.Error:
            pass
    return total


def serve(name: str, p: dict[str, Any]) -> None:
    """Serve until told to quit; report memory and GC figures on request."""
    pauses: list[float] = []
    started = [0.0]

    def watch(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - started[0])

    server = make(name)
    server.start(keep_alive=p.get("keep_alive", False))
    server.set_data(b"ok")
    gc.callbacks.append(watch)
    print(json.dumps({"port": server.port}), flush=True)
    mark = (0, 0)
    for line in sys.stdin:
        command = line.strip()
        if command == "count":
            print(json.dumps({"recorded": server.recorded()}), flush=True)
        elif command == "mark":
            gc.collect()
            mark = (server.recorded(), _rss())
            pauses.clear()
            print(json.dumps({"recorded": mark[0]}), flush=True)
        elif command == "stats":
            recorded = server.recorded()
            longest = max(pauses, default=0.0)
            count = len(pauses)
            t = time.perf_counter()
            gc.collect()
            forced = time.perf_counter() - t
            rss = _rss()
            added = recorded - mark[0]
            pauses.clear()
            print(
                json.dumps(
                    {
                        "recorded": recorded,
                        "bytes_per_request": (rss - mark[1]) / added if added else None,
                        "longest_full_gc_ms": longest * 1000,
                        "full_gcs": count,
                        "forced_full_gc_ms": forced * 1000,
                    }
                ),
                flush=True,
            )
        elif command == "quit":
            break
    gc.callbacks.remove(watch)
    server.stop()


def websocket(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """
    WebSocket echo over one connection (websocket-client): the round-trip
    latency of a 1 KiB binary message (p50 and p99, microseconds) and
    messages per second; then connect + handshake + close per second.
    ``txtestserver`` serves an echo route; ``asyncio`` is a bare
    ``websockets`` echo server in a thread of this process.
    """
    import asyncio
    import threading

    import websocket as client_library

    stop: Any
    if name == "asyncio":
        from websockets.asyncio.server import serve as ws_serve

        loop = asyncio.new_event_loop()
        ready = threading.Event()
        holder: dict[str, Any] = {}

        async def echo(connection: Any) -> None:
            async for message in connection:
                await connection.send(message)

        async def run() -> None:
            async with ws_serve(echo, "127.0.0.1", 0, compression=None) as server:
                holder["port"] = server.sockets[0].getsockname()[1]
                holder["done"] = asyncio.Event()
                ready.set()
                await holder["done"].wait()

        thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
        thread.start()
        ready.wait(10)
        url = f"ws://127.0.0.1:{holder['port']}/echo"

        def stop() -> None:
            loop.call_soon_threadsafe(holder["done"].set)
            thread.join(10)

    else:
        from txtestserver import TestServer

        server = TestServer()
        server.start()
        server.websocket("/echo").echo()
        url = server.get_url("/echo", scheme="ws")
        stop = server.stop
    payload = b"x" * 1024
    connection = client_library.create_connection(url)
    for _ in range(50):
        connection.send_binary(payload)
        connection.recv()
    times = []
    began = time.perf_counter()
    for _ in range(p["messages"]):
        t = time.perf_counter()
        connection.send_binary(payload)
        assert connection.recv() == payload
        times.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - began
    connection.close()
    began = time.perf_counter()
    for _ in range(p["connects"]):
        client_library.create_connection(url).close()
    connects = p["connects"] / (time.perf_counter() - began)
    stop()
    times.sort()
    return {
        "value": statistics.median(times) * 1e6,
        "p99": times[int(len(times) * 0.99)] * 1e6,
        "rate": p["messages"] / elapsed,
        "connects": connects,
    }


def cli_stop(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """
    ``python -m txtestserver --fault stall``, one client whose answer
    stalls, then SIGINT: milliseconds until the process has exited.
    """
    import os
    import signal
    import socket
    import subprocess

    engine = "subprocess" if name.endswith("subprocess") else "thread"
    times = []
    for _ in range(p["runs"]):
        command = [sys.executable, "-m", "txtestserver", "--port=0", f"--engine={engine}"]
        process = subprocess.Popen(
            [*command, "--fault=stall"],
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        assert process.stdout is not None
        first = process.stdout.readline()
        port = int(re.search(r":(\d+)/", first).group(1))  # type: ignore[union-attr]
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            client.recv(100)  # the stalled answer's head
            t = time.perf_counter()
            process.send_signal(signal.SIGINT)
            process.wait(30)
            times.append(time.perf_counter() - t)
        process.stdout.close()
    return {"value": statistics.median(times) * 1000}


ITEMS = {
    "cli_stop": cli_stop,
    "cycle": cycle,
    "har": har,
    "forward": forward,
    "replay": replay,
    "start_in_a_run": start_in_a_run,
    "newconn": newconn,
    "keepalive": keepalive,
    "routes": routes,
    "upload": upload,
    "download": download,
    "state": state,
    "import": imports,
    "websocket": websocket,
    "proxy": proxy,
}


def main() -> None:
    item, name, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if item == "serve":
        serve(name, params)
        return
    print(json.dumps(ITEMS[item](name, params)), flush=True)


if __name__ == "__main__":
    main()
