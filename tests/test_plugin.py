"""
The pytest plugin (``txtestserver.pytest_plugin``), run for real: each test
writes a small test project and runs pytest on it in a child process
(forked from a process that has imported pytest only: tests/_warm_pytest.py).

The child loads the plugin with ``-p`` and with entry-point autoloading off,
so these tests exercise this checkout's plugin whether or not (and however)
the package is installed; ``test_entry_point_declared`` checks the packaging
side.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from tests._warm_pytest import runpytest

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester directory whose child pytest imports this checkout's package."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return runpytest(project, "-p", "txtestserver.pytest_plugin", *args, timeout=120)


def test_fixtures_share_one_server_and_reset_it(project: pytest.Pytester, engine: str) -> None:
    project.makepyfile(
        test_uses_fixtures=f"""
        from urllib.request import urlopen

        seen = {{}}

        def test_first(test_server):
            assert test_server.engine == {engine!r}
            test_server.response["data"] = b"first"
            test_server.request["charset"] = "cp1251"
            assert urlopen(test_server.get_url("/one")).read() == b"first"
            assert test_server.request["path"] == "/one"
            seen["port"] = test_server.port

        def test_second_gets_the_same_server_reset(test_server):
            assert test_server.port == seen["port"]
            assert test_server.request["done"] is False
            assert test_server.request["charset"] == "utf-8"
            assert len(test_server.requests) == 0
            assert dict(test_server.response) == {{}}
            assert urlopen(test_server.get_url()).read() == b""

        def test_session_fixture_is_not_reset(test_server_session):
            assert test_server_session.port == seen["port"]
            assert test_server_session.request["path"] == "/"
        """
    )
    project.makeconftest(
        """
        import socket

        def pytest_sessionfinish(session):
            from test_uses_fixtures import seen
            try:
                socket.create_connection(("127.0.0.1", seen["port"]), timeout=5).close()
                print("PORT-STILL-OPEN")
            except ConnectionRefusedError:
                print("PORT-CLOSED")
        """
    )
    result = run(project, f"--txtestserver-engine={engine}", "-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*PORT-CLOSED*"])


def test_loading_the_plugin_does_not_import_twisted(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_plain="""
        import sys

        def test_without_fixtures():
            assert "twisted" not in sys.modules
            assert "crochet" not in sys.modules
            assert "asyncio" not in sys.modules
            assert "pytest_asyncio" not in sys.modules
            assert "anyio" not in sys.modules
            assert "txtestserver.pytest_plugin" in sys.modules
        """
    )
    result = run(project)
    result.assert_outcomes(passed=1)


def test_fixtures_work_with_warnings_as_errors_and_no_ignore(project: pytest.Pytester) -> None:
    # The blocking API does not block on crochet's EventualResult, so users
    # need no filter for crochet's isSet() DeprecationWarning.
    project.makeini(
        """
        [pytest]
        filterwarnings = error
        """
    )
    project.makepyfile(
        test_strict="""
        from urllib.request import urlopen
        import pytest

        @pytest.mark.parametrize("n", range(3))
        def test_round_trip(test_server, n):
            test_server.response["data"] = str(n)
            assert urlopen(test_server.get_url()).read() == str(n).encode()
            test_server.wait_request(5)
        """
    )
    result = run(project, "-W", "error")
    result.assert_outcomes(passed=3)


KEEP_ALIVE_TEST = """
import http.client

def test_keep_alive(test_server):
    assert test_server.engine == {engine!r}
    connection = http.client.HTTPConnection("127.0.0.1", test_server.port, timeout=10)
    for _ in range(2):
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        assert (response.getheader("Connection") == "close") is {closes}
    connection.close()
"""


@pytest.mark.parametrize(
    ("ini", "args", "engine", "keep_alive"),
    [
        ("", [], "thread", False),
        ("txtestserver_keep_alive = true", [], "thread", True),
        ("txtestserver_engine = subprocess", [], "subprocess", False),
        (
            "txtestserver_engine = subprocess\ntxtestserver_keep_alive = true",
            ["--txtestserver-engine=thread", "--txtestserver-no-keep-alive"],
            "thread",
            False,
        ),
        ("", ["--txtestserver-keep-alive", "--txtestserver-engine=subprocess"], "subprocess", True),
    ],
    ids=["defaults", "ini-keep-alive", "ini-engine", "command-line-wins", "command-line"],
)
def test_session_server_settings_from_ini_and_command_line(
    project: pytest.Pytester, ini: str, args: list[str], engine: str, keep_alive: bool
) -> None:
    project.makeini(f"[pytest]\n{ini}\n")
    project.makepyfile(test_settings=KEEP_ALIVE_TEST.format(engine=engine, closes=not keep_alive))
    result = run(project, *args)
    result.assert_outcomes(passed=1)


TLS_TEST = """
import asyncio

