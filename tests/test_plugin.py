"""
The pytest plugin (``txtestserver.pytest_plugin``), run for real: each test
writes a small test project and runs pytest on it in a child process.

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

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester directory whose child pytest imports this checkout's package."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest_subprocess("-p", "txtestserver.pytest_plugin", *args, timeout=120)


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


def test_unknown_engine_is_rejected(project: pytest.Pytester) -> None:
    result = run(project, "--txtestserver-engine=fork")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--txtestserver-engine*invalid choice*fork*"])


def test_option_is_listed_in_help(project: pytest.Pytester) -> None:
    result = run(project, "--help")
    result.stdout.fnmatch_lines(["*txtestserver*", "*--txtestserver-engine*"])


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
