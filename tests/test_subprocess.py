"""
What only the subprocess engine has: the server process's lifecycle (start
failures, death, stop escalation, parent death), the state directory, and
the values that cannot cross a process. The behaviour it shares with the
thread engine is tested in test_blocking.py and tests/trial/ for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_blocking import fetch
from txtestserver import AsyncTestServer, TestServer, TestServerError
from txtestserver._engines import subprocess as engine_module

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server() -> Iterator[TestServer]:
    server = TestServer(engine="subprocess")
    server.start()
    yield server
    try:
        server.stop()
    except TestServerError:
        pass  # the tests that break the server check stop() themselves


def state_dir(server: TestServer) -> str | None:
    """Where the state files are (None while no server process runs)."""
    directory: str | None = server._engine.store.directory  # type: ignore[attr-defined]
    return directory


def server_pid(server: TestServer) -> int:
    """The server process's pid, asked from the server itself."""
    server.response_once["callback"] = "tests.callbacks:pid"
    return int(fetch(server.get_url())[2])


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait until process ``pid`` (not necessarily our child) has exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        # SO_REUSEADDR: connections in TIME_WAIT do not count, a listener does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# -- the state directory ----------------------------------------------------------------


def test_state_directory_is_private_and_removed_on_stop(server: TestServer) -> None:
    server.response["data"] = b"x"
    fetch(server.get_url())
    directory = state_dir(server)
    assert directory is not None
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    names = os.listdir(directory)
    assert "server.log" in names and "requests.jsonl" in names
    for name in names:
        assert stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode) == 0o600, name
    server.stop()
    assert not os.path.exists(directory)
    # Everything stays readable after stop, as in thread mode.
    assert server.request["path"] == "/"
    assert server.response["data"] == b"x"


def test_state_survives_a_restart(server: TestServer) -> None:
    server.response["data"] = b"kept"
    fetch(server.get_url("/first"))
    server.stop()
    server.start()
    assert fetch(server.get_url("/second"))[2] == b"kept"
    assert [r["path"] for r in server.requests] == ["/first", "/second"]


def test_state_directory_removed_under_the_server(server: TestServer) -> None:
    directory = state_dir(server)
    assert directory is not None
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))
    os.rmdir(directory)
    with pytest.raises(TestServerError, match="was the directory removed"):
        server.request["path"]
    # A request makes the server process notice, report and exit: no hang.
    # (The client may see the 500 or only its connection dropped.)
    try:
        assert fetch(server.get_url())[0] == 500
    except OSError:
        pass
    # Whether the test process or the server process notices first, the
    # error says what happened.
    with pytest.raises(TestServerError, match="was the directory removed"):
        server.wait_request(10)
    with pytest.raises(TestServerError, match="was the directory removed"):
        server.stop()
    server.stop()  # reported once; stopping again is harmless


# -- start failures ------------------------------------------------------------------------


def test_port_in_use_carries_the_server_output() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = TestServer(port=port, engine="subprocess")
        with pytest.raises(TestServerError) as error:
            server.start()
    message = str(error.value)
    assert "could not start" in message
    assert f"cannot listen on 127.0.0.1 port {port}" in message
    assert "in use" in message


def test_bad_address() -> None:
    server = TestServer(address="256.1.2.3", engine="subprocess")
    with pytest.raises(
        TestServerError, match=r"(?s)could not start.*cannot listen on 256\.1\.2\.3"
    ):
        server.start()


def broken_package(tmp_path: Path, body: str) -> Path:
    """A ``txtestserver`` package that shadows the real one in the server process."""
    package = tmp_path / "shadow" / "txtestserver"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(body)
    return package.parent


def test_import_error_in_the_server_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This process has imported txtestserver already; the server process
    # imports from sys.path as it is at start(), so it finds the broken one.
    monkeypatch.syspath_prepend(
        str(broken_package(tmp_path, "raise ImportError('broken on purpose')"))
    )
    server = TestServer(engine="subprocess")
    with pytest.raises(TestServerError) as error:
        server.start()
    message = str(error.value)
    assert "could not start: it exited with code 1" in message
    assert "ImportError: broken on purpose" in message
    server.stop()


def test_start_that_hangs_is_cancelled_and_leaves_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    hangs = (
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    )
    monkeypatch.syspath_prepend(str(broken_package(tmp_path, hangs)))
    server = TestServer(engine="subprocess", call_timeout=2)
    with pytest.raises(TestServerError, match="did not finish within 2 s"):
        server.start()
    pid = int(pid_file.read_text())
    assert wait_exit(pid, 10)
    server.stop()


