"""
The stress run (``python -m stress``) still runs: a small size of it, both
engines, in a child process. The full run is documented in
docs/reliability.rst and is not part of the normal suite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


#: How the rows of each engine start in the stress run's table.
ENGINE_ROWS = ("thread ", "subprocess ")
#: The sizes of the smoke run: smaller than ``--quick``'s, each phase still
#: runs (its fixed parts, the faults and the rapid reset, are most of the time).
FUZZ_CASES, CLIENTS, REQUESTS = 100, 4, 20


def test_stress_command_smoke_run() -> None:
    sizes = [
        "--fuzz-cases",
        str(FUZZ_CASES),
        "--clients",
        str(CLIENTS),
        "--requests",
        str(REQUESTS),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "stress", "--quick", *sizes, "--max-seconds", "120"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "total: 0 errors, 0 lost requests, 0 logged errors" in done.stdout
    for engine in ("thread", "subprocess"):
        for phase in (
            "fuzz",
            "faults",
            "streams and answer faults",
            "streams cut by stop()",
            "HTTP/2 rapid reset",
            f"load {CLIENTS}x{REQUESTS} keep-alive",
        ):
            assert f"{engine:<11}{phase}" in done.stdout, done.stdout
    # The memory of the serving process is found in both engines.
    rows = [line for line in done.stdout.splitlines() if line.startswith(tuple(ENGINE_ROWS))]
    assert rows and not any(" n/a " in row for row in rows), done.stdout
