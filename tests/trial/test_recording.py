"""
Record and replay (issue 22) through the Deferred API
(``DeferredTestServer``) in trial, on trial's reactor, with treq as the
client, in every engine: forward() to an upstream (its kept-alive
connections closed at stop, or trial would find them left behind), the HAR
saved and replayed.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import treq
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from tests.trial._server import StartedServer
from txtestserver import DeferredTestServer


class RecordingTests(StartedServer):
    """Mixed into a TestCase per engine."""

    assertEqual: Any

    @inlineCallbacks
    def test_forward_record_and_replay(self) -> Any:
        upstream = DeferredTestServer()
        yield upstream.start(keep_alive=True)
        self.addCleanup(upstream.stop)
        upstream.route("/items").response["json"] = [1, 2]
        directory = Path(tempfile.mkdtemp())
        path = directory / "items.har"
        self.server.forward(upstream.get_url(""))
        self.server.load_har(path, mode="all")
        for _ in range(2):
            response = yield treq.get(self.server.get_url("/items"), pool=self.pool)
            body = yield treq.json_content(response)
            self.assertEqual(body, [1, 2])
        yield self.server.stop()  # writes the file; closes the connection to the upstream
        entries = json.loads(path.read_text())["log"]["entries"]
        self.assertEqual([e["response"]["status"] for e in entries], [200, 200])
        replayer = DeferredTestServer(engine=self.engine)
        yield replayer.start()
        self.addCleanup(replayer.stop)
        replayer.load_har(path)
        response = yield treq.get(replayer.get_url("/items"), pool=self.pool)
        body = yield treq.json_content(response)
        self.assertEqual(body, [1, 2])


class ThreadEngineTests(RecordingTests, TestCase):
    engine = "thread"


class SubprocessEngineTests(RecordingTests, TestCase):
    engine = "subprocess"
