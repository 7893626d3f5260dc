"""Regressions for the faults an adversarial run found, driven against the real server on loopback.

The official SDK is used wherever it can express the request; raw HTTP (stdlib, see
``_raw_http``) where it cannot: a lone surrogate (the SDK's encoder refuses it), ``NaN``, an
encoded slash kept in the path, two requests on one keep-alive connection.
"""

from __future__ import annotations

# pyright: reportDeprecated=false
import asyncio
import json
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.hosting._raw_http import Connection, RawResponse
from tests.hosting._raw_http import request as raw
from tests.hosting.conftest import KEYS, Server, start_server
from threadline import (
    ChatAgent,
    ChatMessage,
    ClientError,
    FunctionCallContent,
    Role,
    ScriptedChatClient,
)
from threadline.exceptions import ConcurrentThreadUpdateError
from threadline.hosting import ServerConfig
from threadline.threads.stores.records import ThreadBatch, ThreadRecord
from threadline.threads.stores.sqlite_database import SQLiteThreadDatabase

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

_LONE = '"\\ud800"'  # a JSON string holding a lone surrogate, as raw text
_DEEP = "[" * 100_000 + "]" * 100_000


def _error(response: RawResponse, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if param is not None:
        assert error["param"] == param, error
    return error


def _tools_responses() -> Any:
    return [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]


def _tools_nested() -> Any:
    return [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


# -- 1. one caller's bad request never fails another's write ---------------------------------------


async def test_a_failing_batch_never_fails_the_others_committed_with_it(tmp_path: Path) -> None:
    """Concurrent batches are group-committed in one transaction; each failure stays its own."""
    database = SQLiteThreadDatabase(tmp_path / "s.db")
    try:
        hi = ChatMessage(Role.USER, "hi")
        record = ThreadRecord(kind="note", id="n", body={"x": 1})
        good = [
            database.commit(ThreadBatch().append(f"c{i}", [hi], expected_version=0))
            for i in range(30)
        ]
        conflict = database.commit(
            ThreadBatch().put(record).append("bad", [hi], expected_version=5)
        )
        past_end = database.commit(ThreadBatch().fork("c0", "twig", at=9))
        results = await asyncio.gather(*good, conflict, past_end, return_exceptions=True)
        assert results[:30] == [{f"c{i}": 1} for i in range(30)]
        assert isinstance(results[30], ConcurrentThreadUpdateError) and "'bad'" in str(results[30])
        assert isinstance(results[31], ValueError) and "cannot fork" in str(results[31])
        assert await database.store("bad").list_messages() == []
        assert await database.get_record("note", "n") is None  # its batch's record went too
        assert await database.store("c7").list_messages() == [hi]
    finally:
        await database.aclose()


async def test_one_callers_lone_surrogate_never_fails_another_callers_turns(server: Server) -> None:
    server.model.add_replies(*(f"answer {i}" for i in range(30)))
    async with server.client("key-bob") as bob:
        bad = raw(
            server.url, "POST", "/v1/responses", content=b'{"input": ' + _LONE.encode() + b"}"
        )
        results = await asyncio.gather(
            *(bob.responses.create(input="hi") for _ in range(30)), bad, return_exceptions=True
        )
    answers = results[:30]
    assert all(not isinstance(r, BaseException) for r in answers), answers
    assert isinstance(results[30], RawResponse)
    _error(results[30], 400, "input")


# -- 2. lone surrogates anywhere in a body: 400 naming the field -----------------------------------


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/responses", '{"input": ' + _LONE + "}", "input"),
        ("/v1/responses", '{"input": [{"role": "user", "content": ' + _LONE + "}]}", None),
        ("/v1/responses", '{"input": "hi", "metadata": {"k": ' + _LONE + "}}", "metadata.k"),
        (
            "/v1/chat/completions",
            '{"messages": [{"role": "user", "content": ' + _LONE + "}]}",
            "messages[0].content",
        ),
        ("/v1/conversations", '{"metadata": {"k": ' + _LONE + "}}", "metadata.k"),
        (
            "/v1/conversations",
            '{"items": [{"role": "user", "content": ' + _LONE + "}]}",
            "items[0].content",
        ),
        ("/v1/threads", '{"metadata": {' + _LONE + ': "v"}}', "metadata"),
    ],
)
async def test_lone_surrogates_are_refused_naming_the_field(
    server: Server, path: str, body: str, param: str | None
) -> None:
    error = _error(await raw(server.url, "POST", path, content=body.encode()), 400)
    assert "surrogate" in error["message"]
    if param is not None:
        assert error["param"] == param
    else:
        assert error["param"].startswith("input[0]")
    assert server.model.calls == []


# -- 3 and 4. turns stay in their conversation; a deleted conversation's responses -----------------


