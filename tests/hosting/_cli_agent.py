"""An agent module for the ``threadline serve`` test (imported by the server subprocess)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from threadline import (
    ChatAgent,
    ChatMessage,
    ChatResponse,
    FunctionCallContent,
    Role,
    ScriptedChatClient,
    tool,
)
from threadline.clients.scripted import ScriptedReply

agent = ChatAgent(ScriptedChatClient(["pong"] * 100), "CLI agent.")


def make_agent() -> ChatAgent:
    return ChatAgent(ScriptedChatClient(["made"] * 10))


# For the crash test: answers every turn of a long stream of them.
endless = ChatAgent(ScriptedChatClient(["pong"] * 100_000), "Crash test agent.")


class _SlowLearner(ScriptedChatClient):
    """Answers turns at once; a fact extraction takes ``TL_TEST_EXTRACT_SECONDS`` (a slow model).

    For the shutdown test: SIGTERM arrives while the extraction still runs.
    """

    async def get_response(self, messages: Any, *, options: Any) -> ChatResponse:
        if "response_format" in (options.get("additional_properties") or {}):
            await asyncio.sleep(float(os.environ.get("TL_TEST_EXTRACT_SECONDS", "2")))
            facts = '{"facts": [{"subject": "drink", "fact": "likes tea", "kind": "preference"}]}'
            return ChatResponse(messages=(ChatMessage(Role.ASSISTANT, facts),))
        return await super().get_response(messages, options=options)


slow_learner = ChatAgent(_SlowLearner(["noted"] * 100), "Shutdown test agent.")


# For the approval restart test: a tool that counts its runs, then blocks until released, so the
# test knows the call is running when it kills the server. The model's script depends on which
# server process it is (TL_TEST_PHASE): the first asks for the call, the restarted one answers.
@tool(approval_mode="always_require")
async def send_email(to: str) -> str:
    """Send an email."""
    folder = Path(os.environ["TL_TEST_TOOL_DIR"])
    with (folder / "ran").open("a") as runs:
        runs.write(to + "\n")
    while not (folder / "release").exists():  # noqa: ASYNC110 - set by another process
        await asyncio.sleep(0.02)
    return f"sent to {to}"


def _approval_script() -> list[ScriptedReply]:
    if os.environ.get("TL_TEST_PHASE") == "ask":
        call = FunctionCallContent(call_id="c1", name="send_email", arguments='{"to": "bob"}')
        return [[call]]
    return ["I cannot tell whether it went.", "Noted."]


approver = ChatAgent(
    ScriptedChatClient(_approval_script()), "Approval test agent.", tools=[send_email]
)
