"""``threadline chat`` with a scripted model in place of the embedded one, run as a subprocess.

Faked on purpose, and only for what the real model cannot be made to do on demand: answer with
terminal escape sequences, streamed one character per chunk (so every escape is split across
chunks). Everything else is the real command: its parser, loop, library and terminal output.
The replies are the JSON list in ``$SCRIPTED_REPLIES``; the arguments are the command's.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

from threadline.cli import chat, group_chat
from threadline.cli.main import main
from threadline.clients.base import ChatOptions
from threadline.clients.scripted import ScriptedChatClient
from threadline.types.contents import TextContent
from threadline.types.messages import ChatMessage
from threadline.types.responses import ChatResponseUpdate


class CharByChar(ScriptedChatClient):
    """Streams each reply one character per chunk; has the embedded client's lifecycle."""

    model_path = Path("scripted.gguf")

    async def load(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        async for update in super().get_streaming_response(messages, options=options):
            for char in update.text:
                yield replace(update, contents=(TextContent(char),))


if __name__ == "__main__":
    client = CharByChar(json.loads(os.environ["SCRIPTED_REPLIES"]))
    chat.open_client = group_chat.open_client = lambda args: client  # type: ignore[assignment]
    sys.exit(main(sys.argv[1:]))