import httpx
import requests


def test_tls(test_server):
    assert test_server.get_url().startswith({scheme!r})
    if {tls}:
        assert requests.get(test_server.get_url(), verify=test_server.ca_path).ok


def test_async_tls(async_test_server):
    assert async_test_server.get_url().startswith({scheme!r})

    async def get():
        verify = async_test_server.client_ssl_context() if {tls} else True
        async with httpx.AsyncClient(verify=verify) as client:
            return (await client.get(async_test_server.get_url())).status_code

    assert asyncio.run(get()) == 200
"""


@pytest.mark.parametrize(
    ("ini", "args", "tls"),
    [
        ("", [], False),
        ("txtestserver_tls = true", [], True),
        ("txtestserver_tls = true", ["--txtestserver-no-tls"], False),
        ("", ["--txtestserver-tls"], True),
    ],
    ids=["default", "ini", "command-line-wins", "command-line"],
)
def test_session_servers_serve_https_when_asked(
    project: pytest.Pytester, ini: str, args: list[str], tls: bool, engine: str
) -> None:
    project.makeini(f"[pytest]\n{ini}\n")
    scheme = "https://" if tls else "http://"
    project.makepyfile(test_settings=TLS_TEST.format(scheme=scheme, tls=tls))
    result = run(project, f"--txtestserver-engine={engine}", *args)
    result.assert_outcomes(passed=2)


def test_unknown_engine_in_the_ini_file_is_rejected(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\ntxtestserver_engine = fork\n")
    result = run(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*txtestserver_engine = 'fork'*thread, subprocess*"])


def test_factory_starts_servers_of_any_settings_and_stops_them(
    project: pytest.Pytester, engine: str
) -> None:
    project.makepyfile(
        test_factory=f"""
        import http.client
        from urllib.request import urlopen

        ports = []

        def test_factory(test_server_factory):
            server = test_server_factory(
                keep_alive=True, engine={engine!r}, address="::1", body_limit=3
            )
            plain = test_server_factory()
            assert (server.engine, server.address) == ({engine!r}, "::1")
            assert plain.engine == "thread" and plain.port != server.port
            connection = http.client.HTTPConnection("::1", server.port, timeout=10)
            connection.request("POST", "/", body=b"abcdef")
            response = connection.getresponse()
            response.read()
            assert response.getheader("Connection") != "close"
            server.wait_request(5)
            assert server.request["data"] == b"abc"
            connection.close()
            assert urlopen(plain.get_url()).read() == b""
            ports.extend([("::1", server.port), ("127.0.0.1", plain.port)])
        """
    )
    project.makeconftest(
        """
        import socket

        def pytest_sessionfinish(session):
            from test_factory import ports
            assert len(ports) == 2
            for address, port in ports:
                try:
                    socket.create_connection((address, port), timeout=5).close()
                    print("PORT-STILL-OPEN")
                except ConnectionRefusedError:
                    print("PORT-CLOSED")
        """
    )
    result = run(project, "-s")
    result.assert_outcomes(passed=1)
    assert result.stdout.str().count("PORT-CLOSED") == 2
    assert "PORT-STILL-OPEN" not in result.stdout.str()


ASYNC_TESTS = """
import asyncio

import aiohttp
import httpx
import pytest

pytestmark = pytest.mark.{mark}


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_first(async_test_server):
    assert async_test_server.engine == {engine!r}
    async_test_server.response["data"] = b"async"
    async with httpx.AsyncClient() as client:
        answer = asyncio.create_task(client.get(async_test_server.get_url("/one")))
        await async_test_server.wait_request(5)
        assert (await answer).content == b"async"
    assert async_test_server.request["path"] == "/one"


async def test_second_gets_it_reset(async_test_server):
    assert len(async_test_server.requests) == 0
    async with aiohttp.ClientSession() as session:
        async with session.get(async_test_server.get_url("/two")) as response:
            assert await response.read() == b""
    await async_test_server.wait_request(5)
    assert async_test_server.request["path"] == "/two"
