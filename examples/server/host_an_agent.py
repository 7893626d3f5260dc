"""Host a threadline agent behind the OpenAI APIs, and talk to it with the official client.

The server runs in this process on a free loopback port; in production you would run
`threadline serve my_module:agent --api-key ...` instead.
"""

from __future__ import annotations

import asyncio
import socket

import openai
import uvicorn

from threadline import ChatAgent, ScriptedChatClient
from threadline.hosting import ServerConfig, create_app


async def main() -> None:
    # A deterministic model so the example runs anywhere; use any ChatAgent you like.
    model = ScriptedChatClient(["Hello Ada!", "Your name is Ada."])
    agent = ChatAgent(model, "You are a friendly assistant.")
    config = ServerConfig(api_keys={"demo-key": "demo"}, db_path=":memory:")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(agent, config), log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes no event for this
        await asyncio.sleep(0.01)

    async with openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="demo-key"
    ) as client:
        first = await client.responses.create(model="threadline", input="I am Ada.")
        print(first.output_text)
        # The server kept the conversation: continue it by id, sending only the new message.
        second = await client.responses.create(
            model="threadline", input="What is my name?", previous_response_id=first.id
        )
        print(second.output_text)

    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main())
