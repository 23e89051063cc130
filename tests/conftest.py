"""
Shared fixtures, and the hook that runs ``tests/trial/`` through trial.

Behaviour tests take the ``engine`` fixture, so each runs against every engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._trialbridge import TrialModule
from txtestserver import TestServer

#: The engines every behaviour test runs against.
ENGINES = ["thread", "subprocess"]


def pytest_pycollect_makemodule(module_path: Path, parent: Any) -> Any:
    if module_path.parent.name == "trial" and module_path.name.startswith("test_"):
        return TrialModule.from_parent(parent, path=module_path)
    return None


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(engine: str) -> Iterator[TestServer]:
    """A started server, stopped after the test."""
    server = TestServer(engine=engine)
    server.start()
    yield server
    server.stop()
