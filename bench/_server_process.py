"""The server half of bench/server.py: a threadline server hosting a scripted agent.

Run by the benchmark as a separate process: python bench/_server_process.py PORT DB_PATH
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from threadline import ChatAgent, ChatMessage, ChatOptions, ChatResponse, Role
from threadline.cli.main import main as threadline
from threadline.types import ChatResponseUpdate, TextContent


class ConstantChatClient:
    """Always answers the same words (ScriptedChatClient would record every call forever)."""

    service_name = "bench"
    stores_history = False
    words = ("The", " quick", " brown", " fox", " jumps.")

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        return ChatResponse(messages=(ChatMessage(Role.ASSISTANT, "".join(self.words)),))

    async def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        for word in self.words:
            yield ChatResponseUpdate(contents=(TextContent(word),), message_id="msg_bench")


agent = ChatAgent(ConstantChatClient(), "You are a benchmark.")


def main(argv: Sequence[str]) -> None:
    # Through the command users run, so the figures are those of `threadline serve`.
    port, db = argv[0], argv[1]
    threadline(
        ["serve", "_server_process:agent", "--port", port, "--store", f"sqlite:{db}",
         "--api-key", "bench-key=bench", "--log-level", "warning"]
    )  # fmt: skip


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(sys.argv[1:])
