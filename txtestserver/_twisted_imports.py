"""
Twisted's reactor and twisted.web, imported without what a plain HTTP server
never uses (pyOpenSSL, cryptography, h2, UDP, UNIX sockets, twisted.web's
error-page templates) until something uses it.

Whenever those packages are installed, Twisted imports its TLS support
(``twisted.protocols.tls`` and ``twisted.internet.ssl``, which import
pyOpenSSL and cryptography) from ``twisted.internet.tcp`` and
``twisted.internet.posixbase``, and its HTTP/2 support
(``twisted.web._http2``, which imports h2) from ``twisted.web.http``: about
half of what the first start of a plain server imports. ``posixbase`` also
imports UDP and UNIX-socket transports, and ``twisted.web.server`` imports
``twisted.web.util`` (its error pages, with the template machinery,
``hyperlink`` and ``xml.sax``): about a tenth more. Those importers only
keep a name (``TLSMemoryBIOFactory``, ``H2Connection``) or the module to use
later, so :func:`import_plain_twisted` imports them while the modules of
:data:`LATE` are stand-ins: each name Twisted binds is a function that
imports the real module when first called, and each stand-in module imports
it when an attribute is read. The first such use puts the real module and
names back where the stand-ins were, so Twisted is then as if imported as
usual. A stand-in is made only when the packages it needs are installed
(Twisted then sees TLS and HTTP/2 as available, as it would), and nothing is
done when Twisted's reactor or twisted.web is imported already (trial, a
Twisted program).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

__all__ = ["import_plain_twisted"]

#: Each module imported late: the names Twisted's own modules import from it
#: (none where they keep the module itself), and the packages it needs.
LATE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "twisted.protocols.tls": (("TLSMemoryBIOFactory",), ("OpenSSL", "cryptography")),
    "twisted.internet.ssl": ((), ("OpenSSL", "cryptography")),
    "twisted.web._http2": (("H2Connection",), ("h2", "priority")),
    "twisted.internet.udp": ((), ()),
    "twisted.internet.unix": ((), ()),
    "twisted.web.util": ((), ()),
}
#: The Twisted modules whose import would import them.
IMPORTERS = (
    "twisted.internet.posixbase",
    "twisted.internet.tcp",
    "twisted.web.http",
    "twisted.web.server",
)

_lock = threading.Lock()
_once = threading.Lock()
_done = False
#: Where a stand-in was bound: (module, name, stand-in's module, attribute or "").
_bound: list[tuple[types.ModuleType, str, str, str]] = []


def _real(module: str) -> Any:
    """Import ``module`` for real and put it (and its names) where stand-ins were."""
    if isinstance(sys.modules.get(module), _StandIn):
        del sys.modules[module]
    real = importlib.import_module(module)
    with _lock:
        for holder, name, late, attribute in list(_bound):
            if late == module:
                setattr(holder, name, getattr(real, attribute) if attribute else real)
                _bound.remove((holder, name, late, attribute))
    return real


def _later(module: str, attribute: str) -> Callable[..., Any]:
    """A function that calls ``module.attribute`` (a class), importing it first."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(_real(module), attribute)(*args, **kwargs)

    call.__name__ = call.__qualname__ = attribute
    call.__module__ = module
    return call


class _StandIn(types.ModuleType):
    """A module that imports the real one when an attribute it lacks is read."""

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return getattr(_real(self.__name__), attribute)


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def import_plain_twisted() -> None:
    """
    Import Twisted's TCP transport and twisted.web's HTTP with TLS and HTTP/2
    support imported on first use (the module's docstring says how). Once
    per process; a no-op when Twisted imported them already.
    """
    global _done
    if _done:
        return
    with _once:
        if not _done:
            _import_with_stand_ins()
            _done = True


def _import_with_stand_ins() -> None:
    if any(name in sys.modules for name in (*IMPORTERS, *LATE)):
        return
    stand_ins: dict[str, _StandIn] = {}
    for module, (names, packages) in LATE.items():
        if all(_installed(package) for package in packages):
            stand_in = _StandIn(module)
            for name in names:
                setattr(stand_in, name, _later(module, name))
            stand_ins[module] = stand_in
    before = set(sys.modules)
    sys.modules.update(stand_ins)
    try:
        for importer in IMPORTERS:
            importlib.import_module(importer)
    finally:
        for module, stand_in in stand_ins.items():
            if sys.modules.get(module) is stand_in:
                del sys.modules[module]
            package, _, child = module.rpartition(".")
            if getattr(sys.modules.get(package), child, None) is stand_in:
                delattr(sys.modules[package], child)
    by_id = {id(stand_in): (module, "") for module, stand_in in stand_ins.items()}
    for module, stand_in in stand_ins.items():
        for name in LATE[module][0]:
            by_id[id(getattr(stand_in, name))] = (module, name)
    with _lock:
        for name in set(sys.modules) - before:
            holder = sys.modules[name]
            if holder is None or isinstance(holder, _StandIn):
                continue
            for attribute, value in list(vars(holder).items()):
                found = by_id.get(id(value))
                if found is not None:
                    _bound.append((holder, attribute, *found))
