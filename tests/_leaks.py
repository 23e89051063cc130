"""
What a running server still holds once its clients are gone: open
connections and pending calls (of streams, faults and sleeps), asked of the
server itself (``tests.callbacks:leaks`` runs where the server runs, so it
sees the server process of the subprocess engine too).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.request import urlopen

from txtestserver import TestServer

#: response_once values that make the next request the probe, whatever the
#: response says (a fault or raw answer would otherwise win over a callback).
PROBE = {
    "callback": "tests.callbacks:leaks",
    "raw": None,
    "fault": None,
    "chunks": None,
    "throttle": None,
    "sleep": 0,
}


def held(server: TestServer) -> dict[str, Any]:
    """``{"connections": N, "pending": [...]}`` as the server sees them now."""
    for key, value in PROBE.items():
        server.response_once[key] = value
    with urlopen(server.get_url("/leak-probe"), timeout=10) as answer:
        result: dict[str, Any] = json.loads(answer.read())
    return result


def assert_nothing_held(server: TestServer, timeout: float = 10.0) -> None:
    """
    Wait (a client's close takes a moment to reach the server) until the
    server holds no connection and no pending call; fail naming what it
    still holds.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = held(server)
        if found == {"connections": 0, "pending": []}:
            return
        assert time.monotonic() < deadline, f"the server still holds {found}"
        time.sleep(0.01)
