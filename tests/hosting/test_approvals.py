"""Approvals over the Responses API, driven by the official ``openai`` SDK.

A hosted agent's call that waits for approval is an ``mcp_approval_request`` output item; the
caller answers with an ``mcp_approval_response`` input item, on a ``previous_response_id`` chain
or in a conversation. The answer is bound to the stored request: a second answer, an answer in
another chain, or other input while a request waits is a 400 and nothing runs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.hosting.conftest import KEYS, start_server
from threadline import ChatAgent, FunctionCallContent, ScriptedChatClient, tool
from threadline.hosting import ServerConfig

SENT: list[str] = []


@tool(approval_mode="always_require")
def send_email(to: str) -> str:
    """Send an email."""
    SENT.append(to)
    return f"sent to {to}"


def mail(to: str, call_id: str) -> list[FunctionCallContent]:
    return [
        FunctionCallContent(call_id=call_id, name="send_email", arguments=json.dumps({"to": to}))
    ]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[openai.AsyncOpenAI, ScriptedChatClient]]:
    SENT.clear()
    model = ScriptedChatClient([])
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "server.db"))
    uv, task, url = await start_server(ChatAgent(model, tools=[send_email]), config)
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            yield client, model
    finally:
        uv.should_exit = True
        await task


def answer(request_id: str, approve: bool, reason: str | None = None) -> list[Any]:
    item: dict[str, Any] = {
        "type": "mcp_approval_response",
        "approval_request_id": request_id,
        "approve": approve,
    }
    if reason is not None:
        item["reason"] = reason
    return [item]


def requests_of(response: Any) -> list[Any]:
    return [item for item in response.output if item.type == "mcp_approval_request"]


async def test_a_chain_shows_the_request_and_the_answer_runs_the_call_once(
    api: tuple[openai.AsyncOpenAI, ScriptedChatClient],
) -> None:
    client, model = api
    model.add_replies(mail("bob@example.com", "c1"), "Sent it.", mail("ann@example.com", "c2"))
    first = await client.responses.create(model="m", input="Mail bob.")
    (request,) = requests_of(first)
    assert (request.name, json.loads(request.arguments)) == (
        "send_email",
        {"to": "bob@example.com"},
    )
    assert request.server_label == "threadline" and SENT == []

    second = await client.responses.create(
        model="m", previous_response_id=first.id, input=answer(request.id, True)
    )
    assert second.output_text == "Sent it." and SENT == ["bob@example.com"]

    # A second answer (from the same response again) is refused; nothing runs.
    with pytest.raises(openai.BadRequestError, match="not waiting"):
        await client.responses.create(
            model="m", previous_response_id=first.id, input=answer(request.id, True)
        )
    # An answer in another chain is refused too.
    other = await client.responses.create(model="m", input="Mail ann.")
    with pytest.raises(openai.BadRequestError, match="not waiting"):
        await client.responses.create(
            model="m", previous_response_id=other.id, input=answer(request.id, True)
        )
    # Other input while a request waits is refused, naming it.
    (waiting,) = requests_of(other)
    with pytest.raises(openai.BadRequestError, match="waits for approval"):
        await client.responses.create(model="m", previous_response_id=other.id, input="hello?")
    assert SENT == ["bob@example.com"]
    assert waiting.id != request.id


async def test_a_conversation_refusal_reaches_the_model_and_the_items_show_both(
    api: tuple[openai.AsyncOpenAI, ScriptedChatClient],
) -> None:
    client, model = api
    model.add_replies(mail("bob@example.com", "c1"), "I did not send it.")
    conversation = await client.conversations.create()
    first = await client.responses.create(
        model="m", conversation=conversation.id, input="Mail bob."
    )
    (request,) = requests_of(first)
    done = await client.responses.create(
        model="m", conversation=conversation.id, input=answer(request.id, False, "not now")
    )
    assert done.output_text == "I did not send it." and SENT == []
    refusal = model.calls[1].messages[-1].contents[-1]
    assert "not now" in str(getattr(refusal, "exception", ""))
    items = [i.type for i in (await client.conversations.items.list(conversation.id)).data]
    assert "mcp_approval_request" in items and "mcp_approval_response" in items
    with pytest.raises(openai.BadRequestError, match="not waiting"):
        await client.responses.create(
            model="m", conversation=conversation.id, input=answer(request.id, True)
        )


async def test_a_streamed_response_shows_the_request_item(
    api: tuple[openai.AsyncOpenAI, ScriptedChatClient],
) -> None:
    client, model = api
    model.add_replies(mail("bob@example.com", "c1"))
    stream = await client.responses.create(model="m", input="Mail bob.", stream=True)
    final = None
    async for event in stream:
        if event.type == "response.completed":
            final = event.response
    assert final is not None
    (request,) = requests_of(final)
    stored = await client.responses.retrieve(final.id)
    assert [i.id for i in requests_of(stored)] == [request.id]