async def test_a_turn_never_leaks_into_a_conversation_it_is_not_in(server: Server) -> None:
    server.model.add_replies("one", "two", "three")
    async with server.client() as client:
        conversation = await client.conversations.create()
        r1 = await client.responses.create(input="first", conversation=conversation.id)
        r2 = await client.responses.create(input="second", previous_response_id=r1.id)
        assert r2.conversation is None
        items = await client.conversations.items.list(conversation.id, order="asc")
        assert len(items.data) == 2  # r1's turn only
        # r2 saw r1's history, and its own chain continues without touching the conversation.
        assert [m.text for m in server.model.calls[1].messages[1:]] == ["first", "one", "second"]
        await client.responses.create(input="third", previous_response_id=r2.id)
        assert len((await client.conversations.items.list(conversation.id)).data) == 2
        listed = await client.responses.input_items.list(r2.id, order="asc")
        assert len(listed.data) == 3


async def test_continuing_a_response_of_a_deleted_conversation_is_a_clear_4xx(
    server: Server,
) -> None:
    server.model.add_replies("one")
    async with server.client(max_retries=0) as client:
        conversation = await client.conversations.create()
        r1 = await client.responses.create(input="first", conversation=conversation.id)
        await client.conversations.delete(conversation.id)
        with pytest.raises(openai.BadRequestError, match="was deleted") as caught:
            await client.responses.create(input="more", previous_response_id=r1.id)
        assert caught.value.param == "previous_response_id"
        with pytest.raises(openai.BadRequestError, match="was deleted"):
            await client.responses.create(input="more", previous_response_id=r1.id, stream=True)
    assert len(server.model.calls) == 1


# -- 6. a 500 tells the client the connection closes ----------------------------------------------


async def test_a_500_says_connection_close_and_the_next_request_works(server: Server) -> None:
    # A model raising something that is no ClientError stands for a bug in the hosted agent.
    server.model.add_replies(RuntimeError("bug in a tool"), "fine again")
    async with Connection(server.url) as connection:
        failed = await connection.request("POST", "/v1/responses", json_body={"input": "hi"})
        assert failed.status == 500 and failed.headers.get("connection") == "close"
        assert "bug in a tool" not in failed.text  # no internals on the wire
    async with server.client(max_retries=0) as client:
        assert (await client.responses.create(input="again")).output_text == "fine again"


async def test_a_502_from_the_model_says_connection_close(server: Server) -> None:
    server.model.add_replies(ClientError("the model is down"))
    failed = await raw(server.url, "POST", "/v1/responses", json_body={"input": "hi"})
    assert failed.status == 502 and failed.headers.get("connection") == "close"
    assert "the model is down" in failed.json()["error"]["message"]


# -- 7. deep JSON in tool outputs, odd digits ----------------------------------------------------


async def raw_big(server: Server, path: str, body: dict[str, Any]) -> RawResponse:
    return await raw(server.url, "POST", path, json_body=body)


@pytest.fixture
async def roomy(tmp_path: Path) -> Any:
    """A server that accepts bodies large enough for 100,000-deep JSON."""
    model = ScriptedChatClient([])
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "r.db"), max_body_bytes=1_000_000)
    uv, task, url = await start_server(ChatAgent(model), config)
    try:
        yield Server(url=url, model=model, config=config)
    finally:
        uv.should_exit = True
        await task


