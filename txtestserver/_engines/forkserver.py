"""
The fork server of the subprocess engine::

    python -c "...run_module('txtestserver._engines.forkserver')"

A helper process that the test process starts once (:mod:`.forking`): it
does the server process's imports (:func:`.child.prepare`: most of a
start), then forks one server process per request, so a ``start()`` costs a
fork instead of a Python start-up, also when starts come back to back.

Talking to the test process:

- fd 3, a ``SOCK_SEQPACKET`` socket: one message per server to fork,
  carrying two descriptors, the server's control socket (its stdin and
  stdout) and its error output. The forked server runs
  :func:`.child.main` on them, as a spawned one would on its pipes.
- stdout: one line per event (:class:`.wire.ForkServerEvents`): ``forked``
  with the pid of each server forked, in the order of the requests, and
  ``ended`` with the wait status of each server that exited (we are their
  parent: only we can reap them).
- stdin: its end means the test process no longer needs us (or is gone): we
  fork no more, wait until our servers have exited (each watches its own
  control socket, so they go when the test process goes), report them, and
  exit.

We never run a reactor or a thread: a fork copies only the thread that
calls it, and the reactor is installed by each server after its fork, so no
two processes share an epoll instance.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import socket
import sys
import traceback

from .wire import event_line

__all__ = ["main"]

#: The descriptor of the request socket in the fork server.
REQUESTS_FD = 3


def _serve_forked(control: int, errors: int) -> None:
    """In a forked child: become a server process on ``control`` and ``errors``; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        os.dup2(control, 0)
        os.dup2(control, 1)
        os.dup2(errors, 2)
        os.close(control)
        os.close(errors)
        from .child import main

        code = main()
    except BaseException:
        with contextlib.suppress(OSError):
            os.write(2, traceback.format_exc().encode())
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def main() -> int:
    """Import, then fork a server per request until stdin ends and every server has exited."""
    from .child import prepare

    prepare()
    # What the imports made is shared with every fork, copy-on-write: keep
    # the collector away from it (a collection writes to every object it
    # visits, which would copy each page in each server).
    gc.freeze()
    requests = socket.socket(fileno=REQUESTS_FD)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the test process's
    children: set[int] = set()
    watched = [0, requests.fileno(), wake_read]
    while 0 in watched or children:
        ready = select.select(watched, [], [])[0] if watched else []
        if wake_read in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_read, 512)
        _reap(children)
        if 0 in ready and not os.read(0, 512):
            watched = [wake_read]  # fork no more; wait for our servers
        elif requests.fileno() in ready and 0 in watched:
            message, fds, _, _ = socket.recv_fds(requests, 16, 2)
            if not message:  # the test process closed its end
                watched = [wake_read]
                continue
            pid = os.fork()
            if pid == 0:
                requests.close()
                os.close(wake_read)
                os.close(wake_write)
                _serve_forked(*fds)
            for fd in fds:
                os.close(fd)
            children.add(pid)
            os.write(1, event_line("forked", pid))
    return 0


def _reap(children: set[int]) -> None:
    """Reap the servers that have exited and report each (``ended``)."""
    for pid in list(children):
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 0
        if done:
            children.discard(pid)
            with contextlib.suppress(OSError):
                os.write(1, event_line("ended", pid, status))


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