def test_engine_start_timeout_names_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hangs = (
        "import sys, time\n"
        "sys.stderr.write('stuck in import')\n"
        "sys.stderr.flush()\n"
        "time.sleep(60)\n"
    )
    monkeypatch.syspath_prepend(str(broken_package(tmp_path, hangs)))
    monkeypatch.setattr(engine_module, "START_TIMEOUT", 1.0)
    server = TestServer(engine="subprocess")
    with pytest.raises(
        TestServerError, match=r"(?s)did not report its port within 1\.0 s.*stuck in import"
    ):
        server.start()


# -- the server process started ahead of time ------------------------------------------------


def test_servers_one_after_another_each_serve_their_own_state() -> None:
    """The second server and later ones use the process started ahead of time."""
    pids = []
    for n in range(3):
        with TestServer(engine="subprocess") as server:
            server.response["data"] = f"server {n}".encode()
            assert fetch(server.get_url())[2] == f"server {n}".encode()
            server.response["callback"] = "tests.callbacks:pid"
            pids.append(fetch(server.get_url())[2])
            assert [r["path"] for r in server.requests] == ["/", "/"]
    assert len(set(pids)) == 3  # a process of its own each time


@pytest.mark.parametrize("face", ["blocking", "asyncio"])
def test_a_server_process_has_the_environment_of_its_start(
    monkeypatch: pytest.MonkeyPatch, face: str
) -> None:
    """
    A process started ahead of time with another environment is not used:
    the server sees os.environ as it is at start().
    """
    for mark in ("first", "second"):
        monkeypatch.setenv("TXTESTSERVER_MARK", mark)
        if face == "blocking":
            with TestServer(engine="subprocess") as server:
                server.response["callback"] = "tests.callbacks:environment_mark"
                assert fetch(server.get_url())[2] == mark.encode()
        else:
            assert asyncio.run(environment_mark_through_async_face()) == mark.encode()


async def environment_mark_through_async_face() -> bytes:
    async with AsyncTestServer(engine="subprocess") as server:
        server.response["callback"] = "tests.callbacks:environment_mark"
        async with httpx.AsyncClient() as client:
            return (await client.get(server.get_url())).content


# -- a server process that dies or hangs ----------------------------------------------------


def test_killed_server_is_reported_by_the_next_call(server: TestServer) -> None:
    fetch(server.get_url("/before"))
    pid = server_pid(server)
    server.reset()
    fetch(server.get_url("/recorded"))
    server.reset()  # done is false again: wait_request has to wait
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(TestServerError, match=r"server process was killed by signal 9 \(SIGKILL\)"):
        server.wait_request(10)
    with pytest.raises(TestServerError, match="signal 9"):
        server.request["path"]
    with pytest.raises(TestServerError, match="signal 9"):
        server.response["data"] = b"x"
    with pytest.raises(TestServerError, match="signal 9"):
        server.stop()
    server.stop()
    # After stop() the last state is readable again, and the server restarts.
    assert server.request["path"] is None
    server.start()
    assert fetch(server.get_url("/again"))[0] == 200
    assert server.request["path"] == "/again"


def test_wait_in_progress_fails_when_the_server_dies(server: TestServer) -> None:
    pid = server_pid(server)
    server.reset()
    threading.Timer(0.2, os.kill, (pid, signal.SIGKILL)).start()
    with pytest.raises(TestServerError, match="killed by signal 9"):
        server.wait_request(30)


def test_stop_kills_a_server_that_does_not_stop_politely(
    server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "STOP_GRACE", 0.3)
    pid = server_pid(server)
    server.response["callback"] = "tests.callbacks:blocks"
    errors: list[BaseException] = []

    def client() -> None:
        try:
            fetch(server.get_url("/blocked"))
        except Exception as e:
            errors.append(e)

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + 10
    while server.request["path"] != "/blocked" and time.monotonic() < deadline:
        time.sleep(0.005)
    server.stop()
    assert wait_exit(pid, 0)  # stop() returned once the process was gone
    thread.join(10)
    assert errors


