"""The store specs ``serve`` accepts (the threads layer's one opener), and refusals of the rest."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.hosting.conftest import start_server
from threadline import ChatAgent, ScriptedChatClient, UsageError
from threadline.hosting import ServerConfig, server_database
from threadline.threads.stores.opener import open_database
from threadline.threads.stores.postgres_database import PostgresThreadDatabase
from threadline.threads.stores.sqlite_database import SQLiteThreadDatabase


async def test_a_sqlite_spec_opens_that_file_and_the_server_uses_it(tmp_path: Path) -> None:
    path = tmp_path / "spec.db"
    model = ScriptedChatClient(["stored"])
    uv, task, url = await start_server(ChatAgent(model), ServerConfig(), store=f"sqlite:{path}")
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="any") as client:
            response = await client.responses.create(input="hi")
    finally:
        uv.should_exit = True
        await task
    reopened = open_database(f"sqlite:{path}")
    assert isinstance(reopened, SQLiteThreadDatabase) and reopened.path == str(path)
    try:
        found = await reopened.get_record("response", response.id, owner="default")
        assert found is not None and found.thread_id is not None
        messages = await reopened.store(found.thread_id).list_messages()
        assert [m.text for m in messages] == ["hi", "stored"]
    finally:
        await reopened.aclose()


def test_a_postgres_spec_names_its_schema() -> None:
    database = server_database("postgresql://postgres@127.0.0.1:5432/test", schema="tl_x")
    assert isinstance(database, PostgresThreadDatabase) and database.schema == "tl_x"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("sqlite:", "needs a file"),
        ("redis://127.0.0.1:6379/0", "one transaction, which Redis cannot share"),
        ("mysql://x", "sqlite:PATH, postgresql://"),
        ("server.db", "sqlite:PATH, postgresql://"),
    ],
)
def test_bad_specs_say_which_forms_work(spec: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        server_database(spec)


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan"), float("inf")])
def test_an_approval_doubt_bound_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValueError, match="approval_doubt_seconds must be a positive"):
        ServerConfig(approval_doubt_seconds=seconds)
