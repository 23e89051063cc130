"""
A callback that schedules work on ``twisted.internet.reactor`` while that
reactor does not run: :class:`GlobalReactorWatch` tells, so that the client
gets a ``500`` naming ``request.reactor`` at once instead of waiting for
ever.

The blocking and asyncio faces serve from a private reactor; the global
one, when something installed it, is then usually not running at all, and
work scheduled on it (``deferLater(reactor, ...)``, ``reactor.callLater``)
never runs. Whatever serves from the global reactor (the server process of
the subprocess engine, ``DeferredTestServer`` under trial) is never
watched, nor is a global reactor that runs (in another thread): its work
does run.

Importing ``twisted.internet.reactor`` installs the global reactor, so it
is only looked at when it is installed already.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["GLOBAL_REACTOR", "GlobalReactorWatch"]

#: The error (server-side, and the body of the 500) when a callback uses it.
GLOBAL_REACTOR = (
    "response['callback'] scheduled work on twisted.internet.reactor, which does not run "
    "here: this server serves from a reactor of its own, so that work would never run and "
    "the client would wait for ever; schedule it on request.reactor instead "
    "(deferLater(request.reactor, ...), request.reactor.callLater(...))"
)


class GlobalReactorWatch:
    """
    What the global reactor had scheduled when a callback started, to tell
    what the callback added to it.

    :param reactor: the global reactor (not running, not the serving one).
    """

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._before = self._work()

    @classmethod
    def start(cls, serving: object) -> GlobalReactorWatch | None:
        """
        A watch of the global reactor, or None when there is nothing to
        watch: it is not installed, it serves, or it runs.

        :param serving: the reactor that serves the request.
        """
        installed = sys.modules.get("twisted.internet.reactor")
        if installed is None or installed is serving or getattr(installed, "running", True):
            return None
        if not hasattr(installed, "getDelayedCalls"):
            return None  # the module, not a reactor: nothing installed
        return cls(installed)

    def _work(self) -> set[int]:
        reactor = self._reactor
        work: set[int] = set()
        for items in (
            reactor.getDelayedCalls(),
            reactor.getReaders(),
            reactor.getWriters(),
            getattr(reactor, "threadCallQueue", ()),
        ):
            work.update(map(id, items))
        return work

    def added(self) -> bool:
        """The global reactor has work it did not have when the watch started."""
        return not self._work() <= self._before

    def cancel_added(self) -> None:
        """Cancel the timed calls added since (they would fire if it ever ran)."""
        for call in self._reactor.getDelayedCalls():
            if id(call) not in self._before and call.active():
                call.cancel()
