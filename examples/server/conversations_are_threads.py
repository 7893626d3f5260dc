"""A conversation held by the server is an ordinary thread: open it with the message store.

The server keeps every conversation (and every chain of responses) as a thread of its store, so
`threadline threads list/show` and any `SQLiteChatMessageStore` of that file read it;
`threadline serve my_module:agent --store sqlite:server.db` does the same from the command line.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
from pathlib import Path

import openai
import uvicorn

from threadline import ChatAgent, ScriptedChatClient, SQLiteChatMessageStore
from threadline.hosting import ServerConfig, create_app


async def main() -> None:
    model = ScriptedChatClient(["Noted: you like tea.", "You like tea."])
    agent = ChatAgent(model, "You are a friendly assistant.")
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "server.db")
        app = create_app(agent, ServerConfig(api_keys={"demo-key": "demo"}), store=f"sqlite:{db}")
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes no event for this
            await asyncio.sleep(0.01)
        async with openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="demo-key"
        ) as client:
            conversation = await client.conversations.create()
            for text in ("I like tea.", "What do I like?"):
                await client.responses.create(input=text, conversation=conversation.id)
        server.should_exit = True
        await serving

        # The same conversation, read as a thread of the file.
        async with SQLiteChatMessageStore(db, conversation.id) as thread:
            for message in await thread.list_messages():
                print(f"{message.role.value}: {message.text}")


if __name__ == "__main__":
    asyncio.run(main())
