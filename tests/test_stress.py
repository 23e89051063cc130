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


def test_stress_command_smoke_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stress", "--quick", "--fuzz-cases", "300", "--max-seconds", "120"],
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
            "load 10x100 keep-alive",
        ):
            assert f"{engine:<11}{phase}" in done.stdout, done.stdout
    # The memory of the serving process is found in both engines.
    rows = [line for line in done.stdout.splitlines() if line.startswith(tuple(ENGINE_ROWS))]
    assert rows and not any(" n/a " in row for row in rows), done.stdout
