"""
``confine_reaping``: a child of one reactor reaped by another reactor's
SIGCHLD handler (trial's) is reaped in its own reactor's thread, once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from txtestserver._engines.reaping import confine_reaping


class Process:
    """What confine_reaping uses of a process transport: its pid and reapProcess."""

    def __init__(self) -> None:
        self.pid: int | None = 4242
        self.reaped = 0

    def reapProcess(self) -> None:
        if self.pid is None:
            raise TypeError("'NoneType' object cannot be interpreted as an integer")
        self.reaped += 1
        self.pid = None


class Reactor:
    """A reactor whose calls from other threads wait in a list."""

    def __init__(self) -> None:
        self.from_threads: list[Callable[[], Any]] = []

    def callFromThread(self, function: Callable[[], Any]) -> None:
        self.from_threads.append(function)


def reaped_in_another_thread(process: Process) -> None:
    thread = threading.Thread(target=process.reapProcess)
    thread.start()
    thread.join(5)


def test_a_reap_from_another_thread_is_handed_to_the_owner() -> None:
    process, reactor = Process(), Reactor()
    confine_reaping(process, reactor)
    reaped_in_another_thread(process)
    assert process.reaped == 0
    for call in reactor.from_threads:
        call()
    assert process.reaped == 1


def test_a_reap_handed_over_after_the_owner_reaped_does_nothing() -> None:
    """
    trial's SIGCHLD handler hands a reap to the owner, whose own poll reaps
    the process first: the handed-over reap must not reap a pid of None
    (trial reported that TypeError as an error of whichever test ran).
    """
    process, reactor = Process(), Reactor()
    confine_reaping(process, reactor)
    reaped_in_another_thread(process)
    process.reapProcess()  # the owner's poll, in the owner's thread
    for call in reactor.from_threads:
        call()
    assert process.reaped == 1
