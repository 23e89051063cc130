"""
The pytest plugin: ready-made server fixtures.

Installed with the package (entry point ``pytest11``), so every test can ask
for them:

- ``test_server``: a started :class:`~txtestserver.TestServer`, reset before
  each test (response back to defaults, recorded requests forgotten), and
  checked after it: a server-side error fails the test that caused it
  (``server.check()``), unless the test is marked ``allow_server_errors``.
- ``test_server_session``: the same server without the reset; it is started
  once per test session (per pytest-xdist worker) and stopped at its end.
- ``async_test_server`` and ``async_test_server_session``: the same for
  ``async def`` tests, with an :class:`~txtestserver.AsyncTestServer`
  (reset before and checked after each test too).
- ``test_server_factory``: a function that starts a server of your own
  settings, ``test_server_factory(keep_alive=True, engine="subprocess")``
  (a setting not given is the session servers'); every server it made is
  checked and stopped after the test (``test_server_factory(proxy=True)``
  makes a proxy).
- ``test_proxy`` and ``test_proxy_session``: a proxy
  (``TestServer(proxy=True)``) started once per session; ``test_proxy``
  resets it, sets its ``client_env()`` in ``os.environ`` for the test (every
  client that reads the environment goes through it), and checks it after.

The session servers' (and by default the factory's) engine, keep-alive,
strict mode and HTTPS come from
the command line (``--txtestserver-engine``, ``--txtestserver-keep-alive``,
``--txtestserver-strict``, ``--txtestserver-tls``) or the ini file
(``txtestserver_engine``, ``txtestserver_keep_alive``,
``txtestserver_strict``, ``txtestserver_tls``); a server of other settings
for one test is ``test_server_factory(strict=True, tls=True, ...)``.

When a test that used a fixture's server fails, its report gets a section
per server: the journal as a short table (time, method, URL, status, route,
milliseconds) and the server-side errors. With ``--txtestserver-har-dir=DIR``
(or the ini key ``txtestserver_har_dir``), each failing test's servers'
journals are also written there as HAR files named after the test.

Loading the plugin imports neither Twisted, crochet nor an asyncio plugin:
that happens when a test first asks for one of the fixtures, so a project
that never uses them keeps its pytest start-up time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Union

import pytest

if TYPE_CHECKING:
    from . import AsyncTestServer, TestServer

__all__ = ["pytest_addoption", "pytest_configure", "pytest_runtest_makereport"]

ENGINES = ("thread", "subprocess")
#: The environment variable of :data:`txtestserver._engines.subprocess.START_AHEAD`.
START_AHEAD = "TXTESTSERVER_START_AHEAD"

T = TypeVar("T")

#: The servers a test's fixtures gave it, for its report if it fails.
SERVERS = pytest.StashKey[list[Union["TestServer", "AsyncTestServer"]]]()
#: Their server-side errors as the check after the test found them (by the
#: server's id: ``server.check()`` forgets them as it raises).
CHECKED_ERRORS = pytest.StashKey[dict[int, list[dict[str, Any]]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--txtestserver-*`` options and the ``txtestserver_*`` ini keys."""
    group = parser.getgroup("txtestserver", "txtestserver fixtures")
    group.addoption(
        "--txtestserver-engine",
        choices=ENGINES,
        default=None,
        help=(
            "where the session servers of the test_server fixtures serve from: 'thread' "
            "(a reactor thread in the test process, the default) or 'subprocess' (a "
            "child process); overrides the txtestserver_engine ini key"
        ),
    )
    group.addoption(
        "--txtestserver-keep-alive",
        action="store_true",
        default=None,
        help="keep connections to the session servers open between requests",
    )
    group.addoption(
        "--txtestserver-no-keep-alive",
        dest="txtestserver_keep_alive",
        action="store_false",
        help="close each connection after its response (the default)",
    )
    group.addoption(
        "--txtestserver-strict",
        action="store_true",
        default=None,
        help=(
            "strict mode for the session servers: a request nothing expects is answered "
            "404 and fails the test; overrides the txtestserver_strict ini key"
        ),
    )
    group.addoption(
        "--txtestserver-tls",
        action="store_true",
        default=None,
        help="the session servers serve HTTPS (tls=True: get_url() gives https:// URLs)",
    )
    group.addoption(
        "--txtestserver-no-tls",
        dest="txtestserver_tls",
        action="store_false",
        help="the session servers serve plain HTTP (the default)",
    )
    group.addoption(
        "--txtestserver-har-dir",
        default=None,
        metavar="DIR",
        help=(
            "write the journal of each failing test's servers to DIR as HAR files named "
            "after the test; overrides the txtestserver_har_dir ini key"
        ),
    )
    parser.addini(
        "txtestserver_har_dir",
        "directory for the HAR files of failing tests' servers (default: none written)",
        default="",
    )
    parser.addini(
        "txtestserver_engine",
        "engine of the session servers: thread (default) or subprocess",
        default="thread",
    )
    parser.addini(
        "txtestserver_keep_alive",
        "keep connections to the session servers open (default false)",
        type="bool",
        default=False,
    )
    parser.addini(
        "txtestserver_strict",
        "strict mode for the session servers (default false)",
        type="bool",
        default=False,
    )
    parser.addini(
        "txtestserver_tls",
        "the session servers serve HTTPS (default false)",
        type="bool",
        default=False,
    )
    parser.addini(
        "txtestserver_start_ahead",
        "keep a fork server that starts subprocess-engine servers in milliseconds (default "
        "true); false sets TXTESTSERVER_START_AHEAD=0 unless the environment sets it",
        type="bool",
        default=True,
    )


