"""Three agents in one conversation: watch who speaks, stop, save, and resume elsewhere.

Scripted models stand in for real ones so the example runs anywhere; swap in
``LocalChatClient()`` or ``OpenAIResponsesClient(...)`` for real answers.
"""

from __future__ import annotations

import asyncio
import json

from threadline import ChatAgent, GroupChat, ScriptedChatClient


def cast() -> list[ChatAgent]:
    scripts = {
        "writer": ["Bark lamps: light that grew on trees.", "Bark lamps: the forest, glowing."],
        "editor": ["Shorter, please.", "Good."],
        "critic": ["It needs warmth.", "Ship it."],
    }
    return [
        ChatAgent(ScriptedChatClient(r), f"You are the {n}.", name=n) for n, r in scripts.items()
    ]


async def main() -> None:
    agents = cast()
    chat = GroupChat(agents, max_rounds=6)
    first = await chat.run("Write a slogan for lamps made of tree bark.", max_rounds=4)
    for message in first.messages:
        print(f"[{message.author_name}] {message.text}")
    print(f"-- stopped ({first.stop_reason}); next: {first.next_speaker}")

    saved = json.dumps(await first.thread.serialize())  # a file, a database row, ...

    # Later, maybe in another process: the same chat, restored exactly where it stopped.
    chat = GroupChat(agents, max_rounds=6)
    thread = await chat.deserialize_thread(json.loads(saved))
    rest = await chat.run(thread=thread, max_rounds=2)
    for message in rest.messages:
        print(f"[{message.author_name}] {message.text}")
    print(f"-- {len(await thread.messages())} messages in the transcript")


asyncio.run(main())
