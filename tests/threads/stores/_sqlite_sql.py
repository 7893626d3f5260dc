"""SQL that tests use to reach into a SQLite thread file (to damage it, or look at it at rest)."""

from __future__ import annotations

OF_THREAD = "thread = (SELECT num FROM threadline_threads WHERE thread_id = ?)"
"""Selects a thread's rows of ``threadline_messages`` in a file threadline creates (the log
layout: messages name their thread by its row's ``num``), given the thread id."""