"""


@pytest.mark.parametrize(
    ("plugin", "mark"),
    [("pytest_asyncio.plugin", "asyncio"), ("anyio.pytest_plugin", "anyio")],
    ids=["pytest-asyncio", "anyio"],
)
def test_async_fixture_under_each_asyncio_plugin(
    project: pytest.Pytester, engine: str, plugin: str, mark: str
) -> None:
    if mark == "asyncio":
        project.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    project.makepyfile(test_async=ASYNC_TESTS.format(mark=mark, engine=engine))
    result = run(project, "-p", plugin, f"--txtestserver-engine={engine}", "-W", "error")
    result.assert_outcomes(passed=2)


def test_each_xdist_worker_gets_its_own_server(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_workers="""
        import os
        from urllib.request import urlopen

        import pytest

        @pytest.mark.parametrize("n", range(8))
        def test_serves(test_server, n, tmp_path_factory):
            test_server.response["data"] = str(n)
            assert urlopen(test_server.get_url()).read() == str(n).encode()
            assert test_server.request["path"] == "/"
            out = tmp_path_factory.getbasetemp().parent / f"seen-{os.getpid()}-{n}"
            out.write_text(f"{os.environ['PYTEST_XDIST_WORKER']} {test_server.port}")
        """
    )
    result = run(project, "-p", "xdist.plugin", "-n", "2")
    result.assert_outcomes(passed=8)
    seen = {}
    for path in project.path.parent.rglob("seen-*"):
        worker, port = path.read_text().split()
        seen.setdefault(worker, set()).add(port)
    assert set(seen) == {"gw0", "gw1"}, seen
    assert all(len(ports) == 1 for ports in seen.values()), seen  # one server per worker
    assert seen["gw0"] != seen["gw1"]


def test_unknown_engine_is_rejected(project: pytest.Pytester) -> None:
    result = run(project, "--txtestserver-engine=fork")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--txtestserver-engine*invalid choice*fork*"])


def test_option_is_listed_in_help(project: pytest.Pytester) -> None:
    result = run(project, "--help")
    result.stdout.fnmatch_lines(
        [
            "*txtestserver*",
            "*--txtestserver-engine*",
            "*--txtestserver-keep-alive*",
            "*--txtestserver-strict*",
            "*--txtestserver-tls*",
            "*txtestserver_engine*",
            "*txtestserver_keep_alive*",
            "*txtestserver_strict*",
            "*txtestserver_tls*",
        ]
    )


def test_entry_point_declared() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    plugin = project["entry-points"]["pytest11"]["txtestserver"]
    module = importlib.import_module(plugin)
    assert hasattr(module, "pytest_addoption")
    script = project["scripts"]["txtestserver"]
    module_name, _, function = script.partition(":")
    assert callable(getattr(importlib.import_module(module_name), function))


def test_a_server_side_error_fails_the_test_that_caused_it(
    project: pytest.Pytester, engine: str
) -> None:
    project.makepyfile(
        test_errors="""
        import urllib.error
        from urllib.request import urlopen

        import pytest
        from txtestserver import ServerSideError


        def get(url):
            try:
                urlopen(url).read()
            except urllib.error.HTTPError as e:
                return e.code
            return 200


        def test_causes_an_error(test_server):
            test_server.response["callback"] = "test_errors:explodes"
            assert get(test_server.get_url("/boom")) == 500


        def test_after_it_starts_clean(test_server):
            assert list(test_server.errors) == []
            assert get(test_server.get_url("/fine")) == 200


        @pytest.mark.allow_server_errors
        def test_marked(test_server):
            test_server.response["callback"] = "test_errors:explodes"
            assert get(test_server.get_url("/marked")) == 500


        def test_checks_itself(test_server):
            test_server.response["callback"] = "test_errors:explodes"
            get(test_server.get_url("/checked"))
            with pytest.raises(ServerSideError, match="GET /checked"):
                test_server.check()


        def test_clears_them(test_server):
            test_server.response["callback"] = "test_errors:explodes"
            get(test_server.get_url("/cleared"))
            test_server.errors.clear()


        def explodes(request):
            raise RuntimeError("the callback failed on purpose")
        """
    )
    result = run(project, f"--txtestserver-engine={engine}")
    result.assert_outcomes(passed=5, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_causes_an_error*",
            "*ServerSideError: the server had 1 error while answering (oldest first):*",
            "*1. GET /boom HTTP/1.1: response?'callback'? raised RuntimeError: "
            "the callback failed on purpose*",
        ]
    )


def test_the_marker_is_registered(project: pytest.Pytester) -> None:
    result = run(project, "--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.allow_server_errors*"])


STRICT_TESTS = """
import urllib.error
from urllib.request import urlopen

import pytest
from txtestserver import ServerSideError


def status(url):
    try:
        with urlopen(url) as response:
            return response.status
    except urllib.error.HTTPError as e:
        e.close()
        return e.code


def test_unexpected_request_fails_at_teardown(test_server):
    test_server.route("/expected")
    assert status(test_server.get_url("/expected")) == 200
    assert status(test_server.get_url("/unexpected")) == 404


def test_unused_response_once_fails_at_teardown(test_server):
    test_server.response_once["data"] = b"never asked for"


@pytest.mark.allow_server_errors
def test_marked(test_server):
    assert status(test_server.get_url("/unexpected")) == 404


def test_factory_makes_a_strict_server(test_server_factory):
    server = test_server_factory(strict=True, engine={engine!r})
    assert status(server.get_url("/nothing")) == 404
    with pytest.raises(ServerSideError, match="unexpected request"):
        server.check()


