"""
The pytest plugin: ready-made server fixtures.

Installed with the package (entry point ``pytest11``), so every test can ask
for them:

- ``test_server``: a started :class:`~txtestserver.TestServer`, reset before
  each test (response back to defaults, recorded requests forgotten), and
  checked after it: a server-side error fails the test that caused it
  (``server.check()``), unless the test is marked ``allow_server_errors``.
- ``test_server_session``: the same server without the reset; it is started
  once per test session and stopped at the end of the session.

The engine is chosen on the command line: ``--txtestserver-engine=thread``
(the default) or ``--txtestserver-engine=subprocess``.

Loading the plugin imports neither Twisted nor crochet: that happens when a
test first asks for one of the fixtures, so a project that never uses them
keeps its pytest start-up time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from . import TestServer

__all__ = ["pytest_addoption", "pytest_configure"]

ENGINES = ("thread", "subprocess")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--txtestserver-engine``."""
    group = parser.getgroup("txtestserver", "txtestserver fixtures")
    group.addoption(
        "--txtestserver-engine",
        choices=ENGINES,
        default="thread",
        help=(
            "where the test_server fixtures serve from: 'thread' (a reactor thread "
            "in the test process, the default) or 'subprocess' (a child process)"
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``allow_server_errors`` marker."""
    config.addinivalue_line(
        "markers",
        "allow_server_errors: the test causes server-side errors on purpose; the "
        "txtestserver fixtures forget them after it instead of failing it "
        "(server.check())",
    )


def check_after(server: TestServer, request: pytest.FixtureRequest) -> None:
    """
    After a test: fail it with :class:`~txtestserver.ServerSideError` if the
    server had errors while answering it, unless it is marked
    ``allow_server_errors`` (then they are forgotten).
    """
    if request.node.get_closest_marker("allow_server_errors") is not None:
        server.errors.clear()
    else:
        server.check()


@pytest.fixture(scope="session", name="test_server_session")
def _test_server_session(pytestconfig: pytest.Config) -> Iterator[TestServer]:
    """A server started once for the whole session (not reset between tests)."""
    from . import TestServer

    server = TestServer(engine=pytestconfig.getoption("txtestserver_engine"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="test_server")
def _test_server(
    test_server_session: TestServer, request: pytest.FixtureRequest
) -> Iterator[TestServer]:
    """
    The session's server after ``reset()``: a clean server for one test,
    checked after it (:func:`check_after`).
    """
    test_server_session.reset()
    yield test_server_session
    check_after(test_server_session, request)
