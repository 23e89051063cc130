"""
The three faces (``TestServer``, ``AsyncTestServer``, ``DeferredTestServer``)
offer the same public methods with the same parameters: a face differs only
in how a call's result reaches the caller (returned, awaited, a Deferred).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from txtestserver import AsyncTestServer, DeferredTestServer, TestServer

FACES = [TestServer, AsyncTestServer, DeferredTestServer]


def public(face: type) -> dict[str, Any]:
    """Public name -> its parameters (name, kind, default), or 'property'/'attribute'."""
    found: dict[str, Any] = {}
    for name in dir(face):
        if name.startswith("_"):
            continue
        member = inspect.getattr_static(face, name)
        if isinstance(member, property):
            found[name] = "property"
        elif callable(member):
            signature = inspect.signature(getattr(face, name))
            found[name] = [(p.name, p.kind, p.default) for p in signature.parameters.values()]
        else:
            found[name] = "attribute"
    return found


@pytest.mark.parametrize("face", [AsyncTestServer, DeferredTestServer], ids=lambda f: f.__name__)
def test_every_public_method_is_in_every_face_with_the_same_parameters(face: type) -> None:
    assert public(face) == public(TestServer)


def test_the_waiting_methods_differ_only_in_how_they_return() -> None:
    for name in ("start", "stop", "wait_request", "wait_requests", "wait_for"):
        assert inspect.iscoroutinefunction(getattr(AsyncTestServer, name)), name
        assert not inspect.iscoroutinefunction(getattr(TestServer, name)), name
        assert not inspect.iscoroutinefunction(getattr(DeferredTestServer, name)), name


def test_the_reactor_thread_imports_nothing_of_the_package_above_it() -> None:
    """``_reactor_thread`` takes every side effect as a parameter (crochet's EventLoop)."""
    import ast
    from pathlib import Path

    import txtestserver

    source = Path(txtestserver.__file__).with_name("_reactor_thread.py").read_text()
    imported = {
        node.module or ""
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    }
    assert imported <= {"_errors"}
