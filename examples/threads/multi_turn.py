"""The spec's practical multi-turn example: remember, serialize, resume.

ScriptedChatClient stands in for a hosted model so this runs anywhere; swap in any ChatClient.
"""

from __future__ import annotations

import asyncio
import json

from threadline import ChatAgent, ScriptedChatClient


async def main() -> None:
    client = ScriptedChatClient(
        ["Nice to meet you, Alice.", "Your name is Alice.", "We talked about your name."]
    )
    async with ChatAgent(chat_client=client, instructions="You are a helpful assistant") as agent:
        # Create a thread for persistent conversation
        thread = agent.get_new_thread()

        # First interaction
        response1 = await agent.run("My name is Alice", thread=thread)
        print(f"Agent: {response1.text}")

        # Second interaction - agent remembers the name
        response2 = await agent.run("What's my name?", thread=thread)
        print(f"Agent: {response2.text}")

        # Serialize thread for storage
        serialized = json.dumps(await thread.serialize())

        # Later, deserialize and continue conversation
        new_thread = await agent.deserialize_thread(json.loads(serialized))
        response3 = await agent.run("What did we talk about?", thread=new_thread)
        print(f"Agent: {response3.text}")


if __name__ == "__main__":
    asyncio.run(main())
