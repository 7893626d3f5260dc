"""Hosting: a server that speaks the OpenAI wire formats for any ``ChatAgent``.

Needs the ``server`` extra (Starlette, uvicorn; psycopg for PostgreSQL storage).
"""

from __future__ import annotations

from threadline.hosting.app import create_app, server_database
from threadline.hosting.config import ServerConfig
from threadline.hosting.serve import serve

__all__ = ["ServerConfig", "create_app", "serve", "server_database"]