def bounded(call: Callable[[], object], timeout: float) -> BaseException | None:
    """Run ``call`` in a thread; return what it raised (None); fail if it hangs."""
    raised: list[BaseException | None] = [None]

    def run() -> None:
        try:
            call()
        except BaseException as e:
            raised[0] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{call} still waits after {timeout} s"
    return raised[0]


def test_state_lock_held_by_a_stopped_server_bounds_a_write() -> None:
    """
    A server process stopped (SIGSTOP, a debugger) while it holds the state
    lock: setting the response fails after call_timeout saying so, instead
    of hanging; reads go on meanwhile. (Every write and read:
    test_filestore.py.)
    """
    server = TestServer(engine="subprocess", call_timeout=5)
    server.start()
    try:
        fetch(server.get_url("/before"))
        directory = state_dir(server)
        assert directory is not None
        holder = os.open(os.path.join(directory, "lock"), os.O_RDWR)  # the stopped server's
        fcntl.flock(holder, fcntl.LOCK_EX)
        try:
            writer = threading.Thread(
                target=lambda: errors.append(bounded(lambda: server.response.update(data=b"x"), 30))
            )
            errors: list[BaseException | None] = []
            writer.start()
            assert bounded(lambda: server.request["path"], 2) is None
            assert server.requests[-1]["path"] == "/before"
            writer.join(30)
        finally:
            fcntl.flock(holder, fcntl.LOCK_UN)
            os.close(holder)
        assert len(errors) == 1 and isinstance(errors[0], TestServerError)
        assert "the server process is not responding" in str(errors[0])
        server.response["data"] = b"free again"
        assert fetch(server.get_url("/after"))[2] == b"free again"
    finally:
        server.stop()


#: A test process that starts a subprocess server, prints its port, pid and
#: state directory, then waits for its stdin to end and ends as argv[1] says.
_TEST_PROCESS = """
import atexit, os, signal, sys
from urllib.request import urlopen
from txtestserver import TestServer
server = TestServer(engine='subprocess')
server.start()
server.response['callback'] = 'tests.callbacks:pid'
pid = urlopen(server.get_url()).read().decode()
urlopen(server.get_url(), data=b'x' * 1000000).read()  # a body in the state
atexit.register(lambda: print('stopped' if server.port is None else 'running', flush=True))
print(server.port, pid, server._engine.store.directory, flush=True)
sys.stdin.read()
if sys.argv[1] == 'sigkill':
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[1] == 'crash':
    os._exit(1)
"""


