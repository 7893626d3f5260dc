"""``open_store``: the storage specs ``serve`` accepts, and clear refusals of the rest."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.hosting.conftest import start_server
from threadline import ChatAgent, ScriptedChatClient, UsageError
from threadline.hosting import ServerConfig, open_store
from threadline.hosting.storage.postgres import PostgresServerStorage
from threadline.hosting.storage.sqlite import SQLiteServerStorage


async def test_a_sqlite_spec_opens_that_file_and_the_server_uses_it(tmp_path: Path) -> None:
    path = tmp_path / "spec.db"
    storage = open_store(f"sqlite:{path}")
    assert isinstance(storage, SQLiteServerStorage) and storage.path == str(path)
    model = ScriptedChatClient(["stored"])
    uv, task, url = await start_server(ChatAgent(model), ServerConfig(), storage=storage)
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="any") as client:
            response = await client.responses.create(input="hi")
    finally:
        uv.should_exit = True
        await task
    reopened = open_store(f"sqlite:{path}")
    try:
        found = await reopened.get("default", "response", response.id)
        assert found is not None
    finally:
        await reopened.close()


def test_a_postgres_spec_names_its_schema() -> None:
    storage = open_store("postgresql://postgres@127.0.0.1:5432/test", postgres_schema="tl_x")
    assert isinstance(storage, PostgresServerStorage) and storage.schema == "tl_x"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("sqlite:", "needs a file"),
        ("redis://127.0.0.1:6379/0", "one transaction, which Redis cannot share"),
        ("mysql://x", "sqlite:PATH or postgresql://"),
        ("server.db", "sqlite:PATH or postgresql://"),
    ],
)
def test_bad_specs_say_which_forms_work(spec: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        open_store(spec)
