"""
Load from a separate process: wrk when it is installed (Debian: ``apt-get
install wrk``), else the small asyncio load generator in this module (run as
``python -m bench.load PORT SECONDS|--requests N``).

Both keep up to 10 connections busy, reconnect when the server closes a
connection, and report requests/s and the 99th percentile latency.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

CONNECTIONS = 10


def tool() -> str:
    """
    ``'wrk'`` or ``'python'``: which load generator this machine uses
    (``BENCH_LOAD=python`` in the environment forces the Python one).
    """
    if os.environ.get("BENCH_LOAD") == "python" or not shutil.which("wrk"):
        return "python"
    return "wrk"


def _seconds(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def fill(port: int, target: int, recorded: Callable[[], int], limit: float = 900.0) -> None:
    """
    Load the server until it has recorded ``target`` requests.

    :param recorded: asks the server how many it has recorded so far.
    """
    deadline = time.monotonic() + limit
    while (count := recorded()) < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count} of {target} requests recorded after {limit} s")
        missing = target - count
        if tool() == "python":
            _run_python(port, ["--requests", str(missing)], limit)
        else:
            # wrk runs for a fixed time: short runs, then ask the server again.
            seconds = max(1, min(10, missing // 20_000))
            subprocess.run(
                [
                    "wrk",
                    "-t1",
                    f"-c{CONNECTIONS}",
                    f"-d{seconds}s",
                    f"http://127.0.0.1:{port}/fill?n={count}",
                ],
                check=True,
                capture_output=True,
                timeout=seconds + 60,
            )


def measure(port: int, seconds: float) -> dict[str, Any]:
    """Requests/s and p99 latency (ms) of ``seconds`` of load."""
    if tool() == "python":
        return _run_python(port, [str(seconds)], seconds + 60)
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            f"http://127.0.0.1:{port}/load?x=1",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s|m)\b", out)
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p99_ms": _seconds(*p99.groups()) * 1000 if p99 else None,
        "errors": (errors.group(1) if errors else "")
        + (f" non-2xx {non2xx.group(1)}" if non2xx else ""),
    }


def _run_python(port: int, args: list[str], limit: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.load", str(port), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=limit + 30,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- the Python load generator ----------------------------------------------


async def _client(port: int, state: dict[str, Any]) -> None:
    request = f"GET /load?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    reader = writer = None
    while not state["stop"]:
        if writer is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert reader is not None
        t = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lower = head.lower()
        match = re.search(rb"content-length:\s*(\d+)", lower)
        if match:
            await reader.readexactly(int(match.group(1)))
        else:
            await reader.read()  # the body ends when the server closes
        state["latencies"].append(time.perf_counter() - t)
        state["count"] += 1
        if state["limit"] and state["count"] >= state["limit"]:
            state["stop"] = True
        if not match or b"connection: close" in lower or head.startswith(b"HTTP/1.0"):
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _load(port: int, seconds: float, limit: int) -> dict[str, Any]:
    state: dict[str, Any] = {"stop": False, "count": 0, "latencies": [], "limit": limit}
    t = time.perf_counter()
    clients = [asyncio.ensure_future(_client(port, state)) for _ in range(CONNECTIONS)]
    if seconds:
        await asyncio.sleep(seconds)
        state["stop"] = True
    await asyncio.gather(*clients)
    elapsed = time.perf_counter() - t
    latencies = sorted(state["latencies"])
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else 0.0
    return {"rps": state["count"] / elapsed, "p99_ms": p99 * 1000, "errors": ""}


def main() -> None:
    port = int(sys.argv[1])
    if sys.argv[2] == "--requests":
        result = asyncio.run(_load(port, 0, int(sys.argv[3])))
    else:
        result = asyncio.run(_load(port, float(sys.argv[2]), 0))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
