"""
One test run that mixes test styles: trial TestCases on trial's (global)
reactor, TestServer in a synchronous trial test method, and plain pytest
tests on the ``test_server`` fixture, in either order, in both engines, with
no hook of ours. Each test writes a small project and runs it in a child
process, under pytest and under trial.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._warm_pytest import runpytest

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]

TRIAL_MODULE = """
from urllib.request import urlopen

import treq
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest
from twisted.web.client import HTTPConnectionPool

from txtestserver import DeferredTestServer, TestServer

ENGINE = {engine!r}


class BlockingServerInTrial(unittest.TestCase):
    # A synchronous test method: trial's reactor does not run meanwhile, and
    # its janitor checks afterwards that nothing was left on it.
    def test_a_blocking_server(self):
        with TestServer(engine=ENGINE) as server:
            server.response["data"] = b"blocking"
            self.assertEqual(urlopen(server.get_url()).read(), b"blocking")
            server.wait_request(5)
            self.assertEqual(server.request["path"], "/")


class DeferredServer(unittest.TestCase):
    def setUp(self):
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(self.pool.closeCachedConnections)
        self.server = DeferredTestServer(engine=ENGINE)
        self.addCleanup(self.server.stop)
        return self.server.start()

    @inlineCallbacks
    def test_b_deferred_server(self):
        self.server.response["data"] = b"deferred"
        response = yield treq.get(self.server.get_url("/d"), pool=self.pool)
        self.assertEqual((yield treq.content(response)), b"deferred")
        yield self.server.wait_request(5)
        self.assertEqual(self.server.request["path"], "/d")

    def test_c_blocking_server_while_a_deferred_one_runs(self):
        with TestServer(engine=ENGINE) as server:
            self.assertEqual(urlopen(server.get_url()).read(), b"")
"""

PLAIN_MODULE = """
from urllib.request import urlopen


def test_fixture(test_server):
    test_server.response["data"] = b"plain"
    assert urlopen(test_server.get_url("/p")).read() == b"plain"
    test_server.wait_request(5)
    assert test_server.request["path"] == "/p"
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, engine: str) -> Path:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        test_trial_side=TRIAL_MODULE.format(engine=engine), test_plain_side=PLAIN_MODULE
    )
    return pytester.path


@pytest.mark.parametrize("trial_first", [True, False], ids=["trial-first", "plain-first"])
def test_pytest_runs_trial_and_plain_tests_together(
    pytester: pytest.Pytester, project: Path, engine: str, trial_first: bool
) -> None:
    modules = ["test_trial_side.py", "test_plain_side.py"]
    if not trial_first:
        modules.reverse()
    result = runpytest(
        pytester,
        "-p",
        "txtestserver.pytest_plugin",
        f"--txtestserver-engine={engine}",
        "-p",
        "no:cacheprovider",
        "-W",
        "error",
        *modules,
        timeout=120,
    )
    result.assert_outcomes(passed=4)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_trial_runs_blocking_and_deferred_servers_together(project: Path) -> None:
    """Under trial itself (its reactor reaps children on SIGCHLD)."""
    done = subprocess.run(
        [sys.executable, "-m", "twisted.trial", "test_trial_side"],
        cwd=project,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(project), str(ROOT)])),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "PASSED (successes=3)" in output, output