def pytest_configure(config: pytest.Config) -> None:
    """
    Register the ``allow_server_errors`` marker; refuse an unknown engine in
    the ini file before any test runs; switch the fork server off
    if the ini file says so.
    """
    config.addinivalue_line(
        "markers",
        "allow_server_errors: the test causes server-side errors on purpose; the "
        "txtestserver fixtures forget them after it instead of failing it "
        "(server.check())",
    )
    if not config.getini("txtestserver_start_ahead"):
        # Read by the subprocess engine at each start (not imported here:
        # loading the plugin imports no Twisted); the environment wins.
        os.environ.setdefault(START_AHEAD, "0")
    engine = config.getini("txtestserver_engine")
    if engine not in ENGINES:
        raise pytest.UsageError(
            f"txtestserver_engine = {engine!r} in the ini file: use one of {', '.join(ENGINES)}"
        )


def _served(server: TestServer | AsyncTestServer, request: pytest.FixtureRequest) -> None:
    """Remember that the test of ``request`` uses ``server`` (for its report)."""
    servers = request.node.stash.setdefault(SERVERS, [])
    if server not in servers:
        servers.append(server)


def _har_dir(config: pytest.Config) -> Path | None:
    """``--txtestserver-har-dir``, else the ini key, else None."""
    value = config.getoption("txtestserver_har_dir") or config.getini("txtestserver_har_dir")
    if not value:
        return None
    path = Path(str(value))
    return path if path.is_absolute() else config.rootpath / path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """
    A failing test that used a fixture's server: its report gets the
    journal and server-side errors of each (``txtestserver journal``
    sections), and with a HAR directory set, each server's HAR is written
    there, named after the test.
    """
    report = yield
    servers = item.stash.get(SERVERS, [])
    if not (report.failed and servers):
        return report
    from ._report import journal_table, save_hars

    checked = item.stash.get(CHECKED_ERRORS, {})
    for number, server in enumerate(servers, 1):
        title = "txtestserver journal" + (f" (server {number})" if len(servers) > 1 else "")
        try:
            text = journal_table(server, checked.get(id(server)))
        except Exception as e:  # the report must not hide the test's own failure
            text = f"could not read the journal: {e!r}\n"
        report.sections.append((f"{title}: {call.when}", text))
    directory = _har_dir(item.config)
    if directory is not None:
        try:
            paths = save_hars(servers, directory, item.nodeid)
        except Exception as e:
            text = f"could not write the HAR files in {directory}: {e!r}\n"
        else:
            text = "".join(f"{path}\n" for path in paths)
        report.sections.append((f"txtestserver HAR: {call.when}", text))
    return report


def check_after(server: TestServer | AsyncTestServer, request: pytest.FixtureRequest) -> None:
    """
    After a test: fail it with :class:`~txtestserver.ServerSideError` if the
    server had errors while answering it, unless it is marked
    ``allow_server_errors`` (then they are forgotten).

    The error shows its message only: this function's frames and the
    fixtures' are hidden from pytest's traceback (``__tracebackhide__``),
    which would otherwise print their source at every teardown failure.
    """
    __tracebackhide__ = True
    errors = list(server.errors)
    if errors:
        request.node.stash.setdefault(CHECKED_ERRORS, {})[id(server)] = errors
    if request.node.get_closest_marker("allow_server_errors") is not None:
        server.errors.clear()
    else:
        server.check()


def _flag(config: pytest.Config, name: str) -> bool:
    """A true/false setting: the command line, else the ini file."""
    value = config.getoption(name)
    return bool(config.getini(name) if value is None else value)


def _session_settings(config: pytest.Config) -> tuple[dict[str, Any], bool]:
    """
    (constructor keyword arguments, keep_alive) of the session servers: the
    command line, else the ini file.
    """
    engine = config.getoption("txtestserver_engine") or config.getini("txtestserver_engine")
    settings = {
        "engine": str(engine),
        "strict": _flag(config, "txtestserver_strict"),
        "tls": _flag(config, "txtestserver_tls"),
    }
    return settings, _flag(config, "txtestserver_keep_alive")