@pytest.fixture
def anyio_backend():
    return "asyncio"  # anyio 4.0 runs each test under trio too, which is not installed


@pytest.mark.anyio
async def test_async_session_server_is_strict(async_test_server):
    assert async_test_server.config.strict is True
"""


@pytest.mark.parametrize(
    ("ini", "args"),
    [("txtestserver_strict = true", []), ("", ["--txtestserver-strict"])],
    ids=["ini", "command-line"],
)
def test_strict_session_servers_and_factory(
    project: pytest.Pytester, engine: str, ini: str, args: list[str]
) -> None:
    project.makeini(f"[pytest]\n{ini}\n")
    project.makepyfile(test_strict=STRICT_TESTS.format(engine=engine))
    result = run(project, "-p", "anyio", f"--txtestserver-engine={engine}", *args)
    result.assert_outcomes(passed=5, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unexpected_request_fails_at_teardown*",
            "*1. GET /unexpected HTTP/1.1: unexpected request (strict mode): no route matches"
            " it; the closest is route '? /expected': path '/unexpected' (the route wants"
            " '/expected')*",
            "*ERROR at teardown of test_unused_response_once_fails_at_teardown*",
            "*1. no request in particular: response_once?'data'? was never used*",
        ]
    )


FACTORY_DEFAULTS = """
import ssl
from urllib.request import urlopen


def test_a_setting_not_given_is_the_session_servers(test_server_factory):
    server = test_server_factory()
    assert server.engine == "subprocess"
    assert (server.config.tls, server.config.strict, server.config.keep_alive) == (
        True, True, True
    )
    assert server.get_url().startswith("https://")
    server.route("/x")
    context = ssl.create_default_context(cafile=server.ca_path)
    assert urlopen(server.get_url("/x"), context=context).read() == b""


def test_a_setting_given_wins(test_server_factory):
    server = test_server_factory(engine="thread", tls=False, strict=False, keep_alive=False)
    assert server.engine == "thread"
    assert (server.config.tls, server.config.strict, server.config.keep_alive) == (
        False, False, False
    )
"""


@pytest.mark.parametrize(
    ("ini", "args"),
    [
        (
            "txtestserver_engine = subprocess\ntxtestserver_tls = true\n"
            "txtestserver_strict = true\ntxtestserver_keep_alive = true",
            [],
        ),
        (
            "",
            [
                "--txtestserver-engine=subprocess",
                "--txtestserver-tls",
                "--txtestserver-strict",
                "--txtestserver-keep-alive",
            ],
        ),
    ],
    ids=["ini", "command-line"],
)
def test_factory_takes_the_session_settings_it_is_not_given(
    project: pytest.Pytester, ini: str, args: list[str]
) -> None:
    project.makeini(f"[pytest]\n{ini}\n")
    project.makepyfile(test_factory_defaults=FACTORY_DEFAULTS)
    result = run(project, *args)
    result.assert_outcomes(passed=2)


def test_a_teardown_failure_shows_the_message_not_the_plugin_source(
    project: pytest.Pytester, engine: str
) -> None:
    """check() after a test fails it with the errors, without 50-70 lines of plugin source."""
    project.makepyfile(
        test_shown="""
        import urllib.error
        from urllib.request import urlopen


        def boom(server):
            server.response["callback"] = "test_shown:explodes"
            try:
                urlopen(server.get_url("/boom")).read()
            except urllib.error.HTTPError:
                pass


        def test_fixture(test_server):
            boom(test_server)


        def test_factory(test_server_factory):
            boom(test_server_factory())


        def explodes(request):
            raise RuntimeError("the callback failed on purpose")
        """
    )
    result = run(project, f"--txtestserver-engine={engine}")
    result.assert_outcomes(passed=2, errors=2)
    output = result.stdout.str()
    # Once in each test's report; the summary's lines are cut to the terminal's
    # width, except where CI is set in the environment (pytest then keeps them whole).
    reports = output.partition("short test summary info")[0]
    assert reports.count("ServerSideError: the server had 1 error while answering") == 2
    for source in ("check_after(", "def _test_server", "store.take_errors()", "yield make"):
        assert source not in output


def test_the_process_started_ahead_is_switched_off_by_the_ini_file(
    project: pytest.Pytester,
) -> None:
    project.makeini("[pytest]\ntxtestserver_start_ahead = false\n")
    project.makepyfile(
        test_ahead="""
        import os

        from txtestserver._engines.subprocess import start_ahead

        def test_off(test_server_factory):
            assert os.environ["TXTESTSERVER_START_AHEAD"] == "0"
            assert start_ahead() is False
            assert test_server_factory(engine="subprocess").pid is not None
        """
    )
    result = run(project)
    result.assert_outcomes(passed=1)
