"""``LocalChatClient`` against the real default model (Qwen2.5-Coder-0.5B-Instruct).

Replies are kept short (small max_tokens): the CI machine is shared. Quality is asserted only where
it is the point (remembering a name across turns, using a tool's result), over several seeds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline import (
    ChatAgent,
    ChatOptions,
    ClientError,
    InMemoryMemoryStore,
    ScriptedChatClient,
    UserPreferencesMemory,
    tool,
)
from threadline.clients.local import LocalChatClient
from threadline.types import (
    ChatMessage,
    ChatResponseUpdate,
    FunctionCallContent,
    FunctionResultContent,
    Role,
    UsageContent,
)

SYSTEM = ChatMessage(Role.SYSTEM, "You are a helpful assistant.")


@pytest.fixture(scope="module")
def client(local_model_path: Path) -> Iterator[LocalChatClient]:
    c = LocalChatClient(n_ctx=2048, max_tokens=32)
    yield c
    c.close()


def no_eos(client: LocalChatClient) -> dict[str, object]:
    """Ban the end-of-sequence token, so a reply runs to max_tokens (for predictable lengths)."""
    return {"logit_bias": {client.llama.token_eos(): -1e9}}


async def test_reply_streams_token_by_token(client: LocalChatClient) -> None:
    await client.load()
    messages = [SYSTEM, ChatMessage(Role.USER, "Tell me about the sea.")]
    options = ChatOptions(max_tokens=24, seed=7, additional_properties=no_eos(client))
    updates: list[ChatResponseUpdate] = []
    async for update in client.get_streaming_response(messages, options=options):
        updates.append(update)
    texts = [u.text for u in updates if u.text]
    assert len(texts) >= 10  # one update per token, not one for the whole reply
    assert updates[-1].finish_reason == "length"
    assert len({u.message_id for u in updates}) == 1
    whole = await client.get_response(messages, options=options)
    assert len(whole.messages) == 1 and whole.messages[0].role == Role.ASSISTANT
    assert whole.finish_reason == "length"
    assert len(client.llama.tokenize(whole.text.encode(), add_bos=False)) >= 20


async def test_usage_is_reported_streaming_and_whole(client: LocalChatClient) -> None:
    await client.load()
    messages = [SYSTEM, ChatMessage(Role.USER, "Name a colour.")]
    options = ChatOptions(max_tokens=6, seed=3, additional_properties=no_eos(client))
    updates = [u async for u in client.get_streaming_response(messages, options=options)]
    usages = [c.details for u in updates for c in u.contents if isinstance(c, UsageContent)]
    assert len(usages) == 1  # once, with the last update
    usage = usages[0]
    prompt = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n"
    )
    assert usage.input_token_count == len(client.llama.tokenize(prompt.encode(), special=True))
    assert usage.output_token_count == 6  # the reply ran to max_tokens
    assert usage.input_token_count is not None
    assert usage.total_token_count == usage.input_token_count + 6
    whole = await client.get_response(messages, options=options)
    assert whole.usage == usage  # the same prompt and seed: the same counts


async def test_stopping_the_stream_stops_generation(client: LocalChatClient) -> None:
    await client.load()
    messages = [SYSTEM, ChatMessage(Role.USER, "Count to one thousand.")]
    options = ChatOptions(max_tokens=400, additional_properties=no_eos(client))
    stream = client.get_streaming_response(messages, options=options)
    got = 0
    async for _ in stream:
        got += 1
        if got == 3:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    prompt = len(client.llama.tokenize(b"x"))  # touch the model: it must be idle now
    assert prompt >= 1
    # The context holds the prompt and the few tokens generated before the stop, not 400 more.
    generated_upper_bound = client.llama.n_tokens
    assert generated_upper_bound < 200


async def test_cancelling_the_consumer_stops_generation(client: LocalChatClient) -> None:
    await client.load()
    messages = [SYSTEM, ChatMessage(Role.USER, "Write a very long story.")]
    options = ChatOptions(max_tokens=400, additional_properties=no_eos(client))
    first = asyncio.Event()

    async def consume() -> int:
        n = 0
        async for update in client.get_streaming_response(messages, options=options):
            n += len(update.contents)
            first.set()
        return n

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.llama.n_tokens < 200  # stopped after a few tokens, not at 400
    # and the client is immediately usable again
    reply = await client.get_response(messages, options=ChatOptions(max_tokens=4))
    assert reply.messages


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city.

    Args:
        city: the city's name.
    """
    calls.append(city)
    return f"It is sunny and 21 degrees in {city}."


calls: list[str] = []


