"""Running a server from Python: ``open_store`` reads a storage spec, ``serve`` runs uvicorn.

The ``threadline serve`` command is a thin shell over :func:`serve`, so anything it can do a
program can do too, with keyword arguments instead of flags.
"""

from __future__ import annotations

import gc
import logging

import uvicorn

from threadline._utils import redact_url
from threadline.agents.chat_agent import ChatAgent
from threadline.exceptions import StoreError, UsageError
from threadline.hosting.app import create_app
from threadline.hosting.config import ServerConfig
from threadline.hosting.storage.base import ServerStorage

__all__ = ["open_store", "serve"]

log = logging.getLogger("threadline.hosting")


def open_store(
    spec: str, *, postgres_schema: str = "threadline", migrate: bool = False
) -> ServerStorage:
    """The storage a ``--store`` spec names: ``sqlite:PATH`` or ``postgresql://...``.

    ``migrate`` moves the conversations of a file or schema made by the previous layout into
    threads (once); without it such a store is refused with that fix named.

    Raises:
        UsageError: the spec names no storage this server can use; the message lists the forms.
    """
    if spec.startswith("sqlite:"):
        path = spec.removeprefix("sqlite:").removeprefix("//")
        if not path:
            raise UsageError("store 'sqlite:' needs a file: sqlite:PATH (e.g. sqlite:server.db)")
        from threadline.hosting.storage.sqlite import SQLiteServerStorage

        try:
            return SQLiteServerStorage(path, migrate=migrate)
        except StoreError as exc:
            raise UsageError(str(exc)) from None
    if spec.startswith(("postgresql://", "postgres://")):
        from threadline.hosting.storage.postgres import PostgresServerStorage

        return PostgresServerStorage(spec, schema=postgres_schema, migrate=migrate)
    if spec.startswith(("redis://", "rediss://")):
        raise UsageError(
            f"store {redact_url(spec)!r}: the server writes each turn's messages and its response "
            "object in one transaction, which Redis cannot share with an object table; use "
            "sqlite:PATH or postgresql://... (Redis keeps agents' threads: RedisChatMessageStore)"
        )
    raise UsageError(
        f"unknown store {redact_url(spec)!r}: give sqlite:PATH or postgresql://USER@HOST:PORT/DB"
    )


def serve(
    agent: ChatAgent,
    *,
    config: ServerConfig | None = None,
    store: str | ServerStorage | None = None,
    migrate: bool = False,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
) -> None:
    """Serve ``agent`` with uvicorn until interrupted (blocks; needs the ``server`` extra).

    Args:
        agent: the agent to host (its client must keep history locally).
        config: keys and limits; the storage it names is used when ``store`` is not given.
        store: a storage, or a spec for :func:`open_store`.
        migrate: with a spec, move a previous-layout SQLite file's conversations into threads.
        host: the interface to listen on; keep the loopback default unless keys are configured.
        port: the TCP port.
        log_level: uvicorn's log level.
    """
    config = config or ServerConfig()
    if not config.api_keys:
        log.warning(
            "no API keys configured: every caller shares one account. Configure API keys "
            "(threadline serve --api-key) for anything beyond local development."
        )
    if isinstance(store, str):
        storage = open_store(store, postgres_schema=config.postgres_schema, migrate=migrate)
    else:
        storage = store
    app = create_app(agent, config, storage=storage)
    # Everything loaded so far lives as long as the server: keep it out of the collector's full
    # passes, which otherwise show up as latency spikes under load.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level=log_level)
