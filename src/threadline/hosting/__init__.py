"""Hosting: a server that speaks the OpenAI wire formats for any ``ChatAgent``.

Needs the ``server`` extra (Starlette, uvicorn; psycopg for PostgreSQL storage).
"""

from __future__ import annotations

from threadline.hosting.app import create_app
from threadline.hosting.config import ServerConfig
from threadline.hosting.serve import open_store, serve

__all__ = ["ServerConfig", "create_app", "open_store", "serve"]
