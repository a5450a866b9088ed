"""The network registry: each network is one plug-in module exposing a ``NETWORK`` spec."""

from __future__ import annotations

from socialsync.networks.base import NetworkSpec
from socialsync.networks.instagram import NETWORK as INSTAGRAM

# YouTube and TikTok plug in here with a module each; nothing else in the code names a network.
REGISTRY: dict[str, NetworkSpec] = {spec.name: spec for spec in (INSTAGRAM,)}


def get_network(name: str) -> NetworkSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown network {name!r}; registered: {', '.join(sorted(REGISTRY))}") from None
