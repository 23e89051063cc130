"""The exceptions txtestserver raises."""

from __future__ import annotations

from typing import Any

__all__ = ["ServerSideError", "TestServerError", "WaitTimeoutError"]


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
    A wait (``wait_request``, ``wait_requests``, ``wait_for``,
    ``route.wait``) did not see what it waited for within its timeout. The
    message says what it waited for and what did arrive.
    """


class ServerSideError(TestServerError):
    """
    Something went wrong inside the server while it answered (raised by
    ``server.check()``, which the pytest fixtures call after each test): a
    callback raised or returned something unusable, an iterator ran out, a
    request nobody expected arrived (strict mode).

    The message names each error with the request line that caused it and
    its traceback.

    :ivar errors: the errors, as in ``server.errors``: dicts with
        ``message``, ``traceback`` (str or None) and ``request`` (the request
        dict, or None).
    """

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors
