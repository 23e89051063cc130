"""
The ``txtestserver`` command, run for real as ``python -m txtestserver`` in a
child process: real requests in, its printed output and exit status out.
Every wait is bounded; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
WAIT = 30.0


class Command:
    """The command in a child process, its stdout read line by line."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "txtestserver", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def read_until(self, pattern: str) -> re.Match[str]:
        """Read lines until one matches ``pattern``; fail after WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matched {pattern!r}; got {self.seen}") from None
            if line is None:
                raise AssertionError(f"output ended before {pattern!r}; got {self.seen}")
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def port(self) -> int:
        return int(self.read_until(r"listening on http://127\.0\.0\.1:(\d+)/").group(1))

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(WAIT)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(WAIT)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def command() -> Iterator[type[Command]]:
    started: list[Command] = []

    class Tracked(Command):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    yield Tracked
    for c in started:
        c.kill()


def test_serves_prints_requests_and_stops_on_ctrl_c(command: type[Command], engine: str) -> None:
    cli = command(
        "--port=0",
        f"--engine={engine}",
        "--code=201",
        "--data=привет",
        "--charset=utf-8",
        "--header=X-One: 1",
        "--header",
        "X-Two:2",
        "--cookie=session=abc",
    )
    port = cli.port()
    response = requests.get(f"http://127.0.0.1:{port}/first?a=1&b=two", timeout=10)
    assert response.status_code == 201
    assert response.content == "привет".encode()
    assert response.headers["X-One"] == "1"
    assert response.headers["X-Two"] == "2"
    assert response.cookies["session"] == "abc"
    cli.read_until(r"GET /first from 127\.0\.0\.1")
    cli.read_until(r"a = '1'")
    cli.read_until(r"b = 'two'")
    cli.read_until(r"User-Agent: python-requests")

    requests.post(
        f"http://127.0.0.1:{port}/upload",
        data={"title": "Report"},
        files={"f": ("report.csv", b"a,b\n", "text/csv")},
        timeout=10,
    )
    cli.read_until(r"POST /upload from")
    cli.read_until(r"title = 'Report'")
    cli.read_until(r"f: 'report.csv' \(text/csv, 4 bytes\)")

    requests.put(f"http://127.0.0.1:{port}/raw", data=b"x" * 1000, timeout=10)
    cli.read_until(r"PUT /raw from")
    cli.read_until(r"body: 1000 bytes: b'xxxx.*\.\.\. \(800 more bytes\)")

    assert cli.stop(signal.SIGINT) == 0
    cli.read_until(r"txtestserver stopped\.")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_tls(command: type[Command], engine: str) -> None:
    cli = command("--port=0", f"--engine={engine}", "--tls", "--data=secret")
    port = int(cli.read_until(r"listening on https://127\.0\.0\.1:(\d+)/").group(1))
    ca = cli.read_until(r"CA certificate: (.+)$").group(1)
    response = requests.get(f"https://127.0.0.1:{port}/tls", verify=ca, timeout=10)
    assert response.content == b"secret"
    cli.read_until(r"GET /tls from 127\.0\.0\.1$")
    assert cli.stop(signal.SIGINT) == 0


def test_http2_and_client_cert_imply_tls(command: type[Command]) -> None:
    import httpx

    cli = command("--port=0", "--http2", "--client-cert=required")
    port = int(cli.read_until(r"listening on https://127\.0\.0\.1:(\d+)/").group(1))
    ca = cli.read_until(r"CA certificate: (.+)$").group(1)
    pem = cli.read_until(r"client certificate and key: (.+)$").group(1)
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(pem)
    with httpx.Client(http2=True, verify=context, timeout=10) as client:
        assert client.get(f"https://127.0.0.1:{port}/h2").http_version == "HTTP/2"
    cli.read_until(r"GET /h2 from 127\.0\.0\.1 over HTTP/2")
    cli.read_until(r"client certificate: O=txtestserver, OU=tests, CN=txtestserver client")
    assert cli.stop(signal.SIGTERM) == 0


def test_stops_cleanly_on_sigterm_with_a_client_waiting(command: type[Command]) -> None:
    cli = command("--port=0", "--sleep=300")
    port = cli.port()
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as client:
        client.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        # The answer would come in 300 s; stopping must not wait for it.
        assert cli.stop(signal.SIGTERM) == 0
        try:
            assert client.recv(100) == b""
        except ConnectionResetError:
            pass
    cli.read_until(r"txtestserver stopped\.")


def test_port_in_use_exits_1_with_a_message(command: type[Command]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cli = command(f"--port={port}")
        assert cli.process.wait(WAIT) == 1
        assert cli.process.stderr is not None
        assert f"cannot listen on 127.0.0.1 port {port}" in cli.process.stderr.read()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--header=no-colon", "--header 'no-colon' must look like NAME:VALUE"),
        ("--cookie=nothing", "--cookie 'nothing' must look like NAME=VALUE"),
        ("--code=99", "must be an int from 100 to 599"),
        ("--charset=klingon", "unknown charset 'klingon'"),
        ("--sleep=-1", "seconds >= 0"),
        ("--engine=fork", "invalid choice: 'fork'"),
        ("--fault=explode", "invalid choice: 'explode'"),
        ("--chunk-delay=-1", "seconds >= 0"),
        ("--throttle=0", "bytes per second > 0"),
        ("--client-cert=maybe", "invalid choice: 'maybe'"),
    ],
)
def test_bad_options_exit_2_with_a_message(
    command: type[Command], option: str, message: str
) -> None:
    cli = command("--port=0", option)
    assert cli.process.wait(WAIT) == 2
    assert cli.process.stderr is not None
    assert message in cli.process.stderr.read()


def test_streams_in_chunks_at_a_rate(command: type[Command], engine: str) -> None:
    cli = command(
        "--port=0",
        f"--engine={engine}",
        "--chunk=one ",
        "--chunk",
        "двa ",
        "--chunk=three",
        "--chunk-delay=0.05",
        "--throttle=1000",
        "--header=Content-Type: text/plain",
    )
    port = cli.port()
    began = time.monotonic()
    with requests.get(f"http://127.0.0.1:{port}/stream", stream=True, timeout=10) as answer:
        assert answer.headers["Transfer-Encoding"] == "chunked"
        assert b"".join(answer.iter_content(None)) == "one двa three".encode()
    assert time.monotonic() - began >= 0.1  # two chunk delays at least
    cli.read_until(r"GET /stream from 127\.0\.0\.1")
    assert cli.stop(signal.SIGINT) == 0


def test_a_fault_is_carried_out_and_shown(command: type[Command]) -> None:
    cli = command("--port=0", "--fault=reset", "--data=unused")
    port = cli.port()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/flaky", timeout=10)
    cli.read_until(r"GET /flaky from 127\.0\.0\.1")
    cli.read_until(r"answered with the fault 'reset'")
    assert cli.stop(signal.SIGTERM) == 0


ROUTES = {
    "routes": [
        {"path": "/api/token", "method": "POST", "response": {"json": {"token": "t"}}},
        {
            "pattern": r"/items/\d+",
            "name": "item",
            "queue": [{"code": 503, "count": 1}],
            "response": {"json": {"id": 1}},
        },
        {"path": "/stuck", "response": {"fault": "stall"}},
    ]
}


def test_serves_a_routes_file(command: type[Command], engine: str, tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(ROUTES), encoding="utf-8")
    cli = command("--port=0", f"--engine={engine}", f"--routes={path}")
    port = cli.port()
    assert len(cli.seen) == 1  # the URL is on the first line
    base = f"http://127.0.0.1:{port}"
    assert requests.post(f"{base}/api/token", timeout=10).json() == {"token": "t"}
    cli.read_until(r"POST /api/token: answered 200 by the route 'POST /api/token'")
    assert requests.get(f"{base}/items/7", timeout=10).status_code == 503
    assert requests.get(f"{base}/items/7", timeout=10).json() == {"id": 1}
    cli.read_until(r"GET /items/7: answered 200 by the route 'item'")
    # No route matches, and no option says what to answer: a 404 naming the closest.
    missing = requests.get(f"{base}/item/7", timeout=10)
    assert missing.status_code == 404 and "item" in missing.text
    # A stalled request is shown at stop, not lost.
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as client:
        client.sendall(b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.recv(100).startswith(b"HTTP/1.1 200")
        assert cli.stop(signal.SIGINT) == 0
    cli.read_until(r"GET /stuck from 127\.0\.0\.1")
    cli.read_until(r"GET /stuck: not answered when the server stopped")
    cli.read_until(r"txtestserver stopped\.")


def test_json_answer_and_json_output(command: type[Command], engine: str) -> None:
    cli = command("--port=0", f"--engine={engine}", "--json", '{"ok": true}', "--format=json")
    first = json.loads(cli.read_until(r"listening").string)
    assert first["event"] == "listening" and first["url"].startswith("http://127.0.0.1:")
    answer = requests.get(first["url"] + "hello?x=1", headers={"X-Test": "yes"}, timeout=10)
    assert answer.json() == {"ok": True}
    assert answer.headers["Content-Type"].startswith("application/json")
    request = json.loads(cli.read_until(r'"event": "request"').string)
    assert (request["method"], request["path"], request["args"]) == ("GET", "/hello", {"x": ["1"]})
    assert ["X-Test", "yes"] in request["headers"]
    assert request["index"] == 0 and request["size"] == 0
    answered = json.loads(cli.read_until(r'"event": "answered"').string)
    assert answered == {
        "event": "answered",
        "index": 0,
        "response_code": 200,
        "route": None,
        "fault": None,
    }
    assert cli.stop(signal.SIGTERM) == 0
    assert json.loads(cli.read_until(r'"event": "stopped"').string) == {"event": "stopped"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--code=99"], "--code must be an int from 100 to 599"),
        (["--throttle=-1"], "--throttle must be a number of bytes per second"),
        (["--chunk-delay=-1"], "--chunk-delay"),
        (["--json", "{nope"], "--json '{nope' is not a JSON document"),
        (["--routes=/nonexistent/routes.json"], "cannot read the routes file"),
        (["--format=xml"], "invalid choice: 'xml'"),
    ],
)
def test_errors_name_the_option(command: type[Command], options: list[str], message: str) -> None:
    cli = command("--port=0", *options)
    assert cli.process.wait(WAIT) == 2
    assert cli.process.stderr is not None
    stderr = cli.process.stderr.read()
    assert message in stderr
    assert "response[" not in stderr


def test_help_groups_the_options_and_shows_examples() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "txtestserver", "--help"],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 0
    for heading in ("the server:", "the answer to every request:", "streams and faults:"):
        assert heading in done.stdout
    assert "a whole conversation:" in done.stdout and "output:" in done.stdout
    assert "examples:" in done.stdout and "txtestserver --routes conversation.json" in done.stdout


def test_a_request_is_shown_when_it_arrives(command: type[Command], engine: str) -> None:
    cli = command("--port=0", f"--engine={engine}", "--sleep=300", "--format=text")
    port = cli.port()
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as client:
        client.sendall(b"GET /slow?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        # Shown while its answer waits (300 s), not at the next answer or at stop.
        cli.read_until(r"GET /slow from 127\.0\.0\.1")
        cli.read_until(r"x = '1'")
        assert cli.stop(signal.SIGINT) == 0
    cli.read_until(r"GET /slow: not answered when the server stopped")
    cli.read_until(r"txtestserver stopped\.")


def test_websocket_echo(command: type[Command], engine: str) -> None:
    import websocket as websocket_client

    cli = command("--port=0", f"--engine={engine}", "--websocket-echo=/ws", "--code=204")
    port = cli.port()
    client = websocket_client.create_connection(f"ws://127.0.0.1:{port}/ws", timeout=10)
    try:
        client.send("echo me")
        assert client.recv() == "echo me"
    finally:
        client.close()
        client.shutdown()
    cli.read_until(r"GET /ws: answered 101 by the route .websocket echo /ws.")
    assert requests.get(f"http://127.0.0.1:{port}/other", timeout=10).status_code == 204
    assert cli.stop(signal.SIGINT) == 0
