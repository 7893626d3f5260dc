"""Small promises of the store modules: URL redaction, SQLite files from before token counts."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from threadline.threads.stores._connections import redact_url
from threadline.threads.stores.base import estimate_tokens, newest_within_budget
from threadline.threads.stores.sqlite import SQLiteChatMessageStore
from threadline.types.messages import ChatMessage, Role


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host:6379/0", "redis://host:6379/0"),
        ("redis://user:pw@host/1", "redis://user@host/1"),
        ("postgresql://postgres:s3cret@127.0.0.1:5432/test?sslmode=disable",
         "postgresql://postgres@127.0.0.1:5432/test?sslmode=disable"),
        ("rediss://host:6380", "rediss://host:6380"),
        ("postgresql://u:p@[::1]:5432/db", "postgresql://u@[::1]:5432/db"),
    ],
)  # fmt: skip
def test_redact_url_drops_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_estimate_tokens_counts_text_and_other_contents() -> None:
    assert estimate_tokens(ChatMessage(Role.USER, "")) == 4
    assert estimate_tokens(ChatMessage(Role.USER, "abcd" * 10)) == 14
    assert newest_within_budget([5, 5, 5], 10) == 2
    assert newest_within_budget([11, 1], 10) == 0


async def test_sqlite_file_from_before_token_counts_still_works(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    old = ChatMessage(Role.USER, "written by an older threadline")
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE threadline_threads (thread_id TEXT PRIMARY KEY, parent_id TEXT,
                fork_version INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL DEFAULT 0,
                created_at REAL NOT NULL, updated_at REAL NOT NULL);
            CREATE TABLE threadline_messages (thread_id TEXT NOT NULL, seq INTEGER NOT NULL,
                message_id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (thread_id, seq))
                WITHOUT ROWID;
            """
        )
        conn.execute("INSERT INTO threadline_threads VALUES ('t', NULL, 0, 1, 0, 0)")
        conn.execute(
            "INSERT INTO threadline_messages VALUES ('t', 1, ?, ?)",
            (old.message_id, json.dumps(old.to_dict())),
        )
    conn.close()
    store = SQLiteChatMessageStore(db, thread_id="t")
    assert await store.list_messages() == [old]
    new = ChatMessage(Role.ASSISTANT, "and one by this one")
    assert await store.add_messages([new], expected_version=1) == 2
    assert await store.list_messages() == [old, new]
    # Old rows count as 0 tokens: they are always inside a budget; new rows are counted.
    assert await store.list_messages(max_tokens=estimate_tokens(new)) == [old, new]
