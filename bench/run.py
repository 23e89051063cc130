"""
The benchmark: ``python -m bench`` (``--quick`` for a short smoke run).

Every contender is measured in the same run, interleaved (the order rotates
each repetition), each measurement in a fresh process. Figures are medians
over the repetitions with min/max, and each contender's ratio to txtestserver
(thread mode) so that the targets of docs/performance.rst can be checked on
a shared, noisy machine: only ratios from the same run count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import load
from .contenders import ALL, REFERENCE, TLS, available
from .proxy import missing as proxy_missing

ROOT = Path(__file__).resolve().parent.parent
SUBPROCESS = "txtestserver-subprocess"
#: txtestserver under load with its default keep_alive=False (each answer closes).
CLOSING = "txtestserver-close"


@dataclass
class Item:
    """One measured quantity."""

    key: str
    title: str
    unit: str
    higher_is_better: bool
    worker: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)
    only: list[str] | None = None  # contenders it applies to (default: all)
    group: str = ""  # what --only names


def _item(
    key: str,
    title: str,
    unit: str,
    higher: bool,
    worker: str = "",
    full: Any = None,
    quick: Any = None,
    only: list[str] | None = None,
    group: str = "",
) -> Item:
    return Item(key, title, unit, higher, worker, full or {}, quick or {}, only, group or key)


LIBRARIES = ["txtestserver", "test_server", "pytest-httpserver", "asyncio"]
# fmt: off
ITEMS = [
    _item("cycle", "start + stop cycle", "ms", False, "cycle",
          {"cycles": 200, "seconds": 2.0}, {"cycles": 30, "seconds": 0.5}),
    _item("start", "start() alone (subprocess: spawn to ready)", "ms", False, group="cycle"),
    # The same cycle with three scripted WebSocket routes set before start():
    # their scripts cross to the server process with the table.
    _item("cycle_ws", "start + stop cycle, 3 WebSocket routes set", "ms", False, "cycle",
          {"cycles": 200, "seconds": 2.0, "websocket_routes": 3},
          {"cycles": 30, "seconds": 0.5, "websocket_routes": 3},
          only=[REFERENCE, SUBPROCESS]),
    _item("cycle_first", "first start + stop in a fresh process (import and set-up included)",
          "ms", False, group="cycle"),
    _item("start_run", "start() in a run of 1 s tests (subprocess: started ahead)", "ms", False,
          "start_in_a_run", {"cycles": 5, "pause": 1.0}, {"cycles": 3, "pause": 1.0},
          group="cycle"),
    _item("cycle_req", "start + one request + stop", "ms", False, "cycle",
          {"cycles": 200, "seconds": 2.0, "with_request": True},
          {"cycles": 30, "seconds": 0.5, "with_request": True}),
    _item("newconn", "sequential requests, new connection each (urllib)", "req/s", True,
          "newconn", {"requests": 1000}, {"requests": 200}),
    _item("keepalive", "sequential requests, one kept-alive connection (http.client)", "req/s",
          True, "keepalive", {"requests": 3000}, {"requests": 300}),
    _item("routes_0", "kept-alive requests, no route", "req/s", True, "routes",
          {"requests": 3000, "routes": 0}, {"requests": 300, "routes": 0},
          only=[REFERENCE, SUBPROCESS], group="routes"),
    _item("routes_10", "kept-alive requests, 10 routes, none matches", "req/s", True, "routes",
          {"requests": 3000, "routes": 10}, {"requests": 300, "routes": 10},
          only=[REFERENCE, SUBPROCESS], group="routes"),
    _item("routes_100", "kept-alive requests, 100 routes, none matches", "req/s", True, "routes",
          {"requests": 3000, "routes": 100}, {"requests": 300, "routes": 100},
          only=[REFERENCE, SUBPROCESS], group="routes"),
    _item("routes_100_hit", "kept-alive requests, 100 routes, the oldest matches", "req/s",
          True, "routes", {"requests": 3000, "routes": 100, "hit": True},
          {"requests": 300, "routes": 100, "hit": True}, only=[REFERENCE, SUBPROCESS],
          group="routes"),
    *[
        _item(f"routes_{n}_{kind}", f"kept-alive requests, {n:,} routes, {what}", "req/s", True,
              "routes", {"requests": 3000, "routes": n, "kind": kind},
              {"requests": 300, "routes": n, "kind": kind}, only=[REFERENCE, SUBPROCESS],
              group="routes_scale")
        for n in (100, 1000, 10000)
        for kind, what in [("literal", "one literal path matches"),
                           ("pattern", "one pattern matches"), ("none", "none matches")]
    ],
    _item("routes_add", "adding 10,000 routes (server.route(...) each)", "s", False,
          group="routes_scale"),
    _item("upload", "10 MiB upload (POST)", "MiB/s", True, "upload",
          {"mib": 10, "times": 3}, {"mib": 10, "times": 1}),
    _item("download", "10 MiB download (GET)", "MiB/s", True, "download",
          {"mib": 10, "times": 3}, {"mib": 10, "times": 1}),
    _item("import", "import of the package", "ms", False, "import", only=LIBRARIES),
    _item("import_class", "import until the server class is at hand", "ms", False, "import",
          {"with_class": True}, {"with_class": True}, only=LIBRARIES, group="import"),
    _item("state_write", "state write: response['data'] = ...", "us", False, "state",
          {"ops": 2000}, {"ops": 200}, only=[REFERENCE, SUBPROCESS], group="state"),
    _item("state_read", "state read: request['path']", "us", False, group="state"),
    _item("rps", "capacity: 10 connections from another process, 200,000 recorded", "req/s", True,
          group="capacity"),
    _item("p99", "p99 latency under that load", "ms", False, group="capacity"),
    _item("mem", "memory per recorded request", "bytes", False, group="capacity"),
    _item("gc", "longest full GC pause while recording 200,000 requests", "ms", False,
          group="capacity"),
    _item("gc_forced", "a forced full collection with 200,000 recorded", "ms", False,
          group="capacity"),
    _item("plugin", "pytest run not using the server: cost the plugin adds", "ms", False),
    # The command: Ctrl-C (SIGINT) until the process has exited, with a client
    # whose request is stalled (the server must not wait for it).
    _item("cli_stop", "the txtestserver command: Ctrl-C to exit, a stalled client connected",
          "ms", False, "cli_stop", {"runs": 7}, {"runs": 3}, only=[REFERENCE, SUBPROCESS]),
    # WebSocket: txtestserver's echo route next to a bare websockets echo server
    # (in the asyncio column), one process each, the same sync client.
    _item("ws_p50", "WebSocket: 1 KiB echo round trip, p50 (asyncio: bare websockets)", "us",
          False, "websocket", {"messages": 3000, "connects": 300},
          {"messages": 300, "connects": 50}, only=[REFERENCE, "asyncio"], group="websocket"),
    _item("ws_p99", "WebSocket: 1 KiB echo round trip, p99", "us", False, group="websocket"),
    _item("ws_rate", "WebSocket: echo messages per second, one connection", "msg/s", True,
          group="websocket"),
    _item("ws_connects", "WebSocket: connect + handshake + close per second", "conn/s", True,
          group="websocket"),
    # Record and replay (issue 22).
    _item("har_export", "HAR: export of 10,000 recorded requests (to_har)", "s", False, "har",
          {"requests": 10000}, {"requests": 10000}, only=[REFERENCE, SUBPROCESS], group="har"),
    _item("har_replay", "HAR: kept-alive requests, 1,000 recorded entries replayed (load_har)",
          "req/s", True, "replay", {"requests": 3000, "entries": 1000, "kind": "har"},
          {"requests": 300, "entries": 1000, "kind": "har"}, only=[REFERENCE, SUBPROCESS],
          group="har"),
    _item("har_replay_routes", "HAR: the same with 1,000 literal routes (the baseline)",
          "req/s", True, "replay", {"requests": 3000, "entries": 1000, "kind": "routes"},
          {"requests": 300, "entries": 1000, "kind": "routes"}, only=[REFERENCE, SUBPROCESS],
          group="har"),
    _item("har_forward", "HAR: forward() overhead per request against the upstream directly",
          "ms", False, "forward", {"requests": 2000}, {"requests": 300},
          only=[REFERENCE, SUBPROCESS], group="har"),
    _item("tls_cycle", "HTTPS: start + stop cycle", "ms", False, "cycle",
          {"cycles": 200, "seconds": 2.0, "tls": True},
          {"cycles": 30, "seconds": 0.5, "tls": True}, only=TLS, group="tls"),
    _item("tls_newconn", "HTTPS: handshake + one request, new connection each (urllib)",
          "req/s", True, "newconn", {"requests": 500, "tls": True},
          {"requests": 100, "tls": True}, only=TLS, group="tls"),
    _item("tls_keepalive", "HTTPS: sequential requests, one kept-alive connection (http.client)",
          "req/s", True, "keepalive", {"requests": 3000, "tls": True},
          {"requests": 300, "tls": True}, only=TLS, group="tls"),
    # Proxy mode (bench/proxy.py): txtestserver's column only; the ways to
    # reach one server are rows. mitmdump and pproxy are skipped when missing.
    *[
        _item(f"proxy_{via}", f"HTTPS, one kept-alive connection: {what}", "req/s", True,
              "proxy", {"what": "keepalive", "via": via, "requests": 2000},
              {"what": "keepalive", "via": via, "requests": 300}, only=[REFERENCE],
              group="proxy")
        for via, what in [("direct", "direct (tls=True)"),
                          ("connect", "through txtestserver's CONNECT (proxy=True)"),
                          ("mitmdump", "through mitmdump in front (intercepting)"),
                          ("pproxy", "through pproxy in front (passing TLS through)")]
    ],
    _item("proxy_cert", "proxy: first certificate for a new host (new minus known host)", "ms",
          False, "proxy", {"what": "first_certificate", "hosts": 50},
          {"what": "first_certificate", "hosts": 10}, only=[REFERENCE], group="proxy"),
    _item("proxy_cycle_off", "start + stop cycle, proxy=False", "ms", False, "proxy",
          {"what": "cycle", "proxy": False, "cycles": 100},
          {"what": "cycle", "proxy": False, "cycles": 30}, only=[REFERENCE], group="proxy"),
    _item("proxy_cycle_on", "start + stop cycle, proxy=True", "ms", False, "proxy",
          {"what": "cycle", "proxy": True, "cycles": 100},
          {"what": "cycle", "proxy": True, "cycles": 30}, only=[REFERENCE], group="proxy"),
]
# fmt: on
GROUPS = sorted({item.group for item in ITEMS})


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()} ({platform.python_implementation()})"
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_worker(worker: str, contender: str, params: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.worker", worker, contender, json.dumps(params)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{worker} {contender} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


class Results:
    def __init__(self) -> None:
        self.values: dict[tuple[str, str], list[float]] = {}
        self.notes: list[str] = []

    def add(self, key: str, contender: str, value: float | None) -> None:
        if value is not None:
            self.values.setdefault((key, contender), []).append(float(value))

    def median(self, key: str, contender: str) -> float | None:
        values = self.values.get((key, contender))
        return statistics.median(values) if values else None

    def ratio(self, item: Item, contender: str) -> float | None:
        """How many times better txtestserver is than ``contender`` (>1: better)."""
        ref, other = self.median(item.key, REFERENCE), self.median(item.key, contender)
        if ref is None or other is None or ref == 0 or other == 0:
            return None
        return ref / other if item.higher_is_better else other / ref


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- in-process items -----------------------------------------------------------


def run_items(
    results: Results, contenders: list[str], reps: int, quick: bool, groups: set[str]
) -> None:
    for rep in range(reps):
        order = contenders[rep % len(contenders) :] + contenders[: rep % len(contenders)]
        for item in ITEMS:
            if not item.worker or item.group not in groups:
                continue
            for name in order:
                if item.only is not None and name not in item.only:
                    continue
                params = item.quick if quick else item.params
                if name == SUBPROCESS and item.worker == "cycle":
                    params = {**params, "cycles": min(params["cycles"], 30)}
                if item.worker == "proxy" and (why := proxy_missing(params.get("via", ""))):
                    if rep == 0:
                        results.notes.append(f"{item.key} skipped: {why}")
                    continue
                t = time.perf_counter()
                out = run_worker(item.worker, name, params)
                log(
                    f"  rep {rep + 1}/{reps} {item.key:10} {name:24} "
                    f"{out['value']:10.3f} {item.unit}  ({time.perf_counter() - t:.1f} s)"
                )
                results.add(item.key, name, out["value"])
                if item.worker == "state":
                    results.add("state_read", name, out["read"])
                if item.key == "routes_10000_literal":
                    results.add("routes_add", name, out["register"])
                if item.worker == "websocket":
                    results.add("ws_p99", name, out["p99"])
                    results.add("ws_rate", name, out["rate"])
                    results.add("ws_connects", name, out["connects"])
                if item.key == "cycle":
                    results.add("cycle_first", name, out["first"])
                    results.add("start", name, out["start"])


# -- capacity, memory and GC -------------------------------------------------------


class Served:
    """A contender serving in its own process, driven over stdin/stdout."""

    def __init__(self, label: str, name: str, keep_alive: bool) -> None:
        self.name = label
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.worker",
                "serve",
                name,
                json.dumps({"keep_alive": keep_alive}),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            cwd=ROOT,
            env=_env(),
        )
        self.port = int(self._read()["port"])

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.stderr.seek(0)
            raise RuntimeError(f"{self.name} server died:\n{self.stderr.read()[-3000:]!r}")
        return json.loads(line)  # type: ignore[no-any-return]

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def recorded(self) -> int:
        return int(self.ask("count")["recorded"])

    def close(self) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self.stderr.close()


def run_capacity(results: Results, contenders: list[str], reps: int, quick: bool) -> None:
    total = 20_000 if quick else 200_000
    if quick:
        results.notes.append("--quick: capacity, memory and GC after 20,000 recorded requests")
    seconds = 2 if quick else 5
    servers: list[Served] = []
    try:
        for label in contenders + ([CLOSING] if REFERENCE in contenders else []):
            name = REFERENCE if label == CLOSING else label
            served = Served(label, name, keep_alive=label != CLOSING)
            servers.append(served)
            load.fill(served.port, 1000, served.recorded)
            served.ask("mark")
            t = time.perf_counter()
            load.fill(served.port, total, served.recorded)
            stats = served.ask("stats")
            log(
                f"  fill {label:24} {stats['recorded']} recorded in "
                f"{time.perf_counter() - t:.1f} s: {stats}"
            )
            if stats["recorded"] < total:
                raise RuntimeError(f"{label} recorded only {stats['recorded']} of {total}")
            results.add("mem", label, stats["bytes_per_request"])
            results.add("gc", label, stats["longest_full_gc_ms"])
            results.add("gc_forced", label, stats["forced_full_gc_ms"])
        for rep in range(reps):
            order = servers[rep % len(servers) :] + servers[: rep % len(servers)]
            for served in order:
                out = load.measure(served.port, seconds)
                log(
                    f"  rep {rep + 1}/{reps} capacity   {served.name:24} "
                    f"{out['rps']:10.0f} req/s  p99 {out['p99_ms']:.2f} ms {out['errors']}"
                )
                results.add("rps", served.name, out["rps"])
                results.add("p99", served.name, out["p99_ms"])
        for served in servers:
            stats = served.ask("stats")
            results.add("gc", served.name, stats["longest_full_gc_ms"])
            log(f"  after load {served.name:24} {stats}")
    finally:
        for served in servers:
            served.close()


# -- the pytest plugin -------------------------------------------------------------------

PLUGINS = {
    "txtestserver": "txtestserver.pytest_plugin",
    "pytest-httpserver": "pytest_httpserver.pytest_plugin",
}


def _pytest_seconds(directory: Path, plugin: str | None) -> float:
    env = _env()
    # Plugins load only when named, so each run differs in that one plugin.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-c",
        str(directory / "pytest.ini"),
        "--rootdir",
        str(directory),
        str(directory / "test_plain.py"),
    ]
    if plugin:
        command[3:3] = ["-p", plugin]
    t = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=directory, env=env)
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"pytest with {plugin} failed:\n{done.stdout[-3000:]}")
    return elapsed


def run_plugin(results: Results, contenders: list[str], runs: int) -> None:
    """
    ``runs`` pytest runs of one plain test per variant, interleaved: without
    any plugin, and with each contender's plugin named by ``-p`` (automatic
    loading off, so only that plugin differs). Cost: difference of medians.
    """
    import importlib.util

    plugins = {}
    for name, module in PLUGINS.items():
        if name not in contenders:
            continue
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            plugins[name] = module
        else:
            results.notes.append(f"pytest plugin of {name}: {module} not found, not measured")
    if not plugins:
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "pytest.ini").write_text("[pytest]\n")
        (directory / "test_plain.py").write_text("def test_plain():\n    assert 1 + 1 == 2\n")
        timings: dict[str | None, list[float]] = {None: [], **{m: [] for m in plugins.values()}}
        variants = list(timings)
        for rep in range(runs):
            for variant in variants[rep % len(variants) :] + variants[: rep % len(variants)]:
                timings[variant].append(_pytest_seconds(directory, variant))
        base = statistics.median(timings[None])
        results.add("plugin_base", REFERENCE, base * 1000)
        for name, module in plugins.items():
            cost = (statistics.median(timings[module]) - base) * 1000
            results.add("plugin", name, cost)
            log(f"  pytest plugin {name:24} adds {cost:.1f} ms (run without: {base * 1000:.0f} ms)")


# -- report ---------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(results: Results, contenders: list[str]) -> list[list[str]]:
    rows = [["measure", "contender", "median", "min", "max", "txtestserver is"]]
    for item in ITEMS:
        names = [c for c in contenders if (item.key, c) in results.values]
        for i, name in enumerate(names):
            values = results.values[(item.key, name)]
            ratio = results.ratio(item, name)
            rows.append(
                [
                    f"{item.title} ({item.unit})" if i == 0 else "",
                    name,
                    _fmt(statistics.median(values)),
                    _fmt(min(values)) if len(values) > 1 else "",
                    _fmt(max(values)) if len(values) > 1 else "",
                    "" if name == REFERENCE or ratio is None else f"{ratio:.2f}x",
                ]
            )
    return rows


def targets(results: Results) -> list[tuple[str, bool | None, str]]:
    """Each target of issue 5: (what, holds, the figures)."""
    by_key = {item.key: item for item in ITEMS}
    checks: list[tuple[str, bool | None, str]] = []

    def ratio_at_least(key: str, contender: str, limit: float, what: str) -> None:
        r = results.ratio(by_key[key], contender)
        checks.append(
            (
                what,
                None if r is None else r >= limit,
                "not measured" if r is None else f"{r:.2f}x (need {limit}x)",
            )
        )

    def value_below(key: str, contender: str, limit: float, unit: str, what: str) -> None:
        v = results.median(key, contender)
        checks.append(
            (
                what,
                None if v is None else v < limit,
                "not measured" if v is None else f"{_fmt(v)} {unit} (need < {limit} {unit})",
            )
        )

    for peer in ("test_server", "pytest-httpserver"):
        ratio_at_least("cycle", peer, 50, f"start+stop at least 50x faster than {peer}")
    ratio_at_least("cycle", "asyncio", 0.5, "start+stop within 2x of bare asyncio")
    ratio_at_least(
        "newconn", "pytest-httpserver", 1.2, "new-connection requests >= 1.2x pytest-httpserver"
    )
    ratio_at_least("newconn", "test_server", 1.3, "new-connection requests >= 1.3x test_server")
    for peer in ("test_server", "pytest-httpserver"):
        ratio_at_least("keepalive", peer, 2.5, f"kept-alive requests >= 2.5x {peer}")
    ratio_at_least("keepalive", "asyncio", 0.7, "kept-alive requests >= 0.7x bare asyncio")
    ratio_at_least("rps", "pytest-httpserver", 3, "capacity >= 3x pytest-httpserver")
    value_below("p99", REFERENCE, 10, "ms", "p99 < 10 ms at 10 connections after 200,000 requests")
    value_below("mem", REFERENCE, 1536, "bytes", "memory per recorded request <= 1.5 KB")
    value_below("mem", REFERENCE, 300, "bytes", "memory per recorded request < 300 bytes")
    value_below(
        "gc", REFERENCE, 1, "ms", "no full GC pause (< 1 ms) while recording 200,000 requests"
    )
    value_below(
        "import_class", REFERENCE, 25, "ms", "import until the server class is at hand < 25 ms"
    )
    value_below("cycle_first", REFERENCE, 80, "ms", "first start+stop in a fresh process < 80 ms")
    value_below("plugin", "txtestserver", 20, "ms", "pytest plugin adds <= 20 ms")
    for contender in (REFERENCE, SUBPROCESS):
        value_below(
            "cli_stop",
            contender,
            200,
            "ms",
            f"the command exits < 0.2 s after Ctrl-C ({contender})",
        )
    for contender in (REFERENCE, SUBPROCESS):
        value_below("routes_add", contender, 2, "s", f"adding 10,000 routes <= 2 s ({contender})")
        with_routes = results.median("routes_10000_literal", contender)
        without = results.median("routes_0", contender)
        r = None if with_routes is None or without is None else with_routes / without
        checks.append(
            (
                f"10,000 literal-path routes >= 0.8x the rate with none ({contender})",
                None if r is None else r >= 0.8,
                "not measured" if r is None else f"{r:.2f}x (need 0.8x)",
            )
        )
    value_below(
        "proxy_cert", REFERENCE, 20, "ms", "proxy: the first certificate for a new host < 20 ms"
    )
    for key, limit, what in [
        ("proxy_direct", 0.7, "proxy: kept-alive HTTPS through CONNECT >= 0.7x direct"),
        ("proxy_cycle_off", 1 / 1.2, "proxy: start+stop with proxy=True within 1.2x of without"),
    ]:
        other = "proxy_connect" if key == "proxy_direct" else "proxy_cycle_on"
        mine, base = results.median(other, REFERENCE), results.median(key, REFERENCE)
        r = (
            None
            if mine is None or base is None
            else (mine / base if key == "proxy_direct" else base / mine)
        )
        checks.append(
            (
                what,
                None if r is None else r >= limit,
                "not measured" if r is None else f"{r:.2f}x (need {limit:.2f}x)",
            )
        )
    value_below("start", SUBPROCESS, 300, "ms", "subprocess spawn-to-ready < 0.3 s")
    value_below("state_read", SUBPROCESS, 50, "us", "subprocess state read < 50 us")
    value_below("state_write", SUBPROCESS, 1000, "us", "subprocess state write < 1 ms")
    for key in ("newconn", "keepalive", "rps"):
        r = results.ratio(by_key[key], SUBPROCESS)
        checks.append(
            (
                f"subprocess throughput >= 0.5x thread mode ({key})",
                None if r is None else 1 / r >= 0.5,
                "not measured" if r is None else f"{1 / r:.2f}x of thread mode (need 0.5x)",
            )
        )
    ratio_at_least(
        "upload", "pytest-httpserver", 1.0, "10 MiB upload no slower than pytest-httpserver"
    )
    # Record and replay (issue 22).
    for contender in (REFERENCE, SUBPROCESS):
        value_below("har_export", contender, 1, "s", f"HAR export of 10,000 < 1 s ({contender})")
        value_below("har_forward", contender, 1, "ms", f"forward() adds < 1 ms ({contender})")
        replayed = results.median("har_replay", contender)
        routed = results.median("har_replay_routes", contender)
        r = None if replayed is None or routed is None else replayed / routed
        checks.append(
            (
                f"1,000 replayed entries no slower than 1,000 routes ({contender})",
                None if r is None else r >= 1.0,
                "not measured" if r is None else f"{r:.2f}x (need 1.0x; noisy)",
            )
        )
    return checks


def _plain(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _rst(rows: list[list[str]]) -> str:
    """A reST list-table (a simple table would take rows with an empty first cell as
    continuation lines)."""
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in rows:
        for i, cell in enumerate(row):
            lines.append(f"   {'* -' if i == 0 else '  -'} {cell or '..'}".rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--reps", type=int, help="repetitions (default 5, quick 2)")
    parser.add_argument("--only", help="comma-separated groups: " + ",".join(GROUPS))
    parser.add_argument("--contenders", help="comma-separated, default all available")
    parser.add_argument("--rst", type=Path, help="also write the tables as reST to this file")
    args = parser.parse_args(argv)
    reps = args.reps or (2 if args.quick else 5)
    groups = set(args.only.split(",")) if args.only else set(GROUPS)
    unknown = groups - set(GROUPS)
    if unknown:
        parser.error(f"unknown groups {', '.join(sorted(unknown))}: use {', '.join(GROUPS)}")
    results = Results()
    wanted = args.contenders.split(",") if args.contenders else ALL
    contenders = []
    for name, why in available().items():
        if name not in wanted:
            continue
        if why:
            results.notes.append(f"{name} skipped: {why}")
            print(f"note: {name} skipped: {why}", flush=True)
        else:
            contenders.append(name)
    started = time.perf_counter()
    print(f"machine: {machine()}", flush=True)
    print(
        f"load generator: {load.tool()}; {reps} repetitions; contenders: {', '.join(contenders)}",
        flush=True,
    )
    run_items(results, contenders, reps, args.quick, groups)
    if "capacity" in groups:
        run_capacity(results, contenders, max(2, reps - 2) if not args.quick else 1, args.quick)
    if "plugin" in groups:
        run_plugin(results, contenders, 5 if args.quick else 15)
    rows = table(results, [*contenders, CLOSING])
    print()
    print(_plain(rows))
    print()
    print(
        "'txtestserver is': how many times faster (or smaller) txtestserver in thread "
        "mode is than that contender, from the medians of this run."
    )
    first = [(c, results.median("cycle_first", c)) for c in contenders]
    print(
        "first start+stop in a fresh process (one-time set-up included): "
        + ", ".join(f"{c} {_fmt(v)} ms" for c, v in first if v is not None)
    )
    checks = targets(results)
    print()
    for what, holds, figures in checks:
        mark = {True: "HOLDS", False: "MISSES", None: "n/a"}[holds]
        print(f"{mark:7} {what}: {figures}")
    for note in results.notes:
        print(f"note: {note}")
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")
    if args.rst:
        target_rows = [["target", "result", "figures"]] + [
            [what, {True: "holds", False: "misses", None: "n/a"}[holds], figures]
            for what, holds, figures in checks
        ]
        args.rst.write_text(
            f"Machine: {machine()}; load generator: {load.tool()}; {reps} repetitions.\n\n"
            + _rst(rows)
            + "\n\n"
            + _rst(target_rows)
            + "\n"
        )


if __name__ == "__main__":
    main()
