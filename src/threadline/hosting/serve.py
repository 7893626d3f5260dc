"""Running a server from Python: ``open_store`` reads a storage spec, ``serve`` runs uvicorn.

The ``threadline serve`` command is a thin shell over :func:`serve`, so anything it can do a
program can do too, with keyword arguments instead of flags.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import uvicorn

from threadline.agents.chat_agent import ChatAgent
from threadline.exceptions import UsageError
from threadline.hosting.app import create_app
from threadline.hosting.config import ServerConfig
from threadline.hosting.storage.base import ServerStorage

__all__ = ["open_store", "open_thread_store", "serve"]

log = logging.getLogger("threadline.hosting")


def open_store(spec: str, *, postgres_schema: str = "threadline") -> ServerStorage:
    """The storage a ``--store`` spec names: ``sqlite:PATH`` or ``postgresql://...``.

    Raises:
        UsageError: the spec names no storage this server can use; the message lists the forms.
    """
    if spec.startswith("sqlite:"):
        path = spec.removeprefix("sqlite:").removeprefix("//")
        if not path:
            raise UsageError("store 'sqlite:' needs a file: sqlite:PATH (e.g. sqlite:server.db)")
        from threadline.hosting.storage.sqlite import SQLiteServerStorage

        return SQLiteServerStorage(path)
    if spec.startswith(("postgresql://", "postgres://")):
        from threadline.hosting.storage.postgres import PostgresServerStorage

        return PostgresServerStorage(spec, schema=postgres_schema)
    if spec.startswith(("redis://", "rediss://")):
        raise UsageError(
            f"store {spec!r}: this server version keeps its state in SQLite or PostgreSQL only; "
            "use sqlite:PATH or postgresql://..."
        )
    raise UsageError(f"unknown store {spec!r}: give sqlite:PATH or postgresql://USER@HOST:PORT/DB")


def open_thread_store(
    spec: str,
    *,
    objects_path: str = "threadline-server.db",
    key_prefix: str = "threadline-server:",
    schema: str = "threadline",
) -> ServerStorage:
    """EXPERIMENTAL: the storage a spec names, keeping conversations as threads of a message store.

    ``sqlite:PATH`` keeps threads and objects in one file (threads in the tables of
    ``SQLiteChatMessageStore``, so ``threadline threads`` sees them); ``redis://...`` keeps the
    threads in Redis (``RedisChatMessageStore``) and the object table in the SQLite file
    ``objects_path``.

    Raises:
        UsageError: the spec names no storage this server can keep threads in.
    """
    from threadline.hosting.storage.sqlite import SQLiteServerStorage
    from threadline.hosting.storage.threads import ThreadServerStorage

    if spec.startswith("sqlite:"):
        from threadline.threads.stores.sqlite import SQLiteChatMessageStore

        path = spec.removeprefix("sqlite:").removeprefix("//")
        if not path:
            raise UsageError("store 'sqlite:' needs a file: sqlite:PATH (e.g. sqlite:server.db)")
        return ThreadServerStorage(
            SQLiteServerStorage(path), lambda thread_id: SQLiteChatMessageStore(path, thread_id)
        )
    if spec.startswith(("redis://", "rediss://")):
        import redis.asyncio as aioredis

        from threadline.threads.stores.redis import RedisChatMessageStore

        client = aioredis.Redis.from_url(spec, decode_responses=False)  # pyright: ignore[reportUnknownMemberType]

        def thread(thread_id: str) -> RedisChatMessageStore:
            return RedisChatMessageStore(client=client, thread_id=thread_id, key_prefix=key_prefix)

        return ThreadServerStorage(SQLiteServerStorage(objects_path), thread, close=client.aclose)
    if spec.startswith(("postgresql://", "postgres://")):
        from psycopg_pool import AsyncConnectionPool

        from threadline.hosting.storage.postgres import PostgresServerStorage
        from threadline.threads.stores.postgres import PostgresChatMessageStore

        # One pool for every thread (a store made from a DSN would open a pool per request).
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            spec, min_size=1, max_size=10, open=False, kwargs={"autocommit": True}
        )

        async def start() -> None:
            await pool.open(wait=True, timeout=10)

        def thread_in_pg(thread_id: str) -> PostgresChatMessageStore:
            return PostgresChatMessageStore(pool=pool, thread_id=thread_id, schema=schema)

        objects = PostgresServerStorage(spec, schema=schema)
        return ThreadServerStorage(objects, thread_in_pg, close=pool.close, start=start)
    raise UsageError(
        f"unknown thread store {spec!r}: give sqlite:PATH, postgresql://... or redis://HOST:PORT/DB"
    )


def serve(
    agent: ChatAgent,
    *,
    config: ServerConfig | None = None,
    store: str | ServerStorage | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
) -> None:
    """Serve ``agent`` with uvicorn until interrupted (blocks; needs the ``server`` extra).

    Args:
        agent: the agent to host (its client must keep history locally).
        config: keys and limits; the storage it names is used when ``store`` is not given.
        store: a storage, or a spec for :func:`open_store`.
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
    storage = open_store(store, postgres_schema=config.postgres_schema) if isinstance(
        store, str
    ) else store  # fmt: skip
    app = create_app(agent, config, storage=storage)
    # Everything loaded so far lives as long as the server: keep it out of the collector's full
    # passes, which otherwise show up as latency spikes under load.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level=log_level)
