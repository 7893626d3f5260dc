"""PostgreSQL schemas written by earlier threadline servers: brought up to date, or refused.

As for SQLite (see ``_sqlite_legacy``): objects and idempotency answers in ``tl_objects`` /
``tl_idempotency`` move into ``threadline_records`` on open (lossless); conversation items in
``tl_items`` are refused with the fix named, or moved into threads with ``migrate``. Both run in the
caller's transaction, under the schema's set-up lock, so two processes opening an old schema at
once migrate it once.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from threadline.exceptions import StoreError

__all__ = ["OLD_LAYOUT_FIX", "upgrade"]

OLD_LAYOUT_FIX = (
    "run `threadline serve --store postgresql://... --migrate` once (or open it with "
    "open_database('postgresql://...', migrate=True)) to move its conversations into threads"
)


async def _exists(conn: Any, schema: str, table: str) -> bool:
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}".{table}',))
    row = await cur.fetchone()
    return bool(row and row[0])


async def upgrade(conn: Any, schema: str, *, migrate: bool) -> None:
    """Move an old schema's objects into records, and its items into threads (or refuse them).

    Raises:
        StoreError: the schema holds ``tl_items`` items and ``migrate`` is not set.
    """

    def name(table: str) -> sql.Identifier:
        return sql.Identifier(schema, table)

    if await _exists(conn, schema, "tl_objects"):
        await conn.execute(
            sql.SQL(
                "INSERT INTO {records} (kind, owner, id, thread_id, parent, body, created_at) "
                "SELECT kind, owner, id, container, parent, CASE WHEN upto IS NULL THEN body "
                "ELSE (body::jsonb || jsonb_build_object('_upto', upto))::text END, created_at "
                "FROM {objects} ON CONFLICT DO NOTHING"
            ).format(records=name("threadline_records"), objects=name("tl_objects"))
        )
        if await _exists(conn, schema, "tl_idempotency"):
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {records} (kind, owner, id, body, created_at) "
                    "SELECT 'idempotency', owner, key, CASE WHEN status IS NULL THEN NULL ELSE "
                    "jsonb_build_object('status', status, 'body', body::jsonb)::text END, "
                    "created_at FROM {claims} ON CONFLICT DO NOTHING"
                ).format(records=name("threadline_records"), claims=name("tl_idempotency"))
            )
            await conn.execute(sql.SQL("DROP TABLE {}").format(name("tl_idempotency")))
        await conn.execute(sql.SQL("DROP TABLE {}").format(name("tl_objects")))
    if not await _exists(conn, schema, "tl_items"):
        return
    cur = await conn.execute(sql.SQL("SELECT COUNT(*) FROM {}").format(name("tl_items")))
    count = int((await cur.fetchone())[0])
    if count and not migrate:
        raise StoreError(
            f"this PostgreSQL schema was made by an earlier threadline: {count} conversation "
            f"items are in its old table tl_items, which this version does not read; "
            f"{OLD_LAYOUT_FIX}"
        )
    await conn.execute(
        sql.SQL(
            "INSERT INTO {threads} (thread_id, version) "
            "SELECT container, MAX(seq) FROM {items} GROUP BY container"
        ).format(threads=name("threadline_threads"), items=name("tl_items"))
    )
    await conn.execute(
        sql.SQL(
            "INSERT INTO {messages} (thread_id, seq, message_id, tokens, body) "
            "SELECT container, seq, body::json->>'message_id', 4 + length(body) / 4, "
            "convert_to(body, 'UTF8') FROM {items}"
        ).format(messages=name("threadline_messages"), items=name("tl_items"))
    )
    await conn.execute(sql.SQL("DROP TABLE {}").format(name("tl_items")))
