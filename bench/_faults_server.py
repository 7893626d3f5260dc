"""The server half of bench/server_faults.py: ``threadline serve --memory`` on a constant model.

Run by the benchmark as a separate process: python bench/_faults_server.py PORT DB MEMORY

Also the echoing agent of bench/isolation.py (``echo``), which that benchmark serves with
``threadline serve _faults_server:echo``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from threadline import ChatAgent, ChatMessage, ChatOptions, ChatResponse, Role
from threadline.cli.main import main as threadline
from threadline.types import ChatResponseUpdate, TextContent

_FACTS = '{"facts": [{"subject": "animal", "fact": "likes foxes", "kind": "preference"}]}'


class FactfulChatClient:
    """Answers turns with the same words and fact extractions with the same fact.

    A constant model keeps the figures about the server; answering extractions with valid JSON
    keeps the memory path (store, supersede, search) as busy as with a real model.
    """

    service_name = "bench"
    stores_history = False
    words = ("The", " quick", " brown", " fox", " jumps.")

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        extraction = "response_format" in (options.get("additional_properties") or {})
        text = _FACTS if extraction else "".join(self.words)
        return ChatResponse(messages=(ChatMessage(Role.ASSISTANT, text),))

    async def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        for word in self.words:
            yield ChatResponseUpdate(contents=(TextContent(word),), message_id="msg_bench")


agent = ChatAgent(FactfulChatClient(), "You are a benchmark.")

SECRET = re.compile(r"\bsw[0-9a-f]{12}\b")
"""The secret words of bench/isolation.py: ``sw`` and 12 hex digits."""


class EchoChatClient:
    """Answers with everything it was sent: instructions, recalled memories, history, input.

    A leak is then visible to the caller: whatever of another user the server put into the
    model's context comes back in the answer. A fact extraction is answered with the secret words
    the user stated ("My secret word is sw..."), so the memory learns them as a real model would.
    """

    service_name = "bench-echo"
    stores_history = False

    def _echo(self, messages: Sequence[ChatMessage]) -> str:
        return "\n".join(f"[{m.role.value}] {m.text}" for m in messages)

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        if "response_format" in (options.get("additional_properties") or {}):
            said = " ".join(m.text for m in messages if m.role == Role.USER)
            facts = [
                {"subject": "secret word", "fact": f"My secret word is {word}", "kind": "fact"}
                for word in dict.fromkeys(SECRET.findall(said))
            ]
            text = json.dumps({"facts": facts})
        else:
            text = self._echo(messages)
        return ChatResponse(messages=(ChatMessage(Role.ASSISTANT, text),))

    async def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        yield ChatResponseUpdate(
            contents=(TextContent(self._echo(messages)),), message_id="msg_echo"
        )


echo = ChatAgent(EchoChatClient(), "You are an echo.")


def main(argv: Sequence[str]) -> None:
    # Through the command users run, so the figures are those of `threadline serve --memory`.
    port, db, memory = argv[0], argv[1], argv[2]
    threadline(
        ["serve", "_faults_server:agent", "--port", port, "--store", f"sqlite:{db}",
         "--memory", memory, "--api-key", "bench-key=bench", "--log-level", "error"]
    )  # fmt: skip


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(sys.argv[1:])
