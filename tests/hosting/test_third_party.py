"""Third-party OpenAI clients against the server: the OpenAI Agents SDK, Microsoft Agent
Framework's OpenAI clients and LangChain's ``ChatOpenAI``.

They come with the ``test`` extra (``thirdparty``). Without a package a test skips, unless
``THREADLINE_REQUIRE_SERVICES=1`` (set by CI), when it fails instead. Each drives the real server
on loopback with a scripted hosted agent, the way a user of that library would.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hosting.conftest import KEYS, Server, start_server
from threadline import ChatAgent, FunctionCallContent, ScriptedChatClient
from threadline.hosting import ServerConfig


def _client_library(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        message = f"{module} is not installed (pip install 'threadline[thirdparty]'): {exc}"
        if os.environ.get("THREADLINE_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " (THREADLINE_REQUIRE_SERVICES=1)")
        pytest.skip(message)


@pytest.fixture
async def hosted(tmp_path: Path) -> AsyncIterator[Server]:
    model = ScriptedChatClient([])
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "third.db"))
    uv, task, url = await start_server(ChatAgent(model, "You are a test agent."), config)
    try:
        yield Server(url=url, model=model, config=config)
    finally:
        uv.should_exit = True
        await task


async def test_openai_agents_sdk(hosted: Server) -> None:
    agents: Any = _client_library("agents")
    agents.set_tracing_disabled(True)  # tracing would export to a remote service

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather of a city."""
        return f"sunny in {city}"

    call = FunctionCallContent(call_id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    hosted.model.add_replies(
        "hello", "you said hi", [call], "It is sunny in Paris", "from chat", "streamed", "in conv"
    )
    async with hosted.client() as client:
        responses_model = agents.OpenAIResponsesModel("threadline", client)
        agent = agents.Agent(name="a", instructions="Be brief.", model=responses_model)
        first = await agents.Runner.run(agent, "hi")
        assert first.final_output == "hello"
        second = await agents.Runner.run(
            agent, "what did I say?", previous_response_id=first.last_response_id
        )
        assert second.final_output == "you said hi"
        assert [m.text for m in hosted.model.calls[1].messages[1:]] == [
            "hi",
            "hello",
            "what did I say?",
        ]
        with_tools = agents.Agent(name="t", model=responses_model, tools=[get_weather])
        answered = await agents.Runner.run(with_tools, "weather in Paris?")
        assert answered.final_output == "It is sunny in Paris"
        tool_turn = hosted.model.calls[3].messages
        assert getattr(tool_turn[-1].contents[0], "result", None) == "sunny in Paris"
        chat_model = agents.OpenAIChatCompletionsModel("threadline", client)
        chatted = await agents.Runner.run(agents.Agent(name="c", model=chat_model), "hi")
        assert chatted.final_output == "from chat"
        streamed = agents.Runner.run_streamed(agent, "stream it")
        async for _ in streamed.stream_events():
            pass
        assert streamed.final_output == "streamed"
        conversation = await client.conversations.create()
        in_conv = await agents.Runner.run(agent, "hi", conversation_id=conversation.id)
        assert in_conv.final_output == "in conv"
        assert len((await client.conversations.items.list(conversation.id)).data) == 2


async def test_langchain_chat_openai(hosted: Server) -> None:
    langchain_openai: Any = _client_library("langchain_openai")
    hosted.model.add_replies("chat answer", "streamed answer", "responses answer")
    # Our own HTTP client, closed here: by default ChatOpenAI shares one cached for the whole
    # process, whose connection to this (then stopped) server was reported unclosed at exit.
    async with httpx.AsyncClient() as http:
        llm = langchain_openai.ChatOpenAI(
            model="threadline", base_url=hosted.url, api_key="key-alice", http_async_client=http
        )
        assert (await llm.ainvoke("hi")).content == "chat answer"
        chunks = [chunk.content async for chunk in llm.astream("hi")]
        assert "".join(chunks) == "streamed answer"
        responses_llm = langchain_openai.ChatOpenAI(
            model="threadline",
            base_url=hosted.url,
            api_key="key-alice",
            use_responses_api=True,
            http_async_client=http,
        )
        assert (await responses_llm.ainvoke("hi")).text == "responses answer"


async def test_microsoft_agent_framework_openai_clients(hosted: Server) -> None:
    af_openai: Any = _client_library("agent_framework.openai")
    hosted.model.add_replies("from responses", "from chat completions")
    async with hosted.client() as client, hosted.client() as chat_client:
        responses = af_openai.OpenAIChatClient(model="threadline", async_client=client)
        answer = await responses.as_agent(instructions="Be brief.").run("hi")
        assert answer.text == "from responses"
        completions = af_openai.OpenAIChatCompletionClient(
            model="threadline", async_client=chat_client
        )
        assert (await completions.as_agent().run("hi")).text == "from chat completions"
    assert hosted.model.calls[0].messages[0].text == "You are a test agent.\n\nBe brief."
