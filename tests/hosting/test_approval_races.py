"""Answers to one approval racing (or retried) over the server: the call runs exactly once.

An approval is an action in the world, so a client that retries, or two clients that answer the
same ``mcp_approval_request`` at once, must never run the tool twice. Continuing a response chain
from an older response branches, so the thread's version check alone cannot serialize answers
sent from the same ``previous_response_id``: the server claims the request id itself. Driven by
the official ``openai`` SDK against a real server on loopback, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import openai
import pytest

from tests.hosting.conftest import KEYS, POSTGRES_URL, drop_schema, opened_or_skip, start_server
from threadline import (
    ChatAgent,
    ChatMessage,
    FunctionCallContent,
    FunctionResultContent,
    ScriptedChatClient,
    tool,
)
from threadline.agents import IN_DOUBT
from threadline.exceptions import ClientError
from threadline.hosting import ServerConfig
from threadline.threads.stores.base import ChatMessageStore
from threadline.threads.stores.postgres import PostgresChatMessageStore
from threadline.threads.stores.postgres_database import PostgresThreadDatabase
from threadline.threads.stores.records import ThreadBatch, ThreadRecord
from threadline.threads.stores.sqlite import SQLiteChatMessageStore
from threadline.threads.stores.sqlite_database import SQLiteThreadDatabase

RACERS = 8
APPROVAL = "approval"
"""The record kind the server claims an answered request id under."""


class Gate:
    """Holds the next ``parties`` history reads until all of them are made.

    A request reads the history it continues before it checks an answer, so with the gate armed
    every racer has seen the request waiting before any of them can claim or run it: the race
    happens on every run, not only when the scheduler happens to interleave the requests.
    """

    def __init__(self) -> None:
        self._barrier: asyncio.Barrier | None = None
        self._left = 0

    def arm(self, parties: int) -> None:
        self._barrier, self._left = asyncio.Barrier(parties), parties

    async def passed(self) -> None:
        if self._barrier is None or self._left == 0:
            return
        self._left -= 1
        async with asyncio.timeout(20):  # a racer that never reads fails the test, not hangs it
            await self._barrier.wait()


class GatedStore:
    """A thread's store whose reads pass the gate (everything else as the store's own)."""

    def __init__(self, inner: ChatMessageStore, gate: Gate) -> None:
        self._inner, self._gate = inner, gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def list_messages(self, *, max_tokens: int | None = None) -> list[ChatMessage]:
        messages = list(await self._inner.list_messages(max_tokens=max_tokens))
        await self._gate.passed()
        return messages


class GatedSQLite(SQLiteThreadDatabase):
    gate = Gate()

    def store(self, thread_id: str | None = None) -> SQLiteChatMessageStore:
        return cast(SQLiteChatMessageStore, GatedStore(super().store(thread_id), self.gate))


class GatedPostgres(PostgresThreadDatabase):
    gate = Gate()

    def store(self, thread_id: str | None = None) -> PostgresChatMessageStore:
        return cast(PostgresChatMessageStore, GatedStore(super().store(thread_id), self.gate))


@dataclass
class Api:
    url: str
    model: ScriptedChatClient
    ran: list[str]
    """One entry per time the approval-guarded tool actually ran."""
    gate: Gate
    database: SQLiteThreadDatabase | PostgresThreadDatabase

    def client(self, key: str = "key-alice") -> openai.AsyncOpenAI:
        # No SDK retries: each request's own outcome is what the tests count.
        return openai.AsyncOpenAI(base_url=self.url, api_key=key, max_retries=0)


async def gated_postgres(schema: str) -> GatedPostgres:
    return await opened_or_skip(GatedPostgres(POSTGRES_URL, schema=schema, max_connections=4))


@pytest.fixture(params=["sqlite", "postgres"])
async def api(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    ran: list[str] = []

    @tool(approval_mode="always_require")
    async def send_email(to: str) -> str:
        """Send an email."""
        ran.append(to)
        return f"sent to {to}"

    model = ScriptedChatClient([])
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "server.db"))
    database: GatedSQLite | GatedPostgres
    if request.param == "postgres":
        database = await gated_postgres("tl_apr_" + os.urandom(4).hex())
    else:
        database = GatedSQLite(tmp_path / "server.db")
    database.gate = Gate()
    uv, task, url = await start_server(ChatAgent(model, tools=[send_email]), config, store=database)
    try:
        yield Api(url=url, model=model, ran=ran, gate=database.gate, database=database)
    finally:
        uv.should_exit = True
        await task
        if isinstance(database, GatedPostgres):
            await drop_schema(database.schema)


def mail(to: str, call_id: str = "c1") -> list[FunctionCallContent]:
    return [
        FunctionCallContent(call_id=call_id, name="send_email", arguments=json.dumps({"to": to}))
    ]


def answer(request_id: str, approve: bool = True) -> list[Any]:
    return [
        {"type": "mcp_approval_response", "approval_request_id": request_id, "approve": approve}
    ]


def request_id_of(response: Any) -> str:
    (item,) = [i for i in response.output if i.type == "mcp_approval_request"]
    return item.id


async def race(*attempts: Any) -> tuple[list[Any], list[openai.APIStatusError]]:
    """Run the attempts at once; the responses and the API errors, apart."""
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, openai.APIStatusError)]
    assert len(won) + len(lost) == len(outcomes), [o for o in outcomes if o not in won + lost]
    return won, lost


def assert_refused(lost: list[openai.APIStatusError]) -> None:
    for error in lost:
        assert error.status_code in (400, 409), error
        assert "Nothing was run" in str(error) or "nothing was run" in str(error), error


async def test_concurrent_answers_from_one_response_run_the_call_once(api: Api) -> None:
    api.model.add_replies(mail("bob@example.com"), "Sent it.")
    async with api.client() as client:
        first = await client.responses.create(model="m", input="Mail bob.")
        request_id = request_id_of(first)
        api.gate.arm(RACERS)
        won, lost = await race(
            *(
                client.responses.create(
                    model="m", previous_response_id=first.id, input=answer(request_id)
                )
                for _ in range(RACERS)
            )
        )
        assert api.ran == ["bob@example.com"]
        assert len(won) == 1 and len(lost) == RACERS - 1
        assert_refused(lost)
        assert won[0].output_text == "Sent it."
        assert len(api.model.calls) == 2  # the losers never reached the model
        # Retried later, the same answer is refused too; the winner's chain goes on.
        with pytest.raises(openai.BadRequestError, match="answered"):
            await client.responses.create(
                model="m", previous_response_id=first.id, input=answer(request_id)
            )
        api.model.add_replies("You are welcome.")
        after = await client.responses.create(
            model="m", previous_response_id=won[0].id, input="Thanks."
        )
        assert after.output_text == "You are welcome."
    assert api.ran == ["bob@example.com"]


async def test_concurrent_streamed_answers_run_the_call_once(api: Api) -> None:
    api.model.add_replies(mail("bob@example.com"), "Sent it.")
    async with api.client() as client:
        first = await client.responses.create(model="m", input="Mail bob.")
        request_id = request_id_of(first)

        async def streamed() -> Any:
            stream = await client.responses.create(
                model="m", previous_response_id=first.id, input=answer(request_id), stream=True
            )
            final = None
            async for event in stream:
                if event.type == "response.completed":
                    final = event.response
            assert final is not None
            return final

        api.gate.arm(RACERS)
        won, lost = await race(*(streamed() for _ in range(RACERS)))
    assert api.ran == ["bob@example.com"]
    assert len(won) == 1 and len(lost) == RACERS - 1
    assert_refused(lost)


async def test_concurrent_answers_in_a_conversation_run_the_call_once(api: Api) -> None:
    api.model.add_replies(mail("bob@example.com"), "Sent it.")
    async with api.client() as client:
        conversation = await client.conversations.create()
        first = await client.responses.create(
            model="m", conversation=conversation.id, input="Mail bob."
        )
        request_id = request_id_of(first)
        api.gate.arm(RACERS)
        won, lost = await race(
            *(
                client.responses.create(
                    model="m", conversation=conversation.id, input=answer(request_id)
                )
                for _ in range(RACERS)
            )
        )
        assert api.ran == ["bob@example.com"]
        assert len(won) == 1 and len(lost) == RACERS - 1
        assert_refused(lost)
        items = (await client.conversations.items.list(conversation.id, limit=100)).data
        kinds = [i.type for i in items]
        assert kinds.count("mcp_approval_response") == 1
        assert kinds.count("function_call_output") == 1


async def test_answers_from_a_chain_and_its_conversation_run_the_call_once(api: Api) -> None:
    """A response made in a conversation can be continued by id (a branch) or in the
    conversation: answers sent both ways at once still run the call once."""
    api.model.add_replies(mail("bob@example.com"), "Sent it.")
    async with api.client() as client:
        conversation = await client.conversations.create()
        first = await client.responses.create(
            model="m", conversation=conversation.id, input="Mail bob."
        )
        request_id = request_id_of(first)
        by_id = (
            client.responses.create(
                model="m", previous_response_id=first.id, input=answer(request_id)
            )
            for _ in range(RACERS // 2)
        )
        in_conversation = (
            client.responses.create(
                model="m", conversation=conversation.id, input=answer(request_id)
            )
            for _ in range(RACERS // 2)
        )
        api.gate.arm(RACERS)
        won, lost = await race(*by_id, *in_conversation)
    assert api.ran == ["bob@example.com"]
    assert len(won) == 1 and len(lost) == RACERS - 1
    assert_refused(lost)


async def test_a_retry_with_the_idempotency_key_replays_without_running_again(api: Api) -> None:
    api.model.add_replies(mail("bob@example.com"), "Sent it.")
    async with api.client() as client:
        first = await client.responses.create(model="m", input="Mail bob.")
        request_id = request_id_of(first)
        headers = {"Idempotency-Key": "answer-1"}
        won, lost = await race(
            *(
                client.responses.create(
                    model="m",
                    previous_response_id=first.id,
                    input=answer(request_id),
                    extra_headers=headers,
                )
                for _ in range(4)
            )
        )
        assert not lost and len({r.id for r in won}) == 1
        again = await client.responses.create(
            model="m",
            previous_response_id=first.id,
            input=answer(request_id),
            extra_headers=headers,
        )
        assert again.id == won[0].id
    assert api.ran == ["bob@example.com"]


async def test_an_answer_whose_model_call_fails_is_not_run_again_by_a_retry(api: Api) -> None:
    """The call ran, then the model failed: a retry must not run it again, and the chain is not
    stuck: the refusal names the failed response, which holds the result and goes on."""
    api.model.add_replies(mail("bob@example.com"), ClientError("model down"), "Sent it.")
    async with api.client() as client:
        first = await client.responses.create(model="m", input="Mail bob.")
        request_id = request_id_of(first)
        with pytest.raises(openai.APIStatusError, match="model down"):
            await client.responses.create(
                model="m", previous_response_id=first.id, input=answer(request_id)
            )
        assert api.ran == ["bob@example.com"]
        with pytest.raises(openai.BadRequestError, match="failed after its call") as caught:
            await client.responses.create(
                model="m", previous_response_id=first.id, input=answer(request_id)
            )
        failed_id = re.search(r"response '(resp_\w+)'", str(caught.value))
        assert failed_id is not None
        failed = await client.responses.retrieve(failed_id.group(1))
        assert failed.status == "failed" and failed.error is not None
        assert "model down" in failed.error.message
        after = await client.responses.create(
            model="m", previous_response_id=failed.id, input="Did it go?"
        )
        assert after.output_text == "Sent it."
        # The stored result reaches the model: the call's outcome is not lost.
        seen = api.model.calls[-1].messages
        assert any("sent to bob@example.com" in str(m.contents) for m in seen)
    assert api.ran == ["bob@example.com"]


async def test_a_failed_answer_in_a_conversation_keeps_the_result(api: Api) -> None:
    api.model.add_replies(mail("bob@example.com"), ClientError("model down"), "Sent it.")
    async with api.client() as client:
        conversation = await client.conversations.create()
        first = await client.responses.create(
            model="m", conversation=conversation.id, input="Mail bob.", stream=True
        )
        request_id = ""
        async for event in first:
            if event.type == "response.completed":
                request_id = request_id_of(event.response)
        assert request_id
        with pytest.raises(openai.APIError, match="model down"):
            stream = await client.responses.create(
                model="m", conversation=conversation.id, input=answer(request_id), stream=True
            )
            async for _ in stream:
                pass
        with pytest.raises(openai.BadRequestError, match="answered"):
            await client.responses.create(
                model="m", conversation=conversation.id, input=answer(request_id)
            )
        after = await client.responses.create(
            model="m", conversation=conversation.id, input="Did it go?"
        )
        assert after.output_text == "Sent it."
        items = (await client.conversations.items.list(conversation.id, limit=100)).data
        assert [i.type for i in items].count("function_call_output") == 1
    assert api.ran == ["bob@example.com"]


async def test_a_refusal_whose_model_call_fails_can_be_answered_again(api: Api) -> None:
    """Nothing ran, so nothing is claimed for good: a retry of the refusal goes through."""
    api.model.add_replies(mail("bob@example.com"), ClientError("model down"), "Not sent.")
    async with api.client() as client:
        first = await client.responses.create(model="m", input="Mail bob.")
        request_id = request_id_of(first)
        with pytest.raises(openai.APIStatusError):
            await client.responses.create(
                model="m", previous_response_id=first.id, input=answer(request_id, False)
            )
        done = await client.responses.create(
            model="m", previous_response_id=first.id, input=answer(request_id, False)
        )
        assert done.output_text == "Not sent."
    assert api.ran == []


async def test_a_claim_in_progress_is_a_409(api: Api) -> None:
    """A claim left by a request still running: the call may be running, so it is not run."""
    api.model.add_replies(mail("bob@example.com"))
    async with api.client() as client:
        first = await client.responses.create(model="m", input="Mail bob.")
        running = request_id_of(first)
        await api.database.commit(
            ThreadBatch().put(ThreadRecord(kind=APPROVAL, id=running, owner="alice"))
        )
        with pytest.raises(openai.ConflictError, match="being answered") as in_progress:
            await client.responses.create(
                model="m", previous_response_id=first.id, input=answer(running)
            )
        assert in_progress.value.code == "approval_in_progress"
    assert api.ran == []


def stopped_claim(request_id: str) -> ThreadBatch:
    """What a server killed between claiming an answer and storing its turn leaves: a claim
    with no body, older than the in-doubt bound (300 s by default)."""
    return ThreadBatch().put(
        ThreadRecord(kind=APPROVAL, id=request_id, owner="alice", created_at=time.time() - 3600)
    )


async def outcomes_stored(api: Api, response_id: str) -> list[FunctionResultContent]:
    found = await api.database.get_record("response", response_id, owner="alice")
    assert found is not None and found.thread_id is not None
    stored = await api.database.store(found.thread_id).list_messages()
    return [c for m in stored for c in m.contents if type(c) is FunctionResultContent]


async def test_answers_meeting_a_claim_in_doubt_take_it_over_once_and_never_run_it(
    api: Api,
) -> None:
    """A claim whose server died mid-answer: of 8 answers at once, one takes it over (200, the
    model's reply), records the outcome as unknown and runs nothing; the rest get a 409; the
    chain goes on."""
    api.model.add_replies(mail("bob@example.com"), "I cannot tell whether it went.")
    async with api.client() as client:
        first = await client.responses.create(model="m", input="Mail bob.")
        request_id = request_id_of(first)
        await api.database.commit(stopped_claim(request_id))
        api.gate.arm(RACERS)
        won, lost = await race(
            *(
                client.responses.create(
                    model="m", previous_response_id=first.id, input=answer(request_id)
                )
                for _ in range(RACERS)
            )
        )
        assert len(won) == 1 and len(lost) == RACERS - 1, lost
        assert all(e.code == "approval_in_progress" for e in lost), lost
        assert won[0].output_text == "I cannot tell whether it went."
        # The model saw the unknown outcome, and the stored history holds it.
        seen = [c for m in api.model.calls[-1].messages for c in m.contents]
        assert any(type(c) is FunctionResultContent and c.exception == IN_DOUBT for c in seen)
        (outcome,) = await outcomes_stored(api, won[0].id)
        assert outcome.call_id == "c1" and outcome.exception == IN_DOUBT
        with pytest.raises(openai.BadRequestError, match="answered already") as again:
            await client.responses.create(
                model="m", previous_response_id=first.id, input=answer(request_id)
            )
        assert again.value.code == "approval_not_waiting"
        api.model.add_replies("Noted.")
        after = await client.responses.create(
            model="m", previous_response_id=won[0].id, input="Try later then."
        )
        assert after.output_text == "Noted."
    assert api.ran == []


async def test_a_refusal_meeting_a_claim_in_doubt_still_records_the_outcome_unknown(
    api: Api,
) -> None:
    """The dead request's decision is unknown (it may have approved and run the call), so a
    refusal now cannot say it never ran; in a conversation, which accepts input afterwards."""
    api.model.add_replies(mail("bob@example.com"), "Unclear.", "Fine.")
    async with api.client() as client:
        conversation = await client.conversations.create()
        first = await client.responses.create(
            model="m", conversation=conversation.id, input="Mail bob."
        )
        request_id = request_id_of(first)
        await api.database.commit(stopped_claim(request_id))
        with pytest.raises(openai.BadRequestError, match="waits for approval"):
            await client.responses.create(model="m", conversation=conversation.id, input="Hi.")
        taken = await client.responses.create(
            model="m", conversation=conversation.id, input=answer(request_id, False), stream=True
        )
        text = "".join([e.delta async for e in taken if e.type == "response.output_text.delta"])
        assert text == "Unclear."
        after = await client.responses.create(model="m", conversation=conversation.id, input="Hi.")
        assert after.output_text == "Fine."
        items = (
            await client.conversations.items.list(conversation.id, limit=100, order="asc")
        ).data
        outputs = [i for i in items if i.type == "function_call_output"]
        assert len(outputs) == 1 and "unknown" in str(outputs[0].output)
        kinds = [i.type for i in items]
        assert kinds.index("mcp_approval_response") < kinds.index("function_call_output")
    assert api.ran == []
