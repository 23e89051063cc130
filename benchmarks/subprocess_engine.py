"""
Figures of the subprocess engine (printed, never asserted)::

    python benchmarks/subprocess_engine.py

- start(): spawn of the server process until it listens; stop() until it has
  exited and the state directory is gone;
- the cost of a state read and a state write through the public views (what a
  test pays for each ``server.request[...]`` or ``server.response[...] = ``);
- requests per second with urllib (new connection each), both engines.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.request import urlopen

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from txtestserver import TestServer


def per_call(function: Callable[[], object], calls: int) -> float:
    """Median seconds per call over 5 rounds of ``calls`` calls."""
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        rounds.append((time.perf_counter() - started) / calls)
    return statistics.median(rounds)


def lifecycle(cycles: int = 30) -> None:
    starts, stops = [], []
    for _ in range(cycles):
        server = TestServer(engine="subprocess")
        started = time.perf_counter()
        server.start()
        starts.append(time.perf_counter() - started)
        started = time.perf_counter()
        server.stop()
        stops.append(time.perf_counter() - started)
    print(
        f"start() spawn-to-listening: median {statistics.median(starts) * 1e3:.0f} ms, "
        f"max {max(starts) * 1e3:.0f} ms ({cycles} cycles)"
    )
    print(
        f"stop() until exited and cleaned: median {statistics.median(stops) * 1e3:.1f} ms, "
        f"max {max(stops) * 1e3:.1f} ms"
    )


def state_costs() -> None:
    with TestServer(engine="subprocess") as server:
        urlopen(server.get_url("/a?b=1"), b"x" * 1000).read()
        server.response["data"] = b"x" * 100
        figures = {
            "read request['done'] (status file)": lambda: server.request["done"],
            "read request['path'] (parsed, cached)": lambda: server.request["path"],
            "read response['data']": lambda: server.response["data"],
            "write response['data'] (locked, atomic replace)": lambda: server.response.__setitem__(
                "data", b"y" * 100
            ),
            "write response_once['code']": lambda: server.response_once.__setitem__("code", 201),
        }
        for name, function in figures.items():
            print(f"{name}: {per_call(function, 2000) * 1e6:.1f} us")
        for n in (10, 1000):
            server.reset()
            for _ in range(n):
                urlopen(server.get_url(), b"x").read()
            cost = per_call(lambda: server.request["done"], 1000)
            print(f"read request['done'] after {n} requests: {cost * 1e6:.1f} us")


def throughput(seconds: float = 2.0) -> None:
    for engine in ("thread", "subprocess"):
        with TestServer(engine=engine) as server:
            server.response["data"] = b"hello"
            url = server.get_url()
            count = 0
            deadline = time.perf_counter() + seconds
            started = time.perf_counter()
            while time.perf_counter() < deadline:
                urlopen(url).read()
                count += 1
            rate = count / (time.perf_counter() - started)
            print(f"urlopen, new connection each, {engine} engine: {rate:.0f} req/s")


if __name__ == "__main__":
    lifecycle()
    state_costs()
    throughput()