async def test_tool_call_round_trip_through_an_agent(client: LocalChatClient) -> None:
    # The model decides by itself (tool_choice "auto") to call the tool, the agent runs it, and
    # the model answers from its result.
    calls.clear()
    agent = ChatAgent(
        client,
        "You are a helpful assistant.",
        tools=[get_weather],
        default_options=ChatOptions(max_tokens=48, temperature=0.0),
    )
    thread = agent.get_new_thread()
    updates = [u async for u in agent.run_stream("What is the weather in Paris?", thread=thread)]
    call_updates = [c for u in updates for c in u.contents if isinstance(c, FunctionCallContent)]
    assert len(call_updates) == 1  # the call arrives whole, once
    call = call_updates[0]
    assert call.name == "get_weather" and call.parse_arguments() == {"city": "Paris"}
    assert calls == ["Paris"]  # the tool really ran with those arguments
    assert thread.message_store is not None
    stored = await thread.message_store.list_messages()
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
    result = stored[2].contents[0]
    assert isinstance(result, FunctionResultContent) and result.call_id == call.call_id
    answer = stored[3].text
    print(f"answer after the tool: {answer!r}")
    assert "sunny" in answer.lower() and "{" not in answer  # an answer in words, from the result


async def test_required_tool_choice_forces_a_call(client: LocalChatClient) -> None:
    messages = [ChatMessage(Role.USER, "Hello there!")]
    options = ChatOptions(tools=[get_weather], tool_choice="required", max_tokens=32, seed=1)
    response = await client.get_response(messages, options=options)
    contents = response.messages[0].contents
    assert [type(c) for c in contents] == [FunctionCallContent]
    assert isinstance(contents[0], FunctionCallContent) and contents[0].name == "get_weather"
    assert response.finish_reason == "tool_calls"
    assert response.usage is not None and response.usage.output_token_count


async def test_the_model_remembers_a_name_and_a_city(client: LocalChatClient) -> None:
    # The point of the default model: a multi-turn chat on a thread. Sampling at 0.7 over four
    # seeds; three right answers are required, so one unlucky sample cannot fail CI.
    outcomes: list[tuple[int, bool, str]] = []
    for seed in (1, 2, 3, 4):
        agent = ChatAgent(
            client,
            "You are a helpful assistant.",
            default_options=ChatOptions(max_tokens=24, temperature=0.7, seed=seed),
        )
        thread = agent.get_new_thread()
        await agent.run("Hi! My name is Alice and I live in Lisbon.", thread=thread)
        reply = await agent.run("What is my name and where do I live?", thread=thread)
        right = "alice" in reply.text.lower() and "lisbon" in reply.text.lower()
        assert reply.usage is not None and reply.usage.input_token_count  # the agent reports it
        outcomes.append((seed, right, reply.text))
    for seed, right, text in outcomes:
        print(f"seed {seed}: {'right' if right else 'WRONG'}: {text!r}")
    assert sum(right for _, right, _ in outcomes) >= 3, outcomes


async def test_long_history_is_reduced_to_the_window(local_model_path: Path) -> None:
    client = LocalChatClient(local_model_path, n_ctx=1024, max_tokens=16)
    try:
        await client.load()
        history: list[ChatMessage] = [SYSTEM]
        for i in range(80):
            history.append(
                ChatMessage(Role.USER, f"Fact {i}: box number {i} holds {i * 7} red apples.")
            )
            history.append(ChatMessage(Role.ASSISTANT, f"Noted: box {i} has {i * 7} apples."))
        history.append(ChatMessage(Role.USER, "How many apples are in box 79?"))
        text = "".join(f"{m.role}: {m.text}\n" for m in history).encode()
        assert len(client.llama.tokenize(text, add_bos=False)) > 2500  # far over 1,024

        reply = await client.get_response(history, options=ChatOptions(max_tokens=16))
        assert reply.messages and reply.messages[0].role == Role.ASSISTANT
        sent = client.last_sent
        assert sent[0] is SYSTEM and sent[-1] is history[-1]  # instructions and newest kept
        assert len(sent) < len(history)
        assert sent[1:] == tuple(history[len(history) - len(sent) + 1 :])  # a contiguous tail
        assert client.llama.n_tokens <= 1024
        # Counted with the model's tokenizer, the prompt fills the window but leaves room to reply.
        assert reply.usage is not None and reply.usage.input_token_count is not None
        assert 1024 * 0.5 < reply.usage.input_token_count <= 1024 - 16

        # The next turn keeps the same start, so llama.cpp can reuse the evaluated prompt.
        history += [*reply.messages, ChatMessage(Role.USER, "And in box 78?")]
        await client.get_response(history, options=ChatOptions(max_tokens=16))
        assert client.last_sent[1] is sent[1]
    finally:
        await client.aclose()


async def test_newest_message_larger_than_the_window_is_refused(local_model_path: Path) -> None:
    client = LocalChatClient(local_model_path, n_ctx=256, max_tokens=16)
    try:
        huge = ChatMessage(Role.USER, "apple " * 400)
        with pytest.raises(ClientError, match="newest message needs"):
            await client.get_response([huge], options=ChatOptions())
    finally:
        await client.aclose()


