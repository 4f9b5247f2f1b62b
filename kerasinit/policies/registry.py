"""The registry of structure-aware policies: ``reinitialize(model, policy=name)`` looks names up here.

A policy is a function ``policy(model, seed=None, **options) -> pandas.DataFrame`` that finds what
it needs in ``model`` itself (residual blocks, attention layers), overwrites only the weights its
paper names, and returns one report row per weight it changed. Register one with
:func:`register_policy`; the built-in ones are in :mod:`kerasinit.policies.structural`::

    @kerasinit.policies.register_policy("my_scheme")
    def my_scheme(model, seed=None):
        ...

    kerasinit.reinitialize(model, policy="my_scheme", seed=0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

PolicyFunction = Callable[..., Any]
F = TypeVar("F", bound=PolicyFunction)

#: name -> policy function, in registration order.
POLICIES: dict[str, PolicyFunction] = {}

#: Policy names :func:`kerasinit.reinitialize` handles itself (not registrable).
RESERVED = ("auto",)


def register_policy(name: str) -> Callable[[F], F]:
    """Decorator: make ``reinitialize(model, policy=name)`` call the decorated ``policy(model, seed=seed)``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register_policy: argument `name` must be an identifier string; received {name!r}.")
    if name in RESERVED:
        raise ValueError(f"register_policy: {name!r} is reserved by reinitialize; choose another name.")

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"register_policy({name!r}): expected a function (model, seed=None) -> report; received {fn!r}.")
        if name in POLICIES and POLICIES[name] is not fn:
            raise ValueError(f"register_policy: a policy named {name!r} is registered already ({POLICIES[name]!r}).")
        POLICIES[name] = fn
        return fn

    return decorate