async def test_deep_json_in_any_tool_output_is_a_400(roomy: Server) -> None:
    responses_body = {
        "input": [
            {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": _DEEP},
        ]
    }
    error = _error(await raw_big(roomy, "/v1/responses", responses_body), 400, "input")
    assert "nested too deeply" in error["message"]
    chat_body = {
        "messages": [
            {"role": "user", "content": "look it up"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": _DEEP},
        ]
    }
    error = _error(await raw_big(roomy, "/v1/chat/completions", chat_body), 400, "messages")
    assert "nested too deeply" in error["message"]
    roomy.model.add_replies([FunctionCallContent(call_id="call_9", name="lookup", arguments="{}")])
    async with roomy.client() as client:
        assistant = await client.beta.assistants.create(model="m", tools=_tools_nested())
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
        run = await client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "requires_action"
        with pytest.raises(openai.BadRequestError, match="nested too deeply") as caught:
            await client.beta.threads.runs.submit_tool_outputs(
                run.id,
                thread_id=thread.id,
                tool_outputs=[{"tool_call_id": "call_9", "output": _DEEP}],
            )
        assert caught.value.param == "tool_outputs[0].output"
        # The run still waits for its outputs: nothing was stored.
        again = await client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
        assert again.status == "requires_action"


async def test_a_limit_in_other_digits_is_a_400(server: Server) -> None:
    async with server.client() as client:
        conversation = await client.conversations.create()
    for limit in ("%C2%B2", "%D9%A3", "-1", "1e1"):  # ², an Arabic-Indic 3, ...
        response = await raw(
            server.url, "GET", f"/v1/conversations/{conversation.id}/items?limit={limit}"
        )
        _error(response, 400, "limit")
    assert (
        await raw(server.url, "GET", f"/v1/conversations/{conversation.id}/items?limit=2")
    ).status == 200


# -- 11. smaller faults ----------------------------------------------------------------------------


async def test_a_streamed_model_failure_is_an_error_event_with_the_models_message(
    server: Server,
) -> None:
    server.model.add_replies(ClientError("the model ran out of memory"))
    async with server.client(max_retries=0) as client:
        stream = await client.responses.create(input="hi", stream=True)
        with pytest.raises(openai.APIError, match="the model ran out of memory"):
            async for _ in stream:
                pass
    server.model.add_replies(ClientError("the model ran out of memory"))
    answer = await raw(
        server.url, "POST", "/v1/responses", json_body={"input": "hi", "stream": True}
    )
    events = [e for e in answer.text.split("\n\n") if e.startswith("event: error")]
    assert len(events) == 1
    data = json.loads(events[0].split("data: ", 1)[1])
    assert data["type"] == "error"
    assert data["error"]["type"] == "server_error" and data["code"] == "model_error"
    assert "the model ran out of memory" in data["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", "NaN"),
        ("temperature", "Infinity"),
        ("top_p", "-Infinity"),
        ("top_p", "1e999"),
        ("temperature", "2.5"),
        ("top_p", "-0.1"),
    ],
)
async def test_non_finite_or_out_of_range_sampling_is_refused(
    server: Server, field: str, value: str
) -> None:
    body = f'{{"input": "hi", "{field}": {value}}}'.encode()
    _error(await raw(server.url, "POST", "/v1/responses", content=body), 400, field)
    chat = f'{{"messages": [{{"role": "user", "content": "hi"}}], "{field}": {value}}}'.encode()
    _error(await raw(server.url, "POST", "/v1/chat/completions", content=chat), 400, field)
    assistant = f'{{"model": "m", "{field}": {value}}}'.encode()
    _error(await raw(server.url, "POST", "/v1/assistants", content=assistant), 400, field)
    assert server.model.calls == []


async def test_an_idempotency_key_reused_with_another_body_is_refused(server: Server) -> None:
    server.model.add_replies("first answer")
    async with server.client(max_retries=0) as client:
        headers = {"Idempotency-Key": "key-1"}
        first = await client.responses.create(input="hello", extra_headers=headers)
        again = await client.responses.create(input="hello", extra_headers=headers)
        assert again.id == first.id
        with pytest.raises(openai.UnprocessableEntityError, match="key-1") as caught:
            await client.responses.create(input="something else", extra_headers=headers)
        assert "different request body" in str(caught.value)
        with pytest.raises(openai.UnprocessableEntityError, match="key-1"):
            await client.responses.create(
                input="something else", stream=True, extra_headers=headers
            )
    assert len(server.model.calls) == 1


async def test_an_encoded_slash_in_an_id_is_not_a_path_separator(server: Server) -> None:
    server.model.add_replies("hi")
    async with server.client() as client:
        response = await client.responses.create(input="hi")
    for path in (
        f"/v1/responses/{response.id}%2Finput_items",
        f"/v1/responses/{response.id}%2finput_items",
        "/v1/conversations/conv_x%2Fitems",
    ):
        error = _error(await raw(server.url, "GET", path), 404)
        assert "/" in error["message"]
    assert (await raw(server.url, "GET", f"/v1/responses/{response.id}/input_items")).status == 200


async def test_conversation_items_can_be_deleted(server: Server) -> None:
    server.model.add_replies("noted")
    async with server.client() as client:
        conversation = await client.conversations.create(
            items=[
                {"type": "message", "role": "user", "content": "keep me"},
                {"type": "message", "role": "user", "content": "delete me"},
            ]
        )
        items = await client.conversations.items.list(conversation.id, order="asc")
        doomed = items.data[1].id
        assert doomed is not None
        answer = await client.conversations.items.delete(doomed, conversation_id=conversation.id)
        assert answer.id == conversation.id
        left = await client.conversations.items.list(conversation.id, order="asc")
        assert [i.id for i in left.data] == [items.data[0].id]
        with pytest.raises(openai.NotFoundError):
            await client.conversations.items.delete(doomed, conversation_id=conversation.id)
        await client.responses.create(input="and now?", conversation=conversation.id)
    assert [m.text for m in server.model.calls[0].messages[1:]] == ["keep me", "and now?"]


