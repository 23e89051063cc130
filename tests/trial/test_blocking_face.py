"""
The blocking API inside synchronous trial test methods: it serves from its
own reactor thread, so trial's reactor stays clean (trial's janitor fails a
test that leaves a pending call or an open port on it), in both engines.
"""

from __future__ import annotations

from typing import Any
from urllib.request import urlopen

import treq
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from tests.trial._server import StartedServer
from txtestserver import TestServer


class BlockingInTrial(StartedServer):
    """Mixed into a TestCase per engine; a DeferredTestServer runs meanwhile."""

    assertEqual: Any

    def test_blocking_server_in_a_synchronous_method(self) -> None:
        with TestServer(engine=self.engine) as server:
            server.response["data"] = b"blocking"
            self.assertEqual(urlopen(server.get_url("/b")).read(), b"blocking")
            server.wait_request(5)
            self.assertEqual(server.request["path"], "/b")

    @inlineCallbacks
    def test_blocking_server_beside_a_deferred_one(self) -> Any:
        with TestServer(engine=self.engine) as server:
            server.response["data"] = b"blocking"
            self.server.response["data"] = b"deferred"
            response = yield treq.get(self.server.get_url(), pool=self.pool)
            self.assertEqual((yield treq.content(response)), b"deferred")
            self.assertEqual(urlopen(server.get_url()).read(), b"blocking")


class BlockingInTrialThread(BlockingInTrial, TestCase):
    engine = "thread"


class BlockingInTrialSubprocess(BlockingInTrial, TestCase):
    engine = "subprocess"
