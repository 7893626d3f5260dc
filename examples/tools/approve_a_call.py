"""A tool that waits for a person: the run stops, the request is saved, a later process answers.

The scripted model calls ``send_email``; the run stops before the call with a request in
``response.user_input_requests``. The thread (on SQLite) is saved, restored by a fresh agent as
another process would, and the request found in the thread is answered: the email goes once.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from threadline import (
    ChatAgent,
    ChatMessage,
    FunctionApprovalRequestContent,
    FunctionCallContent,
    Role,
    ScriptedChatClient,
    tool,
)
from threadline.threads.stores.sqlite import SQLiteChatMessageStore

OUTBOX: list[str] = []


@tool(approval_mode="always_require")
def send_email(to: str, body: str) -> str:
    """Send an email.

    Args:
        to: the address.
        body: the text.
    """
    OUTBOX.append(to)
    return f"sent to {to}"


def make_agent(db: Path, *replies: object) -> ChatAgent:
    return ChatAgent(
        ScriptedChatClient(list(replies)),  # pyright: ignore[reportArgumentType]
        tools=[send_email],
        chat_message_store_factory=lambda: SQLiteChatMessageStore(db),
    )


async def main() -> None:
    db = Path(tempfile.mkdtemp()) / "threads.db"
    call = FunctionCallContent(
        call_id="c1",
        name="send_email",
        arguments=json.dumps({"to": "bob@example.com", "body": "Hi"}),
    )
    agent = make_agent(db, [call])
    thread = agent.get_new_thread()
    response = await agent.run("Tell Bob hi.", thread=thread)
    (request,) = response.user_input_requests
    print("waiting:", request.function_call.name, request.function_call.arguments)
    saved = json.dumps(await thread.serialize())

    # Later, another process: restore the thread, find the request in it, answer it.
    later = make_agent(db, "I emailed Bob.")
    restored = await later.deserialize_thread(json.loads(saved))
    assert restored.message_store is not None
    last = (await restored.message_store.list_messages())[-1]
    (found,) = [c for c in last.contents if isinstance(c, FunctionApprovalRequestContent)]
    answer = ChatMessage(Role.USER, contents=[found.create_response(approved=True)])
    print("Agent:", (await later.run(answer, thread=restored)).text)
    print("outbox:", OUTBOX)


if __name__ == "__main__":
    asyncio.run(main())
