"""Agents on the OpenAI clients: a Responses thread is just an id; Chat Completions keeps messages.

Points the clients at a threadline server started in this process (so no paid API is needed);
against OpenAI itself, drop base_url and set OPENAI_API_KEY.
"""

from __future__ import annotations

import asyncio
import json
import socket

import uvicorn

from threadline import ChatAgent, OpenAIChatClient, OpenAIResponsesClient, ScriptedChatClient
from threadline.hosting import ServerConfig, create_app


async def main() -> None:
    hosted = ChatAgent(ScriptedChatClient(["Noted: you like tea.", "You like tea.", "Hi!"]))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    server = uvicorn.Server(
        uvicorn.Config(create_app(hosted, ServerConfig(db_path=":memory:")), log_level="warning")
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes no event for this
        await asyncio.sleep(0.01)

    # Responses with store=True: the service keeps the history, the thread holds its id.
    responses = OpenAIResponsesClient("threadline", base_url=url, api_key="any")
    async with ChatAgent(responses, "Be brief.") as agent:
        thread = agent.get_new_thread()
        print((await agent.run("I like tea.", thread=thread)).text)
        state = await thread.serialize()
        print("serialized:", json.dumps(state))  # a response id, no messages
        resumed = await agent.deserialize_thread(state)
        print((await agent.run("What do I like?", thread=resumed)).text)

    # Chat Completions: stateless service, so the thread keeps its messages locally.
    chat = OpenAIChatClient("threadline", base_url=url, api_key="any")
    async with ChatAgent(chat) as agent:
        thread = agent.get_new_thread()
        print((await agent.run("Hello", thread=thread)).text)

    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main())
