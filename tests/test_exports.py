"""The public names are what ``txtestserver`` exports, and nothing private leaks."""

from __future__ import annotations

import subprocess
import sys

import txtestserver


def test_all_names_resolve() -> None:
    for name in txtestserver.__all__:
        assert getattr(txtestserver, name) is not None, name


def test_public_names() -> None:
    expected = {
        "AsyncTestServer",
        "DeferredTestServer",
        "ServerSideError",
        "TestServer",
        "TestServerError",
        "WaitTimeoutError",
        "ndjson",
        "sse",
    }
    assert expected <= set(txtestserver.__all__)
    assert all(not name.startswith("_") or name == "__version__" for name in txtestserver.__all__)
    assert set(dir(txtestserver)) >= set(txtestserver.__all__)


def test_importing_the_package_imports_no_twisted() -> None:
    code = "import sys, txtestserver; print('twisted' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
