"""Injectable faults: which request fails and how, decided deterministically from a seed."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

# What a real Graph API does to a client now and then.
FAULT_KINDS = ("throttle_429", "throttle_graph", "server_error", "timeout", "truncated", "reset", "repeat")


@dataclass
class FaultPlan:
    """``rate`` of requests get one of ``kinds``; each retry of a request is a fresh draw."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    retry_after_s: float = 1.0
    timeout_s: float = 2.0
    malformed_rate: float = 0.0  # share of media items served with a broken record (persistent)
    attempts: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)

    def draw(self, request_key: str) -> str | None:
        if self.rate <= 0:
            return None
        self.attempts[request_key] += 1
        digest = hashlib.sha256(f"{self.seed}/{request_key}/{self.attempts[request_key]}".encode()).digest()
        if int.from_bytes(digest[:4], "big") / 2**32 >= self.rate:
            return None
        kind = self.kinds[digest[4] % len(self.kinds)]
        self.injected[kind] += 1
        return kind

    def malformed(self, item_id: str) -> bool:
        if self.malformed_rate <= 0:
            return False
        digest = hashlib.sha256(f"{self.seed}/malformed/{item_id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < self.malformed_rate
