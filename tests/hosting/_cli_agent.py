"""An agent module for the ``threadline serve`` test (imported by the server subprocess)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from threadline import ChatAgent, ChatMessage, ChatResponse, Role, ScriptedChatClient

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
