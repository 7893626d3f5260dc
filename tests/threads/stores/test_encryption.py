"""Encryption at rest: bodies unreadable in the database; every mismatch a clear error."""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import cast

import pytest

from tests._sqlite_sql import OF_THREAD
from threadline.exceptions import StoreError
from threadline.testing.store_conformance import StoreConformance, StoreHarness, close_store
from threadline.threads.stores.base import ChatMessageStore
from threadline.threads.stores.codec import JSONCodec, MessageCodec
from threadline.threads.stores.encryption import EncryptedCodec
from threadline.threads.stores.postgres import PostgresChatMessageStore
from threadline.threads.stores.redis import RedisChatMessageStore
from threadline.threads.stores.sqlite import SQLiteChatMessageStore
from threadline.types.messages import ChatMessage, Role

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
SECRET_TEXT = "my card number is 4111 1111 1111 1111"

Opener = Callable[[MessageCodec, str | None], ChatMessageStore]


@pytest.fixture(params=["sqlite", "redis", "postgres"])
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens stores of one kind on one database, closing them afterwards."""
    opened: list[ChatMessageStore] = []
    kind = request.param
    if kind == "sqlite":
        path = tmp_path / "enc.db"

        def make(codec: MessageCodec, thread_id: str | None) -> ChatMessageStore:
            return SQLiteChatMessageStore(path, thread_id=thread_id, codec=codec)
    elif kind == "redis":
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")

        def make(codec: MessageCodec, thread_id: str | None) -> ChatMessageStore:
            return RedisChatMessageStore(
                url=url, key_prefix=prefix, thread_id=thread_id, codec=codec
            )
    else:
        dsn: str = request.getfixturevalue("postgres_url")
        schema: str = request.getfixturevalue("postgres_schema")

        def make(codec: MessageCodec, thread_id: str | None) -> ChatMessageStore:
            return PostgresChatMessageStore(
                dsn=dsn, schema=schema, thread_id=thread_id, codec=codec
            )

    def tracked(codec: MessageCodec, thread_id: str | None = None) -> ChatMessageStore:
        store = make(codec, thread_id)
        opened.append(store)
        return store

    yield tracked
    for store in opened:
        await close_store(store)


def _tid(store: ChatMessageStore) -> str:
    thread_id = getattr(store, "thread_id", None)
    assert isinstance(thread_id, str)
    return thread_id


async def _raw_records(store: ChatMessageStore) -> list[bytes]:
    """The stored bytes of the store's own records, read behind the store's back."""
    if isinstance(store, SQLiteChatMessageStore):
        conn = sqlite3.connect(store.path)
        try:
            rows = conn.execute(
                f"SELECT body FROM threadline_messages WHERE {OF_THREAD} ORDER BY seq",
                (store.thread_id,),
            ).fetchall()
        finally:
            conn.close()
        return [bytes(r[0]) for r in rows]
    if isinstance(store, RedisChatMessageStore):
        key = f"{store.key_prefix}{store.thread_id}:m"
        return cast("list[bytes]", await store._client.lrange(key, 0, -1))
    assert isinstance(store, PostgresChatMessageStore)
    async with store._pool.connection() as conn:
        cur = await conn.execute(
            f'SELECT body FROM "{store.schema}".threadline_messages '
            "WHERE thread_id = %s ORDER BY seq",
            (store.thread_id,),
        )
        return [bytes(r[0]) for r in await cur.fetchall()]


async def _overwrite_record(store: ChatMessageStore, n: int, data: bytes) -> None:
    if isinstance(store, SQLiteChatMessageStore):
        conn = sqlite3.connect(store.path)
        try:
            with conn:
                conn.execute(
                    f"UPDATE threadline_messages SET body = ? WHERE {OF_THREAD} AND seq = ?",
                    (data, store.thread_id, n),
                )
        finally:
            conn.close()
    elif isinstance(store, RedisChatMessageStore):
        key = f"{store.key_prefix}{store.thread_id}:m"
        await store._client.lset(key, n - 1, data)  # pyright: ignore[reportArgumentType]
    else:
        assert isinstance(store, PostgresChatMessageStore)
        async with store._pool.connection() as conn:
            await conn.execute(
                f'UPDATE "{store.schema}".threadline_messages SET body = %s '
                "WHERE thread_id = %s AND seq = %s",
                (data, store.thread_id, n),
            )


async def test_bodies_are_unreadable_at_rest_and_read_back(opener: Opener) -> None:
    store = opener(EncryptedCodec(KEY), None)
    messages = [ChatMessage(Role.USER, SECRET_TEXT), ChatMessage(Role.ASSISTANT, "noted")]
    await store.add_messages(messages)
    raw = await _raw_records(store)
    assert len(raw) == 2
    assert all(b"4111" not in r and b"noted" not in r for r in raw)
    assert await opener(EncryptedCodec(KEY), _tid(store)).list_messages() == messages


async def test_wrong_key_fails_clearly(opener: Opener) -> None:
    store = opener(EncryptedCodec(KEY), None)
    await store.add_messages([ChatMessage(Role.USER, SECRET_TEXT)])
    with pytest.raises(StoreError, match="different master key") as info:
        await opener(EncryptedCodec(OTHER_KEY), _tid(store)).list_messages()
    assert _tid(store) in str(info.value) and "#1" in str(info.value)
    assert SECRET_TEXT not in str(info.value)
    with pytest.raises(StoreError, match="encrypted; open the store with codec=EncryptedCodec"):
        await opener(JSONCodec(), _tid(store)).list_messages()


async def test_plaintext_record_is_refused_by_an_encrypted_store(opener: Opener) -> None:
    plain = opener(JSONCodec(), None)
    await plain.add_messages([ChatMessage(Role.USER, "hello")])
    with pytest.raises(StoreError, match="not encrypted"):
        await opener(EncryptedCodec(KEY), _tid(plain)).list_messages()


async def test_tampered_or_moved_records_fail_authentication(opener: Opener) -> None:
    a = opener(EncryptedCodec(KEY), None)
    b = opener(EncryptedCodec(KEY), None)
    await a.add_messages([ChatMessage(Role.USER, "a1"), ChatMessage(Role.USER, "a2")])
    await b.add_messages([ChatMessage(Role.USER, "b1")])
    record = (await _raw_records(a))[1]
    flipped = record[:-1] + bytes([record[-1] ^ 1])
    await _overwrite_record(a, 2, flipped)
    with pytest.raises(StoreError, match="failed authentication") as info:
        await a.list_messages()
    assert "#2" in str(info.value)
    # A valid record of thread a copied into thread b is not accepted as b's message.
    await _overwrite_record(b, 1, (await _raw_records(a))[0])
    with pytest.raises(StoreError, match="failed authentication"):
        await b.list_messages()


async def test_forks_survive_deleting_their_encrypted_parent(opener: Opener) -> None:
    parent = opener(EncryptedCodec(KEY), None)
    await parent.add_messages([ChatMessage(Role.USER, "shared"), ChatMessage(Role.USER, "too")])
    child = await parent.fork()
    await child.add_messages([ChatMessage(Role.USER, "mine")])
    await parent.delete()
    reopened = opener(EncryptedCodec(KEY), getattr(child, "thread_id"))  # noqa: B009
    assert [m.text for m in await reopened.list_messages()] == ["shared", "too", "mine"]
    await close_store(child)


def test_master_key_must_be_long_enough() -> None:
    with pytest.raises(ValueError, match="32 random bytes"):
        EncryptedCodec(b"short")


class TestEncryptedSQLiteStore(StoreConformance):
    """The whole conformance kit again, with encryption on (and in the child processes too)."""

    @pytest.fixture
    async def store_harness(self, tmp_path: Path) -> StoreHarness:
        path = tmp_path / "threads.db"
        codec = EncryptedCodec(os.urandom(32))

        async def new_store() -> ChatMessageStore:
            return SQLiteChatMessageStore(path, codec=codec)

        async def corrupt(store: ChatMessageStore, n: int) -> None:
            await _overwrite_record(store, n, b"\x00TLE1" + b"\x00" * 40)

        return StoreHarness(
            new_store=new_store,
            factory=functools.partial(SQLiteChatMessageStore, path, codec=codec),
            corrupt_record=corrupt,
        )
