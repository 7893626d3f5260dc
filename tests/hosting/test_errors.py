"""Isolation between keys, bad input and retries: 4xx errors in the OpenAI shape, never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import openai
import pytest

from tests.hosting._raw_http import RawResponse
from tests.hosting._raw_http import request as raw_request
from tests.hosting.conftest import KEYS, Server, start_server
from threadline import ChatAgent, ChatMessage, ChatOptions, ChatResponse, Role
from threadline.hosting import ServerConfig
from threadline.types import ChatResponseUpdate


async def test_keys_see_only_their_own_objects(server: Server) -> None:
    server.model.add_replies("secret answer")
    async with server.client("key-alice") as alice, server.client("key-bob") as bob:
        response = await alice.responses.create(input="my secret")
        conversation = await alice.conversations.create()
        with pytest.raises(openai.NotFoundError):
            await bob.responses.retrieve(response.id)
        with pytest.raises(openai.NotFoundError):
            await bob.responses.create(input="continue", previous_response_id=response.id)
        with pytest.raises(openai.NotFoundError):
            await bob.responses.delete(response.id)
        with pytest.raises(openai.NotFoundError):
            await bob.conversations.items.list(conversation.id)
        with pytest.raises(openai.NotFoundError):
            await bob.responses.create(input="continue", conversation=conversation.id)
        # Alice still has everything.
        assert (await alice.responses.retrieve(response.id)).output_text == "secret answer"
    assert len(server.model.calls) == 1


async def test_unknown_key_is_401(server: Server) -> None:
    async with server.client("wrong") as client:
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()


async def _raw(
    server: Server, method: str, path: str, *, json: object = None, content: bytes | None = None
) -> RawResponse:
    return await raw_request(server.url, method, path, json_body=json, content=content)


def _assert_error(response: RawResponse, status: int, param: str | None = None) -> None:
    assert response.status == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "Traceback" not in error["message"]
    if param is not None:
        assert error["param"] == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "x"}, "input"),
        ({"input": 42}, "input"),
        ({"input": [{"role": "wizard", "content": "hi"}]}, "input"),
        ({"input": [{"type": "function_call", "call_id": 1}]}, "input"),
        ({"input": "hi", "store": "yes"}, "store"),
        ({"input": "hi", "temperature": "hot"}, "temperature"),
        ({"input": "hi", "max_output_tokens": True}, "max_output_tokens"),
        ({"input": "hi", "tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"input": "hi", "previous_response_id": "resp_nope"}, "previous_response_id"),
        ({"input": "hi", "conversation": {"no": "id"}}, "conversation"),
    ],
)
async def test_bad_responses_requests(server: Server, body: dict[str, object], param: str) -> None:
    response = await _raw(server, "POST", "/v1/responses", json=body)
    _assert_error(response, 404 if "nope" in str(body) else 400, param)
    assert server.model.calls == []


async def test_bad_json_oversized_and_unknown(server: Server) -> None:
    _assert_error(await _raw(server, "POST", "/v1/responses", content=b"{not json"), 400)
    _assert_error(await _raw(server, "POST", "/v1/responses", content=b"[1, 2]"), 400)
    _assert_error(await _raw(server, "POST", "/v1/responses", content=b"[" * 50_000), 400)
    _assert_error(await _raw(server, "POST", "/v1/responses", content=b'{"input": "\xff"}'), 400)
    big = b'{"input": "' + b"x" * 70_000 + b'"}'
    _assert_error(await _raw(server, "POST", "/v1/responses", content=big), 413)
    _assert_error(await _raw(server, "GET", "/v1/nothing-here"), 404)
    _assert_error(await _raw(server, "GET", "/v1/conversations/conv_missing"), 404)
    _assert_error(await _raw(server, "POST", "/v1/chat/completions", json={"messages": "hi"}), 400)
    _assert_error(
        await _raw(server, "POST", "/v1/chat/completions", json={"messages": [{"role": "user"}]}),
        400,
    )
    _assert_error(await _raw(server, "GET", "/v1/conversations/x/items?limit=1000"), 404)


class SlowModel:
    """A model slower than the caller's timeout (a stand-in model: no paid API is needed)."""

    service_name = "slow"
    stores_history = False

    def __init__(self) -> None:
        self.calls = 0

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        self.calls += 1
        await asyncio.sleep(0.6)
        return ChatResponse(messages=(ChatMessage(Role.ASSISTANT, f"answer {self.calls}"),))

    async def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        response = await self.get_response(messages, options=options)
        yield ChatResponseUpdate(contents=response.messages[0].contents)


async def test_retry_after_dropped_connection_does_not_duplicate_the_turn(tmp_path: Path) -> None:
    model = SlowModel()
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "s.db"))
    uv, task, url = await start_server(ChatAgent(model), config)
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            conversation = await client.conversations.create()
            # The first attempt times out (the connection is dropped); the SDK retries with the
            # same Idempotency-Key, and gets the first attempt's answer once it is done.
            response = await client.responses.create(
                input="once",
                conversation=conversation.id,
                timeout=0.3,
                extra_headers={"Idempotency-Key": "turn-1"},
            )
            assert response.output_text == "answer 1"
            again = await client.responses.create(
                input="once",
                conversation=conversation.id,
                extra_headers={"Idempotency-Key": "turn-1"},
            )
            assert again.id == response.id
            items = await client.conversations.items.list(conversation.id)
            assert len(items.data) == 2
        assert model.calls == 1
    finally:
        uv.should_exit = True
        await task


async def test_a_retried_stream_is_replayed_not_rerun(server: Server) -> None:
    server.model.add_replies("streamed once")
    async with server.client() as client:
        conversation = await client.conversations.create()
        texts: list[str] = []
        for _ in range(2):
            stream = await client.responses.create(
                input="hi",
                conversation=conversation.id,
                stream=True,
                extra_headers={"Idempotency-Key": "stream-1"},
            )
            deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
            texts.append("".join(deltas))
        assert texts == ["streamed once", "streamed once"]
        items = await client.conversations.items.list(conversation.id)
        assert len(items.data) == 2
    assert len(server.model.calls) == 1


async def test_concurrent_turns_on_one_conversation_never_interleave(tmp_path: Path) -> None:
    model = SlowModel()
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "c.db"))
    uv, task, url = await start_server(ChatAgent(model), config)
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice", max_retries=0) as client:
            conversation = await client.conversations.create()
            results = await asyncio.gather(
                client.responses.create(input="first", conversation=conversation.id),
                client.responses.create(input="second", conversation=conversation.id),
                return_exceptions=True,
            )
            conflicts = [r for r in results if isinstance(r, openai.ConflictError)]
            assert len(conflicts) == 1 and "changed" in str(conflicts[0])
            items = await client.conversations.items.list(conversation.id)
            assert len(items.data) == 2  # one whole turn; the other stored nothing
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            # With the SDK's retries the losing request runs again on the new history.
            conversation = await client.conversations.create()
            await asyncio.gather(
                client.responses.create(input="a", conversation=conversation.id),
                client.responses.create(input="b", conversation=conversation.id),
            )
            items = await client.conversations.items.list(conversation.id)
            assert len(items.data) == 4
    finally:
        uv.should_exit = True
        await task
