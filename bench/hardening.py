"""
The speed figures of issue 10 (hardening), for txtestserver alone, both
engines: ``python -m bench.hardening`` (``--quick`` for smaller sizes).

requests
    ``list(server.requests)``, ``len(server.requests)`` and
    ``server.requests[-1]`` with 100,000 recorded requests (recorded straight
    into the store, as the server would).
connects
    5,000 connections opened one after another as fast as the client can,
    kept open (idle), then ``stop()``.
large
    Subprocess engine with a 500 MiB ``response['data']`` set: one unrelated
    assignment (``response['headers']``), then two requests each answered by
    a 5-byte ``response_once['data']`` (the first makes the server process
    read the large value once), and one read of ``request['path']``.

Each figure is the median of ``--reps`` runs (default 3), each in a fresh
process; progress goes to standard error, the table to standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from urllib.request import urlopen

ENGINES = ["thread", "subprocess"]


def _requests(engine: str, count: int) -> dict[str, float]:
    from txtestserver import TestServer

    with TestServer(engine=engine, call_timeout=600) as server:
        store = server._engine.store
        with urlopen(server.get_url("/0")) as response:
            response.read()
        entry = store.history()[0]
        for i in range(1, count):  # copies of a real entry, as the server records them
            store.record((entry[0], b"/%d" % i, *entry[2:]))
        len(server.requests)  # the test process reads the new records once
        started = time.perf_counter()
        paths = [r["path"] for r in server.requests]
        iterate = time.perf_counter() - started
        assert len(paths) == count
        started = time.perf_counter()
        for _ in range(100):
            len(server.requests)
        length = (time.perf_counter() - started) / 100
        started = time.perf_counter()
        for _ in range(100):
            server.requests[-1]
        last = (time.perf_counter() - started) / 100
    return {"iterate_s": iterate, "len_us": length * 1e6, "last_us": last * 1e6}


def _connects(engine: str, count: int) -> dict[str, float]:
    from txtestserver import TestServer

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = TestServer(engine=engine, call_timeout=600)
    server.start()
    sockets = []
    try:
        started = time.perf_counter()
        for _ in range(count):
            sockets.append(socket.create_connection(("127.0.0.1", server.port), timeout=60))
        opened = time.perf_counter() - started
        started = time.perf_counter()
        server.stop()
        stopped = time.perf_counter() - started
    finally:
        for sock in sockets:
            sock.close()
        server.stop()
    return {"open_s": opened, "stop_ms": stopped * 1e3}


def _large(engine: str, mib: int) -> dict[str, float]:
    from txtestserver import TestServer

    with TestServer(engine=engine, call_timeout=600) as server:
        started = time.perf_counter()
        server.response["data"] = b"x" * (mib * 1024 * 1024)
        first = time.perf_counter() - started
        started = time.perf_counter()
        server.response["headers"] = [("X-A", "b")]
        assign = time.perf_counter() - started
        server.response_once["data"] = b"hello"
        started = time.perf_counter()
        with urlopen(server.get_url(), timeout=120) as response:
            assert response.read() == b"hello"
        request = time.perf_counter() - started
        server.response_once["data"] = b"again"
        started = time.perf_counter()
        with urlopen(server.get_url(), timeout=120) as response:
            assert response.read() == b"again"
        later = time.perf_counter() - started
        started = time.perf_counter()
        server.request["path"]
        read = time.perf_counter() - started
    return {
        "set_large_s": first,
        "assign_ms": assign * 1e3,
        "request_ms": request * 1e3,
        "next_request_ms": later * 1e3,
        "read_request_ms": read * 1e3,
    }


WORKERS = {"requests": _requests, "connects": _connects, "large": _large}


def _measure(name: str, engine: str, size: int) -> dict[str, float]:
    """Run one measurement in a fresh process."""
    code = (
        "import json, sys; from bench.hardening import WORKERS; "
        f"print(json.dumps(WORKERS[{name!r}]({engine!r}, {size})))"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=1800
    )
    if out.returncode != 0:
        raise RuntimeError(f"{name} {engine} failed:\n{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hardening")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one run each")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", help="comma-separated: " + ",".join(WORKERS))
    args = parser.parse_args(argv)
    reps = 1 if args.quick else args.reps
    sizes = {
        "requests": 20_000 if args.quick else 100_000,
        "connects": 1_000 if args.quick else 5_000,
        "large": 50 if args.quick else 500,
    }
    names = args.only.split(",") if args.only else list(WORKERS)
    for name in names:
        engines = ["subprocess"] if name == "large" else ENGINES
        for engine in engines:
            runs: list[dict[str, float]] = []
            for rep in range(reps):
                print(f"  {name} {engine} {rep + 1}/{reps}", file=sys.stderr, flush=True)
                try:
                    runs.append(_measure(name, engine, sizes[name]))
                except RuntimeError as e:
                    print(f"{name} ({sizes[name]:,})  {engine:10}  failed: {e}", flush=True)
            if not runs:
                continue
            for key in runs[0]:
                value = statistics.median(run[key] for run in runs)
                print(f"{name} ({sizes[name]:,})  {engine:10}  {key:16} {value:.4g}", flush=True)


if __name__ == "__main__":
    main()
