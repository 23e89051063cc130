"""
The reactor types txtestserver needs, for type checking.

Twisted's reactor interfaces are zope ``Interface`` classes, which mypy cannot
use as types without a plugin. These ``Protocol`` classes name only the
methods txtestserver calls, so any reactor (the global one, a private
``EPollReactor``, trial's) and ``twisted.internet.task.Clock`` (for timing
tests, it has the time methods) fit them structurally.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

__all__ = ["ProcessReactor", "ServingReactor", "TimeReactor"]


class TimeReactor(Protocol):
    """What scheduling needs: ``sleep``, timeouts (``Clock`` has it)."""

    def callLater(
        self, delay: float, callable: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> IDelayedCall: ...

    def seconds(self) -> float: ...


class ServingReactor(TimeReactor, Protocol):
    """What serving needs: time, TCP, and calls from other threads."""

    def listenTCP(
        self, port: int, factory: Any, backlog: int = ..., interface: str = ...
    ) -> Any: ...

    def callFromThread(self, callable: Callable[..., Any], *args: Any, **kwargs: Any) -> None: ...


class ProcessReactor(ServingReactor, Protocol):
    """
    What a server needs of its reactor: serving, and on top child processes
    and fd watching (subprocess engine) and a trigger before it shuts down
    (to stop the servers left running).
    """

    def spawnProcess(
        self,
        processProtocol: Any,
        executable: bytes | str,
        args: Sequence[bytes | str],
        env: Mapping[str, str] | None = ...,
        path: bytes | str | None = ...,
        uid: int | None = ...,
        gid: int | None = ...,
        usePTY: bool = ...,
        childFDs: Mapping[int, int | str] | None = ...,
    ) -> Any: ...

    def addReader(self, reader: Any) -> None: ...

    def removeReader(self, reader: Any) -> None: ...

    def addSystemEventTrigger(
        self, phase: str, eventType: str, callable: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any: ...

    def removeSystemEventTrigger(self, triggerID: Any) -> None: ...
