"""The exceptions txtestserver raises."""

from __future__ import annotations

__all__ = ["TestServerError", "WaitTimeoutError"]


class TestServerError(Exception):
    """
    A misuse of the server or a failure of the server itself.

    Raised when a value that cannot work is assigned to ``server.response``,
    when the blocking API is called from the reactor thread, when the server
    cannot start, and when a subprocess server has died.
    """

    __test__ = False  # not a pytest test class, despite the name


class WaitTimeoutError(TestServerError):
    """
    ``wait_request(timeout)`` saw no answered request within ``timeout``.
    """