async def test_extra_buffer_types_can_be_turned_off(local_model_path: Path) -> None:
    # The guard for AMX builds: the model must load and generate with extra buffers off, and the
    # library's defaults must be restored for everyone else afterwards.
    import llama_cpp

    client = LocalChatClient(local_model_path, n_ctx=256, max_tokens=4, use_extra_buffers=False)
    try:
        reply = await client.get_response([ChatMessage(Role.USER, "Hi")], options=ChatOptions())
        assert reply.messages
        assert client.llama.model_params.use_extra_bufts is False
        assert llama_cpp.llama_model_default_params().use_extra_bufts is True
    finally:
        await client.aclose()


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="does not exist"):
        LocalChatClient(tmp_path / "nope.gguf")


async def test_file_that_is_not_a_model_is_a_clear_error(
    tmp_path: Path, local_model_path: Path
) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_text("not a model")
    client = LocalChatClient(bogus)
    with pytest.raises(ClientError, match="could not load"):
        await client.load()
    await client.aclose()


async def test_automatic_tool_choice_can_answer_in_text(client: LocalChatClient) -> None:
    # Offered a tool it does not need, the model answers; the answer streams and is not empty
    # (llama-cpp-python 0.3.x's chatml-function-calling handler constrained it to nothing).
    messages = [ChatMessage(Role.USER, "Hello! How are you today?")]
    options = ChatOptions(
        tools=[get_weather],
        tool_choice="auto",
        max_tokens=12,
        additional_properties=no_eos(client),
    )
    updates = [u async for u in client.get_streaming_response(messages, options=options)]
    texts = [u.text for u in updates if u.text]
    assert not any(isinstance(c, FunctionCallContent) for u in updates for c in u.contents)
    assert len(texts) >= 5  # streamed token by token
    assert updates[-1].finish_reason == "length"


async def test_a_model_own_chat_format_chats_but_refuses_tools(local_model_path: Path) -> None:
    # chat_format hands prompting to llama-cpp-python's template of that name: plain chat works,
    # tools need our ChatML template and are refused with the reason.
    client = LocalChatClient(local_model_path, n_ctx=512, max_tokens=8, chat_format="chatml")
    try:
        reply = await client.get_response([ChatMessage(Role.USER, "Hi")], options=ChatOptions())
        assert reply.text and reply.usage is not None and reply.usage.output_token_count
        options = ChatOptions(tools=[get_weather])
        with pytest.raises(ClientError, match="cannot be offered tools"):
            await client.get_response([ChatMessage(Role.USER, "Hi")], options=options)
    finally:
        await client.aclose()


async def test_response_format_json_schema_constrains_the_reply(client: LocalChatClient) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    options = ChatOptions(
        max_tokens=24,
        temperature=0.0,
        additional_properties={
            "response_format": {"type": "json_schema", "json_schema": {"schema": schema}}
        },
    )
    reply = await client.get_response(
        [SYSTEM, ChatMessage(Role.USER, "I live in Lisbon. Which city do I live in?")],
        options=options,
    )
    assert set(json.loads(reply.text)) == {"city"}


async def test_unknown_response_format_is_a_clear_error(client: LocalChatClient) -> None:
    options = ChatOptions(additional_properties={"response_format": {"type": "yaml"}})
    with pytest.raises(ClientError, match="response_format type 'yaml' is not supported"):
        await client.get_response([ChatMessage(Role.USER, "hi")], options=options)


EXTRACTION_CASES = [
    ("Hi, I'm Ada. I'm vegetarian and I live in Lisbon.", "vegetarian"),
    ("I am allergic to peanuts, so be careful.", "peanut"),
    ("I hate cilantro.", "cilantro"),
    ("I work as a nurse at St. Mary's hospital.", "nurse"),
    ("Suggest a dinner for tonight.", None),
    ("Can you tell me a joke?", None),
    ("How do I fix a squeaky door hinge?", None),
]


async def test_the_embedded_model_extracts_durable_facts_only(client: LocalChatClient) -> None:
    # The chat's real path: the embedded model is the extractor of UserPreferencesMemory, and
    # the assistant's reply (a real chat's is never just "Noted.") is part of what it reads.
    reply = "Sure, I can help with that. Let me know if you need anything else."
    memory = UserPreferencesMemory(InMemoryMemoryStore(), extractor=client, tools=False)
    agent = ChatAgent(
        ScriptedChatClient([reply] * len(EXTRACTION_CASES)), context_providers=[memory]
    )
    outcomes: list[tuple[str, list[str]]] = []
    for i, (text, _) in enumerate(EXTRACTION_CASES):
        await agent.run(text, thread=agent.get_new_thread(user_id=f"user{i}"))
        await memory.wait_pending()
        outcomes.append((text, [f.text for f in await memory.facts(user_id=f"user{i}")]))
    right = [
        any(word in f.lower() for f in facts) if word else not facts
        for (_, word), (_, facts) in zip(EXTRACTION_CASES, outcomes, strict=True)
    ]
    # The scenario must work; a 0.5B model may miss one other case (7 of 7 when written).
    assert right[0] and sum(right) >= len(right) - 1, outcomes
