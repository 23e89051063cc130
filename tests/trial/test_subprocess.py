"""
The subprocess engine's own lifecycle through the Deferred API, in trial's
reactor (which reaps children on SIGCHLD, unlike crochet's): a server
process that cannot start, that is killed, the state directory, and the
fork server that forks each server process. The shared behaviour runs for
both engines in test_deferred.py and test_faults.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import treq
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import SkipTest, TestCase

from tests.trial._server import StartedServer
from txtestserver import DeferredTestServer, TestServerError


def parent_of(pid: int) -> int:
    """The id of the parent of process ``pid`` (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[1])


class SubprocessLifecycleTests(StartedServer, TestCase):
    engine = "subprocess"

    @inlineCallbacks
    def get(self, path: str = "/") -> Any:
        response = yield treq.get(self.server.get_url(path), pool=self.pool)
        body = yield treq.content(response)
        return body

    @inlineCallbacks
    def test_killed_server_is_reported_by_the_next_calls(self) -> Any:
        self.server.response_once["callback"] = "tests.callbacks:pid"
        pid = int((yield self.get()))
        self.server.reset()  # done is false again: wait_request has to wait
        waiting = self.server.wait_request(30)
        os.kill(pid, signal.SIGKILL)
        error = yield self.assertFailure(waiting, TestServerError)
        self.assertIn("was killed by signal 9 (SIGKILL)", str(error))
        self.assertRaises(TestServerError, lambda: self.server.request["path"])
        error = yield self.assertFailure(self.server.stop(), TestServerError)
        self.assertIn("signal 9", str(error))
        yield self.server.stop()  # reported once
        # The server starts again, with a new process.
        yield self.server.start()
        self.server.response["data"] = b"back"
        self.assertEqual((yield self.get()), b"back")

    @inlineCallbacks
    def test_state_directory_is_removed_on_stop(self) -> Any:
        directory = self.server._engine.store.directory  # type: ignore[attr-defined]
        self.assertTrue(os.path.isdir(directory))
        yield self.get("/seen")
        yield self.server.stop()
        self.assertFalse(os.path.exists(directory))
        self.assertEqual(self.server.request["path"], "/seen")

    @inlineCallbacks
    def test_import_error_in_the_server_process(self) -> Any:
        shadow = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, shadow)
        (shadow / "txtestserver").mkdir()
        (shadow / "txtestserver" / "__init__.py").write_text(
            "raise ImportError('broken on purpose')"
        )
        self.patch(sys, "path", [str(shadow), *sys.path])
        other = DeferredTestServer(engine="subprocess")
        error = yield self.assertFailure(other.start(), TestServerError)
        self.assertIn("could not start: it exited with code 1", str(error))
        self.assertIn("ImportError: broken on purpose", str(error))

    @inlineCallbacks
    def test_each_start_forks_the_server_from_the_fork_server(self) -> Any:
        """
        On trial's reactor too, a start is a fork of the fork server (a
        child of this process with the imports done), not a new Python: the
        serving process, ``server.pid``, is the fork server's child, not
        ours, and so is the next one, started back to back. trial's janitor
        checks after the test that nothing of either is left on its reactor.
        """
        if not os.path.isdir("/proc/self"):
            raise SkipTest("needs /proc")
        pids, parents = [], []
        for start in (False, True):
            if start:
                yield self.server.start()
            self.server.response["callback"] = "tests.callbacks:pid"
            served_by = int((yield self.get()))
            self.assertEqual(served_by, self.server.pid)
            pids.append(served_by)
            parents.append(parent_of(served_by))
            yield self.server.stop()
        self.assertNotEqual(pids[0], pids[1])
        fork_server = parents[0]
        self.assertEqual(parents, [fork_server, fork_server])
        self.assertNotEqual(fork_server, os.getpid())
        self.assertEqual(parent_of(fork_server), os.getpid())

    @inlineCallbacks
    def test_the_fork_server_can_be_switched_off(self) -> Any:
        """``TXTESTSERVER_START_AHEAD=0``: the server process is this process's child again."""
        if not os.path.isdir("/proc/self"):
            raise SkipTest("needs /proc")
        yield self.server.stop()
        self.patch(os, "environ", dict(os.environ, TXTESTSERVER_START_AHEAD="0"))
        yield self.server.start()
        self.assertEqual(parent_of(self.server.pid), os.getpid())  # type: ignore[arg-type]
        self.server.response["data"] = b"spawned"
        self.assertEqual((yield self.get()), b"spawned")
