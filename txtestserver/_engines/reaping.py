"""
Reaping the child processes of a reactor that is not the process's own.

Twisted keeps the children of every reactor in one table
(``twisted.internet.process.reapProcessHandlers``). The private reactor
thread (:mod:`txtestserver._reactor_thread`) runs without signal handlers,
so it reaps by polling (crochet calls :func:`reap_children_of` every 0.1 s;
on Linux the subprocess engine's pidfd watcher reaps sooner); and a reactor
that does handle SIGCHLD (trial's) reaps *every* registered child in its own
thread, which :func:`confine_reaping` undoes for ours.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["confine_reaping", "reap_children_of"]


def reap_children_of(reactor: Any) -> None:
    """
    Reap the exited children spawned on ``reactor``, and no others: the
    ``reapAllProcesses`` that crochet's event loop polls with.
    """
    from twisted.internet.process import reapProcessHandlers

    for process in list(reapProcessHandlers.values()):
        if getattr(process, "_reactor", None) is reactor:
            process.reapProcess()


def confine_reaping(process: Any, reactor: Any) -> None:
    """
    Make ``process`` (a Twisted process transport spawned on ``reactor``) be
    reaped only in ``reactor``'s thread.

    A reactor that handles SIGCHLD (trial's) reaps every child of the
    process in its own thread; for a child of another reactor,
    ``processEnded`` would then run in the wrong thread. Called from the
    protocol's ``connectionMade``, in ``reactor``'s thread, which Twisted
    runs before it puts the process in that table.
    """
    owner = threading.get_ident()
    reap = process.reapProcess

    def reap_unless_reaped() -> None:
        # Reaped meanwhile by the owner's own poll: its pid is gone.
        if process.pid is not None:
            reap()

    def reap_in_owner_thread() -> None:
        if threading.get_ident() == owner:
            reap()
        else:
            reactor.callFromThread(reap_unless_reaped)

    process.reapProcess = reap_in_owner_thread