@pytest.mark.parametrize("end", ["sigkill", "crash", "exit"])
def test_test_process_gone_without_stop_leaves_no_server_and_no_state(end: str) -> None:
    """
    The test process ends without stop(): killed, crashed (no atexit), or a
    normal exit. The server process exits, frees its port and removes its
    state directory (every recorded body is in it); on a normal exit the
    server is stopped politely before atexit functions run.
    """
    parent = subprocess.Popen(
        [sys.executable, "-c", _TEST_PROCESS, end],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert parent.stdout is not None and parent.stdin is not None
        port, pid, directory = parent.stdout.readline().split()
        assert not port_is_free(int(port))
        assert os.path.isdir(directory)
        parent.stdin.close()
        parent.wait(30)
        assert wait_exit(int(pid), 10), "the server process outlived its parent"
        assert port_is_free(int(port))
        assert not os.path.exists(directory), "the state directory outlived the test process"
        said = parent.stdout.read().decode()
        assert said == ("stopped\n" if end == "exit" else "")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pipe in (parent.stdin, parent.stdout):
            if pipe is not None:
                pipe.close()


#: A test process that starts a subprocess server, forks (the fork waits for
#: its stdin to end), prints the server's port, pid and state directory and
#: the fork's pid, then dies.
_FORKING_TEST_PROCESS = """
import os, signal, sys
from urllib.request import urlopen
from txtestserver import TestServer
server = TestServer(engine='subprocess')
server.start()
server.response['callback'] = 'tests.callbacks:pid'
pid = urlopen(server.get_url()).read().decode()
fork = os.fork()
if fork == 0:
    os.read(0, 1)
    os._exit(0)
print(server.port, pid, server._engine.store.directory, fork, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_fork_of_the_test_process_does_not_keep_the_server_alive() -> None:
    """
    The test process forks, then dies: the fork holds no copy of the
    server's pipes, so the server sees its stdin end, exits and removes its
    state directory while the fork lives on.
    """
    parent = subprocess.Popen(
        [sys.executable, "-c", _FORKING_TEST_PROCESS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    fork = None
    try:
        assert parent.stdout is not None and parent.stdin is not None
        port, pid, directory, fork_pid = parent.stdout.readline().split()
        fork = int(fork_pid)
        parent.wait(30)
        assert wait_exit(int(pid), 10), "the fork kept the server process alive"
        assert port_is_free(int(port))
        assert not os.path.exists(directory)
        assert not wait_exit(fork, 0)  # the fork still lives
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pipe in (parent.stdin, parent.stdout):
            if pipe is not None:
                pipe.close()  # the fork's stdin ends: it exits
        if fork is not None and not wait_exit(fork, 10):
            os.kill(fork, signal.SIGKILL)


def test_stop_with_a_fork_of_the_test_process_alive(
    server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    A fork of the test process is alive: stop() is still polite (the server
    exits on its own; it would be killed only after 60 s, and stop() gives
    up after its 10 s).
    """
    monkeypatch.setattr(engine_module, "STOP_GRACE", 60.0)
    pid = server_pid(server)
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads, 3.12+
        fork = os.fork()
    if fork == 0:
        try:
            os.close(write)
            os.read(read, 1)
        finally:
            os._exit(0)
    os.close(read)
    try:
        server.stop()
        assert wait_exit(pid, 0)
    finally:
        os.close(write)
        os.waitpid(fork, 0)


def test_a_large_permanent_body_stays_out_of_the_state_document(server: TestServer) -> None:
    """
    A 50 MiB response['data'] is written once to a file of its own: the
    state document that every assignment and every request reads and writes
    stays small (with 500 MiB each took seconds), and the body is served.
    """
    big = bytes(range(256)) * (50 * 4096)
    server.response["data"] = big
    directory = state_dir(server)
    assert directory is not None
    document = os.path.join(directory, "response.json")
    server.response["headers"] = [("X-Small", "yes")]
    server.response_once["data"] = b"hello"
    assert fetch(server.get_url("/once"))[2] == b"hello"
    assert os.path.getsize(document) < 1024
    status, headers, body = fetch(server.get_url("/big"))
    assert (status, headers["X-Small"], len(body)) == (200, "yes", len(big))
    assert body == big
    assert server.response["data"] == big
    values = [name for name in os.listdir(directory) if name.startswith("value-")]
    assert len(values) == 1
    assert os.path.getsize(os.path.join(directory, values[0])) == len(big)


def test_a_broken_value_in_the_state_files_is_a_clear_error(server: TestServer) -> None:
    """
    response.json changed by something else to hold a status that is not a
    number: the server process refuses it with the same check as the test
    process (it used to answer a body without a status line), the error
    names it, the journal is kept, and the value does not outlive the run.
    """
    fetch(server.get_url("/before"))
    directory = state_dir(server)
    assert directory is not None
    with open(os.path.join(directory, "response.json"), "w") as f:
        json.dump({"response": {"code": "abc"}, "once": {}}, f)
    message = r"response\.json: response\['code'\] must be an int from 100 to 599, not 'abc'"
    with pytest.raises(TestServerError, match=message):
        server.response["code"]
    try:
        answer = fetch(server.get_url("/broken"))
    except OSError:
        pass  # the server process may exit before the answer leaves
    else:
        assert answer[0] == 500 and b"must be an int from 100 to 599" in answer[2]
    with pytest.raises(TestServerError, match=message):
        server.stop()
    server.stop()
    assert server.response["code"] == 200
    assert server.requests[0]["path"] == "/before"
    server.start()
    assert fetch(server.get_url("/after"))[0] == 200


# -- values that cannot cross a process ----------------------------------------------------


def test_function_callback_is_refused_with_the_way_out(server: TestServer) -> None:
    with pytest.raises(TestServerError) as error:
        server.response["callback"] = lambda request: b"x"
    message = str(error.value)
    assert "cannot be a function object" in message
    assert "subprocess engine" in message
    assert "'package.module:function'" in message


def test_iterator_is_refused_with_the_way_out(server: TestServer) -> None:
    with pytest.raises(TestServerError) as error:
        server.response_once["data"] = iter([b"a", b"b"])
    message = str(error.value)
    assert "cannot be an iterator" in message
    assert "response_once" in message


def test_print_in_a_callback_does_not_disturb_the_server(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:prints"
    assert fetch(server.get_url())[::2] == (200, b"printed")
    server.reset()
    thread = threading.Thread(target=fetch, args=(server.get_url(),))
    thread.start()
    server.wait_request(10)  # the "done" line still reaches the test process
    thread.join(10)
    directory = state_dir(server)
    assert directory is not None
    assert "stray output" in Path(directory, "server.log").read_text()


# -- concurrency and bytes ------------------------------------------------------------------


def test_once_values_set_while_the_server_consumes_are_not_lost(server: TestServer) -> None:
    """The server rewrites response_once for each GET while the test adds keys."""
    methods = [f"M{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(100)]
    served: list[bytes] = []
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            served.append(fetch(server.get_url())[2])

    server.response["data"] = b"plain"
    thread = threading.Thread(target=consume)
    thread.start()
    try:
        for i, method in enumerate(methods):
            server.response_once["get.data"] = b"once"
            server.response_once[f"{method.lower()}.data"] = b"%d" % i
    finally:
        stop.set()
        thread.join(30)
    assert b"once" in served
    for i, method in enumerate(methods):
        assert fetch(server.get_url(), method=method)[2] == b"%d" % i, method


def test_every_byte_value_crosses_both_ways(server: TestServer) -> None:
    import requests

    all_bytes = bytes(range(256))
    server.response["data"] = all_bytes
    server.response["post.data"] = all_bytes[::-1]
    assert server.response["data"] == all_bytes
    response = requests.post(
        server.get_url(),
        files={"f": ("bin", all_bytes)},
        data={"field": "é"},
        timeout=10,
    )
    assert response.content == all_bytes[::-1]
    assert server.request["files"]["f"][0]["content"] == all_bytes
    fetch(server.get_url(), data=all_bytes, method="PUT")
    assert server.request["data"] == all_bytes
    assert fetch(server.get_url())[2] == all_bytes


def server_processes() -> set[int]:
    """The living server processes (serving or idle) that are children of this process."""
    me = os.getpid()
    children: set[int] = set()
    for task in os.listdir(f"/proc/{me}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{me}/task/{task}/children") as f:
            children.update(int(pid) for pid in f.read().split())
    found = set()
    for pid in children:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read()
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rpartition(")")[2].split()[0]
        except OSError:
            continue  # gone meanwhile
        if b"txtestserver._engines.child" in command and state != "Z":
            found.add(pid)
    return found


def idle_processes_settle_at(most: int, serving: set[int]) -> set[int]:
    """
    The idle server processes, once at most ``most`` are left (a process
    given up ends its stdin and exits a moment later); the last count if
    that takes over 10 s.
    """
    deadline = time.monotonic() + 10
    while True:
        idle = server_processes() - serving
        if len(idle) <= most or time.monotonic() > deadline:
            return idle
        time.sleep(0.01)


def test_pid_is_the_serving_process(engine: str) -> None:
    server = TestServer(engine=engine)
    assert server.pid is None
    with server:
        server.response["callback"] = "tests.callbacks:pid"
        served_by = int(fetch(server.get_url())[2])
        if engine == "thread":
            assert (server.pid, served_by) == (None, os.getpid())
        else:
            assert server.pid == served_by != os.getpid()
    assert server.pid is None


def test_the_test_process_holds_at_most_one_idle_server_process() -> None:
    servers = [TestServer(engine="subprocess") for _ in range(3)]
    starts = [threading.Thread(target=server.start) for server in servers]
    for thread in starts:
        thread.start()
    for thread in starts:
        thread.join(30)
    try:
        serving = {server.pid for server in servers}
        assert None not in serving and len(serving) == 3
        assert len(idle_processes_settle_at(1, serving)) <= 1  # type: ignore[arg-type]
    finally:
        for server in servers:
            server.stop()
    assert len(idle_processes_settle_at(1, set())) <= 1


def test_the_process_started_ahead_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TXTESTSERVER_START_AHEAD", "0")
    with TestServer(engine="subprocess") as server:
        assert fetch(server.get_url())[0] == 200
        assert idle_processes_settle_at(0, {server.pid}) == set()  # type: ignore[arg-type]
    assert idle_processes_settle_at(0, set()) == set()


def children_of(pid: int) -> set[int]:
    """The living children of process ``pid``."""
    children: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
            children.update(int(child) for child in f.read().split())
    return children


@pytest.mark.parametrize("face", ["blocking", "asyncio"])
def test_starts_back_to_back_spawn_no_python(face: str) -> None:
    """
    Once the fork server is up, a start is a fork of it (a few milliseconds),
    not a Python start-up (half a second), however soon it follows a stop:
    no new child of the test process appears, and each server is a process
    of its own.
    """

    async def through_async_face() -> int | None:
        async with AsyncTestServer(engine="subprocess") as server:
            async with httpx.AsyncClient() as client:
                assert (await client.get(server.get_url())).status_code == 200
            return server.pid

    def cycle() -> int | None:
        if face == "asyncio":
            return asyncio.run(through_async_face())
        with TestServer(engine="subprocess") as server:
            assert fetch(server.get_url())[0] == 200
            return server.pid

    cycle()
    helpers = children_of(os.getpid())
    pids = [cycle() for _ in range(5)]
    assert children_of(os.getpid()) == helpers
    assert None not in pids and len(set(pids)) == 5


#: A test process that starts and stops a subprocess server (the fork server
#: stays, idle), starts another, prints its pid and its children's, then dies.
_TEST_PROCESS_WITH_FORK_SERVER = """
import os, signal
from txtestserver import TestServer
with TestServer(engine='subprocess'):
    pass
server = TestServer(engine='subprocess')
server.start()
children = set()
for task in os.listdir(f'/proc/{os.getpid()}/task'):
    with open(f'/proc/{os.getpid()}/task/{task}/children') as f:
        children.update(f.read().split())
print(server.pid, server._engine.store.directory, *children, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_test_process_killed_leaves_no_fork_server_and_no_server() -> None:
    """The idle fork server and the server it forked both go with the test process."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _TEST_PROCESS_WITH_FORK_SERVER],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert parent.stdout is not None
        pid, directory, *helpers = parent.stdout.readline().split()
        assert helpers, "no fork server"
        parent.wait(30)
        for process in [pid, *helpers]:
            assert wait_exit(int(process), 10), f"process {process} outlived the test process"
        assert not os.path.exists(directory)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


#: A Twisted program (no trial) serving with DeferredTestServer on the global
#: reactor: two starts back to back (the second a fork of the fork server),
#: a request, then it prints the server's pid, state directory and its own
#: children, and ends as argv[1] says with the server still running:
#: ``reactor.stop()`` (and a normal exit) or SIGKILL.
_TWISTED_PROGRAM = """
import os, signal, sys
from urllib.request import urlopen
from twisted.internet import reactor, threads
from twisted.internet.defer import inlineCallbacks
from txtestserver import DeferredTestServer

@inlineCallbacks
def main():
    server = DeferredTestServer(engine='subprocess')
    yield server.start()
    yield server.stop()
    yield server.start()
    server.response['data'] = b'served'
    body = yield threads.deferToThread(lambda: urlopen(server.get_url()).read())
    children = set()
    for task in os.listdir(f'/proc/{os.getpid()}/task'):
        with open(f'/proc/{os.getpid()}/task/{task}/children') as f:
            children.update(f.read().split())
    print(body.decode(), server.pid, server._engine.store.directory, *children, flush=True)
    if sys.argv[1] == 'SIGKILL':
        os.kill(os.getpid(), signal.SIGKILL)
    reactor.stop()

reactor.callWhenRunning(main)
reactor.run()
"""


@pytest.mark.parametrize("end", ["reactor.stop()", "SIGKILL"])
def test_a_twisted_program_leaves_no_fork_server_and_no_server(end: str) -> None:
    """
    DeferredTestServer on the global reactor of a Twisted program forks its
    servers too (the serving process is not the program's child); whether
    the program stops its reactor with a server running or is killed,
    nothing hangs, nothing is said on stderr, and no process or state
    directory outlives it.
    """
    program = subprocess.Popen(
        [sys.executable, "-c", _TWISTED_PROGRAM, end],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        output, errors = program.communicate(timeout=30)
        body, pid, directory, *children = output.decode().split()
        assert body == "served"
        assert pid not in children  # forked by the fork server, a child of the program
        assert children, "no fork server"
        assert program.returncode == (-signal.SIGKILL if end == "SIGKILL" else 0)
        assert errors == b""
        for process in [pid, *children]:
            assert wait_exit(int(process), 10), f"process {process} outlived the program"
        assert not os.path.exists(directory)
    finally:
        if program.poll() is None:
            program.kill()
            program.communicate()