@pytest.fixture(scope="session", name="test_server_session")
def _test_server_session(pytestconfig: pytest.Config) -> Iterator[TestServer]:
    """A server started once for the whole session (not reset between tests)."""
    from . import TestServer

    settings, keep_alive = _session_settings(pytestconfig)
    server = TestServer(**settings)
    server.start(keep_alive=keep_alive)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="test_server")
def _test_server(
    test_server_session: TestServer, request: pytest.FixtureRequest
) -> Iterator[TestServer]:
    """
    The session's server after ``reset()``: a clean server for one test,
    checked after it (:func:`check_after`).
    """
    __tracebackhide__ = True
    test_server_session.reset()
    _served(test_server_session, request)
    yield test_server_session
    check_after(test_server_session, request)


@pytest.fixture(scope="session", name="async_test_server_session")
def _async_test_server_session(pytestconfig: pytest.Config) -> Iterator[AsyncTestServer]:
    """
    An :class:`~txtestserver.AsyncTestServer` started once for the session.

    A plain (not async) fixture: the server lives in its own reactor thread,
    not in an event loop, so any asyncio test plugin (pytest-asyncio, anyio)
    and any loop scope can await its methods.
    """
    from . import AsyncTestServer

    settings, keep_alive = _session_settings(pytestconfig)
    server = AsyncTestServer(**settings)
    _run_coroutine(server.start(keep_alive=keep_alive))
    try:
        yield server
    finally:
        _run_coroutine(server.stop())


def _run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """
    Run ``coroutine`` to its end in an event loop of its own, in a thread of
    its own (a plain fixture may run where an asyncio plugin's loop runs).
    """
    import asyncio
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1, "txtestserver-fixture") as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(name="async_test_server")
def _async_test_server(
    async_test_server_session: AsyncTestServer, request: pytest.FixtureRequest
) -> Iterator[AsyncTestServer]:
    """
    The session's async server after ``reset()``: a clean server for one
    test, checked after it (:func:`check_after`).
    """
    __tracebackhide__ = True
    async_test_server_session.reset()
    _served(async_test_server_session, request)
    yield async_test_server_session
    check_after(async_test_server_session, request)


@pytest.fixture(name="test_server_factory")
def _test_server_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., TestServer]]:
    """
    ``test_server_factory(**settings)`` starts and returns a new
    :class:`~txtestserver.TestServer`; every server it made is stopped after
    the test. ``settings`` are the constructor's keyword arguments plus
    ``start()``'s (``keep_alive``); those not given are the session
    servers' (``--txtestserver-engine``, ``--txtestserver-tls``...), so a
    suite run with the subprocess engine runs the factory's servers there
    too.
    """
    __tracebackhide__ = True
    from . import TestServer

    servers: list[TestServer] = []
    session, session_keep_alive = _session_settings(request.config)

    def make(*, keep_alive: bool | None = None, **settings: Any) -> TestServer:
        server = TestServer(**{**session, **settings})
        server.start(keep_alive=session_keep_alive if keep_alive is None else keep_alive)
        servers.append(server)
        _served(server, request)
        return server

    yield make
    errors = []
    for server in servers:
        try:
            check_after(server, request)
        except Exception as e:  # check and stop every server, then report
            errors.append(e)
        try:
            server.stop()
        except Exception as e:
            errors.append(e)
    if errors:
        raise errors[0]


# -- proxy mode ----------------------------------------------------------------------------


@pytest.fixture(scope="session", name="test_proxy_session")
def _test_proxy_session(pytestconfig: pytest.Config) -> Iterator[TestServer]:
    """
    A proxy (``TestServer(proxy=True)``, plain HTTP on its own port, the
    session servers' engine and keep-alive) started once for the session.
    """
    from . import TestServer

    settings, keep_alive = _session_settings(pytestconfig)
    server = TestServer(**{**settings, "tls": False, "proxy": True})
    server.start(keep_alive=keep_alive)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="test_proxy")
def _test_proxy(
    test_proxy_session: TestServer, request: pytest.FixtureRequest
) -> Iterator[TestServer]:
    """
    The session's proxy after ``reset()``, with its ``client_env()`` set in
    ``os.environ`` for the test (restored after it): every client that reads
    the environment (and every child process) goes through it and trusts
    its certificates. Checked after the test (:func:`check_after`).
    """
    __tracebackhide__ = True
    test_proxy_session.reset()
    with test_proxy_session.patch_env():
        yield test_proxy_session
    check_after(test_proxy_session, request)
