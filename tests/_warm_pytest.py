"""
Child pytest runs for the tests of the pytest plugin, forked from a process
that has imported pytest and its builtin plugins ("the starter"), instead of
each started from scratch as ``python -m pytest``: starting Python and
importing pytest was about a third of such a run.

The child is still a process of its own, forked before anything of the test
project, txtestserver, Twisted or asyncio was imported: those are imported
in the child as they are in ``python -m pytest`` (so a test of what loading
the plugin imports, or of warnings as errors at import, sees what a user's
run sees). Its environment, working directory, ``sys.path`` and arguments
are those :meth:`pytest.Pytester.runpytest_subprocess` gives, and it exits as
Python does (atexit handlers, non-daemon threads).

One starter per process that asks (each xdist worker); it exits when that
process closes its end of the pipe, at the latest when it exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest

#: The starter: reads one job a line (JSON) on stdin, forks a child pytest
#: for it, answers its pid and then its exit status, each a line.
STARTER = r"""
import json, os, sys

import pytest

try:  # the builtin plugins, as a run loads them
    from _pytest.config import get_config

    get_config()
except Exception:
    pass

REST = sys.path[1:]  # started without PYTHONPATH: sys.path[0] is ''
for line in sys.stdin:
    job = json.loads(line)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        extra = [p for p in job["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = [job["cwd"], *extra, *REST]
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(job["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        err = os.open(job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        sys.argv = [job["argv0"], *job["args"]]
        raise SystemExit(pytest.console_main())
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), flush=True)
"""


class Starter:
    """The starter process of this process, and the runs it forks."""

    def __init__(self) -> None:
        env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", STARTER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            bufsize=1,
        )

    def _read(self, deadline: float) -> dict[str, Any] | None:
        """The starter's next answer; None if it did not come by ``deadline``."""
        stdout: IO[str] = self.process.stdout  # type: ignore[assignment]
        ready, _, _ = select.select([stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return None
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the pytest starter exited ({self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self, cwd: Path, out: Path, err: Path, args: list[str], timeout: float) -> int | None:
        """Run pytest with ``args``; its exit status, None if it ran past ``timeout`` (killed)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), env.get("PYTHONPATH", "")]))
        job = {
            "cwd": str(cwd),
            "env": env,
            "args": args,
            "argv0": str(Path(pytest.__file__).with_name("__main__.py")),
            "stdout": str(out),
            "stderr": str(err),
        }
        stdin: IO[str] = self.process.stdin  # type: ignore[assignment]
        try:
            stdin.write(json.dumps(job) + "\n")
            stdin.flush()
            started = self._read(time.monotonic() + 30)
            if started is None:
                raise RuntimeError("the pytest starter did not fork a run in 30 s")
            ended = self._read(time.monotonic() + timeout)
            if ended is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(started["pid"], signal.SIGKILL)
                self._read(time.monotonic() + 30)
                return None
            return int(ended["status"])
        except BaseException:
            # Whatever it was in the middle of, the next run gets a new starter.
            self.process.kill()
            self.process.wait()
            raise


_STARTER: list[Starter] = []


def runpytest(pytester: pytest.Pytester, *args: str, timeout: float) -> pytest.RunResult:
    """
    What ``pytester.runpytest_subprocess(*args, timeout=timeout)`` does, in
    a child forked from the starter.
    """
    __tracebackhide__ = True
    if not _STARTER or _STARTER[0].process.poll() is not None:
        _STARTER[:] = [Starter()]
    n = 0
    while (pytester.path / f"runpytest-{n}").exists():
        n += 1
    basetemp = pytester.path / f"runpytest-{n}"
    basetemp.mkdir(mode=0o700)
    argv = [f"--basetemp={basetemp}", *args]
    out, err = pytester.path / "stdout", pytester.path / "stderr"
    print("running: python -m pytest", *argv)
    print("     in:", Path.cwd())
    began = time.monotonic()
    ret = _STARTER[0].run(Path.cwd(), out, err, argv, timeout)
    outlines = out.read_text(encoding="utf-8").splitlines()
    errlines = err.read_text(encoding="utf-8").splitlines()
    for lines, stream in ((outlines, sys.stdout), (errlines, sys.stderr)):
        print("\n".join(lines), file=stream)
    if ret is None:
        pytest.fail(f"{timeout} second timeout expired running: python -m pytest {argv}")
    code: int | pytest.ExitCode = ret
    with contextlib.suppress(ValueError):
        code = pytest.ExitCode(ret)
    return pytest.RunResult(code, outlines, errlines, time.monotonic() - began)
