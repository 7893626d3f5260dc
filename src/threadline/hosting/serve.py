"""Running a server from Python: ``serve`` runs uvicorn on the app ``create_app`` makes.

The ``threadline serve`` command is a thin shell over :func:`serve`, so anything it can do a
program can do too, with keyword arguments instead of flags. Stores are opened by the threads
layer's one opener (``open_database``), as every command opens them.
"""

from __future__ import annotations

import gc
import logging

import uvicorn

from threadline.agents.chat_agent import ChatAgent
from threadline.hosting.app import create_app, server_database
from threadline.hosting.config import ServerConfig
from threadline.threads.stores.database import ThreadDatabase
from threadline.ui import SpanBuffer

__all__ = ["serve"]

log = logging.getLogger("threadline.hosting")


def serve(
    agent: ChatAgent,
    *,
    config: ServerConfig | None = None,
    store: str | ThreadDatabase | None = None,
    migrate: bool = False,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
) -> None:
    """Serve ``agent`` with uvicorn until interrupted (blocks; needs the ``server`` extra).

    Args:
        agent: the agent to host (its client must keep history locally).
        config: keys and limits; the store it names is used when ``store`` is not given.
        store: a database, or a spec: ``sqlite:PATH`` or ``postgresql://...``.
        migrate: move the conversations of a database made by an earliest-layout server
            (``tl_items``) into threads, once.
        host: the interface to listen on; keep the loopback default unless keys are configured.
        port: the TCP port.
        log_level: uvicorn's log level.

    Raises:
        UsageError: the store cannot serve (see :func:`~threadline.hosting.app.server_database`).
    """
    config = config or ServerConfig()
    if not config.api_keys:
        log.warning(
            "no API keys configured: every caller shares one account. Configure API keys "
            "(threadline serve --api-key) for anything beyond local development."
        )
    database = server_database(
        store if store is not None else config.store_spec(),
        schema=config.postgres_schema,
        migrate=migrate,
    )
    # The web UI draws this process's recent traces (beside any OTEL_* exporter).
    spans = SpanBuffer.install() if config.ui else None
    app = create_app(agent, config, store=database, spans=spans)
    # Everything loaded so far lives as long as the server: keep it out of the collector's full
    # passes, which otherwise show up as latency spikes under load.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level=log_level)
