"""The server half of bench/server.py: a threadline server hosting a scripted agent.

Run by the benchmark as a separate process: python bench/_server_process.py PORT DB_PATH
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import uvicorn

from threadline import ChatAgent, ChatMessage, ChatOptions, ChatResponse, Role
from threadline.hosting import ServerConfig, create_app
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
    ):  # type: ignore[no-untyped-def]
        for word in self.words:
            yield ChatResponseUpdate(contents=(TextContent(word),), message_id="msg_bench")


def main(argv: Sequence[str]) -> None:
    port, db = int(argv[0]), argv[1]
    app = create_app(
        ChatAgent(ConstantChatClient(), "You are a benchmark."),
        ServerConfig(api_keys={"bench-key": "bench"}, db_path=db),
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
