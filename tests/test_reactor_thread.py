"""
The private reactor that serves TestServer: it leaves the global reactor
alone, reaps only its own children, and lets the interpreter exit cleanly.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest

from txtestserver import AsyncTestServer, TestServer, TestServerError

ROOT = Path(__file__).resolve().parent.parent


def test_serves_without_touching_the_global_reactor(engine: str) -> None:
    from twisted.internet import reactor
    from twisted.python import threadable

    with TestServer(engine=engine) as server:
        server.response["data"] = b"ok"
        assert urlopen(server.get_url()).read() == b"ok"
        assert server._reactor is not reactor
        assert not reactor.running
        assert reactor.getDelayedCalls() == []
        # The private reactor did not claim to be the process's IO thread
        # (the global one may have: trial's TestCases run in the same worker).
        private = server._call("the serving thread", 5.0, threading.get_ident)
        assert threadable.ioThread != private


def test_reactor_argument_is_refused() -> None:
    from twisted.internet import reactor

    with pytest.raises(TestServerError, match=r"reactor of its own.*DeferredTestServer"):
        TestServer(reactor=reactor)


def test_callback_gets_the_serving_reactor(engine: str) -> None:
    """``request.reactor`` schedules work on the reactor that serves the request."""
    with TestServer(engine=engine) as server:
        server.response["callback"] = "tests.callbacks:returns_deferred"
        assert urlopen(server.get_url()).read() == b"later:GET"


def test_child_is_reaped_only_in_its_reactor_thread() -> None:
    """
    A reactor that handles SIGCHLD (trial's) reaps every registered child in
    its own thread; a child of the private reactor must still end there
    (the subprocess engine's protocol calls ``confine_reaping``, as here).
    """
    from twisted.internet.process import reapAllProcesses
    from twisted.internet.protocol import ProcessProtocol

    from txtestserver._engines.reaping import confine_reaping
    from txtestserver._private import reactor_thread

    thread = reactor_thread()
    thread.start()
    reactor = thread.reactor
    ended = threading.Event()
    ended_in: list[str] = []
    pipes_closed = threading.Event()
    closed: set[str] = set()

    class Child(ProcessProtocol):
        def connectionMade(self) -> None:
            confine_reaping(self.transport, reactor)

        def childConnectionLost(self, fd: int) -> None:
            closed.add(str(fd))
            if len(closed) == 3:
                pipes_closed.set()

        def processEnded(self, reason: Any) -> None:
            ended_in.append(threading.current_thread().name)
            ended.set()

    # The child closes its pipes first (the reactor sees them close and
    # cannot reap yet), then lives on a moment.
    code = "import os, time; [os.close(fd) for fd in (0, 1, 2)]; time.sleep(0.3)"
    spawned: list[Any] = []
    reactor.callFromThread(
        lambda: spawned.append(
            reactor.spawnProcess(Child(), sys.executable, [sys.executable, "-c", code])
        )
    )
    assert pipes_closed.wait(10), "the child did not close its pipes"
    gate = threading.Event()
    with TestServer() as server:  # its callback holds the shared serving thread
        server.response["callback"] = lambda request: gate.wait(10) and b"released"
        held = threading.Thread(target=lambda: urlopen(server.get_url()).read())
        held.start()
        try:
            deadline = time.monotonic() + 10
            while not server.requests:
                assert time.monotonic() < deadline, "the held request never arrived"
                time.sleep(0.005)
            pid = spawned[0].pid
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # a zombie now
            reapAllProcesses()  # what trial's reactor does on SIGCHLD, in this thread
        finally:
            gate.set()
            held.join(10)
    assert ended.wait(10)
    assert ended_in == ["CrochetReactor"]


EXIT_SCRIPT = """
import sys
from urllib.request import urlopen
from txtestserver import TestServer

server = TestServer(engine=sys.argv[1])
server.start()
server.response["data"] = b"ok"
assert urlopen(server.get_url()).read() == b"ok"
if sys.argv[2] == "stopped":
    server.stop()
print("done")
"""


@pytest.mark.parametrize("state", ["stopped", "running"])
def test_interpreter_exits_cleanly(engine: str, state: str) -> None:
    """Exit does not hang on the reactor thread and logs no unhandled error."""
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, engine, state],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "done\n", "")


def refuses(port: int) -> bool:
    """Whether nothing listens on ``port`` (a killed server's port may take a moment)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize("face", ["blocking", "asyncio"])
def test_a_start_that_times_out_leaves_nothing_listening(engine: str, face: str) -> None:
    """
    Another server's callback holds the shared reactor thread longer than
    ``call_timeout``: ``start()`` raises, and once the reactor is free the
    start is not carried out later (nothing listens on the port).
    """
    port = free_port()
    entered, gate = threading.Event(), threading.Event()

    def hold(request: Any) -> bytes:
        entered.set()
        gate.wait(10)
        return b"released"

    with TestServer() as blocker:
        blocker.response["callback"] = hold
        client = threading.Thread(target=lambda: urlopen(blocker.get_url(), timeout=10).read())
        client.start()
        try:
            assert entered.wait(10)
            with pytest.raises(TestServerError, match=r"start\(\) did not finish within 0\.2 s"):
                if face == "blocking":
                    TestServer(port=port, engine=engine, call_timeout=0.2).start()
                else:
                    asyncio.run(AsyncTestServer(port=port, engine=engine, call_timeout=0.2).start())
        finally:
            gate.set()
            client.join(10)
        blocker.wait_request(timeout=5)  # every call queued before it has run now
    assert refuses(port)