async def test_thread_messages_can_be_updated(server: Server) -> None:
    async with server.client() as client, server.client("key-bob") as bob:
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        message = (await client.beta.threads.messages.list(thread.id)).data[0]
        updated = await client.beta.threads.messages.update(
            message.id, thread_id=thread.id, metadata={"tag": "important"}
        )
        assert updated.metadata == {"tag": "important"}
        fetched = await client.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
        assert fetched.metadata == {"tag": "important"}
        assert fetched.content[0].text.value == "hi"  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
        with pytest.raises(openai.NotFoundError):
            await bob.beta.threads.messages.update(message.id, thread_id=thread.id, metadata={})


# -- 8. histories the OpenAI APIs refuse -----------------------------------------------------------


async def test_a_call_without_its_output_is_refused_as_openai_does(server: Server) -> None:
    call = FunctionCallContent(call_id="call_1", name="lookup", arguments="{}")
    server.model.add_replies([call], "done")
    async with server.client(max_retries=0) as client:
        first = await client.responses.create(input="look", tools=_tools_responses())
        with pytest.raises(openai.BadRequestError, match="call_1"):
            await client.responses.create(input="never mind", previous_response_id=first.id)
        conversation = await client.conversations.create(
            items=[{"type": "function_call", "call_id": "call_2", "name": "f", "arguments": "{}"}]
        )
        with pytest.raises(openai.BadRequestError, match="call_2"):
            await client.responses.create(input="hi", conversation=conversation.id)
        with pytest.raises(openai.BadRequestError, match="call_3"):
            await client.chat.completions.create(
                model="m",
                messages=[
                    {"role": "user", "content": "go"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "call_3",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ],
                    },
                    {"role": "user", "content": "forget it"},
                ],
            )
        output = {"type": "function_call_output", "call_id": "call_1", "output": "42"}
        done = await client.responses.create(input=[output], previous_response_id=first.id)  # pyright: ignore[reportArgumentType]
        assert done.output_text == "done"
    assert len(server.model.calls) == 2


async def test_assistants_threads_never_hold_a_call_without_its_result(server: Server) -> None:
    call = FunctionCallContent(call_id="call_c", name="lookup", arguments="{}")
    server.model.add_replies([call], "after the cancel")
    async with server.client() as client:
        assistant = await client.beta.assistants.create(model="m", tools=_tools_nested())
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
        run = await client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "requires_action"
        with pytest.raises(openai.BadRequestError, match="while a run"):
            await client.beta.threads.messages.create(thread.id, role="user", content="hello?")
        cancelled = await client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
        assert cancelled.status == "cancelled"
        await client.beta.threads.messages.create(thread.id, role="user", content="hello?")
        after = await client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert after.status == "completed"
    sent = server.model.calls[1].messages
    assert [m.role for m in sent[1:]] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.USER]
    result = sent[3].contents[0]
    assert getattr(result, "call_id", None) == "call_c"
    assert "cancelled" in str(getattr(result, "exception", ""))
    assert isinstance(sent[4], ChatMessage) and sent[4].text == "hello?"


async def test_an_unanswered_call_to_the_agents_own_tool_never_blocks_a_conversation(
    tmp_path: Path,
) -> None:
    # The caller never sees the hosted agent's own tool calls, so it could never answer one (an
    # agent stopped by its tool-iteration limit may leave one): only the caller's are required.
    def lookup(q: str) -> str:
        """Look something up."""
        return q

    model = ScriptedChatClient(["still answering"])
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "own.db"))
    uv, task, url = await start_server(ChatAgent(model, tools=[lookup]), config)
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            seeded: Any = {
                "type": "function_call",
                "call_id": "call_o",
                "name": "lookup",
                "arguments": "{}",
            }
            conversation = await client.conversations.create(items=[seeded])
            answer = await client.responses.create(input="hi", conversation=conversation.id)
            assert answer.output_text == "still answering"
    finally:
        uv.should_exit = True
        await task


async def test_a_response_continues_after_an_item_of_its_conversation_was_deleted(
    server: Server,
) -> None:
    server.model.add_replies("one", "two")
    async with server.client(max_retries=0) as client:
        conversation = await client.conversations.create(
            items=[{"type": "message", "role": "user", "content": "forget me"}]
        )
        r1 = await client.responses.create(input="first", conversation=conversation.id)
        seed = (await client.conversations.items.list(conversation.id, order="asc")).data[0]
        assert seed.id is not None
        await client.conversations.items.delete(seed.id, conversation_id=conversation.id)
        r2 = await client.responses.create(input="second", previous_response_id=r1.id)
        assert r2.output_text == "two"
    assert [m.text for m in server.model.calls[1].messages[1:]] == ["first", "one", "second"]
