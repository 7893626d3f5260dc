"""A triage agent hands the conversation to billing; billing keeps it for the next user turn.

Scripted models stand in for real ones so the example runs anywhere.
"""

from __future__ import annotations

import asyncio

from threadline import (
    ChatAgent,
    FunctionCallContent,
    FunctionResultContent,
    Handoff,
    ScriptedChatClient,
    SequentialProcess,
)


async def main() -> None:
    triage = ChatAgent(
        ScriptedChatClient([[FunctionCallContent(call_id="h1", name="transfer_to_billing")]]),
        "Route the user to the right team.",
        name="triage",
    )
    billing = ChatAgent(
        ScriptedChatClient(["Invoice 33-22 is paid.", "Refund started."]),
        "You answer billing questions.",
        name="billing",
        description="invoices and payments",
    )
    handoff = Handoff([triage, billing], start="triage", max_handoffs=3)
    response = await handoff.run("Has invoice 33-22 been paid?")
    for message in response.messages:
        for content in message.contents:
            if isinstance(content, FunctionCallContent):
                print(f"[{message.author_name}] calls {content.name}")
            elif isinstance(content, FunctionResultContent):
                print(f"[{message.author_name}] {content.result}")
        if message.text:
            print(f"[{message.author_name}] {message.text}")
    again = await handoff.run("Please refund it.", thread=response.thread)
    print(f"[{again.messages[-1].author_name}] {again.text}")

    # A fixed order instead: each agent builds on the ones before; the last one answers.
    drafter = ChatAgent(ScriptedChatClient(["Draft: lamps of bark."]), name="drafter")
    polisher = ChatAgent(ScriptedChatClient(["Bark lamps: the forest, glowing."]), name="polisher")
    result = await SequentialProcess([drafter, polisher]).run("A slogan for bark lamps.")
    print(f"final: {result.last_text}")


asyncio.run(main())
