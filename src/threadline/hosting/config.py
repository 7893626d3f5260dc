"""``ServerConfig``: what a threadline server is told at start-up."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

__all__ = ["ServerConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Settings of a threadline server.

    With no ``api_keys`` the server accepts any (or no) bearer token and all callers share one
    account, ``"default"``: fine on loopback for development, never on a network.
    """

    api_keys: Mapping[str, str] = field(default_factory=lambda: {})
    """Accepted bearer keys, each mapped to the account whose objects it sees."""
    db_path: str = "threadline-server.db"
    """The SQLite file for stored objects, when ``postgres_url`` is not set."""
    postgres_url: str | None = None
    """Store in PostgreSQL instead, so several server processes share state."""
    postgres_schema: str = "threadline"
    """The PostgreSQL schema holding the server's tables (created when missing)."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Larger request bodies are refused with 413."""
    model_name: str = "threadline"
    """The model id ``/v1/models`` lists and responses report."""
    idempotency_wait_seconds: float = 120.0
    """How long a retry waits for the first attempt of the same ``Idempotency-Key`` to finish."""
    approval_doubt_seconds: float = 300.0
    """How long an answer to an approval request may run unfinished before it is *in doubt*: its
    server was stopped mid-answer. The next answer then takes the claim over and records the call's
    outcome as unknown instead of running it again (see docs/tools.md "Over the server"). Keep it
    above the longest approved tool call: a call still running past it is reported unknown too."""
    drain_seconds: float = 10.0
    """At shutdown, how long the agent's background work (memory learning) may take to finish;
    what still runs then is dropped and logged."""
    retention: timedelta | None = None
    """When set, conversations (threads, their response objects) not updated for this long, and
    ``Idempotency-Key`` answers this old, are deleted while the server runs; ``None`` keeps all."""

    ui: bool = True
    """Serve the web UI under ``/ui/`` (see docs/ui.md); it uses the same keys as the API."""

    def __post_init__(self) -> None:
        if not 0 < self.approval_doubt_seconds < math.inf:
            raise ValueError(
                "ServerConfig.approval_doubt_seconds must be a positive number of seconds, got "
                f"{self.approval_doubt_seconds!r}"
            )

    def store_spec(self) -> str:
        """The store spec these settings name: ``postgresql://...`` or ``sqlite:{db_path}``."""
        return self.postgres_url or f"sqlite:{self.db_path}"
