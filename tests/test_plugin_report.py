"""
A failing test's report shows its servers' conversation (issue 22): the
journal as a short table and the server-side errors, and with
``--txtestserver-har-dir`` (or the ini key) a HAR file per server named
after the test. Run for real: pytester writes a project and runs pytest on
it in a child process, as tests/test_plugin.py does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._warm_pytest import runpytest

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]

FAILING = """
import pytest
import requests

def test_fails(test_server):
    test_server.route("/api/items", method="POST", name="items").response["code"] = 201
    assert requests.post(test_server.get_url("/api/items?page=2"), json={}).status_code == 201
    assert requests.get(test_server.get_url("/missing")).status_code == 200

def test_passes(test_server):
    requests.get(test_server.get_url("/quiet"))

def test_two_servers_fail(test_server, test_server_factory):
    other = test_server_factory()
    requests.get(test_server.get_url("/first"))
    requests.get(other.get_url("/second"))
    assert False, "on purpose"

def test_server_error(test_server):
    test_server.route("/known")
    requests.get(test_server.get_url("/boom"))  # no route: a server-side error
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester directory whose child pytest imports this checkout's package."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_conversation=FAILING)
    return pytester


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return runpytest(project, "-p", "txtestserver.pytest_plugin", *args, timeout=120)


def test_a_failing_test_s_report_shows_the_journal(project: pytest.Pytester, engine: str) -> None:
    result = run(project, f"--txtestserver-engine={engine}")
    result.assert_outcomes(passed=2, failed=2, errors=2)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*_ test_fails _*",
            "*- txtestserver journal: call -*",
            "time * method * URL * status * route * ms",
            "* POST * http://127.0.0.1:*/api/items?page=2 * 201 * items *",
            "* GET * http://127.0.0.1:*/missing * 404 * (server) *",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ test_two_servers_fail _*",
            "*- txtestserver journal (server 1): call -*",
            "* GET * http://127.0.0.1:*/first * 200 *",
            "*- txtestserver journal (server 2): call -*",
            "* GET * http://127.0.0.1:*/second * 200 *",
        ]
    )
    # The server-side error fails the test at teardown, with the journal and the error.
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_server_error*",
            "*- txtestserver journal: teardown -*",
            "* GET * http://127.0.0.1:*/boom * 404 *",
            "server-side errors (1):",
            "- unexpected request: * (GET /boom)",
        ]
    )
    assert "/quiet" not in out  # a passing test shows nothing
    assert "txtestserver HAR" not in out  # no HAR directory set


def test_har_dir_option_saves_each_failing_test_s_hars(
    project: pytest.Pytester, engine: str
) -> None:
    result = run(project, f"--txtestserver-engine={engine}", "--txtestserver-har-dir=hars")
    result.assert_outcomes(passed=2, failed=2, errors=2)
    hars = project.path / "hars"
    assert sorted(p.name for p in hars.iterdir()) == [
        "test_conversation.py__test_fails.har",
        "test_conversation.py__test_server_error.har",
        "test_conversation.py__test_two_servers_fail.2.har",
        "test_conversation.py__test_two_servers_fail.har",
    ]
    document = json.loads((hars / "test_conversation.py__test_fails.har").read_text())
    urls = [entry["request"]["url"] for entry in document["log"]["entries"]]
    assert [url.split("/", 3)[3] for url in urls] == ["api/items?page=2", "missing"]
    second = json.loads((hars / "test_conversation.py__test_two_servers_fail.2.har").read_text())
    assert second["log"]["entries"][0]["request"]["url"].endswith("/second")
    result.stdout.fnmatch_lines(["*- txtestserver HAR: call -*", f"{hars}*test_fails.har"])


def test_har_dir_ini_key(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\ntxtestserver_har_dir = out/har\n")
    result = run(project, "-k", "test_fails")
    result.assert_outcomes(failed=1, errors=1, deselected=3)
    assert (project.path / "out" / "har" / "test_conversation.py__test_fails.har").exists()


def test_the_option_is_listed_in_help(project: pytest.Pytester) -> None:
    result = run(project, "--help")
    result.stdout.fnmatch_lines(["*--txtestserver-har-dir=DIR*", "*txtestserver_har_dir*"])
