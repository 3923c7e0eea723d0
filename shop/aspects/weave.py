"""Weaving: wrap the MySQL repository methods named in the routing table, at import time.

`install()` registers a wrapt post-import hook, so the order of imports does not matter:
the methods are wrapped as soon as `shop.repositories.mysql` is imported (or at once if it
already is). Methods are patched on the classes, so `from ... import UserRepository`
elsewhere sees the routed methods too. `uninstall()` puts the originals back.
"""
from __future__ import annotations

import contextvars
import inspect
import logging
import threading
import weakref

import wrapt

from .table import MODULE, ROUTES

log = logging.getLogger("shop.aspects")
_lock = threading.RLock()
_state = {"installed": False, "hook": False}
_originals: dict[tuple[type, str], object] = {}
# MySQL repository instance -> (runtime, its DynamoDB counterpart). Unbound instances are
# the original layer, untouched: their calls go straight to MySQL.
_bindings: "weakref.WeakKeyDictionary[object, tuple]" = weakref.WeakKeyDictionary()
# Set while a routed call runs: a repository method calling another (set_inventory calls
# update) is part of the outer operation, not a second one to route.
_routing: contextvars.ContextVar[bool] = contextvars.ContextVar("shop_routing", default=False)


def install() -> None:
    """Idempotent: a second call does nothing."""
    with _lock:
        if _state["installed"]:
            return
        _state["installed"] = True
        if not _state["hook"]:
            _state["hook"] = True
            wrapt.register_post_import_hook(_weave, MODULE)
        else:
            import sys
            if MODULE in sys.modules:
                _weave(sys.modules[MODULE])


def uninstall() -> None:
    """Restore every original method; idempotent."""
    with _lock:
        for (cls, name), original in _originals.items():
            setattr(cls, name, original)
        _originals.clear()
        _state["installed"] = False


def installed() -> bool:
    return _state["installed"]


def bind(mysql_repo, ddb_repo, runtime) -> None:
    _bindings[mysql_repo] = (runtime, ddb_repo)


def unbind(mysql_repo) -> None:
    _bindings.pop(mysql_repo, None)


def _weave(module) -> None:
    with _lock:
        if not _state["installed"]:
            return
        for route in ROUTES:
            cls = getattr(module, route.repository, None)
            if cls is None or route.method not in cls.__dict__:
                log.warning("routing table names a method that does not exist",
                            extra={"operation": route.name})
                continue
            if (cls, route.method) in _originals:
                continue  # wrapt does not stop double wrapping; this does
            original = cls.__dict__[route.method]
            _originals[(cls, route.method)] = original
            wrapt.wrap_function_wrapper(cls, route.method, _wrapper(route, inspect.signature(original)))


class Arguments:
    """The call's arguments by parameter name, bound only when something asks for them."""

    __slots__ = ("_signature", "_call", "_bound")

    def __init__(self, signature, instance, args, kwargs):
        self._signature, self._call, self._bound = signature, (instance, args, kwargs), None

    def _get(self) -> dict:
        if self._bound is None:
            instance, args, kwargs = self._call
            self._bound = self._signature.bind(instance, *args, **kwargs).arguments
        return self._bound

    def __getitem__(self, name):
        return self._get()[name]

    def __contains__(self, name):
        return name in self._get()

    def get(self, name, default=None):
        return self._get().get(name, default)


def _wrapper(route, signature):
    def routed(wrapped, instance, args, kwargs):
        binding = _bindings.get(instance) if instance is not None else None
        if binding is None or _routing.get():
            return wrapped(*args, **kwargs)
        runtime, ddb_repo = binding
        token = _routing.set(True)
        try:
            return runtime.route(route, wrapped, ddb_repo, Arguments(signature, instance, args, kwargs), args, kwargs)
        finally:
            _routing.reset(token)
    return routed
