"""PostgreSQL ``forget``: what it removes at once, and what it says is left for an operator."""

from __future__ import annotations

import psycopg
from psycopg import sql

from threadline.memory.records import MemoryRecord, MemoryScope
from threadline.memory.stores import PostgresMemoryStore

ALICE = MemoryScope(user_id="alice")


async def test_forget_says_the_rows_stay_on_disk_until_vacuum_full(
    postgres_url: str, postgres_schema: str
) -> None:
    store = PostgresMemoryStore(postgres_url, schema=postgres_schema)
    try:
        await store.add([MemoryRecord(kind="fact", text="codeword xylophonequasar", scope=ALICE)])
        result = await store.forget(user_id="alice")
        assert result.records == 1 and not result.purged
        table = f"{postgres_schema}.threadline_memories"
        assert f"VACUUM FULL {table}" in result.remaining
        assert "plain VACUUM does not" in result.remaining
        assert await store.search("xylophonequasar", scope=ALICE) == []
        # The operator's command, as the result spells it, runs as given.
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("VACUUM FULL {}").format(
                    sql.Identifier(postgres_schema, "threadline_memories")
                )
            )
        assert await store.list(scope=ALICE, include_superseded=True) == []
    finally:
        await store.aclose()
