"""Tools and forks: a plain function as a tool, then two branches of one conversation."""

from __future__ import annotations

import asyncio

from threadline import ChatAgent, FunctionCallContent, ScriptedChatClient


def get_weather(city: str) -> str:
    """Look up the current weather.

    Args:
        city: the city's name.
    """
    return f"sunny in {city}"


async def main() -> None:
    client = ScriptedChatClient(
        [
            [FunctionCallContent(call_id="c1", name="get_weather", arguments='{"city": "Paris"}')],
            "It is sunny in Paris.",
            "Then take sunglasses.",
            "Then stay inside and read.",
        ]
    )
    agent = ChatAgent(client, instructions="You are a travel helper", tools=[get_weather])
    thread = agent.get_new_thread()
    print("Agent:", (await agent.run("What's the weather in Paris?", thread=thread)).text)

    branch = await thread.fork()
    print("main:  ", (await agent.run("I will go out.", thread=thread)).text)
    print("branch:", (await agent.run("I will stay in.", thread=branch)).text)


if __name__ == "__main__":
    asyncio.run(main())
