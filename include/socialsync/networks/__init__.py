"""The network registry: each network is one plug-in module exposing a ``NETWORK`` spec."""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import Any

from socialsync.networks.base import NetworkSpec

# Each network plugs in here with a module of its own; nothing else in the code names a network.
PLUGINS = ("socialsync.networks.instagram", "socialsync.networks.youtube", "socialsync.networks.tiktok")


@cache
def _registry() -> dict[str, NetworkSpec]:
    # Imported on first use, so that the plug-ins may use the shared extract code that uses base.py.
    specs = [import_module(module).NETWORK for module in PLUGINS]
    return {spec.name: spec for spec in specs}


def get_network(name: str) -> NetworkSpec:
    try:
        return _registry()[name]
    except KeyError:
        raise KeyError(f"unknown network {name!r}; registered: {', '.join(sorted(_registry()))}") from None


def __getattr__(name: str) -> Any:
    if name == "REGISTRY":
        return _registry()
    raise AttributeError(name)
